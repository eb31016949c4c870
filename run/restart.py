"""State-only, self-checking checkpoints.

A checkpoint holds what a run needs to continue exactly, and no history: the ensembles' states (cells
in the canonical pixel-major land order, so any rank count can read them), their daily flux sums and
the rain of the last day, the forcing-perturbation AR(1) state, the step and cycle counters, and the
number of records in each output file (:meth:`smda.run.recorder.Recorder.positions`). Its size is set
by the domain and the ensemble, not by the run length.

It carries a SHA-256 checksum of its data, verified on read, and the resolved namelist. A run may
continue a checkpoint when the keys that set the model trajectory agree (:data:`TRAJECTORY`: the
domain, the start and step of the time axis, the model, the forcing and the seed); observation,
assimilation and output settings and ``time.end`` may change. A refusal names every differing key. An
open-loop checkpoint may be continued with a filter: the analysis ensemble starts from the open-loop
ensemble (the standard spin-up workflow). The ensemble may be resized (``model.ensemble_size`` N -> M):
member m continues from member m mod N of the checkpoint, state and forcing-perturbation state alike, so
every member is a water-balanced model state; added members part from their originals through their own
forcing-perturbation streams (keyed by member). Files are written under a temporary name and renamed, so an
interrupted write leaves the previous checkpoint usable.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import xarray as xr
import yaml

from smda.model.grid import Domain
from smda.run.namelist import Namelist
from smda.run.output import atomic_to_netcdf
from smda.run.schema import to_plain

FORMAT = "smda-restart-2"
# namelist keys that set the trajectory of the truth and the ensembles (a prefix covers a whole section);
# model.ensemble_size may change: the ensemble is resized (see Checkpoint.members)
TRAJECTORY = ("domain", "time.start", "time.dt_s", "model", "forcing", "seed")
RESIZABLE = ("model.ensemble_size",)


def _flat(plain: dict, prefix="") -> dict:
    out = {}
    for k, v in plain.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v and all(isinstance(x, str) for x in v):
            out.update(_flat(v, key + "."))
        else:
            out[key] = v
    return out


def trajectory_keys(nl_plain: dict) -> dict:
    """The :data:`TRAJECTORY` keys of a plain (YAML) namelist, flattened to dotted paths."""
    return {k: v for k, v in _flat(nl_plain).items()
            if any(k == p or k.startswith(p + ".") for p in TRAJECTORY) and k not in RESIZABLE}


def checksum(arrays: dict) -> str:
    """SHA-256 over the names, shapes, dtypes and bytes of ``arrays`` (name -> ndarray), in name order."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.shape}|{a.dtype.str}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def write(path: Path, *, nl: Namelist, domain: Domain, step: int, time, arrays: dict, counters: dict,
          positions: dict, final: bool) -> Path:
    """Write a checkpoint. ``arrays``: name -> (dims tuple, ndarray) of gathered global data; ``counters``:
    name -> int (cycle, observation counts); ``positions``: output file -> records written."""
    ds = xr.Dataset({name: (dims, np.asarray(a)) for name, (dims, a) in arrays.items()})
    ds.attrs = {
        "format": FORMAT,
        "grid": "EASE-Grid 2.0 M01 (EPSG:6933)",
        "domain": f"{domain.row0} {domain.col0} {domain.nrows} {domain.ncols}",
        "n_land": domain.n_land,
        "n_members": nl.model.ensemble_size,
        "step": int(step),
        "time": str(np.datetime64(time, "s")),
        "final": int(final),
        "counters": json.dumps({k: int(v) for k, v in counters.items()}),
        "output_positions": json.dumps(positions),
        "checksum_sha256": checksum({k: np.asarray(a) for k, (_, a) in arrays.items()}),
        "namelist": yaml.safe_dump(to_plain(nl), sort_keys=False),
    }
    return atomic_to_netcdf(ds, Path(path))


class Checkpoint:
    """A checkpoint read back and checked: ``step``, ``arrays`` (name -> ndarray), ``counters``,
    ``positions``, ``final`` (written at the end of a complete run)."""

    def __init__(self, path: Path, *, nl: Namelist, domain: Domain):
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"restart file not found: {path}")
        try:
            ds = xr.load_dataset(path)
        except Exception as exc:  # netCDF/HDF errors come in many types
            raise ValueError(f"{path}: not a readable netCDF restart file ({exc})") from None
        a = ds.attrs
        if a.get("format") != FORMAT:
            raise ValueError(f"{path}: not an smda restart file of this version (format {a.get('format')!r}, "
                             f"expected {FORMAT!r})")
        self.arrays = {k: ds[k].values for k in ds.data_vars}
        if checksum(self.arrays) != a.get("checksum_sha256"):
            raise ValueError(f"{path}: checksum mismatch: the file is damaged (truncated copy or disk error)")
        bad = []
        expected = {"domain": f"{domain.row0} {domain.col0} {domain.nrows} {domain.ncols}", "n_land": domain.n_land}
        bad += [f"{k}: file has {a.get(k)!r}, this run has {v!r}" for k, v in expected.items() if str(a.get(k)) != str(v)]
        theirs, ours = trajectory_keys(yaml.safe_load(a["namelist"])), trajectory_keys(to_plain(nl))
        bad += [f"{k}: file has {theirs.get(k)!r}, this run has {ours.get(k)!r}"
                for k in sorted(set(theirs) | set(ours)) if theirs.get(k) != ours.get(k)]
        if bad:
            raise ValueError(f"{path} does not match this run and was not used:\n  " + "\n  ".join(bad)
                             + f"\n(a continued run must keep {', '.join(TRAJECTORY)}; observations, assimilation,"
                               " output and time.end may change)")
        self.step = int(a["step"])
        self.n_members = int(a["n_members"])
        self.final = bool(int(a["final"]))
        self.counters = json.loads(a["counters"])
        self.positions = json.loads(a["output_positions"])

    def members(self, n_members: int) -> np.ndarray:
        """Index of the checkpoint member each of ``n_members`` members continues from (m mod N)."""
        return np.arange(n_members) % self.n_members
