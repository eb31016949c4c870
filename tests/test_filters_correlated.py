"""Spatially correlated observation errors (a non-diagonal R within a source) in the ETKF/LETKF: the exact Kalman
update in the ensemble subspace, the diagonal limit, no correlation across sources, MPI split independence, input
checks and the namelist key."""

import numpy as np
import pytest

from smda.assimilation.filters import make_filter
from smda.assimilation.observations.superobs import CORRELATION_TABLE, TABLE_STEP, lattice_correlation
from smda.run.namelist import NamelistError, load

N = 10
INFLATION = 1.05


def _problem(n_obs=24, seed=3):
    """8 x 8 cells 1 km apart, two variables, N members; point observations of variable 0 at distinct cells (H
    picks a cell), error std 0.02-0.05. Returns X, cell_xy, H (n_obs, n_cells * 2), HX, y, sigma, obs_xy, ids."""
    rng = np.random.default_rng(seed)
    g = np.arange(8) * 1000.0 + 500.0
    cx, cy = np.meshgrid(g, g, indexing="ij")
    cell_xy = np.stack([cx.ravel(), cy.ravel()], 1)
    n_cells = cell_xy.shape[0]
    base = rng.normal(size=(n_cells, 1, N))
    X = 0.25 + 0.03 * np.concatenate([base, 0.6 * base + 0.8 * rng.normal(size=(n_cells, 1, N))], axis=1)
    X = np.ascontiguousarray(X)
    cells = rng.choice(n_cells, n_obs, replace=False)
    H = np.zeros((n_obs, n_cells * 2))
    H[np.arange(n_obs), cells * 2] = 1.0  # state vector ordered (cell, variable)
    HX = H @ X.reshape(n_cells * 2, N)
    y = HX.mean(1) + rng.normal(0.0, 0.04, n_obs)
    sigma = rng.uniform(0.02, 0.05, n_obs)
    return X, cell_xy, H, HX, y, sigma, cell_xy[cells], np.arange(n_obs) + 100


def _r(s):
    """The tabulated r of the analysis (linear interpolation, 0 beyond the table)."""
    return np.interp(s, np.arange(CORRELATION_TABLE.size) * TABLE_STEP, CORRELATION_TABLE, right=0.0)


def _correlation(oxy, L_km, group):
    """The analysis' correlation model: r(|dx| / L) r(|dy| / L) within a group, 0 across groups."""
    d = np.abs(oxy[:, None, :] - oxy[None, :, :]) / (L_km * 1000.0)
    return _r(d[..., 0]) * _r(d[..., 1]) * (group[:, None] == group[None, :])


def test_tabulated_correlation():
    s = np.array([0.0, 0.3, 0.77, 1.5, 2.5])
    np.testing.assert_allclose(_r(s), lattice_correlation(s), atol=2e-5)


def _kalman(X, H, y, R):
    """Exact Kalman update of the (inflated) ensemble's mean and covariance: (mean_a, P_a)."""
    n_cells, n_vars, n = X.shape
    x = X.reshape(n_cells * n_vars, n)
    xm = x.mean(1)
    A = x - xm[:, None]
    P = INFLATION**2 * A @ A.T / (n - 1)
    K = P @ H.T @ np.linalg.inv(H @ P @ H.T + R)
    return xm + K @ (y - H @ xm), (np.eye(xm.size) - K @ H) @ P


def _moments(X):
    x = X.reshape(-1, X.shape[2])
    A = x - x.mean(1, keepdims=True)
    return x.mean(1), A @ A.T / (x.shape[1] - 1)


def _analyse(name, X, cell_xy, HX, y, sigma, oxy, ids, **kw):
    corr = {k: kw.pop(k) for k in ("obs_error_corr_km", "obs_group") if k in kw}
    Xa = X.copy()
    make_filter(name, inflation=INFLATION, **kw).analyse(Xa, cell_xy, HX, y, sigma**2, oxy, obs_ids=ids, cycle=0,
                                                         **corr)
    return Xa


EXACT = [("etkf", {}), ("letkf", {"loc_radius_km": np.inf}),
         ("letkf", {"loc_radius_km": np.inf, "weight_interpolation": False})]


@pytest.mark.parametrize("name,kw", EXACT)
def test_equals_kalman_filter_with_full_R(name, kw):
    X, cell_xy, H, HX, y, sigma, oxy, ids = _problem()
    L = 3.0
    group = np.zeros(y.size, np.int64)
    R = sigma[:, None] * sigma[None, :] * _correlation(oxy, L, group)
    assert np.linalg.eigvalsh(R).min() > 0
    Xa = _analyse(name, X, cell_xy, HX, y, sigma, oxy, ids, obs_error_corr_km=np.full(y.size, L), obs_group=group,
                  **kw)
    mean, P = _moments(Xa)
    mean_kf, P_kf = _kalman(X, H, y, R)
    np.testing.assert_allclose(mean, mean_kf, rtol=0, atol=1e-12)
    np.testing.assert_allclose(P, P_kf, rtol=0, atol=1e-13)
    mean_diag, _ = _kalman(X, H, y, np.diag(sigma**2))  # the correlations matter here: the test can fail
    assert np.abs(mean_kf - mean_diag).max() > 1e-3


