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

Spatially correlated observation errors (a non-diagonal R within a source; Hunt et al. 2007, section 2.3):
observations o of one group (a source) with correlation length L_g > 0 have R_ij = sigma_i sigma_j C_ij,
C_ij = r(|dx_ij| / L_g) r(|dy_ij| / L_g) the correlation of the synthetic generator's error field
(:func:`smda.assimilation.observations.superobs.lattice_correlation`), 0 across groups. R-localization keeps its
form, R~ = D^-1/2 R D^-1/2 with D = diag(rho), and the analysis is the one above in whitened observation space:
with L = chol(R~), Y' -> L^-1 Y', d -> L^-1 d and unit errors. Since R~ = diag(1/w) C diag(1/w) with
w = sqrt(rho / R), L^-1 = chol(C)^-1 diag(w): the rows already scaled by w are forward-substituted with the
Cholesky factor of the local C, one block per group, which depends on the local set only (not on the tapers).
Cost per analysis point with k_g local observations of a group: k_g^3 / 6 + k_g^2 (N + 1) / 2 multiply-adds;
nothing when no group has L_g > 0 (the diagonal path is unchanged).
"""

import numpy as np

from smda.assimilation.filters.ensemble import finish_cell, member_mean, prior_anomalies, work_buffers
from smda.assimilation.filters.localization import local_obs, local_obs_near, obs_buckets
from smda.assimilation.observations.superobs import CORRELATION_TABLE, TABLE_STEP, tabulated_correlation
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


@kernel
def symmetric_eigen(A, lam, off, V, w):
    """Eigen-decomposition A = V^T diag(lam) V of a symmetric (k, k) matrix; returns False if it did not converge.

    Householder reduction to tridiagonal form, then the implicit QL iteration with Wilkinson-type shifts on the
    tridiagonal matrix (Golub and Van Loan 2013, Matrix Computations, 4th ed., sections 8.3.1 and 8.3.5; the
    QL variant of Bowdler, Martin, Reinsch and Wilkinson 1968, doi:10.1007/BF02219763). The eigenvectors are
    the rows of V (k, k), so every Householder reflection and Givens rotation updates contiguous rows; lam (k,)
    is unordered. A is overwritten; ``off`` (k,) and ``w`` (3 k,) are scratch. For the small matrices of the
    LETKF (k <= ~40) this is 1.5-2x faster than LAPACK's dsyevd through numba, whose time goes to the calling
    overhead of many small BLAS-2 calls; both are backward stable, so the weights agree to round-off.
    """
    k = A.shape[0]
    u, p, row = w[:k], w[k:2 * k], w[2 * k:3 * k]
    for i in range(k):
        for j in range(k):
            V[i, j] = 1.0 if i == j else 0.0
    for j in range(k - 2):  # reflection P = I - tau u u^T (u[j+1] = 1) zeroing A[j, j+2:]; A <- P A P, V <- P V
        x0 = A[j, j + 1]
        s2 = 0.0
        for r in range(j + 2, k):
            s2 += A[j, r] * A[j, r]
        lam[j] = A[j, j]
        if s2 == 0.0:
            off[j] = x0
            continue
        beta = -np.copysign(np.sqrt(x0 * x0 + s2), x0)
        v0 = x0 - beta
        tau = -v0 / beta
        off[j] = beta
        u[j + 1] = 1.0
        for r in range(j + 2, k):
            u[r] = A[j, r] / v0
        for r in range(j + 1, k):  # p = tau B u over the trailing block B (symmetric: sums of its rows)
            p[r] = 0.0
        for q in range(j + 1, k):
            t = tau * u[q]
            for r in range(j + 1, k):
                p[r] += t * A[q, r]
        h = 0.0
        for r in range(j + 1, k):
            h += p[r] * u[r]
        h *= 0.5 * tau
        for r in range(j + 1, k):  # p <- p - (tau u^T p / 2) u, then B <- B - u p^T - p u^T
            p[r] -= h * u[r]
        for r in range(j + 1, k):
            pr, ur = p[r], u[r]
            for q in range(j + 1, k):
                A[r, q] -= ur * p[q] + pr * u[q]
        for q in range(k):
            row[q] = 0.0
        for r in range(j + 1, k):
            t = tau * u[r]
            for q in range(k):
                row[q] += t * V[r, q]
        for r in range(j + 1, k):
            ur = u[r]
            for q in range(k):
                V[r, q] -= ur * row[q]
    if k >= 2:
        lam[k - 2] = A[k - 2, k - 2]
        off[k - 2] = A[k - 2, k - 1]
    lam[k - 1] = A[k - 1, k - 1]
    off[k - 1] = 0.0
    for l in range(k):  # implicit QL on (lam diagonal, off[i] = T[i, i+1]), deflating from the top
        it = 0
        while True:
            m = l
            while m < k - 1:
                dd = abs(lam[m]) + abs(lam[m + 1])
                if abs(off[m]) + dd == dd:
                    break
                m += 1
            if m == l:
                break
            it += 1
            if it > 60:
                return False
            g = (lam[l + 1] - lam[l]) / (2.0 * off[l])
            r = np.sqrt(g * g + 1.0)
            g = lam[m] - lam[l] + off[l] / (g + np.copysign(r, g))
            s, c, p0 = 1.0, 1.0, 0.0
            i = m - 1
            while i >= l:
                f = s * off[i]
                b = c * off[i]
                r = np.sqrt(f * f + g * g)
                off[i + 1] = r
                if r == 0.0:  # split: restart the sweep on the smaller problem
                    lam[i + 1] -= p0
                    off[m] = 0.0
                    break
                s = f / r
                c = g / r
                g = lam[i + 1] - p0
                r = (lam[i] - g) * s + 2.0 * c * b
                p0 = s * r
                lam[i + 1] = g + p0
                g = c * r - b
                for q in range(k):
                    f = V[i + 1, q]
                    V[i + 1, q] = s * V[i, q] + c * f
                    V[i, q] = c * V[i, q] - s * f
                i -= 1
            if i >= l:
                continue
            lam[l] -= p0
            off[l] = g
            off[m] = 0.0
    return True


@inline
def weights_workspace(S):
    """Scratch of :func:`solve_weights` around S (n_obs, N) (the scaled anomalies), allocated once per analysis:
    scaled innovations (n_obs,), four N x N matrices (flat), a (2 N,) vector and the eigen-solver's (5 N,)."""
    n_obs, n = S.shape
    return (S, np.empty(n_obs), np.empty(n * n), np.empty(n * n), np.empty(n * n), np.empty(n * n), np.empty(2 * n),
            np.empty(5 * n))


