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
import os
from pathlib import Path

import netCDF4
import numpy as np
import yaml

from smda.model.grid import Domain
from smda.run.guard import temporary_path, writing
from smda.run.namelist import Namelist
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


def _hash_header(h, name: str, shape: tuple, dtype) -> None:
    """What the checksum covers besides an array's bytes: its name, shape and dtype."""
    h.update(f"{name}|{tuple(shape)}|{np.dtype(dtype).str}|".encode())


def write(path: Path, *, nl: Namelist, domain: Domain, step: int, time, local: dict, shared: dict, counters: dict,
          positions: dict, final: bool, comm=None) -> Path | None:
    """Write a checkpoint (collective). ``local``: name -> (dims, this rank's (n_local, ...) part), the first
    dimension the cells in canonical order; ``shared``: name -> (dims, array) given on rank 0; ``counters``:
    name -> int (cycle, observation counts); ``positions``: output file -> records written.

    Rank 0 receives one rank's part of one array at a time (``Recv`` into a buffer) and writes it, hashing as
    it goes, so no rank holds the global state. Returns the path on rank 0, None elsewhere.
    """
    size = 1 if comm is None else comm.size
    names = sorted(local)
    parts = {n: np.ascontiguousarray(local[n][1]) for n in names}
    counts = [parts[n].shape[0] for n in names[:1]] if size == 1 else comm.allgather(parts[names[0]].shape[0])
    if comm is not None and comm.rank != 0:
        for n in names:
            comm.Send(parts[n], dest=0, tag=names.index(n))
        return None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    h = hashlib.sha256()
    try:
        with writing(path), netCDF4.Dataset(tmp, "w", format="NETCDF4") as ds:
            for n in sorted([*names, *shared]):
                dims, a = local[n] if n in local else shared[n]
                a = parts[n] if n in local else np.asarray(a)
                shape = (sum(counts), *a.shape[1:]) if n in local else a.shape
                for d, s in zip(dims, shape, strict=True):
                    if d not in ds.dimensions:
                        ds.createDimension(d, s)
                var = ds.createVariable(n, a.dtype, dims)
                _hash_header(h, n, shape, a.dtype)
                if n not in local:
                    var[...] = a
                    h.update(np.ascontiguousarray(a))  # (no byte copy of a contiguous array)
                    continue
                start = 0
                for r, c in enumerate(counts):
                    if r == 0:
                        block = a
                    else:
                        block = np.empty((c, *a.shape[1:]), a.dtype)
                        comm.Recv(block, source=r, tag=names.index(n))
                    var[start:start + c] = block
                    h.update(np.ascontiguousarray(block))
                    start += c
            ds.setncatts({
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
                "checksum_sha256": h.hexdigest(),
                "namelist": yaml.safe_dump(to_plain(nl), sort_keys=False),
            })
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _verify(path: Path) -> str | None:
    """None if the data match the stored checksum (read one block at a time), else what is wrong."""
    try:
        with netCDF4.Dataset(path, "r") as ds:
            ds.set_auto_mask(False)
            h = hashlib.sha256()
            for n in sorted(ds.variables):
                var = ds[n]
                _hash_header(h, n, var.shape, var.dtype)
                if not var.shape:
                    h.update(np.asarray(var[...]).tobytes())
                    continue
                step = max(1, (64 << 20) // max(1, int(np.prod(var.shape[1:])) * var.dtype.itemsize))
                for i in range(0, var.shape[0], step):
                    h.update(np.ascontiguousarray(var[i:i + step]))
            if h.hexdigest() != ds.getncattr("checksum_sha256"):
                return f"{path}: checksum mismatch: the file is damaged (truncated copy or disk error)"
    except (OSError, KeyError, AttributeError) as exc:
        return f"{path}: not a readable netCDF restart file ({exc})"
    return None


class Checkpoint:
    """A checkpoint read back and checked (collective): ``step``, ``arrays`` (name -> ndarray: this rank's
    cells ``cells = (start, stop)`` of the cell-dimensioned arrays, the others whole), ``counters``,
    ``positions``, ``final`` (written at the end of a complete run). Rank 0 verifies the checksum."""

    def __init__(self, path: Path, *, nl: Namelist, domain: Domain, cells: tuple[int, int], comm=None):
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"restart file not found: {path}")
        problem = _verify(path) if comm is None or comm.rank == 0 else None
        if comm is not None and comm.size > 1:
            problem = comm.bcast(problem, root=0)
        if problem:
            raise ValueError(problem)
        with netCDF4.Dataset(path, "r") as ds:
            ds.set_auto_mask(False)
            a = {k: ds.getncattr(k) for k in ds.ncattrs()}
            if a.get("format") != FORMAT:
                raise ValueError(f"{path}: not an smda restart file of this version (format {a.get('format')!r}, "
                                 f"expected {FORMAT!r})")
            self._check(path, a, nl, domain)
            self.arrays = {k: np.asarray(v[cells[0]:cells[1]] if v.dimensions[:1] == ("cell",) else v[...])
                           for k, v in ds.variables.items()}
        self.step = int(a["step"])
        self.n_members = int(a["n_members"])
        self.final = bool(int(a["final"]))
        self.counters = json.loads(a["counters"])
        self.positions = json.loads(a["output_positions"])

    @staticmethod
    def _check(path, a, nl, domain):
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

    def members(self, n_members: int) -> np.ndarray:
        """Index of the checkpoint member each of ``n_members`` members continues from (m mod N)."""
        return np.arange(n_members) % self.n_members
