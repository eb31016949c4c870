"""The smda driver: CLI, namelists, experiment assembly, MPI, outputs, restarts, validation."""
