"""Serial EAKF (Anderson 2001, 2003): SCIENCE.md scalar check, equivalences with the ETKF/LETKF,
observation-order and domain-split independence, localization cut-off, relaxation, bounds, a
Lorenz-96 twin and the registry.

Lorenz-96 (tests/lorenz96.py, Sakov and Oke 2008 set-up, N = 20, every variable observed, R = 1):
Gaspari-Cohn half-width c = 8 grid points (taper zero at 16) and anomaly inflation 1.015 (variance
1.03) give an analysis RMSE of 0.196 over 5000 cycles after 500 spin-up (c = 6, variance inflation
1.04: 0.208; c = 10: 0.189).
Fast run: 600 cycles after 200 spin-up, 0.204 (seeds 1, 2, 3: 0.204, 0.189, 0.195), tolerance
+-0.05; slow run: tolerance +-0.02 around 0.196.
"""

import numpy as np
import pytest

from smda.assimilation.filters import EAKF, FILTERS, make_filter
from smda.assimilation.filters.localization import gaspari_cohn_taper
from smda.model.streams import normal_field
from tests.lorenz96 import twin_rmse


def _standardised(n, seed, purpose):
    z = normal_field(seed, purpose, np.array([0]), n, 0)[0]
    return (z - z.mean()) / z.std(ddof=1)


def _plane_problem(n=10, nvar=2, n_obs=25):
    """20 x 18 cells of 1 km, nvar correlated variables, n_obs point observations of variable 0."""
    gx, gy = np.meshgrid(np.arange(20), np.arange(18), indexing="ij")
    cell_xy = np.stack([gx.ravel(), gy.ravel()], 1) * 1000.0 + np.array([5.0e5, -3.0e5])
    gid = np.arange(cell_xy.shape[0])
    base = normal_field(12, "test.eakf.plane", gid, n, 0)
    X = np.empty((gid.size, nvar, n))
    for v in range(nvar):
        X[:, v, :] = 0.2 + 0.05 * (v + 1) * base + 0.01 * normal_field(12, "test.eakf.plane", gid, n, 0, draw=v + 1)
    oid = np.arange(n_obs)
    obs_xy = cell_xy.mean(0) + 6000.0 * normal_field(14, "test.eakf.obspos", oid, 2, 0)
    near = np.argmin(((cell_xy[None, :, :] - obs_xy[:, None, :]) ** 2).sum(-1), axis=1)
    HX = X[near, 0, :].copy()  # linear H: the nearest cell's variable 0
    y = HX.mean(axis=1) + 0.03 * normal_field(14, "test.eakf.obsval", oid, 1, 0)[:, 0]
    return X, cell_xy, HX, y, np.full(n_obs, 0.02**2), obs_xy, 3 * oid + 1000


def _run(name, X, cell_xy, HX, y, r, oxy, ids, cycle=2, bounds=None, **kw):
    Xa = X.copy()
    diag = make_filter(name, **kw).analyse(Xa, cell_xy, HX, y, r, oxy, obs_ids=ids, cycle=cycle, **(bounds or {}))
    return Xa, diag


def _ensemble_moments(Xa):
    flat = Xa.reshape(-1, Xa.shape[-1])
    return flat.mean(axis=1), np.cov(flat)


# -- SCIENCE.md section 4 scalar check --------------------------------------------------------------
@pytest.mark.parametrize("radius", [50.0, np.inf])
def test_scalar_case(radius):
    # sigma_b = 0.03 m3/m3, H = -200 K/(m3/m3), R = 16 K^2, innovation +5 K -> dSM = -0.01731
    n = 400
    x = 0.25 + 0.03 * _standardised(n, 1, "test.scalar")
    X = x.reshape(1, 1, n).copy()
    HX = (250.0 - 200.0 * x).reshape(1, n)
    y = np.array([HX.mean() + 5.0])
    make_filter("eakf", loc_radius_km=radius).analyse(X, np.array([[9000.0, 18000.0]]), HX, y, np.array([16.0]),
                                                      np.array([[9000.0, 18000.0]]), obs_ids=np.array([7]), cycle=3)
    k = -200.0 * 0.03**2 / ((200.0 * 0.03) ** 2 + 16.0)
    assert X.mean() - 0.25 == pytest.approx(5.0 * k, rel=1e-10)
    assert X.mean() - 0.25 == pytest.approx(-0.01731, abs=5e-6)
    # deterministic square root: exact posterior variance (1 - K H) sigma_b^2
    assert X.std(ddof=1) == pytest.approx(0.03 * np.sqrt(1 + 200.0 * k), rel=1e-10)


