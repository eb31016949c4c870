"""Stochastic ensemble Kalman filter with perturbed observations and gain tapering.

Burgers, van Leeuwen and Evensen (1998, doi:10.1175/1520-0493(1998)126<1719:ASITEK>2.0.CO;2);
Houtekamer and Mitchell (2001, doi:10.1175/1520-0493(2001)129<0123:ASEKFF>2.0.CO;2) for the tapering.

For members m = 1..N, with background anomalies X' (state) and Y' = HX - mean(HX) (observation space),
both multiplied by sqrt(lambda) (multiplicative prior inflation; lambda = a^2 for the setting
``inflation`` = a, the anomaly factor, see :mod:`smda.assimilation.filters.inflation`),

    K   = (rho_xo o X'Y'^T / (N-1)) (rho_oo o Y'Y'^T / (N-1) + R)^-1
    x_m^a = x_m + K (y + eps_m - HX_m),        eps_m ~ N(0, R)

Computed without any dense (cells x obs) matrix:

    v_m = (rho_oo o HPH^T + R)^-1 (y + eps_m - HX_m)                    (n_obs x N, observation space)
    dx_{i,m} = sum_{o local to i} rho(i, o) cov(x_i, HX_o) v_{o,m}      (per cell: O(local obs x N))

rho is Gaspari-Cohn of the distance between the cell centre and the observation (footprint centre) with
the observation's half-width c_o, rho_oo the same between observations (for observations with different
half-widths the PSD cross taper of :func:`smda.assimilation.filters.localization.cross_taper`).

Everything in observation space (v, eps) is computed from all observations and the global
observation ids, identically on every MPI rank, so a cell's analysis does not depend on the split.
Perturbations eps_{o,m} = sqrt(R_o) z with z from :func:`smda.model.streams.normal_field` keyed by
(seed, "assimilation.obs_perturbation", global obs id, member, cycle); by default they are
centred (their ensemble mean is removed), so the analysis mean is the Kalman update of the mean.
A cell without any observation o within its cut-off 2 c_o is left unchanged (no inflation either),
as in :mod:`smda.assimilation.filters.letkf`.
"""

import numpy as np
import scipy.linalg

from smda.assimilation.filters.ensemble import finish_cell, prior_anomalies, work_buffers
from smda.assimilation.filters.localization import local_obs
from smda.jit import kernel
from smda.model.streams import normal_field

OBS_PERTURBATION_PURPOSE = "assimilation.obs_perturbation"


def perturbed_obs(seed, obs_ids, n_members, cycle, obs_err_var, center=True):
    """Observation perturbations eps (n_obs, n_members), variance ``obs_err_var`` (obs units^2)."""
    z = normal_field(seed, OBS_PERTURBATION_PURPOSE, obs_ids, n_members, cycle)
    eps = z * np.sqrt(obs_err_var)[:, None]
    if center:
        eps -= eps.mean(axis=1, keepdims=True)
    return eps


def innovation_weights(HX, y, eps, obs_err_var, inflation=1.0, rho_oo=None):
    """Observation-space part of the stochastic EnKF.

    Parameters
    ----------
    HX : (n_obs, N) background in observation space
    y, obs_err_var : (n_obs,) observations and error variances R
    eps : (n_obs, N) observation perturbations
    inflation : multiplicative variance inflation lambda
    rho_oo : (n_obs, n_obs) observation-observation taper, or None (no localization)

    Returns
    -------
    v : (n_obs, N) = (rho_oo o HPH^T + R)^-1 (y + eps - HX), with the inflated HX
    Yp : (n_obs, N) inflated anomalies sqrt(lambda) (HX - mean HX)
    """
    n = HX.shape[1]
    ybar = HX.mean(axis=1)
    Yp = (HX - ybar[:, None]) * np.sqrt(inflation)
    S = Yp @ Yp.T / (n - 1)
    if rho_oo is not None:
        S *= rho_oo
    S[np.diag_indices_from(S)] += obs_err_var
    D = y[:, None] + eps - (ybar[:, None] + Yp)
    v = scipy.linalg.cho_solve(scipy.linalg.cho_factor(S, lower=True), D)
    return np.ascontiguousarray(v), np.ascontiguousarray(Yp)


def kalman_gain(cov_x_hx, var_hx, obs_err_var):
    """Scalar Kalman gain K = cov(x, Hx) / (var(Hx) + R) (e.g. m3/m3 per K)."""
    return cov_x_hx / (var_hx + obs_err_var)


@kernel
def enkf_update_cells(X, cx, cy, ox, oy, Yp, V, radius, period, cutoff, inflation, rtpp, rtps, lower, upper, clip):
    """Apply the tapered stochastic EnKF increments to every cell, in place.

    X (n_cells, n_vars, N); cx, cy (n_cells,) and ox, oy (n_obs,) coordinates (m); Yp, V (n_obs, N)
    from :func:`innovation_weights`; radius (n_obs,) each observation's half-width, period (m; period 0 = not
    periodic); cutoff: tapers at
    or below it are 0 (:func:`smda.assimilation.filters.localization.local_obs`); lower, upper
    (1 or n_cells, n_vars); clip (n_vars, 3) accumulator.
    """
    n_cells, n_vars, n = X.shape
    idx, rho, xp, xa = work_buffers(ox.shape[0], n)
    s = np.sqrt(inflation)
    per_cell = lower.shape[0] > 1
    for i in range(n_cells):
        k = local_obs(cx[i], cy[i], ox, oy, radius, period, cutoff, idx, rho)
        b = i if per_cell else 0
        sk = s if k > 0 else 1.0  # a cell without local observations is left unchanged
        for v in range(n_vars):
            prior_anomalies(X[i, v], sk, xp, xa)
            for j in range(k):
                o = idx[j]
                c = 0.0
                for m in range(n):
                    c += xp[m] * Yp[o, m]
                c *= sk * rho[j] / (n - 1)
                for m in range(n):
                    xa[m] += c * V[o, m]
            finish_cell(xa, xp, rtpp, rtps, lower[b, v], upper[b, v], clip, v)
            for m in range(n):
                X[i, v, m] = xa[m]
