"""ETKF and LETKF (Hunt, Kostelich and Szunyogh 2007, doi:10.1016/j.physd.2006.11.008) with weight
interpolation (Yang, Kalnay and Hunt 2009, doi:10.1175/2008MWR2560.1).

At an analysis point with local observations o (taper rho_o, R-localization: R_o -> R_o / rho_o),
Y' = HX - mean(HX) (n_loc x N), d = y - mean(HX), lambda the multiplicative variance inflation
(lambda = a^2 for the setting ``inflation`` = a, the anomaly factor; Hunt et al.'s rho is lambda):

    A       = (N-1) I / lambda + Y'^T diag(rho / R) Y'            (N x N, symmetric positive definite)
    P~      = A^-1 = Q diag(1/l) Q^T                               (eigen-decomposition A = Q diag(l) Q^T)
    w_bar   = P~ Y'^T diag(rho / R) d
    W       = [(N-1) P~]^(1/2) = Q diag(sqrt((N-1)/l)) Q^T         (symmetric square root)
    T       = W + w_bar 1^T                                        (weights, N x N)
    x^a_m   = mean(x) + sum_j x'_j T[j, m]                         (every state variable of the cell)

The ETKF is the same with every observation and rho = 1. A point with no local observation is left
unchanged (T = I, no inflation), so unobserved cells keep their ensemble.

Optional random mean-preserving rotation (Sakov and Oke 2008, doi:10.1175/2007MWR2021.1):
T <- T Omega with Omega a random orthogonal N x N matrix having the vector of ones as eigenvector
(Omega 1 = 1), so the analysis mean and covariance are unchanged and only the members are mixed
(DAPPER's ``rot=True``). Sakov and Oke found it useful for non-symmetric square roots; the symmetric
one here needs none, and on Lorenz-96 (ETKF N = 24, inflation 1.013, tests/test_filters_l96.py) the
rotation made divergence episodes more frequent (6 of 16 twins against 1 of 16). One Omega per cycle, drawn
from the counter-based streams keyed by (seed, cycle) only, is used for every cell (also cells
without local observations), so the members stay spatially coherent and the result does not
depend on the MPI split. Only the variables analysed are rotated.

Weight interpolation: T is computed on analysis points at (i s, j s) for integers i, j and spacing s
(a lattice anchored to the projection origin, hence identical on every MPI rank whatever the split)
and bilinearly interpolated to each 1 km cell from the four lattice points around it. Cost: one
eigen-solve per lattice point (of size min(k, N) for k local observations) plus, per cell, 2 n_vars N^2
multiply-adds in BLAS (:func:`interpolate_apply`), instead of one eigen-solve per cell.
Because T depends on the analysis point only through rho, the interpolated T equals the exact one
where the local observations and their tapers do not change (e.g. infinite radius), and at cells
lying on lattice points. Each observation o has its own half-width c_o (taper GC(d / c_o), used within
2 c_o, at the lattice points as in the exact variant); the interpolation error grows with the spacing
relative to the smallest c_o, so the spacing should stay well below it (e.g. <= c_o / 2).
"""

import numpy as np

from smda.assimilation.filters.ensemble import finish_cell, member_mean, prior_anomalies, work_buffers
from smda.assimilation.filters.localization import local_obs
from smda.jit import inline, kernel
from smda.model.streams import normal_field

ROTATION_PURPOSE = "assimilation.rotation"


def mean_preserving_rotation(seed, n, cycle):
    """Random orthogonal (n, n) matrix Omega with Omega 1 = 1 (Sakov and Oke 2008), for one cycle.

    Omega = B diag(1, Q) B^T with B an orthonormal basis whose first column is 1 / sqrt(n) and Q a
    Haar-distributed orthogonal (n-1, n-1) matrix (QR of Gaussian normals with the signs of diag(R)
    moved into Q; Mezzadri 2007, arXiv:math-ph/0609050). Normals from :func:`normal_field` keyed
    by (seed, ROTATION_PURPOSE, row, column, cycle): the same matrix on every MPI rank.
    """
    m = n - 1
    Z = normal_field(seed, ROTATION_PURPOSE, np.arange(m), m, cycle)
    Q, R = np.linalg.qr(Z)
    Q *= np.sign(np.diag(R))[None, :]
    B, _ = np.linalg.qr(np.column_stack([np.ones(n), np.eye(n)[:, :m]]))
    core = np.eye(n)
    core[1:, 1:] = Q
    return np.ascontiguousarray(B @ core @ B.T)


@inline
def weights_workspace(S):
    """Scratch of :func:`solve_weights` around S (n_obs, N) (the scaled anomalies), allocated once per analysis:
    scaled innovations (n_obs,), an N x N matrix, two N x N factors (flat) and a (2 N,) vector."""
    n_obs, n = S.shape
    return S, np.empty(n_obs), np.empty(n * n), np.empty(n * n), np.empty(n * n), np.empty(2 * n)


