"""Land surface physics, L-band emission and the EASE-Grid 2.0 grid."""
