"""Footprint operator throughput: time to build the weights and to apply them.

Cases: ~20,000 cells x 32 members x ~30 observations (one SMAP 36 km scene of a small domain, H and
V), and a 1e6-cell domain with one observation per pixel and polarization. Prints seconds per
build / apply and the effective bandwidth of the apply kernel. Run: python benchmarks/operator.py
"""

from types import SimpleNamespace

import numpy as np
from _timing import median_time

from smda.assimilation.observations.operator import FootprintOperator, finish
from smda.model.grid import GRIDS, Domain


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


if __name__ == "__main__":
    run_case("small (~20,000 cells, ~30 obs)", 4, 32, repeat=5)
    run_case("large (~1e6 cells)", 28, 32, repeat=2)
