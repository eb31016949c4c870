"""Optional dependencies: a feature that needs one says which ``pip install 'smda[extra]'`` brings it.

=========  =========================  ==========================================
extra      packages                   features
=========  =========================  ==========================================
mpi        mpi4py (system MPI)        parallel runs (serial runs need no MPI)
mpich      mpi4py + the mpich wheel   parallel runs where no system MPI exists
ismn       ismn                       validation against ISMN downloads
modis      pyhdf                      MODIS MOD11A1/MOD13A2 HDF4 readers
ml         scikit-learn               the random-forest comparison operator
rasters    rioxarray (rasterio)       smda parameters (static fields from rasters)
tuw        pynetcf, pygeogrids        TU Wien time-series cell files (tuw_cells)
all        all of the above but mpich
=========  =========================  ==========================================
"""

from __future__ import annotations

import importlib


class MissingExtra(RuntimeError):
    """An optional dependency is not installed; the message names the extra that installs it."""


def require(module: str, extra: str, feature: str):
    """Import and return ``module``, or raise :class:`MissingExtra` naming ``extra`` and the ``feature``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtra(f"{feature} needs the Python package {module.split('.')[0]!r} ({exc}); "
                           f"install it with: pip install 'smda[{extra}]'") from None
