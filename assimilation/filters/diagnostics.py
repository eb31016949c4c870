"""Observation-space diagnostics of an analysis cycle.

With d_ob = y - mean(H x_b) (O-F), d_oa = y - mean(H x_a) (O-A), d_ab = mean(H x_a) - mean(H x_b):

- ensemble spread in observation space: sigma_HX = std over members of HX (N - 1 normalisation);
- normalized innovation (chi-square consistency; Desroziers et al. 2005, Menard 2000):
      chi2 = mean_o d_ob^2 / (sigma_HX^2 + R)          (expected 1 for a consistent system);
- Desroziers et al. (2005, doi:10.1256/qj.05.108) consistency estimates:
      E[d_oa d_ob] = R,      E[d_ab d_ob] = HBH^T,      E[d_ob d_ob] = HBH^T + R;
- background check (gross error): reject o if |d_ob| > n_sigma sqrt(sigma_HX^2 + R).

All functions take arrays in observation units (e.g. K for TB, m3/m3 for SM) and work on global
observation vectors (identical on every MPI rank).
"""

from dataclasses import asdict, dataclass, field

import numpy as np


def _stats(d, hx_var, obs_err_var):
    n = d.size
    if n == 0:
        nan = float("nan")
        return {"n": 0, "mean": nan, "rms": nan, "std": nan, "spread_rms": nan, "chi2": nan}
    return {
        "n": int(n),
        "mean": float(d.mean()),
        "rms": float(np.sqrt(np.mean(d * d))),
        "std": float(d.std()),
        "spread_rms": float(np.sqrt(hx_var.mean())),
        "chi2": float(np.mean(d * d / (hx_var + obs_err_var))),
    }


def innovation_statistics(y, HX, obs_err_var, mask=None):
    """Statistics of y - mean(HX) for a background (O-F) or analysis (O-A) ensemble.

    Parameters
    ----------
    y, obs_err_var : (n_obs,) observations and error variances R
    HX : (n_obs, N) ensemble in observation space
    mask : optional (n_obs,) bool, observations to include

    Returns
    -------
    dict with n, mean, rms, std of the innovations, spread_rms = sqrt(mean sigma_HX^2) and the
    normalized innovation chi2 = mean d^2 / (sigma_HX^2 + R).
    """
    y = np.asarray(y, dtype=np.float64)
    HX = np.asarray(HX, dtype=np.float64)
    r = np.asarray(obs_err_var, dtype=np.float64)
    d = y - HX.mean(axis=1)
    var = HX.var(axis=1, ddof=1)
    if mask is not None:
        d, var, r = d[mask], var[mask], r[mask]
    return _stats(d, var, r)


def gross_error_mask(d, hx_var, obs_err_var, n_sigma):
    """True where an observation passes the background check |d| <= n_sigma sqrt(sigma_HX^2 + R)."""
    return np.abs(d) <= n_sigma * np.sqrt(hx_var + obs_err_var)


def desroziers(y, HXb, HXa, mask=None):
    """Desroziers et al. (2005) estimates from background and analysis ensembles in obs space.

    Returns dict: r_var = mean(d_oa d_ob) (estimate of R), hbh_var = mean(d_ab d_ob) (estimate of
    HBH^T), total_var = mean(d_ob^2), and the ensemble's own mean sigma_HX^2 (background) for comparison.
    """
    y = np.asarray(y, dtype=np.float64)
    mb = np.asarray(HXb).mean(axis=1)
    ma = np.asarray(HXa).mean(axis=1)
    sb = np.asarray(HXb).var(axis=1, ddof=1)
    d_ob, d_oa, d_ab = y - mb, y - ma, ma - mb
    if mask is not None:
        d_ob, d_oa, d_ab, sb = d_ob[mask], d_oa[mask], d_ab[mask], sb[mask]
    if d_ob.size == 0:
        nan = float("nan")
        return {"n": 0, "r_var": nan, "hbh_var": nan, "total_var": nan, "ens_hbh_var": nan}
    return {
        "n": int(d_ob.size),
        "r_var": float(np.mean(d_oa * d_ob)),
        "hbh_var": float(np.mean(d_ab * d_ob)),
        "total_var": float(np.mean(d_ob * d_ob)),
        "ens_hbh_var": float(np.mean(sb)),
    }


@dataclass
class AnalysisDiagnostics:
    """What :meth:`analyse` reports for one cycle.

    Observation-space entries are global (same on every rank); the clipping entries are sums over
    this rank's cells (add them across ranks). Units: observation units for O-F, state units for
    clipping amounts (per variable, (n_vars,)).
    """

    omf: dict
    inflation: float
    n_obs: int
    n_used: int
    n_rejected: int
    used: np.ndarray = field(repr=False)
    omf_per_obs: np.ndarray = field(repr=False)
    hx_spread_per_obs: np.ndarray = field(repr=False)
    clipped_below: np.ndarray = field(default=None)
    clipped_above: np.ndarray = field(default=None)
    n_clipped: np.ndarray = field(default=None)

    def as_dict(self):
        """Plain dict of all entries."""
        return asdict(self)