@kernel
def solve_weights(Yp, d, rinv, idx, rho, k, inflation, ws, T):
    """Ensemble-space weights T (N, N) from the k local observations ``idx[:k]`` with taper ``rho[:k]``.

    Yp (n_obs, N) anomalies of HX, d (n_obs,) innovations, rinv (n_obs,) 1/R; ``ws`` from
    :func:`weights_workspace`. With S = diag(sqrt(rho / R)) Y' (k x N) and c = (N-1) / lambda, A = c I + S^T S.
    For k >= N the N x N matrix A is eigen-decomposed as in the module docstring. For k < N the same T is
    obtained from the k x k matrix M = c I + S S^T = U diag(mu) U^T (push-through identities with
    Z = S^T U): w_bar = Z diag(1/mu) U^T d~, W = sqrt(N-1) [I / sqrt(c) + Z diag(g) Z^T],
    g = -1 / (sqrt(mu c) (sqrt(c) + sqrt(mu))) (the form of mu^-1/2 - c^-1/2 over mu - c without cancellation).
    The products use BLAS; only the eigen-solver allocates.
    """
    n = Yp.shape[1]
    if k == 0:
        for a in range(n):
            for b in range(n):
                T[a, b] = 1.0 if a == b else 0.0
        return
    S, dt, A, Z, Zg, v = ws
    for j in range(k):
        o = idx[j]
        w = np.sqrt(rho[j] * rinv[o])
        dt[j] = w * d[o]
        for a in range(n):
            S[j, a] = w * Yp[o, a]
    Sk = S[:k]
    c = (n - 1) / inflation
    wbar = v[:n]
    if k >= n:
        Am = A.reshape((n, n))
        np.dot(Sk.T, Sk, Am)
        for a in range(n):
            Am[a, a] += c
        lam, Q = np.linalg.eigh(Am)
        e = v[n:]
        for a in range(n):  # e = Q^T S^T d~ / lambda
            s = 0.0
            for j in range(k):
                s += S[j, a] * dt[j]
            wbar[a] = s
        for i in range(n):
            s = 0.0
            for a in range(n):
                s += Q[a, i] * wbar[a]
            e[i] = s / lam[i]
        Qs = Z.reshape((n, n))
        for a in range(n):
            s = 0.0
            for i in range(n):
                s += Q[a, i] * e[i]
                Qs[a, i] = Q[a, i] * np.sqrt((n - 1) / lam[i])
            wbar[a] = s
        np.dot(Qs, Q.T, T)
        for a in range(n):
            for b in range(n):
                T[a, b] += wbar[a]
        return
    M = A[:k * k].reshape((k, k))
    np.dot(Sk, Sk.T, M)
    for j in range(k):
        M[j, j] += c
    mu, U = np.linalg.eigh(M)
    Zm = Z[:n * k].reshape((n, k))
    np.dot(Sk.T, U, Zm)
    e = v[n:n + k]
    for i in range(k):  # e = diag(1/mu) U^T d~
        s = 0.0
        for j in range(k):
            s += U[j, i] * dt[j]
        e[i] = s / mu[i]
    sc = np.sqrt(c)
    Zgm = Zg[:n * k].reshape((n, k))
    for a in range(n):
        s = 0.0
        for i in range(k):
            s += Zm[a, i] * e[i]
            Zgm[a, i] = -Zm[a, i] / (np.sqrt(mu[i] * c) * (sc + np.sqrt(mu[i])))
        wbar[a] = s
    np.dot(Zgm, Zm.T, T)
    f = np.sqrt(n - 1.0)
    for a in range(n):
        for b in range(n):
            T[a, b] = f * T[a, b] + wbar[a]
        T[a, a] += f / sc


@kernel
def point_weights(Yp, d, rinv, idx, rho, k, inflation, G, T):
    """:func:`solve_weights` for one analysis point (the ETKF); G (n_obs, N) is scratch."""
    solve_weights(Yp, d, rinv, idx, rho, k, inflation, weights_workspace(G), T)


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
def letkf_exact_cells(X, cx, cy, ox, oy, Yp, d, rinv, radius, period, cutoff, inflation, rotation,
                      rtpp, rtps, lower, upper, clip):
    """LETKF with one eigen-solve per cell (coordinates, radius (n_obs,) per observation, period in m; taper cut-off).

    ``rotation``: (N, N) mean-preserving rotation applied to every cell's T, or (0, 0) for none.
    """
    n_obs, n = Yp.shape
    idx, rho, xp, xa = work_buffers(n_obs, n)
    ws = weights_workspace(np.empty((n_obs, n)))
    T = np.empty((n, n))
    rotate = rotation.shape[0] == n
    for i in range(X.shape[0]):
        k = local_obs(cx[i], cy[i], ox, oy, radius, period, cutoff, idx, rho)
        solve_weights(Yp, d, rinv, idx, rho, k, inflation, ws, T)
        if rotate:
            T[:, :] = T @ rotation
        _apply_T(X, i, T, xp, xa, rtpp, rtps, lower, upper, clip)


