"""Serial ensemble adjustment Kalman filter (EAKF) with localization, as in DART.

Anderson (2001, doi:10.1175/1520-0493(2001)129<2884:AEAKFF>2.0.CO;2) for the adjustment;
Anderson (2003, doi:10.1175/1520-0493(2003)131<0634:ALLSFF>2.0.CO;2) for the two-step (observation
increments, then linear regression) serial formulation with localization.

Observations are processed one at a time in a fixed global order (ascending observation id). For
observation i with current prior ensemble h_m = HX[i, m] (m = 1..N), mean hb and sample variance
sb2 (ddof = 1), error variance r and value y:

    sa2   = 1 / (1/sb2 + 1/r)                    posterior variance
    ma    = sa2 (hb/sb2 + y/r) = hb + sb2/(sb2 + r) (y - hb)
    dh_m  = ma + sqrt(sa2/sb2) (h_m - hb) - h_m  observation increments (sqrt(sa2/sb2) = sqrt(r/(sb2 + r)))

(the second forms are used; they are algebraically identical). The increments are regressed onto

    (a) every later observation j:  HX[j, m] += rho(d_ij) cov(h_j, h_i)/sb2 dh_m
    (b) every state variable x of every cell within the cut-off: x_m += rho(d_xi) cov(x, h_i)/sb2 dh_m

with rho the Gaspari-Cohn taper of :mod:`smda.assimilation.filters.localization` with the half-width c_i of
the observation being processed (zero at 2 c_i; as DART's per-type cut-offs), in (a) as in (b): the prior of
a later observation j is moved as the state around it is, and covariances are over the *current* (already
updated) ensembles. Step (a) is observation space only and
uses the global observation arrays, so every MPI rank computes the same increments. Because a state
variable's update depends only on itself and on the observation-space quantities (h_i - hb at the
time obs i is processed, dh_i, sb2_i), the sequence is split into a single observation-space pass
(:func:`observation_increments`) followed by an independent serial regression per cell and
variable (:func:`eakf_update_cells`); this is the same arithmetic as interleaving them, and makes
the result independent of the domain split (bitwise).

Prior multiplicative inflation lambda (a variance factor: lambda = a^2 for the setting ``inflation`` = a)
scales the anomalies of HX and of the state of every cell that has at least one observation o within
2 c_o by sqrt(lambda) before the sequence; RTPP/RTPS relax
towards the prior anomalies (before inflation) and bounds are applied afterwards, per cell and
variable, as in :mod:`smda.assimilation.filters.enkf` and :mod:`smda.assimilation.filters.letkf`. A cell without any
observation within 2 c is left bitwise unchanged (only the bounds are applied). An observation whose
current ensemble variance is zero has no effect.

Without localization and with a linear H, the serial EAKF gives the same analysis mean and
covariance as the batch (E)TKF (serial and batch square-root filters agree for uncorrelated
observation errors); the members themselves differ by an ensemble-space rotation.
"""

import numpy as np

from smda.assimilation.filters.ensemble import finish_cell, member_mean, prior_anomalies, work_buffers
from smda.assimilation.filters.localization import distance2, gaspari_cohn, local_obs, obs_radius
from smda.jit import kernel


