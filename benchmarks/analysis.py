"""Throughput of one ensemble analysis: 1e6 cells x 32 members x 5 updated variables, ~1000 coarse
observations on a 36 km grid, LETKF with weight interpolation vs the exact per-cell LETKF (timed on a
subset and extrapolated), plus the tapered stochastic EnKF.

Usage: python benchmarks/analysis.py [--side 1000] [--members 32] [--radius-km 50] [--spacing-km 9]
Prints wall-clock times (one core, after JIT warm-up) and the speed-up of weight interpolation.
"""

import argparse
import time

import numba
import numpy as np

from smda.assimilation.filters import make_filter
from smda.model.streams import normal_field


def problem(side, n, n_vars, obs_spacing_km=36.0):
    gx, gy = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    cell_xy = np.stack([gx.ravel(), gy.ravel()], 1) * 1000.0 + 500.0
    gid = np.arange(side * side)
    base = normal_field(1, "bench.state", gid, n, 0)
    X = np.empty((side * side, n_vars, n))
    for v in range(n_vars):
        X[:, v, :] = 0.2 + 0.01 * (v + 1) * base + 0.001 * v
    n_side = int(np.ceil(side / obs_spacing_km)) + 4
    ox, oy = np.meshgrid(np.arange(n_side), np.arange(n_side), indexing="ij")
    obs_xy = (np.stack([ox.ravel(), oy.ravel()], 1) - 2 + 0.5) * obs_spacing_km * 1000.0
    n_obs = obs_xy.shape[0]
    oid = np.arange(n_obs)
    HX = 250.0 + 3.0 * normal_field(2, "bench.hx", oid, n, 0)
    y = HX.mean(axis=1) + 4.0 * normal_field(2, "bench.y", oid, 1, 0)[:, 0]
    return X, cell_xy, HX, y, np.full(n_obs, 16.0), obs_xy, oid


def timed(flt, X, cell_xy, HX, y, r, oxy, ids):
    t0 = time.perf_counter()
    flt.analyse(X, cell_xy, HX, y, r, oxy, obs_ids=ids, cycle=1, lower=0.0, upper=0.5)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", type=int, default=1000, help="cells per side (1 km)")
    ap.add_argument("--members", type=int, default=32)
    ap.add_argument("--vars", type=int, default=5)
    ap.add_argument("--radius-km", type=float, default=50.0, help="Gaspari-Cohn half-width c")
    ap.add_argument("--spacing-km", type=float, default=9.0, help="analysis lattice spacing")
    ap.add_argument("--subset", type=int, default=20000, help="cells timed for the exact LETKF and EnKF")
    a = ap.parse_args()
    numba.set_num_threads(1)
    X, cell_xy, HX, y, r, oxy, ids = problem(a.side, a.members, a.vars)
    n_cells = X.shape[0]
    print(f"cells {n_cells}, members {a.members}, variables {a.vars}, observations {len(y)}, "
          f"radius c = {a.radius_km} km (cut-off {2 * a.radius_km} km)")
    small = slice(0, 2000)
    interp = make_filter("letkf", loc_radius_km=a.radius_km, analysis_spacing_km=a.spacing_km, inflation=1.02)
    exact = make_filter("letkf", loc_radius_km=a.radius_km, weight_interpolation=False, inflation=1.02)
    enkf = make_filter("enkf", loc_radius_km=a.radius_km, inflation=1.02)
    for flt in (interp, exact, enkf):  # JIT warm-up
        timed(flt, np.ascontiguousarray(X[small]), cell_xy[small], HX, y, r, oxy, ids)
    t_int = timed(interp, X, cell_xy, HX, y, r, oxy, ids)
    print(f"LETKF weight interpolation (spacing {a.spacing_km} km): {t_int:.2f} s for all cells")
    sub = slice(0, a.subset)
    t_ex = timed(exact, np.ascontiguousarray(X[sub]), cell_xy[sub], HX, y, r, oxy, ids) * n_cells / a.subset
    print(f"LETKF exact per cell: {t_ex:.1f} s extrapolated from {a.subset} cells")
    print(f"speed-up of weight interpolation: {t_ex / t_int:.1f}x")
    t_en = timed(enkf, np.ascontiguousarray(X[sub]), cell_xy[sub], HX, y, r, oxy, ids) * n_cells / a.subset
    print(f"stochastic EnKF (gain tapering): {t_en:.1f} s extrapolated from {a.subset} cells")


if __name__ == "__main__":
    main()
