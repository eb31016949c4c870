"""Streaming outputs: every record is written when it is produced, so memory does not grow with run length.

Each output file gets one record (a time slice) at a time along an unlimited ``time`` dimension.
Every rank passes its cells' values of the record's fields. Each file has an owner rank (files are dealt
out from the last rank down, rank 0 keeping the diagnostics); every rank compresses the chunks of the
grid's tiles dealt to it and the owner writes them as they are (:mod:`smda.run.chunks`), so the serial
part of output is a raw write of compressed bytes, and memory is bounded by one record's fields on top
of the state, whatever the run length and rank count.
Between records a file is closed, so it can be read while the run goes on.

While the run goes on (and when it stops early), files carry the suffix ``.part``: a file without it
is complete. While streaming, a gridded variable is stored in chunks of one record by a spatial tile, so
appending a record rewrites no earlier chunk; :meth:`Recorder.finish` copies each netCDF file, a block of
records at a time (memory independent of the run length; the ranks compress, the owner writes), into chunks
of a block of records by a tile (:func:`smda.run.output.chunk_sizes`), the layout that serves both maps and
station time series, and drops the suffix. A checkpoint records
:meth:`Recorder.positions` (records per file); a continued run :meth:`Recorder.resume` s from those
positions, dropping records written after the checkpoint, so the final files equal those of an
uninterrupted run.

Why not parallel netCDF: the mpich wheel and most Python HDF5 builds have no parallel HDF5. Deflate is
the costly part of writing, and it needs no shared file.
"""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path

import netCDF4
import numpy as np

from smda.run.chunks import Tiles, copy_blocks, open_record, write_chunks
from smda.run.guard import temporary_path, writing
from smda.run.output import TIME_ATTRS, chunk_sizes, domain_coords, global_attrs, grid_mapping, variable_attrs

log = logging.getLogger(__name__)

PART = ".part"
TIME_UNITS = "seconds since 2000-01-01 00:00:00"
_EPOCH = np.datetime64("2000-01-01T00:00:00", "s")
TITLE = "smda 1 km soil moisture data assimilation"