def test_zero_length_is_the_diagonal_path():
    X, cell_xy, _, HX, y, sigma, oxy, ids = _problem()
    kw = {"loc_radius_km": 4.0, "analysis_spacing_km": 2.0}
    diag = _analyse("letkf", X, cell_xy, HX, y, sigma, oxy, ids, **kw)
    zero = _analyse("letkf", X, cell_xy, HX, y, sigma, oxy, ids, obs_error_corr_km=np.zeros(y.size),
                    obs_group=np.zeros(y.size, np.int64), **kw)
    np.testing.assert_array_equal(zero, diag)
    corr = _analyse("letkf", X, cell_xy, HX, y, sigma, oxy, ids, obs_error_corr_km=np.full(y.size, 3.0), **kw)
    assert np.abs(corr - diag).max() > 1e-4


@pytest.mark.parametrize("name,kw", EXACT[:2])
def test_sources_are_not_correlated_with_each_other(name, kw):
    X, cell_xy, H, HX, y, sigma, oxy, ids = _problem()
    L = 3.0
    group = np.arange(y.size) % 2  # two interleaved sources with the same correlation length
    Xa = _analyse(name, X, cell_xy, HX, y, sigma, oxy, ids, obs_error_corr_km=np.full(y.size, L), obs_group=group,
                  **kw)
    mean, P = _moments(Xa)
    mean_kf, P_kf = _kalman(X, H, y, sigma[:, None] * sigma[None, :] * _correlation(oxy, L, group))
    np.testing.assert_allclose(mean, mean_kf, rtol=0, atol=1e-12)
    np.testing.assert_allclose(P, P_kf, rtol=0, atol=1e-13)
    one, _ = _kalman(X, H, y, sigma[:, None] * sigma[None, :] * _correlation(oxy, L, np.zeros(y.size)))
    assert np.abs(mean_kf - one).max() > 1e-3
    # a source without correlation beside a correlated one: its errors stay independent
    L_mixed = np.where(group == 0, L, 0.0)
    Xm = _analyse(name, X, cell_xy, HX, y, sigma, oxy, ids, obs_error_corr_km=L_mixed, obs_group=group, **kw)
    R = sigma[:, None] * sigma[None, :] * _correlation(oxy, L, group)
    R[group == 1] = 0.0
    R[:, group == 1] = 0.0
    R[group == 1, group == 1] = sigma[group == 1] ** 2
    np.testing.assert_allclose(_moments(Xm)[0], _kalman(X, H, y, R)[0], rtol=0, atol=1e-12)


@pytest.mark.parametrize("kw", [{"analysis_spacing_km": 2.0}, {"weight_interpolation": False}])
def test_result_independent_of_domain_split(kw):
    X, cell_xy, _, HX, y, sigma, oxy, ids = _problem(n_obs=30)
    args = dict(loc_radius_km=3.0, obs_error_corr_km=np.full(y.size, 3.0), obs_group=np.arange(y.size) % 2, **kw)
    full = _analyse("letkf", X, cell_xy, HX, y, sigma, oxy, ids, **dict(args))
    assert np.abs(full - X).max() > 1e-3
    for sel in (np.arange(0, 20), np.arange(20, 41), np.arange(41, X.shape[0])):
        got = _analyse("letkf", np.ascontiguousarray(X[sel]), cell_xy[sel], HX, y, sigma, oxy, ids, **dict(args))
        np.testing.assert_array_equal(got, full[sel])


def test_bad_input():
    X, cell_xy, _, HX, y, sigma, oxy, ids = _problem()
    L = np.full(y.size, 3.0)
    for name in ("enkf", "eakf"):
        with pytest.raises(ValueError, match="correlated_errors"):
            _analyse(name, X, cell_xy, HX, y, sigma, oxy, ids, obs_error_corr_km=L)
    bad = L.copy()
    bad[0] = 5.0
    with pytest.raises(ValueError, match="one length per obs_group"):
        _analyse("letkf", X, cell_xy, HX, y, sigma, oxy, ids, obs_error_corr_km=bad)
    with pytest.raises(ValueError, match="obs_error_corr_km"):
        _analyse("letkf", X, cell_xy, HX, y, sigma, oxy, ids, obs_error_corr_km=-L)
    with pytest.raises(ValueError, match="obs_group"):
        _analyse("letkf", X, cell_xy, HX, y, sigma, oxy, ids, obs_error_corr_km=L, obs_group=np.zeros(3, int))


def test_namelist_key_and_checks(tmp_path):
    body = ("name: s\ndomain:\n  centre: [41.35, -5.40]\n  landscape: synthetic\ntime:\n  start: 2019-05-02T00:00\n"
            "  end: 2019-05-03T00:00\nobservations:\n  - name: tb\n  - name: s1\n    kind: sm\n    grid: M03\n"
            "    error_corr_km: {L}\n    correlated_errors: true\n    superob_grid: {grid}\nassimilation:\n"
            "  filter: {flt}\n")
    path = tmp_path / "a.yaml"
    path.write_text(body.format(L=10, grid="none", flt="letkf"))
    assert load(path).observations[1].correlated_errors and not load(path).observations[0].correlated_errors
    for L, grid, flt, msg in ((0, "none", "letkf", "error_corr_km > 0"), (10, "M09", "letkf", "superob_grid none"),
                              (10, "none", "enkf", "diagonal R")):
        path.write_text(body.format(L=L, grid=grid, flt=flt))
        with pytest.raises(NamelistError, match=msg):
            load(path)
