"""LETKF weights and their blocked application: the reduced (k < N) solve against the textbook N x N formula,
the eigen-solver against LAPACK, the spatial index of the local search against the full scan, the blocked
interpolation (with relaxation and bounds) against per-cell bilinear weights, lattice reuse, and split independence."""

import numpy as np
import pytest

from smda.assimilation.filters import letkf, localization, make_filter
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


@pytest.mark.parametrize("case", ["random", "spd", "repeated", "diagonal", "tridiagonal", "one", "two"])
def test_symmetric_eigen_decomposes(case):
    # A = V^T diag(lam) V with orthonormal rows V and the eigenvalues of LAPACK, also for repeated eigenvalues
    rng = np.random.default_rng(11)
    k = {"one": 1, "two": 2}.get(case, 17)
    B = rng.normal(size=(k, k))
    A = {"random": B + B.T, "spd": B @ B.T + 3.0 * np.eye(k), "diagonal": np.diag(rng.normal(size=k)),
         "tridiagonal": np.diag(rng.normal(size=k)) + np.diag(np.ones(k - 1), 1) + np.diag(np.ones(k - 1), -1),
         "one": np.array([[2.5]]), "two": np.array([[1.0, 2.0], [2.0, -3.0]])}.get(case)
    if case == "repeated":  # eigenvalues 5 (x 8), 31 (x 9) in a random basis
        Q, _ = np.linalg.qr(B)
        A = Q @ np.diag(np.r_[np.full(8, 5.0), np.full(9, 31.0)]) @ Q.T
    A = np.ascontiguousarray(A)
    lam, off, V = np.empty(k), np.empty(k), np.empty((k, k))
    assert letkf.symmetric_eigen(A.copy(), lam, off, V, np.empty(3 * k))
    scale = np.abs(A).max()
    np.testing.assert_allclose(np.sort(lam), np.linalg.eigvalsh(A), rtol=0, atol=1e-13 * scale)
    np.testing.assert_allclose(V @ V.T, np.eye(k), rtol=0, atol=1e-13)
    np.testing.assert_allclose(V.T @ np.diag(lam) @ V, A, rtol=0, atol=1e-13 * scale)


def test_symmetric_eigen_rejects_non_finite():
    A = np.array([[1.0, np.nan, 0.0], [np.nan, 2.0, 1.0], [0.0, 1.0, 3.0]])
    assert not letkf.symmetric_eigen(A, np.empty(3), np.empty(3), np.empty((3, 3)), np.empty(9))
    n_obs, n = 3, 8
    Yp = normal_field(4, "test.yp", np.arange(n_obs), n, 0)
    Yp[1, 2] = np.nan
    with pytest.raises(ValueError, match="did not converge"):
        letkf.point_weights(Yp, np.ones(n_obs), np.ones(n_obs), np.arange(n_obs), np.ones(n_obs), n_obs, 1.0,
                            np.empty((n_obs, n)), np.empty((n, n)))


def test_local_obs_near_finds_the_same_observations():
    rng = np.random.default_rng(5)
    n_obs = 400
    ox, oy = rng.uniform(0, 300e3, n_obs), rng.uniform(-50e3, 150e3, n_obs)
    radius = np.where(rng.random(n_obs) < 0.3, 10e3, 40e3)  # fine and coarse observations
    index = localization.obs_buckets(ox, oy, radius, 0.0)
    assert index[3] > 1 and index[4] > 1
    idx, rho, idx2, rho2 = np.empty(n_obs, np.int64), np.empty(n_obs), np.empty(n_obs, np.int64), np.empty(n_obs)
    points = np.r_[rng.uniform(-120e3, 420e3, (300, 2)), [[0.0, -50e3], [300e3, 150e3], [1e7, 0.0], [-1e7, -1e7]]]
    for px, py in points:
        k = localization.local_obs(px, py, ox, oy, radius, 0.0, 0.01, idx, rho)
        k2 = localization.local_obs_near(px, py, ox, oy, radius, 0.0, 0.01, index, idx2, rho2)
        assert k2 == k
        order = np.argsort(idx2[:k2])
        np.testing.assert_array_equal(idx2[:k2][order], idx[:k])
        np.testing.assert_array_equal(rho2[:k2][order], rho[:k])
    # no index (scan all) for an infinite radius or a periodic axis
    assert localization.obs_buckets(ox, oy, np.inf, 0.0)[3] == 0
    assert localization.obs_buckets(ox, oy, radius, 400e3)[3] == 0


