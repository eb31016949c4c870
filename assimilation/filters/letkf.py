"""ETKF and LETKF (Hunt, Kostelich and Szunyogh 2007, doi:10.1016/j.physd.2006.11.008) with weight
interpolation (Yang, Kalnay and Hunt 2009, doi:10.1175/2008MWR2560.1).

At an analysis point with local observations o (taper rho_o, R-localization: R_o -> R_o / rho_o),
Y' = HX - mean(HX) (n_loc x N), d = y - mean(HX), lambda the multiplicative (variance) inflation:

    A       = (N-1) I / lambda + Y'^T diag(rho / R) Y'            (N x N, symmetric positive definite)
    P~      = A^-1 = Q diag(1/l) Q^T                               (eigen-decomposition A = Q diag(l) Q^T)
    w_bar   = P~ Y'^T diag(rho / R) d
    W       = [(N-1) P~]^(1/2) = Q diag(sqrt((N-1)/l)) Q^T         (symmetric square root)
    T       = W + w_bar 1^T                                        (weights, N x N)
    x^a_m   = mean(x) + sum_j x'_j T[j, m]                         (every state variable of the cell)

The ETKF is the same with every observation and rho = 1. A point with no local observation is left
unchanged (T = I, no inflation), so unobserved cells keep their ensemble.

Weight interpolation: T is computed on analysis points at (i s, j s) for integers i, j and spacing s
(a lattice anchored to the projection origin, hence identical on every MPI rank whatever the split)
and bilinearly interpolated to each 1 km cell from the four lattice points around it. Cost: one
eigen-solve per lattice point plus O((4 + n_vars) N^2) per cell, instead of one eigen-solve per cell.
Because T depends on the analysis point only through rho, the interpolated T equals the exact one
where the local observations and their tapers do not change (e.g. infinite radius), and at cells
lying on lattice points.
"""

import numpy as np

from smda.assimilation.filters.ensemble import finish_cell, prior_anomalies, work_buffers
from smda.assimilation.filters.localization import local_obs
from smda.jit import kernel


@kernel
def point_weights(Yp, d, rinv, idx, rho, k, inflation, G, T):
    """Ensemble-space weights T (N, N) from the k local observations ``idx[:k]`` with taper ``rho[:k]``.

    Yp (n_obs, N) anomalies of HX, d (n_obs,) innovations, rinv (n_obs,) 1/R; G (n_obs, N) work buffer.
    """
    n = Yp.shape[1]
    if k == 0:
        for a in range(n):
            for b in range(n):
                T[a, b] = 1.0 if a == b else 0.0
        return
    A = np.zeros((n, n))
    bvec = np.zeros(n)
    for j in range(k):
        o = idx[j]
        w = rho[j] * rinv[o]
        for a in range(n):
            G[j, a] = Yp[o, a] * w
            bvec[a] += G[j, a] * d[o]
    for j in range(k):
        o = idx[j]
        for a in range(n):
            ga = G[j, a]
            for b in range(a, n):
                A[a, b] += ga * Yp[o, b]
    diag = (n - 1) / inflation
    for a in range(n):
        A[a, a] += diag
        for b in range(a + 1, n):
            A[b, a] = A[a, b]
    lam, Q = np.linalg.eigh(A)
    # c = Q^T b / l ; wbar = Q c
    c = Q.T @ bvec
    for a in range(n):
        c[a] /= lam[a]
    wbar = Q @ c
    sq = np.sqrt((n - 1) / lam)
    Qs = np.empty((n, n))
    for a in range(n):
        for e in range(n):
            Qs[a, e] = Q[a, e] * sq[e]
    W = Qs @ np.ascontiguousarray(Q.T)
    for a in range(n):
        for b in range(n):
            T[a, b] = W[a, b] + wbar[a]


@kernel
def _apply_T(X, i, T, xp, xa, rtpp, rtps, lower, upper, clip):
    n_vars, n = X.shape[1], X.shape[2]
    b = i if lower.shape[0] > 1 else 0
    for v in range(n_vars):
        prior_anomalies(X[i, v], 0.0, xp, xa)
        for j in range(n):
            xj = xp[j]
            for m in range(n):
                xa[m] += xj * T[j, m]
        finish_cell(xa, xp, rtpp, rtps, lower[b, v], upper[b, v], clip, v)
        for m in range(n):
            X[i, v, m] = xa[m]


@kernel
def apply_global_weights(X, T, rtpp, rtps, lower, upper, clip):
    """ETKF: apply the same weights T (N, N) to every cell of X (n_cells, n_vars, N), in place."""
    n = X.shape[2]
    xp = np.empty(n)
    xa = np.empty(n)
    for i in range(X.shape[0]):
        _apply_T(X, i, T, xp, xa, rtpp, rtps, lower, upper, clip)