def correlation_args(ox, oy, inv_length_m, group, period):
    """The ``corr`` argument of the kernels: (ox, oy, 1/L in 1/m (n_obs,), group (n_obs,), period m), or None when
    ``inv_length_m`` is None (diagonal R: numba prunes the correlated branch, the kernels compile as without it)."""
    if inv_length_m is None:
        return None
    return ox, oy, np.ascontiguousarray(inv_length_m, np.float64), np.ascontiguousarray(group, np.int64), float(period)


@kernel
def _error_correlation(corr, a, b):
    """C_ab = r(|dx| / L) r(|dy| / L) between observations a and b of one group (x periodic if period > 0)."""
    ox, oy, inv, _, period = corr
    dx = abs(ox[a] - ox[b])
    if period > 0.0:
        dx = dx % period
        dx = min(dx, period - dx)
    return (tabulated_correlation(dx * inv[a], CORRELATION_TABLE, TABLE_STEP)
            * tabulated_correlation(abs(oy[a] - oy[b]) * inv[a], CORRELATION_TABLE, TABLE_STEP))


@kernel
def whiten_correlated(S, dt, idx, k, corr):
    """Rows of S (k, N) and dt (k,) (scaled by sqrt(rho / R)) of the local observations ``idx[:k]`` of each group
    with correlated errors <- chol(C_g)^-1 times them (module docstring); C_g's Cholesky factor is formed in place
    (Cholesky-Banachiewicz). ValueError if a C_g is not positive definite."""
    _, _, inv, group, _ = corr
    member = np.empty(k, np.int64)
    done = np.zeros(k, np.bool_)
    for j0 in range(k):
        if done[j0] or inv[idx[j0]] == 0.0:
            continue
        g = group[idx[j0]]
        m = 0
        for j in range(j0, k):
            if not done[j] and inv[idx[j]] > 0.0 and group[idx[j]] == g:
                member[m] = j
                done[j] = True
                m += 1
        if m == 1:
            continue
        Lc = np.empty((m, m))
        for a in range(m):
            oa = idx[member[a]]
            for b in range(a + 1):
                s = _error_correlation(corr, oa, idx[member[b]])
                for q in range(b):
                    s -= Lc[a, q] * Lc[b, q]
                if a == b:
                    if not s > 0.0:
                        raise ValueError("LETKF: the local error correlation matrix of a source is not positive "
                                         "definite (observations closer than the tabulated correlation resolves?)")
                    Lc[a, a] = np.sqrt(s)
                else:
                    Lc[a, b] = s / Lc[b, b]
        n = S.shape[1]
        for a in range(m):  # forward substitution, row by row
            ja = member[a]
            sa = S[ja]
            for q in range(a):
                jq = member[q]
                f = Lc[a, q]
                sq = S[jq]
                for c in range(n):
                    sa[c] -= f * sq[c]
                dt[ja] -= f * dt[jq]
            f = 1.0 / Lc[a, a]
            for c in range(n):
                sa[c] *= f
            dt[ja] *= f


