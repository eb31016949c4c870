"""Pixel-uniform analysis increments (assimilation.increment_grid): the kernel, the namelist refusal of finer
sources, and the driver (uniform increments in the outputs, 1 rank = 2 ranks, off = the filter's increments)."""

import numpy as np
import pytest

from smda.assimilation.filters.increments import PixelIncrements, finer_than, uniform_increments
from smda.model.grid import Domain
from smda.run.namelist import NamelistError, load
from tests.conftest import REPO
from tests.test_driver import assert_same_outputs, case, smda
from tests.test_driver import load as load_nc


def _block(rng, n=60, k=2, m=5):
    Xb = 0.25 + 0.05 * rng.standard_normal((n, k, m))
    return Xb, Xb + 0.02 * rng.standard_normal((n, k, m))


def test_increment_is_uniform_in_each_pixel_with_the_same_pixel_mean():
    rng = np.random.default_rng(1)
    Xb, Xa = _block(rng)
    pixel = rng.permutation(np.repeat([7, 3, 11, 5], 15))  # labels in any order, cells of a pixel anywhere
    inc = PixelIncrements(pixel, Xb.shape[1], Xb.shape[2])
    X = Xa.copy()
    inc.keep(Xb)
    lo, hi = np.full(Xb.shape[:2], -np.inf), np.full(Xb.shape[:2], np.inf)
    assert inc.apply(X, lo, hi) == 0
    for p in np.unique(pixel):
        d, d0 = (X - Xb)[pixel == p], (Xa - Xb)[pixel == p]
        np.testing.assert_allclose(d.std(axis=0), 0.0, atol=1e-15)  # zero within-pixel variance
        np.testing.assert_allclose(d.mean(axis=0), d0.mean(axis=0), rtol=0, atol=1e-15)  # the same pixel mean


def test_bounds_clip_and_are_counted():
    rng = np.random.default_rng(2)
    Xb, Xa = _block(rng, n=8, k=1, m=3)
    group = np.repeat(np.arange(2), 4).astype(np.int64)
    lo, hi = np.full((8, 1), 0.0), Xb.max(axis=2) + 1e-3  # an upper bound just above each cell's background
    Xa[...] = Xb + 0.01  # a uniform wetting increment of 0.01 everywhere
    X = Xa.copy()
    n = uniform_increments(X, Xb, group, np.full(2, 4.0), np.zeros((2, 1, 3)), lo, hi)
    assert n == np.count_nonzero(Xb + 0.01 > hi[:, :, None]) > 0
    assert np.all(X <= hi[:, :, None]) and np.all(X >= Xb)


def test_footprints_finer_than_the_grid():
    np.testing.assert_array_equal(finer_than(np.array(["M36", "M25", "M09", "gauss", "gauss"]),
                                             np.array([0.0, 0.0, 0.0, 20.0, 10.0]), "M36"), [False, True, True, False, True])
    assert not finer_than("M09", 0.0, "M09") and finer_than("M03", 0.0, "M09")


def test_whole_pixels_of_every_increment_grid_sit_on_one_rank():
    """No reduction across ranks is needed: M36, M09 and M03 pixels never straddle two ranks."""
    from smda.run.decomp import decompose

    dom = Domain.from_centre(41.35, -5.40, 144, 108)
    for n_ranks in (2, 3, 5):
        owner = np.full(dom.n_cells, -1)
        dec = decompose(dom, n_ranks)
        for r in range(n_ranks):
            owner[dec.cells(r)] = r
        for grid in ("M36", "M09", "M03"):
            pix = dom.pixel_index(grid)[owner >= 0]
            own = owner[owner >= 0]
            lo, hi = np.full(pix.max() + 1, n_ranks), np.full(pix.max() + 1, -1)
            np.minimum.at(lo, pix, own)
            np.maximum.at(hi, pix, own)
            assert np.all((lo == hi) | (hi < 0)), (grid, n_ranks)


def test_finer_synthetic_source_refused():
    multi = REPO / "namelists" / "osse_multiscale.yaml"
    with pytest.raises(NamelistError, match="assimilation.increment_grid.*'s1_sm' observes M03 footprints"):
        load(multi, ["assimilation.increment_grid=M36"])
    assert load(multi, ["assimilation.increment_grid=M03"]).assimilation.increment_grid == "M03"
    default = REPO / "namelists" / "osse_default.yaml"
    assert load(default, ["assimilation.increment_grid=M36"]).assimilation.increment_grid == "M36"
    with pytest.raises(NamelistError, match="gauss footprints"):
        load(default, ["assimilation.increment_grid=M36", "observations.footprint=gauss", "observations.fov_km=10"])


def _within_pixel_std(ds, var, pixel):
    """Largest within-pixel std over analysis times of the ensemble-mean increment of ``var`` (land cells)."""
    inc = (ds[f"{var}_analysis_mean"] - ds[f"{var}_background_mean"]).values.reshape(ds.sizes["time"], -1)
    worst = 0.0
    for p in np.unique(pixel):
        d = inc[:, pixel == p]
        d = d[:, np.all(np.isfinite(d), axis=0)]
        worst = max(worst, float(np.nanmax(d.std(axis=1))))
    return worst


@pytest.mark.mpi
def test_uniform_increments_in_the_outputs_and_one_rank_equals_two(tmp_path):
    one, two, off = case(tmp_path, sub="one"), case(tmp_path, sub="two"), case(tmp_path, sub="off")
    on = ("--set", "assimilation.increment_grid=M09")
    smda("run", one, *on)
    smda("run", two, *on, ranks=2)
    smda("run", off)
    assert_same_outputs(one.parent / "out", two.parent / "out")
    nl = load(one)
    pixel = Domain.from_centre(*nl.domain.centre, *nl.domain.size_km).pixel_index("M09")
    a, b = load_nc(one.parent / "out" / "tiny_analysis.nc"), load_nc(off.parent / "out" / "tiny_analysis.nc")
    assert a.sizes["time"] > 2
    for var in ("sm_surface", "sm_rootzone"):
        assert _within_pixel_std(a, var, pixel) < 1e-6  # float32 outputs; no clipping in this short case
        assert _within_pixel_std(b, var, pixel) > 1e-4  # the filter's own increments vary within pixels