class Recorder:
    """The output files of one run. Collective calls (every rank): :meth:`record`, :meth:`resume`,
    :meth:`finish`, :meth:`sync`; rank 0 only: :meth:`append`, :meth:`rows`, :meth:`positions`. A file is
    read (by rank 0, between records) only after a :meth:`sync`."""

    def __init__(self, out_dir: Path, domain, cells_of_rank, comm=None, attrs=None):
        self.out = Path(out_dir)
        self.domain = domain
        self.comm = comm
        self.rank = 0 if comm is None else comm.rank
        self.root = self.rank == 0
        self.cells_of_rank = cells_of_rank  # each rank's land cells in the order of its values
        self.attrs = dict(attrs or {})
        self.counts: dict[str, int] = {}  # file (relative to out_dir) -> records written (every rank for record files)
        self.owner: dict[str, int] = {}  # file -> the rank that writes it (record files; others: rank 0)
        self.started: set[str] = set()  # files with at least one record (every rank)
        self.tiles = Tiles((domain.nrows, domain.ncols), cells_of_rank, chunk_sizes(1, domain.nrows, domain.ncols)[1:],
                           comm)

    # ------------------------------------------------------------------ gridded records
    def gather(self, a: np.ndarray, root: int = 0):
        """Concatenate per-rank (n_local, ...) arrays in canonical cell order on ``root`` (None elsewhere)."""
        if self.comm is None or self.comm.size == 1:
            return np.asarray(a)
        parts = self.comm.gather(np.asarray(a), root=root)
        return np.concatenate(parts, axis=0) if self.rank == root else None

    def grid(self, values: np.ndarray) -> np.ndarray:
        """Canonical-order land values -> (y, x) float32 with NaN off land."""
        out = np.full(self.domain.n_cells, np.nan, np.float32)
        out[np.concatenate(self.cells_of_rank)] = values
        return out.reshape(self.domain.nrows, self.domain.ncols)

    def record(self, name: str, time, fields: dict, static: dict | None = None, *, bounds=None, **attrs):
        """Append one record of ``fields`` (variable -> this rank's (n_local,) values) at ``time`` to file
        ``name`` (relative to the output folder); ``static`` (variable -> (n_local,)) is written once, when
        the file is created; ``attrs`` are global attributes of a new file (``title`` and ``history`` among
        them). ``bounds`` = (start, end): the values are means over that interval (``time_bnds``,
        ``cell_methods: "time: mean"``), the same for every record of the file.
        Collective: one exchange of the record's values, compression of each rank's tiles, and the owner's
        writes, one gathered field at a time."""
        if name not in self.owner:  # dealt out from the last rank down, in the order of first records
            size = 1 if self.comm is None else self.comm.size
            self.owner[name] = (size - 1 - len(self.owner)) % size
        owner = self.owner[name]
        fixed = {v: self.gather(a, owner) for v, a in (static or {}).items()} if name not in self.started else {}
        path = self.part(name)
        if self.rank == owner and name in self.counts and name not in self.started:  # continued from a stopped run
            self.check_schema(name, list(fields))
        self.started.add(name)  # on every rank: the static fields are gathered once
        if name not in self.counts:
            if self.rank == owner:
                self._create(path, list(fields), {v: self.grid(a) for v, a in fixed.items()}, attrs, bounds is not None)
            self.counts[name] = 0
        compressed = self.tiles.compress(list(fields.values()))
        with writing(path):
            f = None
            if self.rank == owner:
                f = open_record(path, self.counts[name], _seconds(time), _bounds(bounds), list(fields))
            try:
                for v, per_tile in zip(fields, compressed, strict=True):  # one field at a time: bounded memory
                    chunks = self.tiles.gather([per_tile], owner)
                    if f is not None:
                        write_chunks(f[v], self.counts[name], chunks)
            finally:
                if f is not None:
                    f.close()
        self.counts[name] += 1

    def append(self, name: str, time, grids: dict, static: dict | None = None, *, bounds=None, **attrs):
        """Rank 0: append one record of gridded (y, x) ``grids`` to file ``name`` (created at the first record,
        with the (y, x) ``static`` fields and the global ``attrs``); ``bounds`` as in :meth:`record`."""
        path = self.part(name)
        if name not in self.counts:
            self._create(path, list(grids), static or {}, attrs, bounds is not None)
            self.counts[name] = 0
        i = self.counts[name]
        with writing(path), open_record(path, i, _seconds(time), _bounds(bounds), list(grids)) as f:
            for v, g in grids.items():
                write_chunks(f[v], i, self.tiles.grid_chunks(g))
        self.counts[name] = i + 1

    def _create(self, path: Path, names, static, attrs, interval: bool):
        """A new file: coordinates (no _FillValue), grid mapping, the variables ``names`` (time, y, x) in chunks
        of one record by a tile, the (y, x) ``static`` grids, global attributes; ``interval``: time bounds."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = temporary_path(path)
        d = self.domain
        var_attrs = {"grid_mapping": "crs", "coordinates": "lat lon"}
        _, ty, tx = chunk_sizes(1, d.nrows, d.ncols)
        try:
            with writing(path), _open(tmp, "w") as ds:
                ds.createDimension("time", None)
                ds.createDimension("y", d.nrows)
                ds.createDimension("x", d.ncols)
                t = ds.createVariable("time", "f8", ("time",), fill_value=False)
                t.setncatts({**TIME_ATTRS, "units": TIME_UNITS})
                if interval:
                    ds.createDimension("nv", 2)
                    t.bounds = "time_bnds"
                    ds.createVariable("time_bnds", "f8", ("time", "nv"), fill_value=False)
                for cname, (dims, values, catts) in domain_coords(d).items():
                    var = ds.createVariable(cname, "f8", dims if isinstance(dims, tuple) else (dims,), fill_value=False)
                    var[:] = values
                    var.setncatts(catts)
                crs = ds.createVariable("crs", "i4", fill_value=False)
                crs.setncatts(grid_mapping())
                crs.assignValue(0)  # (a container: its value carries no meaning, but is defined)
                for v in names:
                    var = ds.createVariable(v, "f4", ("time", "y", "x"), zlib=True, complevel=4,
                                            chunksizes=(1, ty, tx), fill_value=np.float32(np.nan))
                    var.setncatts({**variable_attrs(v), **var_attrs, **({"cell_methods": "time: mean"} if interval else {})})
                for v, g in static.items():
                    var = ds.createVariable(v, "f4", ("y", "x"), zlib=True, complevel=4, chunksizes=(ty, tx),
                                            fill_value=np.float32(np.nan))
                    var.setncatts({**variable_attrs(v), **var_attrs})
                    var[:] = g
                merged = {**self.attrs, **attrs}
                ds.setncatts(global_attrs(merged.pop("title", TITLE), merged.pop("history", "created"), **merged))
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    # ------------------------------------------------------------------ table rows (observation diagnostics)
    def rows(self, name: str, frame):
        """Append the rows of a pandas DataFrame to the CSV file ``name`` (rank 0)."""
        if not self.root or frame.empty:
            return
        path = self.part(name)
        new = name not in self.counts
        if new:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.counts[name] = 0
        with writing(path), open(path, "w" if new else "a", newline="") as f:
            frame.to_csv(f, index=False, header=new)
        self.counts[name] += len(frame)

    # ------------------------------------------------------------------ positions, restart, end
    def positions(self) -> dict[str, int]:
        """Records written per file (rank 0; stored in checkpoints)."""
        return dict(self.counts)

    def resume(self, positions: dict[str, int]):
        """Continue the files of a stopped run at ``positions``, dropping later records (collective; rank 0
        checks and truncates the files).

        Files missing altogether start anew from the restart time (e.g. a new output folder, or the
        continuation of a finished spin-up run); a file shorter than its position is an error.
        """
        present = {}
        if self.root:
            present = {n: p for n, p in positions.items() if self.part(n).exists()}
            if positions and not present:
                log.info("no outputs of the stopped run in %s: writing new outputs from the restart time", self.out)
            for name, n in present.items():
                path = self.part(name)
                have = _csv_rows(path) if name.endswith(".csv") else _nc_records(path)
                if have < n:
                    raise ValueError(f"{path} holds {have} records, the checkpoint expects {n}: it is not the output "
                                     "of the run that wrote the checkpoint; continue into a new output.dir")
                if have > n:
                    (_truncate_csv if name.endswith(".csv") else _truncate_nc)(path, n)
                    log.info("%s: dropped %d records written after the checkpoint", path.name, have - n)
        if self.comm is not None:
            present = self.comm.bcast(present, root=0)
        self.counts.update(present)

    def check_schema(self, name: str, variables):
        """ValueError if the part file ``name`` of a stopped run holds other variables than this run writes."""
        path = self.part(name)
        if name not in self.counts or not path.exists():
            return
        with _open(path, "r") as ds:
            have = sorted(v for v in ds.variables if ds[v].dimensions == ("time", "y", "x"))
        if have != sorted(variables):
            raise ValueError(f"{path} holds {have}, this run writes {sorted(variables)} (different filter or "
                             "outputs than the stopped run): continue into a new output.dir")

    def finish(self, attrs=None) -> list[Path]:
        """Give every ``.part`` file its final name, netCDF files in their final chunks (a block of records by a
        tile) and with the global ``attrs`` known only at the end added (collective: each netCDF file is
        copied by its owner, every rank compresses its tiles); returns the final paths (rank 0)."""
        counts = dict(self.counts)  # (rank 0's holds every file: the record files' and its own)
        if self.comm is not None:
            counts, attrs = self.comm.bcast((counts, attrs) if self.root else None, root=0)
        self.sync()
        done = []
        for name, n in counts.items():
            final = self.out / name
            if name.endswith(".nc"):
                self._copy_final(name, n, attrs)
            elif self.root:
                os.replace(self.part(name), final)
            done.append(final)
            if self.root:
                log.info("wrote %s", final)
        return done if self.root else []

    def _copy_final(self, name: str, n: int, attrs):
        """Collective: the part file ``name`` of ``n`` records copied into its final chunks under its final name
        (the owner creates the file and writes the chunks, every rank reads and compresses its tiles)."""
        final, part, owner = self.out / name, self.part(name), self.owner.get(name, 0)
        tmp = temporary_path(final)
        names = _rewrite(part, tmp, n, final_chunks=True, attrs=attrs, gridded=False) if self.rank == owner else None
        if self.comm is not None:
            names = self.comm.bcast(names, root=owner)
        try:
            with writing(final):
                copy_blocks(part, tmp, names, n, chunk_sizes(n, 1, 1)[0], self.tiles, owner)
        except BaseException:
            if self.rank == owner:
                tmp.unlink(missing_ok=True)
            raise
        if self.rank == owner:
            os.replace(tmp, final)
        self.sync()  # (every rank has read the part file)
        if self.rank == owner:
            part.unlink()

    def sync(self):
        """Collective: wait until every owner has written its records (the files may then be read anywhere)."""
        if self.comm is not None:
            self.comm.Barrier()

    def part(self, name: str) -> Path:
        """Path of the file ``name`` while the run goes on."""
        return self.out / (name + PART)


def _open(path: Path, mode: str):
    """netCDF4.Dataset with errors that name the file and the cause (disk full, permissions)."""
    try:
        return netCDF4.Dataset(path, mode, format="NETCDF4")
    except OSError as exc:
        raise OSError(f"cannot {'read' if mode == 'r' else 'write'} {path}: {exc.strerror or exc}") from None


def _nc_records(path: Path) -> int:
    with _open(path, "r") as ds:
        return len(ds.dimensions["time"])


def _csv_rows(path: Path) -> int:
    with open(path, newline="") as f:
        return max(sum(1 for _ in csv.reader(f)) - 1, 0)


def _bounds(bounds):
    """Time bounds (start, end) in TIME_UNITS, or None."""
    return None if bounds is None else [_seconds(b) for b in bounds]


def _seconds(t) -> float:
    return (np.datetime64(t, "s") - _EPOCH) / np.timedelta64(1, "s")


def _truncate_nc(path: Path, n: int):
    """Keep the first ``n`` records of every time-dependent variable."""
    _rewrite(path, path, n)


def _rewrite(path: Path, dest: Path, n: int | None = None, final_chunks: bool = False, attrs=None, gridded=True):
    """Copy the netCDF file ``path`` to ``dest`` (write-then-rename when ``gridded``), keeping the first ``n``
    records (None: all); ``final_chunks``: gridded (time, y, x) variables in ``chunk_sizes`` chunks; ``attrs``:
    global attributes added; ``gridded`` False: the gridded variables are created but left for the caller to
    fill (no rename). Copies one chunk row of blocks at a time (a block of records by a band of tile rows), so
    memory does not grow with the number of records. Returns the gridded variables' names."""
    tmp = temporary_path(dest) if gridded else dest
    names = []
    try:
        with writing(dest), _open(path, "r") as src, _open(tmp, "w") as dst:
            src.set_auto_maskandscale(False)
            dst.set_auto_maskandscale(False)
            n = len(src.dimensions["time"]) if n is None else n
            dst.setncatts({**src.__dict__, **(attrs or {})})
            for dname, dim in src.dimensions.items():
                dst.createDimension(dname, None if dim.isunlimited() else len(dim))
            for vname, var in src.variables.items():
                filters = var.filters() or {}
                kw = {"zlib": bool(filters.get("zlib")), "complevel": filters.get("complevel", 4)}
                if final_chunks and var.dimensions == ("time", "y", "x"):
                    kw["chunksizes"] = chunk_sizes(n, *var.shape[1:])
                elif var.chunking() not in (None, "contiguous"):
                    kw["chunksizes"] = var.chunking()
                out = dst.createVariable(vname, var.dtype, var.dimensions, fill_value=var.__dict__.get("_FillValue", False),
                                         **kw)
                out.setncatts({k: v for k, v in var.__dict__.items() if k != "_FillValue"})
                if var.dimensions == ("time", "y", "x"):
                    names.append(vname)
                    if not gridded:
                        continue
                    bt, by = kw["chunksizes"][:2]
                    for t0 in range(0, n, bt):
                        for y0 in range(0, var.shape[1], by):
                            out[t0:min(t0 + bt, n), y0:y0 + by] = var[t0:min(t0 + bt, n), y0:y0 + by]
                elif var.dimensions[:1] == ("time",):
                    if n:
                        out[:n] = var[:n]
                else:
                    out[...] = var[...]
        if gridded:
            os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return names


def _truncate_csv(path: Path, n: int):
    tmp = temporary_path(path)
    with open(path, newline="") as src, open(tmp, "w", newline="") as dst:
        for i, line in enumerate(src):
            if i > n:
                break
            dst.write(line)
    os.replace(tmp, path)