def test_lattice_weights_equal_per_point_solves():
    # through the spatial index, every lattice point gets the weights of a full scan of the observations
    rng = np.random.default_rng(8)
    n_obs, n = 60, 10
    ox, oy = rng.uniform(0, 60e3, n_obs), rng.uniform(0, 40e3, n_obs)
    radius = np.where(np.arange(n_obs) % 3 == 0, 6e3, 15e3)
    Yp = normal_field(6, "test.yp", np.arange(n_obs), n, 0)
    Yp -= Yp.mean(axis=1, keepdims=True)
    d, rinv = normal_field(6, "test.d", np.arange(n_obs), 1, 0)[:, 0], np.full(n_obs, 0.5)
    px, py = np.repeat(np.arange(-8, 20) * 5e3, 10), np.tile(np.arange(-1, 9) * 5e3, 28)
    Tgrid = np.zeros((px.size, n, n))
    letkf.lattice_weights(px, py, np.ones(px.size, np.bool_), ox, oy, Yp, d, rinv, radius, 0.0, 0.0, 1.1, Tgrid)
    idx, rho, T = np.empty(n_obs, np.int64), np.empty(n_obs), np.empty((n, n))
    ks = []
    for p in range(px.size):
        k = localization.local_obs(px[p], py[p], ox, oy, radius, 0.0, 0.0, idx, rho)
        letkf.point_weights(Yp, d, rinv, idx, rho, k, 1.1, np.empty((n_obs, n)), T)
        np.testing.assert_allclose(Tgrid[p], T, rtol=0, atol=1e-12)
        ks.append(k)
    assert min(ks) == 0 and max(ks) > n  # unobserved points and both forms of the solve are covered


def test_blocked_application_relaxes_and_clips_like_per_cell():
    # RTPP, RTPS and the bounds act on the rows that need them, as the per-cell application does
    X, cxy = _plane(n=12)
    s = 7000.0
    cx, cy = cxy[:, 0].copy(), cxy[:, 1].copy()
    px, py, needed, i0, j0, ny = letkf.analysis_lattice(cx, cy, s)
    n, n_vars = X.shape[2], X.shape[1]
    Tgrid = np.eye(n) + 0.3 * normal_field(8, "test.t", np.arange(px.size * n), n, 0).reshape(px.size, n, n)
    gx, gy = cx / s, cy / s
    fx, fy = gx - np.floor(gx), gy - np.floor(gy)
    p00 = (np.floor(gx).astype(int) - i0) * ny + np.floor(gy).astype(int) - j0
    T = (((1 - fx) * (1 - fy))[:, None, None] * Tgrid[p00] + (fx * (1 - fy))[:, None, None] * Tgrid[p00 + ny]
         + ((1 - fx) * fy)[:, None, None] * Tgrid[p00 + 1] + (fx * fy)[:, None, None] * Tgrid[p00 + ny + 1])
    lo = np.tile([0.22, -np.inf, 0.2], (X.shape[0], 1))[:, :n_vars]  # per-cell bounds, some active
    hi = np.tile([0.28, 0.27, np.inf], (X.shape[0], 1))[:, :n_vars]
    for rtpp, rtps in ((0.0, 0.0), (0.5, 0.0), (0.0, 0.7)):
        Xa, Xr = X.copy(), X.copy()
        clip, clip_ref = np.zeros((n_vars, 3)), np.zeros((n_vars, 3))
        letkf.interpolate_apply(Xa, cx, cy, s, i0, j0, ny, Tgrid, rtpp, rtps, lo, hi, clip)
        xp, xa = np.empty(n), np.empty(n)
        for i in range(X.shape[0]):
            letkf._apply_T(Xr, i, T[i], xp, xa, rtpp, rtps, lo, hi, clip_ref)
        np.testing.assert_allclose(Xa, Xr, rtol=0, atol=1e-13)
        np.testing.assert_allclose(clip, clip_ref, rtol=1e-12, atol=1e-12)
        assert clip[0, 2] > 0 and clip[1, 2] > 0
