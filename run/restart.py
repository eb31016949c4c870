"""Self-describing, self-checking checkpoints.

A checkpoint holds everything a run needs to continue exactly: the ensembles' states (cells in the
canonical pixel-major land order, so any rank count can read them), the forcing-perturbation AR(1)
states, the step counter and time, and the output history gathered so far. It records the grid,
the domain, the ensemble size and a hash of the physics-relevant namelist; a checkpoint that does
not match the run is refused with a message saying what differs. Files are written under a
temporary name and renamed, so an interrupted write leaves the previous checkpoint usable.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import xarray as xr
import yaml

from smda.model.grid import Domain
from smda.run.namelist import Namelist
from smda.run.output import atomic_to_netcdf
from smda.run.schema import to_plain

FORMAT = "smda-restart-1"


def physics_hash(nl: Namelist) -> str:
    """SHA-256 of the namelist keys that change the model trajectory (not output, validation, end time)."""
    plain = to_plain(nl)
    for k in ("output", "validation", "comparison", "name"):
        plain.pop(k, None)
    plain["time"].pop("end", None)
    return hashlib.sha256(yaml.safe_dump(plain, sort_keys=True).encode()).hexdigest()[:16]


def write(path: Path, *, nl: Namelist, domain: Domain, step: int, time, arrays: dict) -> Path:
    """Write a checkpoint. ``arrays``: name -> (dims tuple, ndarray) of gathered global data."""
    ds = xr.Dataset({name: (dims, np.asarray(a)) for name, (dims, a) in arrays.items()})
    ds.attrs = {
        "format": FORMAT,
        "grid": "EASE-Grid 2.0 M01 (EPSG:6933)",
        "domain": f"{domain.row0} {domain.col0} {domain.nrows} {domain.ncols}",
        "n_land": domain.n_land,
        "n_members": nl.model.ensemble_size,
        "physics_hash": physics_hash(nl),
        "step": int(step),
        "time": str(np.datetime64(time, "s")),
        "namelist": yaml.safe_dump(to_plain(nl), sort_keys=False),
    }
    return atomic_to_netcdf(ds, Path(path))


def read(path: Path, *, nl: Namelist, domain: Domain) -> tuple[int, dict]:
    """Read and check a checkpoint; returns (step, name -> ndarray). Refuses a mismatching file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"restart file not found: {path}")
    try:
        ds = xr.load_dataset(path)
    except Exception as exc:  # netCDF/HDF errors come in many types
        raise ValueError(f"{path}: not a readable netCDF restart file ({exc})") from None
    a = ds.attrs
    if a.get("format") != FORMAT:
        raise ValueError(f"{path}: not an smda restart file (format {a.get('format')!r}, expected {FORMAT!r})")
    expected = {
        "domain": f"{domain.row0} {domain.col0} {domain.nrows} {domain.ncols}",
        "n_land": domain.n_land,
        "n_members": nl.model.ensemble_size,
        "physics_hash": physics_hash(nl),
    }
    bad = [f"{k}: file has {a.get(k)!r}, this run has {v!r}" for k, v in expected.items() if str(a.get(k)) != str(v)]
    if bad:
        raise ValueError(f"{path} does not match this run and was not used:\n  " + "\n  ".join(bad)
                         + "\n(the physics hash covers domain, time.start, time.dt_s, model, forcing, observations,"
                           " assimilation and seed)")
    return int(a["step"]), {k: ds[k].values for k in ds.data_vars}