@kernel
def letkf_exact_cells(X, cx, cy, ox, oy, Yp, d, rinv, radius, period, inflation, rtpp, rtps,
                      lower, upper, clip):
    """LETKF with one eigen-solve per cell (coordinates and radius, period in m)."""
    n_obs, n = Yp.shape
    idx, rho, xp, xa = work_buffers(n_obs, n)
    G = np.empty((n_obs, n))
    T = np.empty((n, n))
    for i in range(X.shape[0]):
        k = local_obs(cx[i], cy[i], ox, oy, radius, period, idx, rho)
        point_weights(Yp, d, rinv, idx, rho, k, inflation, G, T)
        _apply_T(X, i, T, xp, xa, rtpp, rtps, lower, upper, clip)


@kernel
def lattice_weights(px, py, needed, ox, oy, Yp, d, rinv, radius, period, inflation, Tgrid):
    """Weights Tgrid[p] (n_points, N, N) at the analysis points flagged in ``needed``."""
    n_obs, n = Yp.shape
    idx = np.empty(n_obs, np.int64)
    rho = np.empty(n_obs)
    G = np.empty((n_obs, n))
    for p in range(px.shape[0]):
        if needed[p]:
            k = local_obs(px[p], py[p], ox, oy, radius, period, idx, rho)
            point_weights(Yp, d, rinv, idx, rho, k, inflation, G, Tgrid[p])


@kernel
def mark_corners(cx, cy, spacing, i0, j0, ny, needed):
    """Flag the four lattice points around each cell; lattice point (i, j) is index (i-i0)*ny + (j-j0)."""
    for c in range(cx.shape[0]):
        i = int(np.floor(cx[c] / spacing)) - i0
        j = int(np.floor(cy[c] / spacing)) - j0
        needed[i * ny + j] = True
        needed[(i + 1) * ny + j] = True
        needed[i * ny + j + 1] = True
        needed[(i + 1) * ny + j + 1] = True


@kernel
def interpolate_apply(X, cx, cy, spacing, i0, j0, ny, Tgrid, rtpp, rtps, lower, upper, clip):
    """Bilinearly interpolate lattice weights to each cell and apply them, in place."""
    n = X.shape[2]
    T = np.empty((n, n))
    xp = np.empty(n)
    xa = np.empty(n)
    for c in range(X.shape[0]):
        gx = cx[c] / spacing
        gy = cy[c] / spacing
        fi = np.floor(gx)
        fj = np.floor(gy)
        fx = gx - fi
        fy = gy - fj
        p00 = (int(fi) - i0) * ny + (int(fj) - j0)
        p10 = p00 + ny
        w00 = (1.0 - fx) * (1.0 - fy)
        w10 = fx * (1.0 - fy)
        w01 = (1.0 - fx) * fy
        w11 = fx * fy
        for a in range(n):
            for b in range(n):
                T[a, b] = (w00 * Tgrid[p00, a, b] + w10 * Tgrid[p10, a, b]
                           + w01 * Tgrid[p00 + 1, a, b] + w11 * Tgrid[p10 + 1, a, b])
        _apply_T(X, c, T, xp, xa, rtpp, rtps, lower, upper, clip)


def analysis_lattice(cell_x_m, cell_y_m, spacing_m):
    """Lattice of analysis points covering the cells: (px, py, needed, i0, j0, ny).

    Points are (i * spacing_m, j * spacing_m) for i0 <= i <= i1 + 1, j0 <= j <= j1 + 1, flattened
    as (i - i0) * ny + (j - j0); ``needed`` flags those that are a corner of some cell.
    """
    i0 = int(np.floor(cell_x_m.min() / spacing_m))
    i1 = int(np.floor(cell_x_m.max() / spacing_m)) + 1
    j0 = int(np.floor(cell_y_m.min() / spacing_m))
    j1 = int(np.floor(cell_y_m.max() / spacing_m)) + 1
    nx, ny = i1 - i0 + 1, j1 - j0 + 1
    ii, jj = np.meshgrid(np.arange(i0, i1 + 1), np.arange(j0, j1 + 1), indexing="ij")
    px = (ii.ravel() * spacing_m).astype(np.float64)
    py = (jj.ravel() * spacing_m).astype(np.float64)
    needed = np.zeros(nx * ny, dtype=np.bool_)
    mark_corners(cell_x_m, cell_y_m, spacing_m, i0, j0, ny, needed)
    return px, py, needed, i0, j0, ny
