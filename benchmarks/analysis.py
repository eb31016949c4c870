"""Throughput of one ensemble analysis: 1e6 cells x 32 members x 5 updated variables, ~1000 coarse
observations on a 36 km grid, LETKF with weight interpolation (lattice solves and blocked application
timed apart) vs the exact per-cell LETKF (timed on a subset and extrapolated), plus the tapered
stochastic EnKF; then the multiscale cost: the same analysis with extra 3 km observations (random
3 km pixels of the domain), as a function of their number.

Usage: python benchmarks/analysis.py [--side 1000] [--members 32] [--radius-km 50] [--spacing-km 9]
    [--fine 0 5000 20000] [--repeat 3] [--order pixel|row] [--compare OLD_LETKF.py]
Cells are ordered as smda orders them (``pixel``: pixel by pixel of 36 km, row-major inside a pixel) or
row-major over the whole domain (``row``). ``--compare`` times a copy of an older letkf module against the
current one, interleaved (old, new, old, new, ...), for the two stages of every multiscale case, and checks
that both give the same weights and analysis to 1e-12 relative.
Prints median CPU seconds of this process (one core, after JIT warm-up; the machine may be shared).
"""

import argparse
import importlib.util
import os
import statistics
import sys
import time

import numba
import numpy as np
from _timing import median_time

from smda.assimilation.filters import letkf, make_filter
from smda.model.streams import normal_field