# -- equivalences ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kw", [{}, {"inflation": 1.1}, {"rtps": 0.6}, {"rtpp": 0.4}])
def test_single_observation_equals_etkf_and_letkf(kw):
    X, cell_xy, HX, y, r, oxy, ids = _plane_problem()
    one = (HX[4:5], y[4:5], r[4:5], oxy[4:5], ids[4:5])
    ref, _ = _run("etkf", X, cell_xy, *one, **kw)
    assert np.abs(ref - X).max() > 1e-3
    got, _ = _run("eakf", X, cell_xy, *one, loc_radius_km=np.inf, **kw)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-10)
    lk, _ = _run("letkf", X, cell_xy, *one, loc_radius_km=np.inf, weight_interpolation=False, **kw)
    np.testing.assert_allclose(got, lk, rtol=0, atol=1e-10)


@pytest.mark.parametrize("inflation", [1.0, 1.1])
def test_serial_equals_batch_for_linear_obs(inflation):
    # serial and batch square-root filters give the same analysis mean and covariance (linear H,
    # uncorrelated errors, no localization); the members differ by an ensemble-space rotation
    X, cell_xy, HX, y, r, oxy, ids = _plane_problem(n=12)
    ref, _ = _run("etkf", X, cell_xy, HX, y, r, oxy, ids, inflation=inflation)
    got, _ = _run("eakf", X, cell_xy, HX, y, r, oxy, ids, inflation=inflation, loc_radius_km=np.inf)
    m_ref, P_ref = _ensemble_moments(ref)
    m_got, P_got = _ensemble_moments(got)
    assert np.abs(m_ref - X.reshape(-1, 12).mean(1)).max() > 1e-3
    np.testing.assert_allclose(m_got, m_ref, rtol=0, atol=1e-8)
    np.testing.assert_allclose(P_got, P_ref, rtol=0, atol=1e-8 * np.abs(P_ref).max())


def _reference_eakf(X, cell_xy, HX, y, r, oxy, ids, c_m, lam):
    """Plain numpy serial EAKF, interleaving the observation and state updates obs by obs (lam: variance factor)."""
    X = X.copy()
    H = HX[np.argsort(ids)].copy()
    y, r, oxy = (a[np.argsort(ids)] for a in (y, r, oxy))
    rho_xo = gaspari_cohn_taper(np.hypot(*(cell_xy[:, None, :] - oxy[None, :, :]).transpose(2, 0, 1)), c_m)
    rho_oo = gaspari_cohn_taper(np.hypot(*(oxy[:, None, :] - oxy[None, :, :]).transpose(2, 0, 1)), c_m)
    seen = rho_xo.max(axis=1) > 0
    X[seen] = X[seen].mean(-1, keepdims=True) + np.sqrt(lam) * (X[seen] - X[seen].mean(-1, keepdims=True))
    H = H.mean(-1, keepdims=True) + np.sqrt(lam) * (H - H.mean(-1, keepdims=True))
    n = X.shape[-1]
    for i in range(len(y)):
        h = H[i].copy()
        hb, sb2 = h.mean(), h.var(ddof=1)
        sa2 = 1.0 / (1.0 / sb2 + 1.0 / r[i])
        dh = sa2 * (hb / sb2 + y[i] / r[i]) + np.sqrt(sa2 / sb2) * (h - hb) - h
        hp = h - hb
        for j in range(i + 1, len(y)):
            H[j] += rho_oo[i, j] * ((H[j] - H[j].mean()) @ hp) / ((n - 1) * sb2) * dh
        cov = (X - X.mean(-1, keepdims=True)) @ hp / (n - 1)
        X += (rho_xo[:, i, None] * cov / sb2)[..., None] * dh
    return X