@kernel
def observation_increments(HX, y, r, ox, oy, radius, period, cutoff, inflation, Hp, dH, g):
    """Observation-space pass of the serial EAKF, observations in the order given.

    Parameters
    ----------
    HX : (n_obs, N) prior observation ensemble; overwritten: row i ends as the prior of obs i at
        the time it is processed (inflated and updated by the observations before it)
    y, r : (n_obs,) observations and error variances (obs units, obs units^2)
    ox, oy : (n_obs,) observation coordinates (m)
    radius : (n_obs,) Gaspari-Cohn half-width c_i of each observation, or one for all (m; inf: no localization)
    period : x period (m; 0: plane)
    cutoff : tapers at or below it are treated as 0 (0: none)
    inflation : multiplicative prior variance inflation lambda (applied to the HX anomalies first)
    Hp : (n_obs, N) out, anomalies h_i - hb_i of the prior of obs i when processed
    dH : (n_obs, N) out, observation increments dh_i
    g : (n_obs,) out, 1 / ((N - 1) sb2_i), 0 where sb2_i = 0 (observation without effect)
    """
    n_obs, n = HX.shape
    s = np.sqrt(inflation)
    for i in range(n_obs):
        mean = member_mean(HX[i])
        for m in range(n):
            HX[i, m] = mean + s * (HX[i, m] - mean)
    for i in range(n_obs):
        hb = member_mean(HX[i])
        sb2 = 0.0
        for m in range(n):
            Hp[i, m] = HX[i, m] - hb
            sb2 += Hp[i, m] * Hp[i, m]
        sb2 /= n - 1
        if not sb2 > 0.0:
            g[i] = 0.0
            for m in range(n):
                dH[i, m] = 0.0
            continue
        g[i] = 1.0 / ((n - 1) * sb2)
        shift = sb2 / (sb2 + r[i]) * (y[i] - hb)
        shrink = np.sqrt(r[i] / (sb2 + r[i])) - 1.0
        for m in range(n):
            dH[i, m] = shift + shrink * Hp[i, m]
        c_i = obs_radius(radius, i)
        cut2 = 4.0 * c_i * c_i
        for j in range(i + 1, n_obs):
            d2 = distance2(ox[i], oy[i], ox[j], oy[j], period)
            if not d2 < cut2:
                continue
            rho = gaspari_cohn(np.sqrt(d2) / c_i)
            if rho <= cutoff:
                continue
            mj = member_mean(HX[j])
            c = 0.0
            for m in range(n):
                c += (HX[j, m] - mj) * Hp[i, m]
            c *= rho * g[i]
            for m in range(n):
                HX[j, m] += c * dH[i, m]


@kernel
def eakf_update_cells(X, cx, cy, ox, oy, Hp, dH, g, radius, period, cutoff, inflation, rtpp, rtps,
                      lower, upper, clip):
    """Serial regression of the observation increments onto every cell, in place.

    X (n_cells, n_vars, N); cx, cy (n_cells,) and ox, oy (n_obs,) coordinates (m), observations in
    the processing order of :func:`observation_increments` (whose Hp, dH, g are used); radius (n_obs,),
    period (m) and cutoff as there; lower, upper (1 or n_cells, n_vars) bounds; clip (n_vars, 3) accumulator.
    """
    n_cells, n_vars, n = X.shape
    idx, rho, xp, xa = work_buffers(ox.shape[0], n)
    s = np.sqrt(inflation)
    per_cell = lower.shape[0] > 1
    for i in range(n_cells):
        k = local_obs(cx[i], cy[i], ox, oy, radius, period, cutoff, idx, rho)  # ascending = processing order
        b = i if per_cell else 0
        for v in range(n_vars):
            if k == 0:  # no observation o within 2 c_o: unchanged (bitwise), only the bounds apply
                for m in range(n):
                    xa[m] = X[i, v, m]
                finish_cell(xa, xp, 0.0, 0.0, lower[b, v], upper[b, v], clip, v)
                for m in range(n):
                    X[i, v, m] = xa[m]
                continue
            prior_anomalies(X[i, v], s, xp, xa)
            for jj in range(k):
                o = idx[jj]
                if g[o] == 0.0:
                    continue
                xm = member_mean(xa)
                c = 0.0
                for m in range(n):
                    c += (xa[m] - xm) * Hp[o, m]
                c *= rho[jj] * g[o]
                for m in range(n):
                    xa[m] += c * dH[o, m]
            finish_cell(xa, xp, rtpp, rtps, lower[b, v], upper[b, v], clip, v)
            for m in range(n):
                X[i, v, m] = xa[m]
