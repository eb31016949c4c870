"""Throughput of the land surface model step (smda.model.lsm.step) and of the driver's ensemble model step.

Prints, for n_cells x n_members (default 1e5 x 32; goal >= 1e7 cell-member-steps per second per core):

- the kernel alone: one ``lsm.step`` with the per-cell base forcing and the per-member factors / offsets of
  the three perturbed variables (a :class:`smda.model.lsm.Perturbation`), ensemble-mean fluxes (as a run
  of ``smda run`` keeps them);
- the model step of the driver: the step's forcing perturbations (:meth:`ForcingPerturbations.perturbation`,
  AR(1) lattice and per-member values) shared by two ensembles (open loop and analysis) stepped with them, and
  the same with multi-scale perturbations (55 km and 9 km, half the variance each);

each as the median and range over repeats of CPU time (the machine may be shared; wall time beside), and the
bytes moved per cell-member-step (state read and written, member forcing read, flags written, per-cell
parameters, forcing and ensemble means divided by the members).

Usage: NUMBA_NUM_THREADS=1 python benchmarks/lsm_step.py [n_cells] [n_members] [n_steps] [repeats]
"""

import os
import statistics
import sys
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from smda.forcing.perturb import ForcingPerturbations, PerturbationSettings  # noqa: E402
from smda.model import lsm, soil  # noqa: E402
from smda.model.grid import M01  # noqa: E402
from smda.model.state import State  # noqa: E402


def timed(fn, n_steps, repeats):
    """(CPU seconds per step for each repeat, wall seconds per step for each repeat) after one warm-up call."""
    fn(0)
    cpu, wall = [], []
    k = 1
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(n_steps):
            fn(k)
            k += 1
        cpu.append((time.process_time() - c0) / n_steps)
        wall.append((time.perf_counter() - t0) / n_steps)
    return cpu, wall


def report(label, points, nbytes, cpu, wall):
    med = statistics.median(cpu)
    print(f"{label}: {points / med:.3e} cell-member-steps/s per CPU second (median of {len(cpu)}; range "
          f"{points / max(cpu):.3e} - {points / min(cpu):.3e}), wall median {points / statistics.median(wall):.3e}; "
          f"{med * 1e3:.1f} ms per step; {nbytes / points:.0f} B moved per cell-member-step")


def main(n_cells=100_000, n_members=32, n_steps=5, repeats=7):
    rng = np.random.default_rng(1)
    sand = rng.uniform(0.05, 0.9, n_cells)
    clay = rng.uniform(0.03, 0.5, n_cells) * (1.0 - sand)
    params = soil.soil_parameters(sand, clay)
    runs = [State.initial(n_cells, n_members, params, sm=0.25, t=290.0) for _ in range(2)]
    fluxes = [lsm.Fluxes(n_cells, n_members, per_member=False) for _ in range(2)]
    forcing = {
        "precip": np.where(rng.uniform(size=n_cells) < 0.2, 1e-3, 0.0),
        "sw_down": rng.uniform(0.0, 900.0, n_cells),
        "lw_down": rng.uniform(250.0, 400.0, n_cells),
        "t_air": rng.uniform(265.0, 305.0, n_cells),
        "q_air": rng.uniform(0.002, 0.015, n_cells),
        "p_surf": rng.uniform(9.5e4, 1.02e5, n_cells),
        "wind": rng.uniform(0.5, 8.0, n_cells),
    }
    veg = {"fveg": rng.uniform(0.0, 1.0, n_cells), "lai": rng.uniform(0.0, 5.0, n_cells)}
    side = int(np.ceil(np.sqrt(n_cells)))  # a square block of 1 km cells for the perturbation lattice
    x = M01.x0 + 7.0e6 + (np.arange(n_cells) % side) * M01.cell_m
    y = 3.0e6 - (np.arange(n_cells) // side) * M01.cell_m
    perturb = ForcingPerturbations(PerturbationSettings(), seed=1, dt_s=1800.0, x_m=x, y_m=y, n_members=n_members)
    pert = perturb.perturbation(0)
    print(f"{n_cells} cells x {n_members} members, {n_steps} steps x {repeats} repeats, "
          f"NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS')}; perturbed: {', '.join(pert.names)}")

    fl = fluxes[0]
    per_cell = (params.packed.nbytes + sum(a.nbytes for a in forcing.values()) + 2 * n_cells * 8 + fl.mean.nbytes
                + fl.state_mean.nbytes)
    kernel_bytes = 2 * runs[0].data.nbytes + pert.values.nbytes + fl.flags.nbytes + per_cell

    def kernel(k):
        lsm.step(runs[0], forcing, params, veg, 1800.0, fluxes[0], pert)

    points = n_cells * n_members
    report("lsm.step (kernel)      ", points, kernel_bytes, *timed(kernel, n_steps, repeats))

    def model_step(k):
        p = perturb.perturbation(k)
        for state, f in zip(runs, fluxes, strict=True):
            lsm.step(state, forcing, params, veg, 1800.0, f, p)

    report("model step (2 ensembles)", 2 * points, 2 * kernel_bytes + pert.values.nbytes,
           *timed(model_step, n_steps, repeats))
    multi = ForcingPerturbations(PerturbationSettings(scales_km=(9.0,), scale_fractions=(0.5,)), seed=1, dt_s=1800.0,
                                 x_m=x, y_m=y, n_members=n_members)

    def multi_step(k):
        p = multi.perturbation(k)
        for state, f in zip(runs, fluxes, strict=True):
            lsm.step(state, forcing, params, veg, 1800.0, f, p)

    report("  with 55 + 9 km scales ", 2 * points, 2 * kernel_bytes + pert.values.nbytes,
           *timed(multi_step, n_steps, repeats))
    print(f"  state finite: {all(np.all(np.isfinite(s.data)) for s in runs)}")


if __name__ == "__main__":
    main(*[int(float(a)) for a in sys.argv[1:5]])