def problem(side, n, n_vars, obs_spacing_km=36.0, n_fine=0, order="pixel"):
    """Cells in the given ``order`` (``pixel``: 36 km pixels in row-major order, row-major inside each, as
    smda.run.decomp orders a rank's cells; ``row``: row-major over the domain), coarse observations on a 36 km
    grid, and ``n_fine`` extra observations at the centres of distinct random 3 km pixels of the domain."""
    gy, gx = np.meshgrid(np.arange(side)[::-1], np.arange(side), indexing="ij")  # row-major, top row first
    if order == "pixel":
        row, col = side - 1 - gy.ravel(), gx.ravel()
        perm = np.lexsort((col, row, col // 36, row // 36))
        gy, gx = gy.ravel()[perm], gx.ravel()[perm]
    cell_xy = np.stack([gx.ravel(), gy.ravel()], 1) * 1000.0 + 500.0
    gid = np.arange(side * side)
    base = normal_field(1, "bench.state", gid, n, 0)
    X = np.empty((side * side, n_vars, n))
    for v in range(n_vars):
        X[:, v, :] = 0.2 + 0.01 * (v + 1) * base + 0.001 * v
    n_side = int(np.ceil(side / obs_spacing_km)) + 4
    ox, oy = np.meshgrid(np.arange(n_side), np.arange(n_side), indexing="ij")
    obs_xy = (np.stack([ox.ravel(), oy.ravel()], 1) - 2 + 0.5) * obs_spacing_km * 1000.0
    if n_fine:
        n3 = side // 3
        pick = np.random.default_rng(3).choice(n3 * n3, size=min(n_fine, n3 * n3), replace=False)
        fine = (np.stack([pick // n3, pick % n3], 1) + 0.5) * 3000.0
        obs_xy = np.concatenate([obs_xy, fine])
    n_obs = obs_xy.shape[0]
    oid = np.arange(n_obs)
    HX = 250.0 + 3.0 * normal_field(2, "bench.hx", oid, n, 0)
    y = HX.mean(axis=1) + 4.0 * normal_field(2, "bench.y", oid, 1, 0)[:, 0]
    return X, cell_xy, HX, y, np.full(n_obs, 16.0), obs_xy, oid


def timed(flt, X, cell_xy, HX, y, r, oxy, ids):
    t0 = time.process_time()
    flt.analyse(X, cell_xy, HX, y, r, oxy, obs_ids=ids, cycle=1, lower=0.0, upper=0.5)
    return time.process_time() - t0


def load_letkf(path):
    """A copy of an (older) letkf module from ``path``, registered under its file name (numba's cache of that
    file records the module name)."""
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def stages(X, cell_xy, HX, y, r, oxy, radius_km, spacing_km, repeat, modules):
    """Median CPU s of the two stages of the interpolated LETKF (lattice solves, blocked application) for each
    letkf module of ``modules``, timed interleaved; returns [(t_lattice, t_application)], the number of lattice
    points and the largest relative differences of the weights and of the analysis from the first module's."""
    cx, cy = cell_xy[:, 0].copy(), cell_xy[:, 1].copy()
    ybar = HX.mean(axis=1)
    Yp, d, s = np.ascontiguousarray(HX - ybar[:, None]), y - ybar, spacing_km * 1000.0
    ox, oy = oxy[:, 0].copy(), oxy[:, 1].copy()
    px, py, needed, i0, j0, ny = letkf.analysis_lattice(cx, cy, s)
    lo, hi = np.zeros((1, X.shape[1])), np.full((1, X.shape[1]), 0.5)
    Xw = X.copy()
    times = [([], []) for _ in modules]
    grids = [np.zeros((px.size, X.shape[2], X.shape[2])) for _ in modules]
    results = []
    for rep in range(repeat + 1):  # the first round is the JIT warm-up
        for mod, (t_lat, t_app), Tgrid in zip(modules, times, grids, strict=True):
            t0 = time.process_time()
            mod.lattice_weights(px, py, needed, ox, oy, Yp, d, 1.0 / r, radius_km * 1000.0, 0.0, 0.0, 1.02**2, Tgrid)
            t1 = time.process_time()
            Xw[...] = X
            t2 = time.process_time()
            mod.interpolate_apply(Xw, cx, cy, s, i0, j0, ny, Tgrid, 0.0, 0.0, lo, hi, np.zeros((X.shape[1], 3)))
            t3 = time.process_time()
            if rep:
                t_lat.append(t1 - t0)
                t_app.append(t3 - t2)
            else:
                results.append((Tgrid.copy(), Xw.copy()))
    dT = max(np.abs(T - results[0][0]).max() / np.abs(results[0][0]).max() for T, _ in results)
    dX = max(np.abs(Xa - results[0][1]).max() / np.abs(results[0][1]).max() for _, Xa in results)
    return [(statistics.median(a), statistics.median(b)) for a, b in times], int(needed.sum()), dT, dX


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", type=int, default=1000, help="cells per side (1 km)")
    ap.add_argument("--members", type=int, default=32)
    ap.add_argument("--vars", type=int, default=5)
    ap.add_argument("--radius-km", type=float, default=50.0, help="Gaspari-Cohn half-width c")
    ap.add_argument("--spacing-km", type=float, default=9.0, help="analysis lattice spacing")
    ap.add_argument("--subset", type=int, default=20000, help="cells timed for the exact LETKF and EnKF")
    ap.add_argument("--fine", type=int, nargs="*", default=[0, 5000, 20000], help="numbers of extra 3 km observations")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--order", choices=["pixel", "row"], default="pixel", help="cell order (pixel: as smda)")
    ap.add_argument("--compare", help="path of a copy of an older letkf.py to time against the current one")
    a = ap.parse_args()
    numba.set_num_threads(1)
    X, cell_xy, HX, y, r, oxy, ids = problem(a.side, a.members, a.vars, order=a.order)
    n_cells = X.shape[0]
    print(f"cells {n_cells} ({a.order} order), members {a.members}, variables {a.vars}, observations {len(y)}, "
          f"radius c = {a.radius_km} km (cut-off {2 * a.radius_km} km); CPU seconds, median of {a.repeat}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    if a.compare:
        compare(a)
        return
    small = slice(0, 2000)
    interp = make_filter("letkf", loc_radius_km=a.radius_km, analysis_spacing_km=a.spacing_km, inflation=1.02)
    exact = make_filter("letkf", loc_radius_km=a.radius_km, weight_interpolation=False, inflation=1.02)
    enkf = make_filter("enkf", loc_radius_km=a.radius_km, inflation=1.02)
    for flt in (interp, exact, enkf):  # JIT warm-up
        timed(flt, np.ascontiguousarray(X[small]), cell_xy[small], HX, y, r, oxy, ids)
    Xw = X.copy()

    def whole():
        Xw[...] = X
        timed(interp, Xw, cell_xy, HX, y, r, oxy, ids)
    t_int = median_time(whole, a.repeat, clock=time.process_time)
    print(f"LETKF weight interpolation (spacing {a.spacing_km} km): {t_int:.2f} s for all cells (incl. a copy of X)")
    sub = slice(0, a.subset)
    t_ex = timed(exact, np.ascontiguousarray(X[sub]), cell_xy[sub], HX, y, r, oxy, ids) * n_cells / a.subset
    print(f"LETKF exact per cell: {t_ex:.1f} s extrapolated from {a.subset} cells")
    print(f"speed-up of weight interpolation: {t_ex / t_int:.1f}x")
    t_en = timed(enkf, np.ascontiguousarray(X[sub]), cell_xy[sub], HX, y, r, oxy, ids) * n_cells / a.subset
    print(f"stochastic EnKF (gain tapering): {t_en:.1f} s extrapolated from {a.subset} cells")
    print("multiscale: coarse 36 km + fine 3 km observations (stages of the interpolated LETKF)")
    for n_fine in a.fine:
        Xf, cxy, HXf, yf, rf, oxyf, _ = problem(a.side, a.members, a.vars, n_fine=n_fine, order=a.order)
        [(t_lat, t_app)], n_pts, _, _ = stages(Xf, cxy, HXf, yf, rf, oxyf, a.radius_km, a.spacing_km, a.repeat, [letkf])
        print(f"  {len(yf):6d} obs ({n_fine:6d} fine): lattice {t_lat:6.2f} s ({n_pts} points, "
              f"{t_lat / n_pts * 1e6:6.1f} us/point) + application {t_app:5.2f} s = {t_lat + t_app:6.2f} s")


def compare(a):
    """Before/after table of the two stages, the older module against the current one, for every case."""
    old = load_letkf(a.compare)
    print("| observations (fine) | lattice before | after | application before | after | total before | after "
          "| max rel. diff T, X |")
    for n_fine in a.fine:
        Xf, cxy, HXf, yf, rf, oxyf, _ = problem(a.side, a.members, a.vars, n_fine=n_fine, order=a.order)
        (tb, tn), _, dT, dX = stages(Xf, cxy, HXf, yf, rf, oxyf, a.radius_km, a.spacing_km, a.repeat, [old, letkf])
        print(f"| {len(yf):,} ({n_fine:,}) | {tb[0]:.2f} s | {tn[0]:.2f} s | {tb[1]:.2f} s | {tn[1]:.2f} s "
              f"| {sum(tb):.2f} s | {sum(tn):.2f} s | {dT:.1e}, {dX:.1e} |", flush=True)
        if not (dT <= 1e-12 and dX <= 1e-12):
            raise SystemExit(f"results differ from {a.compare}: weights {dT:.2e}, analysis {dX:.2e} (relative)")


if __name__ == "__main__":
    main()