@kernel
def lattice_weights(px, py, needed, ox, oy, Yp, d, rinv, radius, period, cutoff, inflation, Tgrid):
    """Weights Tgrid[p] (n_points, N, N) at the analysis points flagged in ``needed``.

    Local observations of a point: each observation o within its own cut-off 2 radius[o] (m).

    A point whose local observations and tapers are those of the previous point solved (e.g. an infinite
    radius, or a lattice finer than the observation spacing far from any observation) copies its weights.
    """
    n_obs, n = Yp.shape
    idx = np.empty(n_obs, np.int64)
    rho = np.empty(n_obs)
    prev_idx = np.empty(n_obs, np.int64)
    prev_rho = np.empty(n_obs)
    ws = weights_workspace(np.empty((n_obs, n)))
    prev, k_prev = -1, -1
    for p in range(px.shape[0]):
        if not needed[p]:
            continue
        k = local_obs(px[p], py[p], ox, oy, radius, period, cutoff, idx, rho)
        same = k == k_prev
        j = 0
        while same and j < k:
            same = idx[j] == prev_idx[j] and rho[j] == prev_rho[j]
            j += 1
        if same:
            Tgrid[p, :, :] = Tgrid[prev]
        else:
            solve_weights(Yp, d, rinv, idx, rho, k, inflation, ws, Tgrid[p])
            prev_idx[:k] = idx[:k]
            prev_rho[:k] = rho[:k]
            k_prev = k
        prev = p


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


RUN_CAP = 64  # at most this many cells per blocked application


@kernel
def _cell_block(x, spacing):
    """Lattice index (floor) and fraction of a coordinate."""
    g = x / spacing
    f = np.floor(g)
    return int(f), g - f


@kernel
def interpolate_apply(X, cx, cy, spacing, i0, j0, ny, Tgrid, rtpp, rtps, lower, upper, clip):
    """Bilinearly interpolate lattice weights to each cell and apply them, in place.

    Blocked: a run of consecutive cells in one lattice square and one row (same y; smda orders cells
    row-major within each 36 km pixel) has weights T = P + fx Q, linear in the x fraction fx, with
    P = (1 - fy) T00 + fy T01 and Q = (1 - fy) T10 + fy T11 - P, so the prior anomalies of the whole run
    (cells x variables rows) are multiplied by [P | Q] in one BLAS product and combined per row; runs hold at
    most :data:`RUN_CAP` cells. A cell's P, Q and fx depend on the cell only, and BLAS forms each row of a
    product independently of the others (OpenBLAS does; checked by the split tests), so any order or split of
    the cells gives the same result (other orders only make shorter runs). Work arrays are allocated once.
    """
    n_cells, n_vars, n = X.shape
    rows_max = RUN_CAP * n_vars
    PQ = np.empty((n, 2 * n))
    Xp = np.empty((rows_max, n))
    out = np.empty((rows_max, 2 * n))
    mean = np.empty(rows_max)
    frac = np.empty(RUN_CAP)
    per_cell = lower.shape[0] > 1
    c = 0
    while c < n_cells:
        ia, _ = _cell_block(cx[c], spacing)
        ja, fy = _cell_block(cy[c], spacing)
        e = c + 1
        while e < n_cells and e - c < RUN_CAP and cy[e] == cy[c] and _cell_block(cx[e], spacing)[0] == ia:
            e += 1
        p00 = (ia - i0) * ny + (ja - j0)
        p10 = p00 + ny
        for a in range(n):  # P = (1 - fy) T00 + fy T01, Q = (1 - fy) T10 + fy T11 - P
            for b in range(n):
                t = (1.0 - fy) * Tgrid[p00, a, b] + fy * Tgrid[p00 + 1, a, b]
                PQ[a, b] = t
                PQ[a, n + b] = (1.0 - fy) * Tgrid[p10, a, b] + fy * Tgrid[p10 + 1, a, b] - t
        r = 0
        for i in range(c, e):
            frac[i - c] = _cell_block(cx[i], spacing)[1]
            for v in range(n_vars):
                mean[r] = member_mean(X[i, v])
                for m in range(n):
                    Xp[r, m] = X[i, v, m] - mean[r]
                r += 1
        np.dot(Xp[:r], PQ, out[:r])
        r = 0
        for i in range(c, e):
            b = i if per_cell else 0
            f = frac[i - c]
            for v in range(n_vars):
                xa = X[i, v]
                for m in range(n):
                    xa[m] = mean[r] + out[r, m] + f * out[r, n + m]
                finish_cell(xa, Xp[r], rtpp, rtps, lower[b, v], upper[b, v], clip, v)
                r += 1
        c = e


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