@kernel
def solve_weights(Yp, d, rinv, idx, rho, k, inflation, ws, T, corr=None):
    """Ensemble-space weights T (N, N) from the k local observations ``idx[:k]`` with taper ``rho[:k]``.

    Yp (n_obs, N) anomalies of HX, d (n_obs,) innovations, rinv (n_obs,) 1/R; ``ws`` from
    :func:`weights_workspace`. With S = diag(sqrt(rho / R)) Y' (k x N) and c = (N-1) / lambda, A = c I + S^T S.
    For k >= N the N x N matrix A is eigen-decomposed as in the module docstring. For k < N the same T is
    obtained from the k x k matrix M = c I + S S^T = U diag(mu) U^T (push-through identities with
    Z = S^T U): w_bar = Z diag(1/mu) U^T d~, W = sqrt(N-1) [I / sqrt(c) + Z diag(g) Z^T],
    g = -1 / (sqrt(mu c) (sqrt(c) + sqrt(mu))) (the form of mu^-1/2 - c^-1/2 over mu - c without cancellation).
    Eigen-decompositions by :func:`symmetric_eigen` (eigenvectors as rows), products in BLAS; nothing is allocated.
    ``corr`` from :func:`correlation_args`: with correlated groups, S and d~ are whitened first
    (:func:`whiten_correlated`; module docstring).
    """
    n = Yp.shape[1]
    if k == 0:
        for a in range(n):
            for b in range(n):
                T[a, b] = 1.0 if a == b else 0.0
        return
    S, dt, A, Z, Zg, V, v, ev = ws
    for j in range(k):
        o = idx[j]
        w = np.sqrt(rho[j] * rinv[o])
        dt[j] = w * d[o]
        for a in range(n):
            S[j, a] = w * Yp[o, a]
    if corr is not None:
        whiten_correlated(S, dt, idx, k, corr)
    Sk = S[:k]
    c = (n - 1) / inflation
    wbar = v[:n]
    m = min(k, n)  # size of the eigen-problem
    lam, off, work = ev[:m], ev[n:n + m], ev[2 * n:2 * n + 3 * m]
    Am = A[:m * m].reshape((m, m))
    if k >= n:
        np.dot(Sk.T, Sk, Am)
    else:
        np.dot(Sk, Sk.T, Am)
    for a in range(m):
        Am[a, a] += c
    U = V[:m * m].reshape((m, m))  # rows: eigenvectors
    if not symmetric_eigen(Am, lam, off, U, work):
        raise ValueError("LETKF weights: the eigen-solver did not converge (non-finite HX, y or R?)")
    e = v[n:n + m]
    if k >= n:
        for a in range(n):  # S^T d~, by rows of S
            wbar[a] = 0.0
        for j in range(k):
            t = dt[j]
            for a in range(n):
                wbar[a] += t * S[j, a]
        for i in range(n):  # e = Q^T S^T d~ / lambda
            s = 0.0
            for a in range(n):
                s += U[i, a] * wbar[a]
            e[i] = s / lam[i]
        Qs = Z.reshape((n, n))
        for a in range(n):
            wbar[a] = 0.0
        for i in range(n):  # w_bar = Q e, Qs = diag(sqrt((N-1)/lambda)) Q^T
            h = np.sqrt((n - 1) / lam[i])
            for a in range(n):
                wbar[a] += U[i, a] * e[i]
                Qs[i, a] = h * U[i, a]
        np.dot(Qs.T, U, T)
        for a in range(n):
            for b in range(n):
                T[a, b] += wbar[a]
        return
    Zt = Z[:k * n].reshape((k, n))  # Z^T = U^T S (k x N), U^T's rows being the eigenvectors
    np.dot(U, Sk, Zt)
    sc = np.sqrt(c)
    Ztg = Zg[:k * n].reshape((k, n))
    for a in range(n):
        wbar[a] = 0.0
    for i in range(k):  # e_i = u_i . d~ / mu_i, w_bar = Z e, Ztg = diag(g) Z^T
        s = 0.0
        for j in range(k):
            s += U[i, j] * dt[j]
        ei = s / lam[i]
        g = -1.0 / (np.sqrt(lam[i] * c) * (sc + np.sqrt(lam[i])))
        for a in range(n):
            wbar[a] += Zt[i, a] * ei
            Ztg[i, a] = g * Zt[i, a]
    np.dot(Ztg.T, Zt, T)
    f = np.sqrt(n - 1.0)
    for a in range(n):
        for b in range(n):
            T[a, b] = f * T[a, b] + wbar[a]
        T[a, a] += f / sc


