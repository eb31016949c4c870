"""The conventions users set (anomaly inflation, Gaspari-Cohn half-width), their conversion from
DAPPER / Sakov and Oke (2008) settings, the taper cut-off and the random mean-preserving rotation."""

import math

import numpy as np
import pytest

from smda.assimilation.filters import make_filter
from smda.assimilation.filters.letkf import mean_preserving_rotation
from smda.assimilation.filters.localization import DAPPER_HALF_WIDTH, gaspari_cohn_taper
from smda.model.streams import normal_field
from tests.test_filters_analysis import _plane_problem, _run


# -- inflation: the anomaly factor ------------------------------------------------------------------
@pytest.mark.parametrize("name,kw", [("etkf", {}), ("letkf", {"loc_radius_km": 3.0, "weight_interpolation": False}),
                                     ("enkf", {"loc_radius_km": 3.0}), ("eakf", {"loc_radius_km": 3.0})])
def test_inflation_multiplies_the_anomalies(name, kw):
    # inflation a equals no inflation applied to a background whose anomalies (state and HX) are a times larger
    X, cell_xy, HX, y, r, oxy, ids = _plane_problem()
    a = 1.3
    got, diag = _run(name, X, cell_xy, HX, y, r, oxy, ids, inflation=a, **kw)
    Xs = X.mean(-1, keepdims=True) + a * (X - X.mean(-1, keepdims=True))
    HXs = HX.mean(-1, keepdims=True) + a * (HX - HX.mean(-1, keepdims=True))
    ref, _ = _run(name, Xs, cell_xy, HXs, y, r, oxy, ids, **kw)
    # cells without an observation within 2 c are left as they are (no inflation)
    seen = np.hypot(*(cell_xy[:, None, :] - oxy[None]).transpose(2, 0, 1)).min(1) < 2000.0 * kw.get("loc_radius_km", np.inf)
    assert 50 < seen.sum() < seen.size or name == "etkf"
    np.testing.assert_allclose(got[~seen], X[~seen], rtol=0, atol=1e-15)
    np.testing.assert_allclose(got[seen], ref[seen], rtol=0, atol=1e-12)
    assert diag.inflation == pytest.approx(a, rel=1e-15)


def test_adaptive_inflation_reported_as_anomaly_factor():
    # innovations 3 times the ensemble spread with R negligible: variance estimate 9 -> anomaly factor 3
    n = 30
    z = normal_field(5, "test.adaptive.anom", np.arange(400), n, 0)
    HX = z - z.mean(axis=1, keepdims=True)
    HX /= HX.std(axis=1, ddof=1, keepdims=True)
    d = 3.0 * np.where(np.arange(400) % 2 == 0, 1.0, -1.0)
    X = np.ascontiguousarray(HX[:, None, :].copy())
    xy = np.stack([np.arange(400.0), np.zeros(400)], 1)
    diag = make_filter("etkf", adaptive_inflation=True, adaptive_inflation_max=5.0).analyse(
        X, xy, HX, d, np.full(400, 1e-9), xy, obs_ids=np.arange(400), cycle=0)
    assert diag.inflation == pytest.approx(3.0, rel=1e-6)
    capped = make_filter("etkf", adaptive_inflation=True, adaptive_inflation_max=2.0).analyse(
        np.ascontiguousarray(HX[:, None, :].copy()), xy, HX, d, np.full(400, 1e-9), xy, obs_ids=np.arange(400), cycle=0)
    assert capped.inflation == pytest.approx(2.0, rel=1e-12)


# -- localization: DAPPER's radius r and the half-width c = 1.82 r -------------------------------------
def test_dapper_radius_is_a_gaussian_length_scale():
    # c = sqrt(10/3) r makes GC(d/c) = exp(-d^2 / (2 r^2)) to second order in d; DAPPER rounds it to 1.82
    r = 4.0
    d = np.array([1e-3, 1e-2])
    exact = gaspari_cohn_taper(d, math.sqrt(10.0 / 3.0) * r)
    np.testing.assert_allclose((1.0 - exact) / (d**2 / (2 * r * r)), 1.0, atol=2e-3)
    dapper = gaspari_cohn_taper(d, DAPPER_HALF_WIDTH * r)
    np.testing.assert_allclose((1.0 - dapper) / (d**2 / (2 * r * r)), 10.0 / 3.0 / 1.82**2, rtol=2e-3)
    # at d = r the taper is 0.63 (a Gaussian of width r: 0.61); it vanishes at 2 c = 3.64 r
    assert gaspari_cohn_taper(r, DAPPER_HALF_WIDTH * r) == pytest.approx(0.6336, abs=1e-4)
    assert gaspari_cohn_taper(3.64 * r, DAPPER_HALF_WIDTH * r) == 0.0


