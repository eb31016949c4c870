"""Covariance inflation: multiplicative prior, RTPP, RTPS and a simple adaptive estimate.

Multiplicative prior inflation (Anderson and Anderson 1999): background anomalies are scaled by the
anomaly factor a >= 1, X'_b <- a X'_b, i.e. the background variance by lambda = a^2. The setting
``inflation`` is a, the convention of Anderson and Anderson (1999), Sakov and Oke (2008) and DAPPER's
``infl``: their values are used as published (DAPPER infl = 1.02 -> inflation = 1.02, a variance
factor of 1.0404). A variance factor rho (Hunt et al. 2007's rho, DART's inflation) converts as
a = sqrt(rho). The kernels take lambda; in the (L)ETKF it enters in ensemble space,
[(N-1) I / lambda + Y'^T R^-1 Y']^-1 (Hunt et al. 2007, doi:10.1016/j.physd.2006.11.008).
DAPPER inflates the analysis anomalies after the update (posterior inflation) rather than the
background before it; in a cycled filter this differs only through the model's nonlinearity over
one forecast (for a linear model, a posterior factor a at cycle k equals a prior factor a at k + 1).

Relaxation to prior perturbations, RTPP (Zhang et al. 2004, doi:10.1175/1520-0493(2004)132<1238:IOIEAO>2.0.CO;2):
    X'_a <- (1 - alpha) X'_a + alpha X'_b
Relaxation to prior spread, RTPS (Whitaker and Hamill 2012, doi:10.1175/MWR-D-11-00276.1):
    X'_a <- X'_a * (1 + alpha (sigma_b - sigma_a) / sigma_a)      per cell and variable.
Both relax towards the prior as given (before multiplicative inflation), alpha in [0, 1].

Adaptive multiplicative inflation (stateless, one value per cycle from all observations, so every
MPI rank gets the same number; Wang and Bishop 2003, Li et al. 2009, doi:10.1002/qj.371), a
variance factor:
    lambda = (sum_o d_o^2 / R_o - p) / sum_o (sigma^2_HX,o / R_o),   d = y - mean(HX),
clipped to [1, lambda_max]; it uses E[d d^T] = HPH^T + R.
"""

import numpy as np

from smda.jit import inline


def adaptive_inflation(d, hx_var, obs_err_var, lambda_max=2.0):
    """Adaptive multiplicative inflation from innovation statistics, as a variance factor lambda.

    Parameters
    ----------
    d : (n_obs,) innovations y - mean(HX) (observation units)
    hx_var : (n_obs,) ensemble variance of HX (sample, N - 1)
    obs_err_var : (n_obs,) observation error variance R
    lambda_max : upper bound of the estimate

    Returns
    -------
    float, in [1, lambda_max] (1 without observations or background spread).
    """
    d = np.asarray(d, dtype=np.float64)
    p = d.size
    den = float(np.sum(hx_var / obs_err_var))
    if p == 0 or den <= 0.0:
        return 1.0
    lam = (float(np.sum(d * d / obs_err_var)) - p) / den
    return float(min(max(lam, 1.0), lambda_max))


@inline
def rtps_factor(sigma_b, sigma_a, alpha):
    """Factor multiplying analysis anomalies in RTPS (1 where sigma_a is zero)."""
    if sigma_a <= 0.0:
        return 1.0
    return 1.0 + alpha * (sigma_b - sigma_a) / sigma_a


def check_inflation(inflation, rtps, rtpp):
    """Validate inflation settings (``inflation`` the anomaly factor); raise ValueError naming the setting."""
    if not (np.isfinite(inflation) and inflation >= 1.0):
        raise ValueError(f"inflation must be a finite anomaly factor >= 1, got {inflation}")
    for name, val in (("rtps", rtps), ("rtpp", rtpp)):
        if not 0.0 <= val <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {val}")