@kernel
def point_weights(Yp, d, rinv, idx, rho, k, inflation, G, T, corr=None):
    """:func:`solve_weights` for one analysis point (the ETKF); G (n_obs, N) is scratch."""
    solve_weights(Yp, d, rinv, idx, rho, k, inflation, weights_workspace(G), T, corr)


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
                      rtpp, rtps, lower, upper, clip, corr=None):
    """LETKF with one eigen-solve per cell (coordinates, radius (n_obs,) per observation, period in m; taper cut-off).

    ``rotation``: (N, N) mean-preserving rotation applied to every cell's T, or (0, 0) for none; ``corr`` from
    :func:`correlation_args`.
    """
    n_obs, n = Yp.shape
    idx, rho, xp, xa = work_buffers(n_obs, n)
    ws = weights_workspace(np.empty((n_obs, n)))
    T = np.empty((n, n))
    rotate = rotation.shape[0] == n
    for i in range(X.shape[0]):
        k = local_obs(cx[i], cy[i], ox, oy, radius, period, cutoff, idx, rho)
        solve_weights(Yp, d, rinv, idx, rho, k, inflation, ws, T, corr)
        if rotate:
            T[:, :] = T @ rotation
        _apply_T(X, i, T, xp, xa, rtpp, rtps, lower, upper, clip)


@kernel
def lattice_weights(px, py, needed, ox, oy, Yp, d, rinv, radius, period, cutoff, inflation, Tgrid, corr=None):
    """Weights Tgrid[p] (n_points, N, N) at the analysis points flagged in ``needed`` (``corr``: :func:`correlation_args`).

    Local observations of a point: each observation o within its own cut-off 2 radius[o] (m), found through the
    spatial index of :func:`smda.assimilation.filters.localization.obs_buckets` (the cost per point follows the
    observations near it, not all of them).

    A point whose local observations and tapers are those of the previous point solved (e.g. an infinite
    radius, or a lattice finer than the observation spacing far from any observation) copies its weights.
    """
    n_obs, n = Yp.shape
    idx = np.empty(n_obs, np.int64)
    rho = np.empty(n_obs)
    prev_idx = np.empty(n_obs, np.int64)
    prev_rho = np.empty(n_obs)
    ws = weights_workspace(np.empty((n_obs, n)))
    index = obs_buckets(ox, oy, radius, period)
    prev, k_prev = -1, -1
    for p in range(px.shape[0]):
        if not needed[p]:
            continue
        k = local_obs_near(px[p], py[p], ox, oy, radius, period, cutoff, index, idx, rho)
        same = k == k_prev
        j = 0
        while same and j < k:
            same = idx[j] == prev_idx[j] and rho[j] == prev_rho[j]
            j += 1
        if same:
            Tgrid[p, :, :] = Tgrid[prev]
        else:
            solve_weights(Yp, d, rinv, idx, rho, k, inflation, ws, Tgrid[p], corr)
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
def _edge_weights(Tgrid, p, fy, out):
    """out (N, N) <- (1 - fy) Tgrid[p] + fy Tgrid[p + 1]: the weights along the lattice edge from point p to its
    upper neighbour p + 1, at the fraction fy of the edge."""
    n = out.shape[0]
    g = 1.0 - fy
    t0, t1 = Tgrid[p], Tgrid[p + 1]
    for a in range(n):
        oa, r0, r1 = out[a], t0[a], t1[a]
        for b in range(n):
            oa[b] = g * r0[b] + fy * r1[b]


