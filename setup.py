"""Packaging: the four rooms at the top of the repository install as one ``smda`` namespace.

Metadata and dependencies are in setup.cfg; this file only maps folders to packages, found
automatically so that no subpackage can be missed, and installs the case templates of namelists/
as the package data ``smda.namelists`` (``smda init``).
"""

from setuptools import find_packages, setup

ROOMS = ("model", "forcing", "assimilation", "run")

setup(
    package_dir={"smda": "smda", "smda.namelists": "namelists", **{f"smda.{room}": room for room in ROOMS}},
    packages=["smda", "smda.namelists"]
    + [f"smda.{p}" for p in find_packages(include=[f"{r}{s}" for r in ROOMS for s in ("", ".*")])],
    package_data={"smda.namelists": ["*.yaml", "README.md"]},  # the case templates (smda init)
)
