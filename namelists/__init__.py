"""The case templates of smda (YAML namelists), installed as package data for ``smda init``."""