@kernel
def interpolate_apply(X, cx, cy, spacing, i0, j0, ny, Tgrid, rtpp, rtps, lower, upper, clip):
    """Bilinearly interpolate lattice weights to each cell and apply them, in place.

    Blocked: a run of consecutive cells in one lattice square and one row (same y; smda orders cells
    row-major within each 36 km pixel) has weights T = L + fx (R - L), linear in the x fraction fx, with
    L = (1 - fy) T00 + fy T01 and R = (1 - fy) T10 + fy T11 the weights on the square's left and right edges
    at the row's y fraction fy, so the prior anomalies of the whole run (cells x variables rows) are multiplied
    by [L | R - L] in one BLAS product and combined per row; runs hold at most :data:`RUN_CAP` cells. The next
    square of the same row shares the edge: its L is this R (kept, not recomputed). The form L + fx (R - L),
    rather than (1 - fx) L + fx R, gives cells whose four lattice corners have T = I (no local observation)
    mean + anomaly, as the per-cell update does. A cell's L, R and fx depend on the cell only, and BLAS forms
    each row of a product independently of the others (OpenBLAS does; checked by the split tests), so any order
    or split of the cells gives the same result (other orders only make shorter runs). The bounds are checked
    while combining; RTPP, RTPS and clipping (:func:`finish_cell`) run afterwards on the rows where they act.
    Work arrays are allocated once.
    """
    n_cells, n_vars, n = X.shape
    rows_max = RUN_CAP * n_vars
    E = np.empty((n, 2 * n))  # [L | R - L]
    R = np.empty((n, n))
    Xp = np.empty((rows_max, n))
    out = np.empty((rows_max, 2 * n))
    mean = np.empty(rows_max)
    frac = np.empty(RUN_CAP)
    finish = np.empty(rows_max, np.int64)  # rows of the run to relax or clip
    per_cell = lower.shape[0] > 1
    relax = rtpp > 0.0 or rtps > 0.0
    right, right_y = -1, np.nan  # lattice point and row of the right edge R
    c = 0
    while c < n_cells:
        ia, _ = _cell_block(cx[c], spacing)
        ja, fy = _cell_block(cy[c], spacing)
        e = c + 1
        while e < n_cells and e - c < RUN_CAP and cy[e] == cy[c] and _cell_block(cx[e], spacing)[0] == ia:
            e += 1
        p00 = (ia - i0) * ny + (ja - j0)
        if p00 == right and cy[c] == right_y:
            E[:, :n] = R
        else:
            _edge_weights(Tgrid, p00, fy, E[:, :n])
        right, right_y = p00 + ny, cy[c]
        _edge_weights(Tgrid, right, fy, R)
        for a in range(n):
            for b in range(n):
                E[a, n + b] = R[a, b] - E[a, b]
        r = 0
        for i in range(c, e):
            frac[i - c] = _cell_block(cx[i], spacing)[1]
            for v in range(n_vars):
                x, xr = X[i, v], Xp[r]
                mu = member_mean(x)
                mean[r] = mu
                for m in range(n):
                    xr[m] = x[m] - mu
                r += 1
        np.dot(Xp[:r], E, out[:r])
        r = 0
        n_finish = 0
        for i in range(c, e):
            b = i if per_cell else 0
            f = frac[i - c]
            for v in range(n_vars):
                xa = X[i, v]
                lo, hi, mu = lower[b, v], upper[b, v], mean[r]
                oL, oD = out[r, :n], out[r, n:]
                for m in range(n):
                    xa[m] = mu + oL[m] + f * oD[m]
                outside = 0
                for m in range(n):
                    outside += (xa[m] < lo) | (xa[m] > hi)
                if relax or outside > 0:
                    finish[n_finish] = r
                    n_finish += 1
                r += 1
        for q in range(n_finish):  # apart from the loop above, which stays small and fast
            r = finish[q]
            i, v = c + r // n_vars, r % n_vars
            b = i if per_cell else 0
            finish_cell(X[i, v], Xp[r], rtpp, rtps, lower[b, v], upper[b, v], clip, v)
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
