"""Streaming output: seconds per field-record of `Recorder.record` and per field-record of `Recorder.finish`.

A 1008 x 1008 km domain (1.0e6 land cells), 8 float32 fields per record (soil moisture-like values, which
deflate about as well as the run's fields), 16 records, then the final copy into (8, 64, 64) chunks. Prints
the largest rank's time per field-record (what every rank waits for), and each rank's CPU time (on a shared
machine, the share of the work each rank does).
Usage: python benchmarks/output.py [size_km] [records]   or   mpiexec -n 2 python benchmarks/output.py
"""

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from smda.model.grid import Domain
from smda.run.decomp import decompose
from smda.run.recorder import Recorder

FIELDS = [f"sm_surface_{s}" for s in ("truth", "openloop", "analysis", "background_mean")] + \
         [f"sm_rootzone_{s}" for s in ("truth", "openloop", "analysis", "background_mean")]


def main():
    try:
        from mpi4py import MPI
        comm = MPI.COMM_WORLD if MPI.COMM_WORLD.size > 1 else None
    except ImportError:
        comm = None
    size_km = int(sys.argv[1]) if len(sys.argv) > 1 else 1008
    n_rec = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    d0 = Domain.from_centre(40.0, -100.0, size_km, size_km)
    d = Domain(d0.row0, d0.col0, d0.nrows, d0.ncols, np.ones((d0.nrows, d0.ncols), bool))
    size, rank = (1, 0) if comm is None else (comm.size, comm.rank)
    dec = decompose(d, size)
    cells = [dec.cells(r) for r in range(size)]
    mine = cells[rank]
    rng = np.random.default_rng(rank)
    smooth = 0.25 + 0.1 * np.sin(mine / 5e3)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = comm.bcast(tmp) if comm is not None else tmp
        rec = Recorder(Path(tmp), d, cells, comm)
        t0, c0 = time.perf_counter(), time.process_time()
        for k in range(n_rec):
            fields = {v: smooth + 0.02 * rng.standard_normal(mine.size) for v in FIELDS}
            rec.record("bench.nc", np.datetime64("2019-05-01") + np.timedelta64(k, "h"), fields)
        t_rec, c_rec = time.perf_counter() - t0, time.process_time() - c0
        t0, c0 = time.perf_counter(), time.process_time()
        rec.finish()
        t_fin, c_fin = time.perf_counter() - t0, time.process_time() - c0
        cpu = [(c_rec, c_fin)] if comm is None else comm.gather((c_rec, c_fin))
        if comm is not None:
            t_rec, t_fin = comm.allreduce(t_rec, op=MPI.MAX), comm.allreduce(t_fin, op=MPI.MAX)
            comm.Barrier()
    if rank == 0:
        n = len(FIELDS) * n_rec
        print(f"output of {d.n_land:.2e} cells, {size} rank(s), {n} field-records: record {t_rec / n * 1e3:.1f} ms, "
              f"finish {t_fin / n * 1e3:.1f} ms per field-record ({t_rec / n / d.n_land * 1e9:.1f} ns per cell)")
        print("  CPU ms per field-record by rank (record, finish; independent of other jobs' load): " +
              ", ".join(f"{a / n * 1e3:.1f}, {b / n * 1e3:.1f}" for a, b in cpu))


if __name__ == "__main__":
    main()
