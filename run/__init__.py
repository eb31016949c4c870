"""The smda driver: CLI, namelists, experiment assembly, MPI, outputs, restarts, validation."""

__version__ = "0.1.0"
