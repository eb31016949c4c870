"""Footprint observation operator: uniform fields, normalisation, domain edges, splits, M25 overlap."""

from types import SimpleNamespace

import numpy as np
import pytest

from smda.assimilation.observations.operator import (
    FootprintOperator,
    finish,
    flag_too_few_cells,
)
from smda.assimilation.observations.table import QC_CODES, ObsTable
from smda.model.grid import GRIDS, M01, NEST, Domain

M36 = GRIDS["M36"]
M25 = GRIDS["M25"]


@pytest.fixture(scope="module")
def domain():
    # 4 x 4 pixels of 36 km (144 x 144 cells) in Oklahoma, with a lake (non-land block)
    d = Domain.from_centre(36.6, -97.5, 140, 140)
    land = np.ones(d.shape, bool)
    land[100:120, 10:30] = False
    return Domain(d.row0, d.col0, d.nrows, d.ncols, land)


def _pixels(domain, g="M36"):
    n = NEST[g]
    rows = np.arange(domain.row0 // n, (domain.row0 + domain.nrows) // n)
    cols = np.arange(domain.col0 // n, (domain.col0 + domain.ncols) // n)
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    rr, cc = rr.ravel(), cc.ravel()
    x, y = GRIDS[g].xy(rr, cc)
    return SimpleNamespace(x=x, y=y, footprint=np.full(rr.size, g), row=rr, col=cc)


def _m25_pixels(domain):
    """All M25 pixels that touch the domain (some partly outside)."""
    xe = M01.x0 + np.array([domain.col0, domain.col0 + domain.ncols]) * M01.cell_m
    ye = M01.y0 - np.array([domain.row0, domain.row0 + domain.nrows]) * M01.cell_m
    r0, c0 = M25.rowcol(xe[0] + 1, ye[0] - 1)
    r1, c1 = M25.rowcol(xe[1] - 1, ye[1] + 1)
    rr, cc = np.meshgrid(np.arange(r0, r1 + 1), np.arange(c0, c1 + 1), indexing="ij")
    rr, cc = rr.ravel(), cc.ravel()
    x, y = M25.xy(rr, cc)
    return SimpleNamespace(x=x, y=y, footprint=np.full(rr.size, "M25"), row=rr, col=cc)


def _land_cells(domain):
    return np.flatnonzero(domain.land.ravel())


@pytest.mark.parametrize("kind,fp", [("box", "M36"), ("box", "M09"), ("box", "M25"), ("gauss", "M36")])
def test_uniform_field_is_returned(domain, kind, fp):
    geo = _m25_pixels(domain) if fp == "M25" else _pixels(domain, fp)
    cells = _land_cells(domain)
    op = FootprintOperator.build(geo, domain, cells, kind=kind)
    field = np.full((cells.size, 5), 250.0) + np.arange(5)
    hx, inside = finish(*op.partial_sums(field), inside_threshold=0.05)
    ok = np.isfinite(hx[:, 0])
    assert ok.sum() >= len(geo.x) - 2
    np.testing.assert_allclose(hx[ok], np.broadcast_to(250.0 + np.arange(5), hx[ok].shape), rtol=1e-13)
    assert np.all((inside >= 0) & (inside <= 1.0))


def test_box_is_the_pixel_mean_and_nested_exact(domain):
    cells = np.arange(domain.n_cells)  # include water cells: full pixels
    geo = _pixels(domain, "M36")
    op = FootprintOperator.build(geo, domain, cells)
    rng = np.random.default_rng(1)
    field = rng.normal(size=(domain.n_cells, 3))
    hx, inside = finish(*op.partial_sums(field), 0.5)
    np.testing.assert_array_equal(inside, 1.0)  # round-off snapped to 1
    f2 = field.reshape(4, 36, 4, 36, 3)
    expected = f2.mean(axis=(1, 3)).reshape(16, 3)
    np.testing.assert_allclose(hx, expected, rtol=1e-12, atol=1e-14)
    assert np.all(np.diff(op.indptr) == 1296)
    # the lake lowers the inside fraction of the pixels it touches
    land = _land_cells(domain)
    _, inside_land = finish(*FootprintOperator.build(geo, domain, land).partial_sums(field[land]), 0.5)
    expected_inside = np.ones(16)
    expected_inside[8] = 1 - 8 * 20 / 1296  # lake rows 100-107 lie in pixel row 2
    expected_inside[12] = 1 - 12 * 20 / 1296  # rows 108-119 in pixel row 3
    np.testing.assert_allclose(inside_land, expected_inside, rtol=1e-13)


def test_gaussian_weights_integrate_to_one():
    d = Domain.from_centre(40.0, -100.0, 250, 250)  # 7 x 7 pixels: the central footprint is inside
    cells = np.arange(d.n_cells)
    xc, yc = d.x.mean() + 300.0, d.y.mean() - 700.0
    geo = SimpleNamespace(x=[xc], y=[yc], footprint=["gauss"], row=[0], col=[0])
    op = FootprintOperator.build(geo, d, cells, kind="gauss", fov_km=20.0, search_fov=2.0)
    assert op.weight.sum() == pytest.approx(1.0, abs=1e-12)
    # the discrete Gaussian matches the continuous one: second moment = FOV^2 (truncated at 2 FOV)
    xx, yy = np.meshgrid(d.x, d.y)
    r2 = ((xx.ravel() - xc) ** 2 + (yy.ravel() - yc) ** 2)[op.cell]
    s2 = 20e3 ** 2
    expect = 2 * s2 * (1 - 3 * np.exp(-2.0)) / (1 - np.exp(-2.0))  # E[r^2 | r < 2 sigma], 2-D Gaussian
    assert np.sum(op.weight * r2) == pytest.approx(expect, rel=2e-3)
    assert np.sqrt(r2.max()) <= 40e3 + 1e-6
    # a narrower FOV concentrates the weight
    op10 = FootprintOperator.build(geo, d, cells, kind="gauss", fov_km=10.0)
    assert op10.nnz < op.nnz and op10.weight.sum() == pytest.approx(1.0, abs=1e-12)


def test_observation_partly_outside_domain(domain):
    cells = np.arange(domain.n_cells)
    field = np.full((cells.size, 2), 280.0)
    field[:, 1] = 290.0
    # footprint centred on the western domain edge: half of its weight lies outside
    xw = M01.x0 + domain.col0 * M01.cell_m
    yc = domain.y[72] - 0.5 * M01.cell_m
    geo = SimpleNamespace(x=[xw, xw - 39e3, xw - 60e3], y=[yc] * 3, footprint=["gauss"] * 3,
                          row=[0] * 3, col=[0] * 3)
    op = FootprintOperator.build(geo, domain, cells, kind="gauss")
    sw, swx = op.partial_sums(field)
    assert sw[0] == pytest.approx(0.5, abs=0.01)
    assert 0 < sw[1] < 0.01
    assert sw[2] == 0.0 and op.indptr[3] == op.indptr[2]
    hx, inside = finish(sw, swx, inside_threshold=0.3)
    np.testing.assert_allclose(hx[0], [280.0, 290.0])  # normalised by the inside weight
    assert np.all(np.isnan(hx[1:]))
    table = ObsTable(time=np.datetime64("2020-06-01T12:00"), x=geo.x, y=geo.y, lat=0.0, lon=0.0,
                     kind="tb", pol="H", angle_deg=40.0, value=[280.0, 281.0, 282.0], error_std=4.0,
                     flags=0, footprint="gauss", row=0, col=0, fov_km=20.0, source="synthetic", qc=0)
    flagged = flag_too_few_cells(table, inside, 0.3)
    assert list(flagged.qc) == [0, QC_CODES["too_few_cells"], QC_CODES["too_few_cells"]]


def test_m25_fractional_weights_sum_to_pixel_area(domain):
    cell, row, col, frac = domain.overlap("M25")
    # a pixel well inside the domain
    xm, ym = domain.x.mean(), domain.y.mean()
    pr, pc = M25.rowcol(xm, ym)
    sel = (row == pr) & (col == pc)
    area = frac[sel].sum() * M01.cell_m ** 2
    assert area == pytest.approx(M25.cell_m ** 2, rel=1e-9)
    assert np.any((frac[sel] > 0) & (frac[sel] < 1))  # it does not nest
    px, py = M25.xy(pr, pc)
    geo = SimpleNamespace(x=[px], y=[py], footprint=["M25"], row=[pr], col=[pc])
    op = FootprintOperator.build(geo, domain, np.arange(domain.n_cells))
    assert op.weight.sum() == pytest.approx(1.0, rel=1e-12)
    assert op.nnz == sel.sum()


@pytest.mark.parametrize("kind", ["box", "gauss"])
def test_partial_sums_split_domain_equal_whole(domain, kind):
    geo = _pixels(domain)
    land = _land_cells(domain)
    rng = np.random.default_rng(7)
    field = 250 + 30 * rng.random((land.size, 8))
    whole_w, whole_wx = FootprintOperator.build(geo, domain, land, kind=kind).partial_sums(field)
    # two halves (west and east two pixel columns), in a shuffled local order
    west = (land % domain.ncols) < 72
    parts = []
    for half in (west, ~west):
        idx = np.flatnonzero(half)[::-1]
        op = FootprintOperator.build(geo, domain, land[idx], kind=kind)
        parts.append(op.partial_sums(field[idx]))
    sw = parts[0][0] + parts[1][0]
    swx = parts[0][1] + parts[1][1]
    np.testing.assert_allclose(sw, whole_w, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(swx, whole_wx, rtol=1e-14)
    hx_whole, _ = finish(whole_w, whole_wx, 0.5)
    hx_split, _ = finish(sw, swx, 0.5)
    np.testing.assert_allclose(hx_split, hx_whole, rtol=1e-14)


def test_out_arrays_and_mask(domain):
    geo = _pixels(domain)
    cells = np.arange(domain.n_cells)
    op = FootprintOperator.build(geo, domain, cells)
    field = np.ones((cells.size, 4))
    out_w, out_wx = np.full(16, np.nan), np.full((16, 4), np.nan)
    rw, rwx = op.partial_sums(field, out_w=out_w, out_wx=out_wx)
    assert rw is out_w and rwx is out_wx
    mask = np.ones(cells.size, bool)
    mask[: 36 * domain.ncols] = False  # the first row of pixels is frozen
    sw, _ = op.partial_sums(field, mask=mask)
    np.testing.assert_allclose(sw[:4], 0.0)
    np.testing.assert_allclose(sw[4:], 1.0)


def test_mixed_footprints_auto(domain):
    g36 = _pixels(domain)
    g = SimpleNamespace(x=np.r_[g36.x, g36.x[:2]], y=np.r_[g36.y, g36.y[:2]],
                        footprint=np.r_[g36.footprint, ["gauss", "gauss"]], row=np.r_[g36.row, 0, 0],
                        col=np.r_[g36.col, 0, 0])
    cells = np.arange(domain.n_cells)
    op = FootprintOperator.build(g, domain, cells, kind="auto")
    box = FootprintOperator.build(g36, domain, cells)
    n = len(g36.x)
    np.testing.assert_array_equal(op.indptr[: n + 1], box.indptr)
    np.testing.assert_array_equal(op.cell[: box.nnz], box.cell)
    assert op.n_obs == n + 2 and op.nnz > box.nnz


def test_m01_box_is_the_identity(domain):
    """A 1 km observation (grid M01, box) sees exactly its cell: HX is the cell's value, weight 1; off land: no HX."""
    rows = domain.row0 + np.array([0, 50, 110, 143])
    cols = domain.col0 + np.array([0, 77, 20, 143])          # (110, 20) lies in the lake
    x, y = M01.xy(rows, cols)
    geo = SimpleNamespace(x=x, y=y, footprint=np.full(4, "M01"), row=rows, col=cols)
    cells = _land_cells(domain)
    op = FootprintOperator.build(geo, domain, cells)
    field = np.random.default_rng(1).normal(size=(cells.size, 3))
    hx, inside = finish(*op.partial_sums(field), 0.5)
    local = (rows - domain.row0) * domain.ncols + (cols - domain.col0)
    pos = np.searchsorted(cells, local)
    for o in (0, 1, 3):
        np.testing.assert_array_equal(hx[o], field[pos[o]])
    assert inside.tolist() == [1.0, 1.0, 0.0, 1.0] and np.isnan(hx[2]).all()


def test_bad_inputs(domain):
    geo = _pixels(domain)
    cells = np.arange(domain.n_cells)
    with pytest.raises(ValueError, match="kind"):
        FootprintOperator.build(geo, domain, cells, kind="circle")
    with pytest.raises(ValueError, match="local_cells"):
        FootprintOperator.build(geo, domain, np.array([0, domain.n_cells]))
    with pytest.raises(ValueError, match="duplicates"):
        FootprintOperator.build(geo, domain, np.array([0, 0]))
    bad = SimpleNamespace(**{**vars(geo), "footprint": np.full(16, "M07")})
    with pytest.raises(ValueError, match="valid: M01, M03"):
        FootprintOperator.build(bad, domain, cells)
    with pytest.raises(ValueError, match="fov_km"):
        FootprintOperator.build(geo, domain, cells, kind="gauss", fov_km=-1.0)
    op = FootprintOperator.build(geo, domain, cells)
    with pytest.raises(ValueError, match="n_local"):
        op.partial_sums(np.ones((10, 2)))
    with pytest.raises(ValueError, match="inside_threshold"):
        finish(np.ones(2), np.ones((2, 1)), 0.0)


def _mixed(domain):
    """36 km boxes and Gaussians, M25 boxes (some partly outside the domain) and 3 km boxes."""
    parts = [_pixels(domain, "M36"), _m25_pixels(domain), _pixels(domain, "M03")]
    g = _pixels(domain, "M36")
    g.footprint = np.full(g.x.size, "gauss")
    parts.append(g)
    geo = SimpleNamespace(**{k: np.concatenate([getattr(p, k) for p in parts]) for k in ("x", "y", "footprint", "row", "col")})
    geo.fov_km = np.where(geo.footprint == "gauss", 20.0, np.nan)
    return geo


def test_pixel_operator_equals_rows_of_whole_domain_operator(domain):
    # a pixel's operator is built on the window of its 36 km pixel: the same weights, in the same order, as the
    # whole domain's operator restricted to the pixel's cells
    from smda.run.decomp import decompose

    geo = _mixed(domain)
    cells = _land_cells(domain)
    whole = FootprintOperator.build(geo, domain, cells, kind="auto", fov_km=geo.fov_km)
    pos = np.full(domain.n_cells, -1)
    pos[cells] = np.arange(cells.size)
    dec = decompose(domain, 1)
    mine = dec.cells(0)
    for _, a, b in dec.pixel_slices(0)[::5]:
        op = FootprintOperator.build(geo, domain, mine[a:b], kind="auto", fov_km=geo.fov_km)
        held = np.zeros(cells.size, bool)
        held[pos[mine[a:b]]] = True
        local = np.full(cells.size, -1)
        local[pos[mine[a:b]]] = np.arange(b - a)
        for o in range(whole.n_obs):
            s = slice(whole.indptr[o], whole.indptr[o + 1])
            keep = held[whole.cell[s]]
            t = slice(op.indptr[o], op.indptr[o + 1])
            np.testing.assert_array_equal(op.cell[t], local[whole.cell[s][keep]])
            np.testing.assert_array_equal(op.weight[t], whole.weight[s][keep])


def test_footprint_extent_bounds_every_weight(domain):
    from smda.assimilation.observations.operator import footprint_extent

    geo = _mixed(domain)
    cells = _land_cells(domain)
    op = FootprintOperator.build(geo, domain, cells, kind="auto", fov_km=geo.fov_km)
    r_lo, r_hi, c_lo, c_hi = footprint_extent(geo, kind="auto", fov_km=geo.fov_km)
    rows = np.repeat(np.arange(op.n_obs), np.diff(op.indptr))
    r, c = np.divmod(cells[op.cell], domain.ncols)
    r, c = r + domain.row0, c + domain.col0
    assert np.all((r_lo[rows] <= r) & (r <= r_hi[rows]) & (c_lo[rows] <= c) & (c <= c_hi[rows]))
    assert np.all(r_hi - r_lo < 90) and np.all(c_hi - c_lo < 90)  # footprint-sized (Gaussian: 2 x 40 km)
    assert (r_lo[0], r_hi[0]) == (geo.row[0] * 36 - 1, geo.row[0] * 36 + 36)  # a 36 km box: its 36 rows + margin


def test_aggregator_equals_one_operator_on_all_cells(domain):
    # PixelAggregator builds per-pixel operators from the observations that can reach each pixel; the sums
    # agree with one operator over all cells (to round-off: the terms are added pixel by pixel)
    from smda.run.aggregate import PixelAggregator
    from smda.run.decomp import decompose

    geo = _mixed(domain)
    dec = decompose(domain, 2)
    field = 250.0 + (domain.global_index() % 997)[:, None] * 1e-2 + np.arange(3)[None, :]
    tot_w, tot_wx = 0.0, 0.0
    for rank in range(2):
        exp = SimpleNamespace(comm=None, dec=dec, rank=rank, domain=domain, cells=dec.cells(rank))
        w, wx = PixelAggregator(geo, exp, kind="auto", fov_km=geo.fov_km).sums(field[exp.cells])
        tot_w, tot_wx = tot_w + w, tot_wx + wx
    cells = _land_cells(domain)
    ref_w, ref_wx = FootprintOperator.build(geo, domain, cells, kind="auto", fov_km=geo.fov_km).partial_sums(field[cells])
    np.testing.assert_allclose(tot_w, ref_w, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(tot_wx, ref_wx, rtol=1e-12)
    assert np.all(ref_w[geo.footprint != "M03"] > 0) and np.any(ref_w == 0)  # 3 km pixels in the lake: none
    assert np.any((ref_w > 0) & (ref_w < 0.99))  # footprints partly outside the domain
