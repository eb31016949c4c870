"""smda: 1 km soil moisture from coarse SMAP and SMOS observations by ensemble data assimilation.

The namespace holds four rooms, kept as top-level folders of the repository and installed under
``smda`` (see ``setup.py``):

- :mod:`smda.model`: EASE-Grid 2.0 grid, soil hydraulics, land surface model kernels, L-band emission;
- :mod:`smda.forcing`: forcing readers, regridding, synthetic weather, ensemble perturbations;
- :mod:`smda.assimilation`: ``filters`` (the analysis), ``observations`` (table, readers, QC, bias,
  synthetic observations, operator) and ``downscaling`` (the comparison methods);
- :mod:`smda.run`: the command line, namelists, driver, MPI decomposition, outputs, validation.

Shared physical constants live in :mod:`smda.constants`, the variable registry in
:mod:`smda.variables` and the JIT settings in :mod:`smda.jit`.
"""

__version__ = "0.2.0.dev0"
