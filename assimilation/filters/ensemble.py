"""Per-cell ensemble helpers shared by the filter kernels (numba, inlined).

For one cell and variable with members x (N,): the ensemble mean, the prior anomalies
x'_m = x_m - mean(x), the start of the analysis mean + s x'_m (s = sqrt(lambda), the multiplicative
inflation of the anomalies), and the finishing of the analysis: relaxation to the prior
perturbations or spread (RTPP, RTPS; :mod:`smda.assimilation.filters.inflation`) and the bounds.
"""

import numpy as np

from smda.assimilation.filters.inflation import rtps_factor
from smda.jit import inline


@inline
def work_buffers(n_obs, n):
    """Scratch of a cell loop: local observation indices and tapers (n_obs,), prior anomalies and analysis (N,)."""
    return np.empty(n_obs, np.int64), np.empty(n_obs), np.empty(n), np.empty(n)


@inline
def member_mean(x):
    """Mean of the N members x (N,), summed in member order."""
    n = x.shape[0]
    mean = 0.0
    for m in range(n):
        mean += x[m]
    return mean / n


@inline
def prior_anomalies(x, scale, xp, xa):
    """xp <- x - mean(x) (prior anomalies), xa <- mean + scale xp; returns the mean. All (N,)."""
    mean = member_mean(x)
    for m in range(x.shape[0]):
        xp[m] = x[m] - mean
        xa[m] = mean + scale * xp[m]
    return mean


@inline
def finish_cell(xa, xpb, rtpp, rtps, lo, hi, clip, v):
    """Relax (RTPP, RTPS) and clip one analysis member vector ``xa`` (N,) in place.

    ``xpb`` are the prior anomalies (before inflation); clip[v] accumulates
    (amount raised to lower, amount lowered to upper, count of clipped values).
    """
    n = xa.shape[0]
    if rtpp > 0.0 or rtps > 0.0:
        mean = member_mean(xa)
        if rtpp > 0.0:
            for m in range(n):
                xa[m] = mean + (1.0 - rtpp) * (xa[m] - mean) + rtpp * xpb[m]
        if rtps > 0.0:
            sa = 0.0
            sb = 0.0
            for m in range(n):
                sa += (xa[m] - mean) ** 2
                sb += xpb[m] ** 2
            f = rtps_factor(np.sqrt(sb / (n - 1)), np.sqrt(sa / (n - 1)), rtps)
            for m in range(n):
                xa[m] = mean + f * (xa[m] - mean)
    outside = 0
    for m in range(n):  # a branch-free count first: most cells need no clipping
        outside += (xa[m] < lo) + (xa[m] > hi)
    if outside == 0:
        return
    for m in range(n):
        if xa[m] < lo:
            clip[v, 0] += lo - xa[m]
            clip[v, 2] += 1.0
            xa[m] = lo
        elif xa[m] > hi:
            clip[v, 1] += xa[m] - hi
            clip[v, 2] += 1.0
            xa[m] = hi