def test_matches_interleaved_reference():
    p = _plane_problem()
    got, _ = _run("eakf", *p, loc_radius_km=3.0, inflation=1.05)
    ref = _reference_eakf(*p, 3000.0, 1.05 ** 2)
    assert np.abs(ref - p[0]).max() > 1e-3
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)


def test_observation_order_does_not_matter():
    # obs are processed in ascending id whatever order they are given in: bitwise identical
    X, cell_xy, HX, y, r, oxy, ids = _plane_problem()
    ref, _ = _run("eakf", X, cell_xy, HX, y, r, oxy, ids, loc_radius_km=3.0, inflation=1.05)
    perm = np.argsort(normal_field(3, "test.eakf.perm", np.arange(ids.size), 1, 0)[:, 0])
    assert np.any(perm != np.arange(ids.size))
    got, _ = _run("eakf", X, cell_xy, HX[perm], y[perm], r[perm], oxy[perm], ids[perm], loc_radius_km=3.0,
                  inflation=1.05)
    np.testing.assert_array_equal(got, ref)


def test_zero_spread_observation_has_no_effect():
    X, cell_xy, HX, y, r, oxy, ids = _plane_problem()
    ref, _ = _run("eakf", X, cell_xy, HX, y, r, oxy, ids, loc_radius_km=3.0)
    HXc = np.vstack([HX, np.full((1, HX.shape[1]), 0.3)])
    got, _ = _run("eakf", X, cell_xy, HXc, np.append(y, 0.1), np.append(r, 1e-4), np.vstack([oxy, oxy[:1]]),
                  np.append(ids, 1), loc_radius_km=3.0)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-15)


# -- MPI split, localization, relaxation, bounds ----------------------------------------------------
@pytest.mark.parametrize("kw", [{"loc_radius_km": 3.0, "inflation": 1.05, "rtps": 0.5},
                                {"loc_radius_km": 2.0, "rtpp": 0.3, "period_km": 15.0},
                                {"loc_radius_km": np.inf}])
def test_result_independent_of_domain_split(kw):
    X, cell_xy, HX, y, r, oxy, ids = _plane_problem()
    full, _ = _run("eakf", X, cell_xy, HX, y, r, oxy, ids, **kw)
    assert np.abs(full - X).max() > 1e-4
    for parts in ([np.arange(0, 170), np.arange(170, X.shape[0])],
                  [np.arange(0, 100), np.arange(100, 250), np.arange(250, X.shape[0])]):
        for sel in parts:
            got, _ = _run("eakf", np.ascontiguousarray(X[sel]), cell_xy[sel], HX, y, r, oxy, ids, **kw)
            np.testing.assert_array_equal(got, full[sel])


def test_localization_cutoff():
    X, cell_xy, HX, y, r, oxy, ids = _plane_problem()
    # cells moved far away: no observation within 2 c, left unchanged (no inflation either)
    got, _ = _run("eakf", X, cell_xy + 1e6, HX, y, r, oxy, ids, loc_radius_km=5.0, inflation=1.2)
    np.testing.assert_array_equal(got, X)
    # one observation: cells at >= 2 c unchanged, increment shrinks with distance
    c = 3.0
    got, _ = _run("eakf", X, cell_xy, HX[:1], y[:1], r[:1], oxy[:1], ids[:1], loc_radius_km=c)
    d = np.hypot(*(cell_xy - oxy[0]).T)
    inc = np.abs(got - X).max(axis=(1, 2))
    assert np.all(inc[d >= 2000.0 * c] == 0.0)
    assert inc[np.argmin(d)] > 0 and inc[np.argmin(d)] > inc[(d > 1000.0 * c) & (d < 2000.0 * c)].max()


