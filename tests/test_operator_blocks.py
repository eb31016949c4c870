"""The observation operator evaluates its footprint field block by block: the same bits as the whole field, in
the memory of one block (issue 21: peak memory per cell-member)."""

import tracemalloc

import numpy as np
import pytest

from smda.assimilation.observations.table import ObsTable
from smda.model.grid import GRIDS
from smda.run import aggregate
from smda.run.experiment import build
from smda.run.namelist import load
from smda.run.operator import ObservationOperator
from tests.conftest import REPO

N = 8


@pytest.fixture(scope="module")
def setting():
    nl = load(REPO / "namelists" / "osse_default.yaml", ["domain.size_km=[144, 108]", f"model.ensemble_size={N}"])
    exp = build(nl)
    from smda.run.runs import ModelRun

    run = ModelRun("analysis", exp, N, perturb_init=True, t_init=285.0)
    run.state.t_deep[::7] = 270.0  # every 7th cell frozen: a screening field that is not constant
    rr, cc = np.unique(np.stack(exp.domain.parent("M36"), axis=1), axis=0).T
    x, y = GRIDS["M36"].xy(rr, cc)
    m = rr.size  # every 36 km pixel observed at H and V 40 deg, V 52.5 deg (Gaussian footprint) and as SM
    table = ObsTable(time=np.datetime64("2019-05-01T06:00"), x=np.tile(x, 4), y=np.tile(y, 4), lat=0.0, lon=0.0,
                     kind=np.repeat(["tb", "tb", "tb", "sm"], m), pol=np.repeat(["H", "V", "V", ""], m),
                     angle_deg=np.repeat([40.0, 40.0, 52.5, np.nan], m), value=np.ones(4 * m), error_std=1.0, flags=0,
                     footprint=np.repeat(["M36", "M36", "gauss", "M36"], m), row=np.tile(rr, 4), col=np.tile(cc, 4),
                     fov_km=40.0, source="synthetic", qc=0)
    op = ObservationOperator(exp, nl)
    return exp, run, table, op, op.aggregator(table), exp.vegetation_on(121.0)


def equivalents(setting, block_bytes, monkeypatch):
    exp, run, table, op, agg, veg = setting
    monkeypatch.setattr(aggregate, "BLOCK_BYTES", block_bytes)
    rain = np.linspace(0.0, 30.0, exp.n)
    tracemalloc.start()
    try:
        out = op.equivalents(run, veg, table, agg, rain, 0.5, tb_out=True)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return out, peak


def test_blocks_give_the_bits_of_the_whole_field_in_a_block_of_memory(setting, monkeypatch):
    exp, run, table, *_ = setting
    (hx1, scr1, in1, tb1), peak_whole = equivalents(setting, 2**40, monkeypatch)  # one block: the whole field
    (hx2, scr2, in2, tb2), peak_pixel = equivalents(setting, 1, monkeypatch)  # one 36 km pixel per block
    for a, b in ((hx1, hx2), (scr1, scr2), (in1, in2), *zip(tb1, tb2, strict=True)):
        np.testing.assert_array_equal(a, b)
    assert hx1.shape == (len(table), N)
    np.testing.assert_array_equal(np.isnan(hx1).any(axis=1), in1 < 0.5)  # corner Gaussian footprints: NaN
    assert np.isfinite(hx1).mean() > 0.9
    np.testing.assert_allclose(np.nanmean(scr1[:, 1]), 1 / 7, atol=0.01)  # frozen fraction: every 7th cell at 270 K
    # the output-angle TB statistics are those of the 1 km TB of every member (one RTM call, whole state)
    tbh, tbv = ObservationOperator(exp, setting[0].nl).tb(run.state, setting[5], angle_deg=40.0)
    np.testing.assert_array_equal(tb1[0][0], tbh.mean(axis=1))
    np.testing.assert_array_equal(tb1[1][1], tbv.std(axis=1, ddof=1))
    # SM rows: footprint means of the members' surface SM; box footprints of the whole pixel
    sm = table.kind == "sm"
    pix = exp.dec.pixel_slices(0)[0]
    first = np.flatnonzero(sm & (table.row == table.row[sm].min()) & (table.col == table.col[sm].min()))
    if pix[2] - pix[1] == 1296 and first.size:  # (a full land pixel: the mean of its cells)
        np.testing.assert_allclose(hx1[first[0]], run.state.sm_surface[pix[1]:pix[2]].mean(axis=0), rtol=1e-12)
    whole = exp.n * ((2 * 2 + 1) * N + 4) * 8  # the (n, k) footprint field alone
    assert peak_whole > whole
    assert peak_pixel < 0.4 * whole, (peak_pixel, whole)


def test_blocks_are_whole_pixels_covering_every_cell(setting, monkeypatch):
    agg = setting[4]
    stops = set(agg.pixel_stops)
    for size, k in ((1, 10), (1296 * 8 * 10, 10), (2**40, 3)):
        monkeypatch.setattr(aggregate, "BLOCK_BYTES", size)
        blocks = agg.blocks(k)
        assert blocks[0][0] == 0 and blocks[-1][1] == agg.n_local
        assert all(b0 == a1 for (_, b0), (a1, _) in zip(blocks[:-1], blocks[1:], strict=True))
        assert all(b in stops for _, b in blocks)  # whole pixels
        assert all((b - a) * k * 8 >= size for a, b in blocks[:-1])  # the fewest pixels that make a block
    monkeypatch.setattr(aggregate, "BLOCK_BYTES", 1)
    assert len(agg.blocks(4)) == len(stops)
    with pytest.raises(ValueError, match="rows 0:"):
        agg.block_sums(lambda a, b: np.zeros((b - a, 2)), 3)
