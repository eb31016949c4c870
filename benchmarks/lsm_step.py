"""Throughput of one land surface model step (smda.model.lsm.step).

Prints cell-member-steps per second (single thread; run with NUMBA_NUM_THREADS=1) and the bytes the
step moves (state read + written, forcing read, fluxes and flags written, parameters read) for
n_cells x n_members (default 1e5 x 32; goal >= 5e6 cell-member-steps per second per core).

Usage: NUMBA_NUM_THREADS=1 python benchmarks/lsm_step.py [n_cells] [n_members] [n_steps]
"""

import os
import sys
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from smda.model import lsm, soil  # noqa: E402
from smda.model.state import State  # noqa: E402


def main(n_cells=100_000, n_members=32, n_steps=10, repeats=3):
    rng = np.random.default_rng(1)
    sand = rng.uniform(0.05, 0.9, n_cells)
    clay = rng.uniform(0.03, 0.5, n_cells) * (1.0 - sand)
    params = soil.soil_parameters(sand, clay)
    state = State.initial(n_cells, n_members, params, sm=0.25, t=290.0)
    fluxes = lsm.Fluxes(n_cells, n_members)
    shape = (n_cells, n_members)
    forcing = {
        "precip": np.where(rng.uniform(size=shape) < 0.2, 1e-3, 0.0),
        "sw_down": rng.uniform(0.0, 900.0, shape),
        "lw_down": rng.uniform(250.0, 400.0, shape),
        "t_air": rng.uniform(265.0, 305.0, shape),
        "q_air": rng.uniform(0.002, 0.015, shape),
        "p_surf": rng.uniform(9.5e4, 1.02e5, shape),
        "wind": rng.uniform(0.5, 8.0, shape),
    }
    veg = {"fveg": rng.uniform(0.0, 1.0, n_cells), "lai": rng.uniform(0.0, 5.0, n_cells)}
    lsm.step(state, forcing, params, veg, 1800.0, fluxes)  # compile / load cache
    elapsed = cpu = np.inf  # best of several repeats: the machine may be shared
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(n_steps):
            lsm.step(state, forcing, params, veg, 1800.0, fluxes)
        elapsed = min(elapsed, time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    points = n_cells * n_members * n_steps
    nbytes = (2 * state.data.nbytes + sum(a.nbytes for a in forcing.values()) + fluxes.data.nbytes
              + fluxes.flags.nbytes + params.packed.nbytes + 2 * n_cells * 8)
    print(f"lsm.step: {n_cells} cells x {n_members} members, {n_steps} steps (best of {repeats}), "
          f"NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS')}")
    print(f"  {points / elapsed:.3e} cell-member-steps/s wall ({elapsed / n_steps * 1e3:.1f} ms per step), "
          f"{points / cpu:.3e} per CPU second")
    print(f"  bytes moved per step: {nbytes / 1e6:.1f} MB ({nbytes / (n_cells * n_members):.0f} B per "
          f"cell-member), effective bandwidth {nbytes * n_steps / elapsed / 1e9:.2f} GB/s")
    ok = np.all(np.isfinite(state.data))
    print(f"  state finite: {ok}")


if __name__ == "__main__":
    args = [int(float(a)) for a in sys.argv[1:4]]
    main(*args)