def _dapper_style_letkf(E, y, loc_rad, inflation, cutoff):
    """Local ETKF written as DAPPER does it on a 40-point ring (R = I): GC tapers of the distance with
    half-width 1.82 loc_rad, taper values <= cutoff dropped, sqrt(taper) applied to Y and dy, the
    symmetric square root; prior anomaly inflation (smda's convention)."""
    nx, n = E.shape
    mu = E.mean(1, keepdims=True)
    E = mu + inflation * (E - mu)
    Y = E - E.mean(1, keepdims=True)
    dy = y - E.mean(1)
    out = np.empty_like(E)
    for i in range(nx):
        dist = np.abs(np.arange(nx) - i)
        dist = np.minimum(dist, nx - dist)
        c = gaspari_cohn_taper(dist.astype(float), 1.82 * loc_rad)
        keep = c > cutoff
        Yl = Y[keep] * np.sqrt(c[keep])[:, None]
        dyl = dy[keep] * np.sqrt(c[keep])
        lam, V = np.linalg.eigh(Yl.T @ Yl + (n - 1) * np.eye(n))
        T = V @ np.diag(np.sqrt((n - 1) / lam)) @ V.T
        w = V @ np.diag(1.0 / lam) @ V.T @ Yl.T @ dyl
        out[i] = E[i].mean() + (E[i] - E[i].mean()) @ (T + w[:, None])
    return out


def test_letkf_reproduces_dapper_localization_with_the_mapping():
    nx, n, loc_rad = 40, 7, 4.0
    E = 8.0 + 2.0 * normal_field(1, "test.dapper.ens", np.arange(nx), n, 0)
    y = 8.0 + 2.0 * normal_field(1, "test.dapper.obs", np.arange(nx), 1, 0)[:, 0]
    xy = np.stack([np.arange(nx) * 1000.0, np.zeros(nx)], 1)
    results = {}
    for cutoff in (0.0, 1e-3):
        X = np.ascontiguousarray(E[:, None, :].copy())
        flt = make_filter("letkf", loc_radius_km=DAPPER_HALF_WIDTH * loc_rad, inflation=1.04, period_km=40.0,
                          weight_interpolation=False, taper_cutoff=cutoff)
        flt.analyse(X, xy, E.copy(), y, np.ones(nx), xy, obs_ids=np.arange(nx), cycle=1)
        np.testing.assert_allclose(X[:, 0], _dapper_style_letkf(E, y, loc_rad, 1.04, cutoff), rtol=0, atol=1e-11)
        results[cutoff] = X[:, 0]
    # the cut-off drops the observations 14 grid points away (taper 6.2e-4): a small, nonzero change
    assert 1e-7 < np.abs(results[0.0] - results[1e-3]).max() < 1e-2


@pytest.mark.parametrize("name", ["enkf", "letkf", "eakf"])
def test_taper_cutoff_validated(name):
    for bad in (-0.1, 1.0, math.nan):
        with pytest.raises(ValueError, match="taper_cutoff"):
            make_filter(name, taper_cutoff=bad)
    with pytest.raises(ValueError, match="unknown setting"):
        make_filter("etkf", taper_cutoff=0.001)  # the ETKF is not localized


# -- random mean-preserving rotation ----------------------------------------------------------------
def test_rotation_matrix_properties():
    n = 9
    om = mean_preserving_rotation(4, n, 17)
    np.testing.assert_allclose(om @ om.T, np.eye(n), atol=1e-13)
    np.testing.assert_allclose(om @ np.ones(n), np.ones(n), atol=1e-13)
    np.testing.assert_array_equal(om, mean_preserving_rotation(4, n, 17))  # counter-based: reproducible
    assert np.abs(om - mean_preserving_rotation(4, n, 18)).max() > 0.1
    assert np.abs(om - mean_preserving_rotation(5, n, 17)).max() > 0.1
    # Haar on the complement of 1: the mean of many rotations is the projection onto 1 (E[Q] = 0)
    mean = sum(mean_preserving_rotation(4, n, k) for k in range(2000)) / 2000
    np.testing.assert_allclose(mean, np.full((n, n), 1.0 / n), atol=0.05)


@pytest.mark.parametrize("name,kw", [("etkf", {}), ("letkf", {"loc_radius_km": 3.0, "weight_interpolation": False}),
                                     ("letkf", {"loc_radius_km": 3.0, "analysis_spacing_km": 3.0})])
def test_rotation_keeps_mean_and_covariance(name, kw):
    X, cell_xy, HX, y, r, oxy, ids = _plane_problem()
    ref, _ = _run(name, X, cell_xy, HX, y, r, oxy, ids, inflation=1.05, **kw)
    got, _ = _run(name, X, cell_xy, HX, y, r, oxy, ids, inflation=1.05, random_rotation=True, **kw)
    assert np.abs(got - ref).max() > 1e-3  # the members are mixed ...
    np.testing.assert_allclose(got.mean(-1), ref.mean(-1), rtol=0, atol=1e-13)  # ... the mean is kept
    flat = lambda a: a.reshape(-1, a.shape[-1])  # noqa: E731
    cov = lambda a: (flat(a) - flat(a).mean(1, keepdims=True)) @ (flat(a) - flat(a).mean(1, keepdims=True)).T  # noqa: E731
    np.testing.assert_allclose(cov(got), cov(ref), rtol=0, atol=1e-12)  # and every (cross-)covariance
    om = mean_preserving_rotation(0, X.shape[-1], 2)  # the cycle's rotation, the same for every cell
    anom = lambda a: a - a.mean(-1, keepdims=True)  # noqa: E731
    np.testing.assert_allclose(anom(got), anom(ref) @ om, rtol=0, atol=1e-12)
