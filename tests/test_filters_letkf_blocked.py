"""LETKF weights and their blocked application: the reduced (k < N) solve against the textbook N x N formula,
the blocked interpolation against per-cell bilinear weights, lattice reuse, and split independence."""

import numpy as np
import pytest

from smda.assimilation.filters import letkf, make_filter
from smda.model.streams import normal_field


def _reference_weights(Yp, d, rinv, rho, lam):
    """T = [(N-1) A^-1]^(1/2) + A^-1 Y'^T diag(rho/R) d 1^T, A = (N-1)/lam I + Y'^T diag(rho/R) Y' (Hunt et al. 2007)."""
    n = Yp.shape[1]
    C = Yp.T * (rho * rinv)
    A = (n - 1) / lam * np.eye(n) + C @ Yp
    l, Q = np.linalg.eigh(A)
    W = Q @ np.diag(np.sqrt((n - 1) / l)) @ Q.T
    return W + (Q @ np.diag(1 / l) @ Q.T @ C @ d)[:, None]


@pytest.mark.parametrize("k", [1, 5, 23, 24, 40])
def test_weights_equal_textbook_formula(k):
    # k < N uses the k x k form, k >= N the N x N one: both are the same T to round-off
    n, n_obs = 24, 50
    Yp = normal_field(4, "test.yp", np.arange(n_obs), n, 0)
    Yp -= Yp.mean(axis=1, keepdims=True)
    d = normal_field(4, "test.d", np.arange(n_obs), 1, 0)[:, 0]
    rinv = 1.0 / (0.5 + np.arange(n_obs) % 3)
    idx = 2 * np.arange(k) if 2 * k <= n_obs else np.arange(k)  # local observations, ascending
    rho = np.linspace(1.0, 0.05, k)
    T = np.empty((n, n))
    letkf.point_weights(Yp, d, rinv, idx, rho, k, 1.1, np.empty((n_obs, n)), T)
    ref = _reference_weights(Yp[idx], d[idx], rinv[idx], rho, 1.1)
    np.testing.assert_allclose(T, ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(T.sum(axis=0), ref.sum(axis=0), atol=1e-12)


def _plane(nx=30, ny=24, n=16, n_vars=3):
    gy, gx = np.meshgrid(np.arange(ny)[::-1], np.arange(nx), indexing="ij")  # row-major, as smda orders cells
    cxy = np.stack([gx.ravel(), gy.ravel()], 1) * 1000.0 + 500.0
    X = 0.25 + 0.02 * normal_field(7, "test.x", np.arange(nx * ny * n_vars), n, 0).reshape(nx * ny, n_vars, n)
    return np.ascontiguousarray(X), cxy


def test_blocked_application_equals_per_cell_bilinear_weights():
    X, cxy = _plane()
    s = 7000.0
    cx, cy = cxy[:, 0].copy(), cxy[:, 1].copy()
    px, py, needed, i0, j0, ny = letkf.analysis_lattice(cx, cy, s)
    n = X.shape[2]
    Tgrid = np.eye(n) + 0.1 * normal_field(8, "test.t", np.arange(px.size * n), n, 0).reshape(px.size, n, n)
    lo, hi = np.full((1, X.shape[1]), -np.inf), np.full((1, X.shape[1]), np.inf)
    Xa = X.copy()
    letkf.interpolate_apply(Xa, cx, cy, s, i0, j0, ny, Tgrid, 0.0, 0.0, lo, hi, np.zeros((X.shape[1], 3)))
    gx, gy = cx / s, cy / s
    fx, fy = gx - np.floor(gx), gy - np.floor(gy)
    p00 = (np.floor(gx).astype(int) - i0) * ny + np.floor(gy).astype(int) - j0
    T = (((1 - fx) * (1 - fy))[:, None, None] * Tgrid[p00] + (fx * (1 - fy))[:, None, None] * Tgrid[p00 + ny]
         + ((1 - fx) * fy)[:, None, None] * Tgrid[p00 + 1] + (fx * fy)[:, None, None] * Tgrid[p00 + ny + 1])
    mean = X.mean(axis=2, keepdims=True)
    ref = mean + np.einsum("cvj,cjm->cvm", X - mean, T)
    np.testing.assert_allclose(Xa, ref, rtol=0, atol=1e-14)
    # any cell order and any subset: runs are cut where the cells' rows or lattice squares change
    perm = np.random.default_rng(0).permutation(X.shape[0])
    Xp = np.ascontiguousarray(X[perm])
    letkf.interpolate_apply(Xp, cx[perm], cy[perm], s, i0, j0, ny, Tgrid, 0.0, 0.0, lo, hi, np.zeros((X.shape[1], 3)))
    np.testing.assert_allclose(Xp, Xa[perm], rtol=0, atol=1e-14)


def test_infinite_radius_lattice_is_the_etkf():
    # every analysis point has the same observations and tapers: one solve, copied; equal to the ETKF
    X, cxy = _plane(n=12)
    n_obs = 9
    oxy = np.stack([np.linspace(2e3, 28e3, n_obs), np.linspace(3e3, 20e3, n_obs)], 1)
    HX = 200.0 + 3.0 * normal_field(9, "test.hx", np.arange(n_obs), X.shape[2], 0)
    y = HX.mean(axis=1) + 2.0
    kw = dict(obs_ids=np.arange(n_obs), cycle=1)
    a, b = X.copy(), X.copy()
    make_filter("letkf", loc_radius_km=np.inf, analysis_spacing_km=6.0).analyse(a, cxy, HX, y, np.full(n_obs, 4.0), oxy, **kw)
    make_filter("etkf").analyse(b, cxy, HX, y, np.full(n_obs, 4.0), oxy, **kw)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-13)
    assert np.abs(a - X).max() > 1e-3
