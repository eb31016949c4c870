"""Footprint operator throughput: time to build the weights and to apply them, and the cost of a cycle.

Cases: ~20,000 cells x 32 members x ~30 observations (one SMAP 36 km scene of a small domain, H and
V), and a 1e6-cell domain with one observation per pixel and polarization. Prints seconds per
build / apply and the effective bandwidth of the apply kernel. Then the observation-operator stages of one
analysis cycle at 1e6 cells x 32 members on one rank, as the driver runs them (one footprint operator per
36 km decomposition pixel, built per cycle; the RTM once per model state, background and analysis).
Run: python benchmarks/operator.py [--cycle-only]
"""

import sys
import time
from types import SimpleNamespace

import numpy as np
from _timing import median_time

from smda.assimilation.observations.operator import FootprintOperator, finish
from smda.model.emission import brightness_temperature_multiangle, igbp_parameters
from smda.model.grid import GRIDS, Domain
from smda.run.aggregate import PixelAggregator
from smda.run.decomp import decompose


def _geometry(domain, footprint):
    m36 = GRIDS["M36"]
    rows = np.arange(domain.row0 // 36, (domain.row0 + domain.nrows) // 36)
    cols = np.arange(domain.col0 // 36, (domain.col0 + domain.ncols) // 36)
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    rr, cc = np.repeat(rr.ravel(), 2), np.repeat(cc.ravel(), 2)  # H and V
    x, y = m36.xy(rr, cc)
    return SimpleNamespace(x=x, y=y, footprint=np.full(rr.size, footprint), row=rr, col=cc)


def run_case(label, n36, n_members, repeat):
    d = Domain.from_centre(40.0, -98.0, 36 * n36, 36 * n36)
    land = np.ones(d.shape, bool)
    land[: d.nrows // 10, : d.ncols // 10] = False  # a little water
    d = Domain(d.row0, d.col0, d.nrows, d.ncols, land)
    cells = np.flatnonzero(d.land.ravel())
    field = 250.0 + np.random.default_rng(0).random((cells.size, n_members))
    print(f"\n{label}: {cells.size} land cells x {n_members} members")
    for kind, fp in (("box", "M36"), ("gauss", "gauss"), ("box", "M25")):
        geo = _geometry(d, fp)
        if fp == "M25":  # every M25 pixel centre that falls in the domain, H and V
            m25 = GRIDS["M25"]
            r0, c0 = m25.rowcol(d.x[0], d.y[0])
            r1, c1 = m25.rowcol(d.x[-1], d.y[-1])
            rr, cc = np.meshgrid(np.arange(r0, r1 + 1), np.arange(c0, c1 + 1), indexing="ij")
            rr, cc = np.repeat(rr.ravel(), 2), np.repeat(cc.ravel(), 2)
            x, y = m25.xy(rr, cc)
            geo = SimpleNamespace(x=x, y=y, footprint=np.full(rr.size, "M25"), row=rr, col=cc)
        FootprintOperator.build(geo, d, cells, kind=kind)  # compile
        t_build = median_time(lambda g=geo, k=kind: FootprintOperator.build(g, d, cells, kind=k), repeat)
        op = FootprintOperator.build(geo, d, cells, kind=kind)
        sw, swx = np.empty(op.n_obs), np.empty((op.n_obs, n_members))
        op.partial_sums(field, out_w=sw, out_wx=swx)
        t_apply = median_time(lambda o=op, a=sw, b=swx: o.partial_sums(field, out_w=a, out_wx=b), max(repeat, 5))
        hx, inside = finish(sw, swx, 0.5)
        mbytes = op.nnz * (n_members * 8 + 16) / 1e6
        print(f"  {kind:5s} {fp:5s}: {op.n_obs:5d} obs, {op.nnz:9d} weights | build {t_build * 1e3:8.2f} ms"
              f" | apply {t_apply * 1e3:8.2f} ms ({mbytes / t_apply / 1e3:5.2f} GB/s effective)"
              f" | inside fraction min {inside.min():.3f}")


def cycle_case(n36=28, n_members=32, repeat=3):
    """Per-cycle operator stages at 36 n36 x 36 n36 cells: aggregator build, one RTM call at the observed angle
    (plus the output angle when they differ; here equal), the footprint sums of TB H, V and the 4 screening fields."""
    d = Domain.from_centre(40.0, -98.0, 36 * n36, 36 * n36)
    dec = decompose(d, 1)
    exp = SimpleNamespace(comm=None, dec=dec, rank=0, domain=d, cells=dec.cells(0))
    n = exp.cells.size
    geo = _geometry(d, "M36")
    geo.fov_km = np.full(geo.x.size, np.nan)
    PixelAggregator(geo, exp, kind="auto", fov_km=geo.fov_km)  # compile, and the cached pixel slices
    t_build = median_time(lambda: PixelAggregator(geo, exp, kind="auto", fov_km=geo.fov_km), repeat, clock=time.process_time)
    agg = PixelAggregator(geo, exp, kind="auto", fov_km=geo.fov_km)
    rng = np.random.default_rng(0)
    sm = 0.05 + 0.3 * rng.random((n, n_members))
    par = igbp_parameters((np.arange(n) % 12 + 1).astype(np.int64))
    ts = 290.0 + 10.0 * rng.random((n, n_members))
    vwc = np.broadcast_to(rng.random(n)[:, None] * 2.0, (n, n_members))

    def rtm():
        return brightness_temperature_multiangle(sm, ts, ts, ts, vwc, 0.2, 0.4, 1.4, [40.0], h=par["h"],
                                                 omega=par["omega"], b=par["b"])
    t_rtm = median_time(rtm, repeat, clock=time.process_time)
    field = np.empty((n, 2 * n_members + 4))
    t_agg = median_time(lambda: agg.mean(field, 0.5), repeat, clock=time.process_time)
    per_cycle = t_build + 2 * (t_rtm + t_agg)
    print(f"\ncycle at {n} cells x {n_members} members, {geo.x.size} observations (36 km, H and V), one rank, CPU s:")
    print(f"  footprint weights (PixelAggregator, per cycle) {t_build:6.3f} s")
    print(f"  RTM, one call (TB H and V of every cell-member)  {t_rtm:6.3f} s  ({n * n_members / t_rtm:.3g} TB/s)")
    print(f"  footprint sums of TB + screening fields         {t_agg:6.3f} s")
    print(f"  per cycle: build + 2 x (RTM + sums) = {per_cycle:6.3f} s (with the former 4 RTM calls: "
          f"{per_cycle + 2 * t_rtm:6.3f} s)")


if __name__ == "__main__":
    if "--cycle-only" not in sys.argv:
        run_case("small (~20,000 cells, ~30 obs)", 4, 32, repeat=5)
        run_case("large (~1e6 cells)", 28, 32, repeat=2)
    cycle_case()