def test_rtpp_and_rtps_limits():
    X0, *rest = _plane_problem()
    plain, _ = _run("eakf", X0, *rest, loc_radius_km=4.0)
    relaxed, _ = _run("eakf", X0, *rest, loc_radius_km=4.0, rtpp=1.0)
    np.testing.assert_allclose(relaxed.mean(-1), plain.mean(-1), atol=1e-12)
    np.testing.assert_allclose(relaxed - relaxed.mean(-1, keepdims=True), X0 - X0.mean(-1, keepdims=True),
                               atol=1e-12)
    rtps, _ = _run("eakf", X0, *rest, loc_radius_km=4.0, rtps=1.0)
    np.testing.assert_allclose(rtps.std(-1), X0.std(-1), rtol=1e-10)
    np.testing.assert_allclose(rtps.mean(-1), plain.mean(-1), atol=1e-12)
    assert np.all(plain.std(-1) <= X0.std(-1) * (1 + 1e-12))  # no inflation: spread never grows


def test_inflation_enlarges_analysis_spread():
    p = _plane_problem()
    a, _ = _run("eakf", *p, loc_radius_km=4.0)
    b, _ = _run("eakf", *p, loc_radius_km=4.0, inflation=1.5)
    assert np.all(b.std(-1) > a.std(-1))


def test_bounds_clip_and_report():
    p = _plane_problem()
    free, _ = _run("eakf", *p, loc_radius_km=4.0)
    lower, upper = np.array([0.19, 0.0]), np.array([0.25, 0.3])
    Xa, diag = _run("eakf", *p, loc_radius_km=4.0, bounds={"lower": lower, "upper": upper})
    np.testing.assert_allclose(Xa, np.clip(free, lower[None, :, None], upper[None, :, None]), rtol=0, atol=0)
    below = np.maximum(lower[None, :, None] - free, 0).sum(axis=(0, 2))
    above = np.maximum(free - upper[None, :, None], 0).sum(axis=(0, 2))
    np.testing.assert_allclose(diag.clipped_below, below)
    np.testing.assert_allclose(diag.clipped_above, above)
    n_out = ((free < lower[None, :, None]) | (free > upper[None, :, None])).sum(axis=(0, 2))
    np.testing.assert_array_equal(diag.n_clipped, n_out)
    assert diag.clipped_below[0] > 0 and diag.clipped_above[0] > 0


def test_gross_error_rejected_observation_not_used():
    X, cell_xy, HX, y, r, oxy, ids = _plane_problem()
    keep = np.arange(ids.size) != 3
    ref, _ = _run("eakf", X, cell_xy, HX[keep], y[keep], r[keep], oxy[keep], ids[keep], loc_radius_km=3.0)
    yb = y.copy()
    yb[3] += 10.0
    got, diag = _run("eakf", X, cell_xy, HX, yb, r, oxy, ids, loc_radius_km=3.0, gross_error_sigma=5.0)
    assert diag.n_rejected == 1 and not diag.used[3]
    np.testing.assert_array_equal(got, ref)


# -- Lorenz-96 twin ---------------------------------------------------------------------------------
L96_SETTINGS = {"inflation": 1.015, "loc_radius_km": 8.0, "period_km": 40.0}
L96_REF = 0.196


def test_l96_short():
    rmse = twin_rmse(make_filter("eakf", **L96_SETTINGS), 20, n_cycles=600, n_spinup=200)
    assert abs(rmse - L96_REF) < 0.05, rmse


@pytest.mark.slow
def test_l96_long():
    rmse = twin_rmse(make_filter("eakf", **L96_SETTINGS), 20, n_cycles=5500, n_spinup=500)
    assert abs(rmse - L96_REF) < 0.02, rmse


# -- registry and settings --------------------------------------------------------------------------
def test_registry():
    assert FILTERS["eakf"] is EAKF
    with pytest.raises(ValueError, match="unknown filter .kalman.; valid: enkf, etkf, letkf, eakf"):
        make_filter("kalman")
    with pytest.raises(ValueError, match="loc_radius_km"):
        make_filter("eakf", radius=3.0)
    assert make_filter("eakf", loc_radius_km=20.0).loc_radius_km == 20.0
    with pytest.raises(TypeError):
        EAKF(50.0)  # keyword-only


@pytest.mark.parametrize("kw", [{"loc_radius_km": 0.0}, {"loc_radius_km": -1.0}, {"inflation": 0.9},
                                {"rtps": -0.1}])
def test_bad_settings(kw):
    with pytest.raises(ValueError, match=list(kw)[0]):
        make_filter("eakf", **kw)
