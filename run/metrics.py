"""Validation metrics for soil moisture products (m3/m3), as in pytesmo and ISMN practice.

For paired samples x (product) and y (reference), d = x - y, n pairs:

    bias   = mean(d)
    RMSD   = sqrt(mean(d^2))
    ubRMSD = sqrt(RMSD^2 - bias^2)             (unbiased RMSD, Entekhabi et al. 2010,
                                                doi:10.1175/2010JHM1223.1)
    R      = Pearson correlation, rho = Spearman rank correlation

Confidence intervals at level 1 - alpha (Gruber et al. 2020, doi:10.1016/j.rse.2020.111806):

    bias:   mean(d) +- t(1 - alpha/2, n - 1) * s_d / sqrt(n)          (s_d with ddof = 1)
    R:      tanh(atanh(R) +- z(1 - alpha/2) / sqrt(n - 3))             (Fisher z)
    rho:    tanh(atanh(rho) +- z(1 - alpha/2) * sqrt(1.06 / (n - 3)))  (Fieller et al. 1957 variance)
    ubRMSD: sqrt(n ubMSD / chi2(1 - alpha/2, n - 1)) .. sqrt(n ubMSD / chi2(alpha/2, n - 1))
    RMSD:   sqrt(n MSD / chi2(1 - alpha/2, n)) .. sqrt(n MSD / chi2(alpha/2, n))

where chi2(q, k) is the q-quantile of the chi-square distribution with k degrees of freedom.

Anomalies (pytesmo ``calc_anomaly`` / ``calc_climatology``, as QA4SM applies them to each data set's
full series before temporal matching):

    moving average: x(t) - mean{x(t') : |t' - t| <= W/2}, W = 35 days (time-based, gaps allowed);
    climatology:    x(t) - C(doy(t)), C = the day-of-year (1..366, 29 Feb = 60) mean of the 5-day
                    moving average of x, smoothed by a 35-day moving average wrapped around the year.

Triple collocation (covariance notation, McColl et al. 2014, doi:10.1002/2014GL061322;
Gruber et al. 2016, doi:10.1016/j.jag.2015.09.002; pytesmo ``tcol_metrics``): for three collocated
products i, j, k with independent zero-mean errors and covariances C,

    error variance   sigma_i^2 = C_ii - C_ij C_ik / C_jk
    scaling          beta_i = C_rk / C_ik  (r the reference, k the third product; beta_r = 1)
    scaled error std beta_i sigma_i       (in the reference's units: products comparable)
    SNR_i (dB)       = -10 log10 | |C_ii C_jk / (C_ij C_ik)| - 1 |
    R_i,truth^2      = C_ij C_ik / (C_ii C_jk)

with percentile bootstrap confidence intervals (pytesmo ``tcol_metrics_with_bootstrapped_ci``).

Twin-experiment skill (:func:`skill_table`): every product is compared with the synthetic truth
on the 1 km grid. The within-coarse-pixel anomaly of a field is its value minus the mean of its
coarse pixel (``coarse`` x ``coarse`` 1 km cells, the observation grid's pixel) at the same time;
the error d = p - t splits into the pixel-mean error (P - T, what coarse observations can correct)
and the within-pixel error (p' - t'). The correlation of product and truth anomalies measures real
downscaling skill, which a good coarse estimate alone cannot earn (a product constant within each
coarse pixel has no such anomaly: R_within is NaN); R_within pools the static pattern (soil,
vegetation) that truth and model share by construction, R_within_dyn removes each cell's time mean
first. The pixel-mean oracle (truth pixel means + open-loop within-pixel anomalies) is the best a
perfect correction of pixel means can do; the gain fraction (OL - product) / (OL - oracle) of ubRMSE
says how much of that achievable gain a product reaches.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy import stats

log = logging.getLogger(__name__)

METRIC_NAMES = ("n", "bias", "bias_lo", "bias_hi", "rmsd", "rmsd_lo", "rmsd_hi", "ubrmsd", "ubrmsd_lo",
                "ubrmsd_hi", "r", "r_lo", "r_hi", "r_p", "rho", "rho_lo", "rho_hi", "r_anom", "r_anom_paired")


def _pair(x, y):
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same number of values, got {x.size} and {y.size}")
    ok = np.isfinite(x) & np.isfinite(y)
    return x[ok], y[ok]


def bias(x, y) -> float:
    """Mean difference mean(x - y) over finite pairs (units of x)."""
    x, y = _pair(x, y)
    return float(np.mean(x - y)) if x.size else np.nan


def rmsd(x, y) -> float:
    """Root-mean-square difference sqrt(mean((x - y)^2))."""
    x, y = _pair(x, y)
    return float(np.sqrt(np.mean((x - y) ** 2))) if x.size else np.nan


def ubrmsd(x, y) -> float:
    """Unbiased RMSD sqrt(RMSD^2 - bias^2) (population form, 1/n)."""
    x, y = _pair(x, y)
    if not x.size:
        return np.nan
    d = x - y
    return float(np.sqrt(max(np.mean(d**2) - np.mean(d) ** 2, 0.0)))


def pearson_r(x, y) -> float:
    """Pearson correlation coefficient (NaN with fewer than 3 pairs or no variance)."""
    x, y = _pair(x, y)
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return np.nan
    return float(stats.pearsonr(x, y)[0])


def spearman_r(x, y) -> float:
    """Spearman rank correlation coefficient (NaN with fewer than 3 pairs or no variance)."""
    x, y = _pair(x, y)
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return np.nan
    return float(stats.spearmanr(x, y)[0])


def bias_ci(x, y, alpha=0.05):
    """(lower, upper) confidence bounds of the bias from Student's t with n - 1 dof."""
    x, y = _pair(x, y)
    n = x.size
    if n < 2:
        return np.nan, np.nan
    d = x - y
    half = stats.t.ppf(1 - alpha / 2, n - 1) * np.std(d, ddof=1) / np.sqrt(n)
    return float(d.mean() - half), float(d.mean() + half)


def fisher_z_ci(r, n, alpha=0.05, var_factor=1.0):
    """(lower, upper) bounds of a correlation by the Fisher z transform.

    tanh(atanh(r) -+ z(1 - alpha/2) sqrt(var_factor / (n - 3))); var_factor = 1 for Pearson,
    1.06 for Spearman. NaN where n < 4 or r is NaN.
    """
    if n < 4 or not np.isfinite(r):
        return np.nan, np.nan
    r = float(np.clip(r, -1.0, 1.0))
    if abs(r) == 1.0:
        return r, r
    half = stats.norm.ppf(1 - alpha / 2) * np.sqrt(var_factor / (n - 3))
    z = np.arctanh(r)
    return float(np.tanh(z - half)), float(np.tanh(z + half))


def msd_chi2_ci(value, n, dof, alpha=0.05):
    """(lower, upper) bounds of an RMS-type value from the chi-square distribution with ``dof``."""
    if dof < 1 or not np.isfinite(value):
        return np.nan, np.nan
    s = n * value**2
    return (float(np.sqrt(s / stats.chi2.ppf(1 - alpha / 2, dof))),
            float(np.sqrt(s / stats.chi2.ppf(alpha / 2, dof))))


def moving_average_anomaly(series: pd.Series, window_days: float = 35.0, min_fraction: float = 0.0):
    """Series minus its centred time-based moving mean over ``window_days`` (same index): the mean of
    every value within +- window_days / 2 of each time, both ends included (pytesmo ``moving_average``).

    ``series`` has a DatetimeIndex (any spacing, NaN allowed). ``min_fraction`` > 0 demands that
    share of the window's expected samples (at the series' median spacing); else NaN.
    """
    if not isinstance(series.index, pd.DatetimeIndex):
        raise ValueError("moving_average_anomaly needs a pandas Series with a DatetimeIndex")
    if window_days <= 0:
        raise ValueError(f"window_days must be > 0, got {window_days}")
    s = series.dropna().sort_index()
    s = s[~s.index.duplicated()]
    if s.empty:
        return series * np.nan
    min_periods = 1
    if min_fraction > 0 and len(s) > 1:
        step = s.index.to_series().diff().median() / pd.Timedelta(days=1)
        min_periods = max(1, int(min_fraction * window_days / step))
    mean = s.rolling(pd.Timedelta(days=window_days), center=True, closed="both", min_periods=min_periods).mean()
    return (s - mean).reindex(series.index)


def day_of_year_366(index: pd.DatetimeIndex) -> np.ndarray:
    """Day of year on a leap-year calendar (1..366, 29 February = 60, 1 March = 61 in every year)."""
    cum = np.array([0, 31, 60, 91, 121, 152, 182, 213, 244, 274, 305, 335])
    return cum[index.month.to_numpy() - 1] + index.day.to_numpy()


def climatology(series: pd.Series, smooth_days: float = 5.0, window_days: float = 35.0) -> pd.Series:
    """Day-of-year climatology (index 1..366, m3/m3) as pytesmo ``calc_climatology`` with wraparound:
    the mean per day of year of the ``smooth_days`` moving average, then a ``window_days`` moving
    average over days of year, wrapped around the year end; NaN on days of year never observed."""
    s = series.dropna().sort_index()
    s = s[~s.index.duplicated()]
    if s.empty:
        return pd.Series(np.nan, index=np.arange(1, 367))
    smooth = s.rolling(pd.Timedelta(days=smooth_days), center=True, closed="both").mean()
    clim = smooth.groupby(day_of_year_366(s.index)).mean()
    doy = clim.index.to_numpy()
    vals = clim.to_numpy()
    half = 0.5 * window_days
    out = np.full(366, np.nan)
    for d in range(1, 367):   # 366 small windows: not a hot path
        dist = np.abs(doy - d)
        near = np.minimum(dist, 366 - dist) <= half
        if near.any():
            out[d - 1] = vals[near].mean()
    return pd.Series(out, index=np.arange(1, 367))


def climatology_anomaly(series: pd.Series, window_days: float = 35.0) -> pd.Series:
    """Series minus its day-of-year :func:`climatology` (same index)."""
    if not isinstance(series.index, pd.DatetimeIndex):
        raise ValueError("climatology_anomaly needs a pandas Series with a DatetimeIndex")
    clim = climatology(series, window_days=window_days).to_numpy()
    return series - clim[day_of_year_366(series.index) - 1]


ANOMALIES = {"moving_average": moving_average_anomaly, "climatology": climatology_anomaly}


def all_metrics(x, y, alpha=0.05, *, x_anom=None, y_anom=None, x_anom_paired=None, y_anom_paired=None) -> dict:
    """Every metric of :data:`METRIC_NAMES` for product x against reference y (finite pairs).

    x_anom, y_anom: optional anomaly series (same length as x, y) for R_anom; x_anom_paired,
    y_anom_paired: the same for R_anom_paired (anomalies of the matched pairs alone).
    """
    x, y = np.asarray(x, float).ravel(), np.asarray(y, float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same number of values, got {x.size} and {y.size}")
    ok = np.isfinite(x) & np.isfinite(y)
    xo, yo = x[ok], y[ok]
    n = int(xo.size)
    out = {k: np.nan for k in METRIC_NAMES}
    out["n"] = n
    if n == 0:
        return out
    out["bias"] = bias(xo, yo)
    out["rmsd"] = rmsd(xo, yo)
    out["ubrmsd"] = ubrmsd(xo, yo)
    out["bias_lo"], out["bias_hi"] = bias_ci(xo, yo, alpha)
    out["rmsd_lo"], out["rmsd_hi"] = msd_chi2_ci(out["rmsd"], n, n, alpha)
    out["ubrmsd_lo"], out["ubrmsd_hi"] = msd_chi2_ci(out["ubrmsd"], n, n - 1, alpha)
    out["r"] = pearson_r(xo, yo)
    out["rho"] = spearman_r(xo, yo)
    if np.isfinite(out["r"]):
        out["r_p"] = float(stats.pearsonr(xo, yo)[1])
    out["r_lo"], out["r_hi"] = fisher_z_ci(out["r"], n, alpha)
    out["rho_lo"], out["rho_hi"] = fisher_z_ci(out["rho"], n, alpha, var_factor=1.06)
    for name, (xa, ya) in (("r_anom", (x_anom, y_anom)), ("r_anom_paired", (x_anom_paired, y_anom_paired))):
        if xa is not None and ya is not None:
            out[name] = pearson_r(np.asarray(xa, float).ravel()[ok], np.asarray(ya, float).ravel()[ok])
    return out


def tcol_from_cov(c, ref=0) -> dict:
    """Triple collocation metrics from a 3 x 3 covariance matrix (see the module docstring).

    Returns arrays (3,): ``snr_db``, ``err_std`` (scaled into the reference's units, as pytesmo),
    ``err_std_own`` (each product's own units), ``beta`` (i_scaled = beta_i * i) and ``r_truth``.
    """
    c = np.asarray(c, float)
    out = {k: np.full(3, np.nan) for k in ("snr_db", "err_std", "err_std_own", "beta", "r_truth")}
    with np.errstate(invalid="ignore", divide="ignore"):
        for i in range(3):
            j, k = (i + 1) % 3, (i + 2) % 3
            signal = c[i, j] * c[i, k] / c[j, k]
            err_var = c[i, i] - signal
            # a round-off negative is no error; a clearly negative estimate is invalid (NaN, as pytesmo)
            out["err_std_own"][i] = np.sqrt(max(err_var, 0.0)) if err_var > -1e-9 * abs(c[i, i]) else np.nan
            out["snr_db"][i] = -10.0 * np.log10(abs(abs(c[i, i] / signal) - 1.0))
            out["r_truth"][i] = np.sqrt(np.clip(signal / c[i, i], 0.0, 1.0))
            third = 3 - i - ref
            out["beta"][i] = 1.0 if i == ref else c[ref, third] / c[i, third]
    if not np.isfinite(c).all() or np.any(c[np.triu_indices(3, 1)] == 0):
        return {k: np.full(3, np.nan) for k in out}
    out["err_std"] = out["err_std_own"] * out["beta"]
    return out


def triple_collocation(x, y, z, *, ref=0, alpha=0.05, n_boot=0, min_boot=100, seed=0) -> dict:
    """Triple collocation of three collocated series (``ref`` the reference for the scaling).

    Returns :func:`tcol_from_cov`'s arrays (order x, y, z), ``n``, and with ``n_boot`` > 0 and at least
    ``min_boot`` triplets their percentile bootstrap bounds ``<name>_lo`` / ``<name>_hi`` at level
    1 - alpha (``n_boot`` resamples of the triplets with replacement, numpy generator seeded ``seed``).
    NaN where the covariances are degenerate or too few triplets (< 5).
    """
    a = np.vstack([np.asarray(v, float).ravel() for v in (x, y, z)])
    if len({v.size for v in a}) != 1:
        raise ValueError("triple collocation needs three series of equal length")
    a = a[:, np.all(np.isfinite(a), axis=0)]
    n = a.shape[1]
    out = tcol_from_cov(np.cov(a) if n >= 5 else np.full((3, 3), np.nan), ref)
    out["n"] = n
    names = ("snr_db", "err_std", "beta", "r_truth")
    for k in names:
        out[f"{k}_lo"] = out[f"{k}_hi"] = np.full(3, np.nan)
    if n_boot > 0 and n >= max(min_boot, 5):
        idx = np.random.default_rng(seed).integers(0, n, size=(int(n_boot), n))
        s = a[:, idx]                                   # (3, n_boot, n)
        s = s - s.mean(axis=2, keepdims=True)
        covs = np.einsum("ibn,jbn->bij", s, s) / (n - 1)
        boot = [tcol_from_cov(cv, ref) for cv in covs]  # n_boot 3 x 3 problems
        for k in names:
            v = np.array([b[k] for b in boot])
            with np.errstate(invalid="ignore"):   # an error-free product has SNR +inf
                out[f"{k}_lo"] = np.nanquantile(v, alpha / 2, axis=0)
                out[f"{k}_hi"] = np.nanquantile(v, 1 - alpha / 2, axis=0)
    return out


# --- twin-experiment skill on the 1 km grid --------------------------------------------------
def coarse_mean(field, coarse=36):
    """NaN-aware mean over coarse x coarse blocks, broadcast back to (time, nrows, ncols)."""
    f = np.asarray(field, float)
    nt, nr, nc = f.shape
    if nr % coarse or nc % coarse:
        raise ValueError(f"grid {nr} x {nc} is not made of whole {coarse} x {coarse} coarse pixels")
    b = f.reshape(nt, nr // coarse, coarse, nc // coarse, coarse)
    ok = np.isfinite(b)
    cnt = ok.sum(axis=(2, 4), keepdims=True)
    tot = np.where(ok, b, 0.0).sum(axis=(2, 4), keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        m = np.where(cnt > 0, tot / np.maximum(cnt, 1), np.nan)
    return np.broadcast_to(m, b.shape).reshape(nt, nr, nc)


def within_pixel_anomaly(field, coarse=36, mask=None):
    """Field minus its coarse-pixel mean at each time (time, nrows, ncols).

    mask: optional bool (time, nrows, ncols) of the cells to use (others NaN), so that product
    and truth anomalies are taken over the same cells.
    """
    f = np.array(field, float)
    if mask is not None:
        f[~mask] = np.nan
    return f - coarse_mean(f, coarse)


class _Moments:
    """Running counts, means, sums of squared deviations and co-deviation of pairs (a, b), elementwise,
    merged batch by batch (Chan, Golub and LeVeque 1979): precise where a plain sum of squares cancels."""

    def __init__(self, shape=()):
        self.n = np.zeros(shape)
        self.ma, self.mb, self.saa, self.sbb, self.sab = (np.zeros(shape) for _ in range(5))

    def add(self, n, ma, mb, saa, sbb, sab):
        """Merge a batch given by its own count, means and (co-)deviation sums (same shape as the totals)."""
        tot = self.n + n
        with np.errstate(invalid="ignore", divide="ignore"):
            w = np.where(tot > 0, n / np.maximum(tot, 1), 0.0)
        da, db = ma - self.ma, mb - self.mb
        self.saa += saa + da * da * self.n * w
        self.sbb += sbb + db * db * self.n * w
        self.sab += sab + da * db * self.n * w
        self.ma += da * w
        self.mb += db * w
        self.n = tot

    def add_pairs(self, a, b, ok):
        """Merge one value per element (a, b where ``ok``): a batch of one."""
        self.add(ok.astype(float), np.where(ok, a, self.ma), np.where(ok, b, self.mb), 0.0, 0.0, 0.0)

    def r(self):
        """Pearson R (NaN with fewer than 3 pairs or no variance)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            r = self.sab / np.sqrt(self.saa * self.sbb)
        return np.where((self.n < 3) | (self.saa <= 0) | (self.sbb <= 0), np.nan, r)


class _Var:
    """Running count, mean and sum of squared deviations of one variable, elementwise (Chan et al. 1979)."""

    def __init__(self, shape=()):
        self.n, self.m, self.s = np.zeros(shape), np.zeros(shape), np.zeros(shape)

    def add_values(self, a, ok):
        """Merge one value per element (``a`` where ``ok``)."""
        tot = self.n + ok
        w = np.where(ok, 1.0 / np.maximum(tot, 1), 0.0)
        da = np.where(ok, a - self.m, 0.0)
        self.s += da * da * self.n * w
        self.m += da * w
        self.n = tot

    def var(self):
        """Population variance per element (NaN with fewer than 2 values)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.n >= 2, self.s / self.n, np.nan)


ORACLE = "oracle_pixel_mean"


def pixel_mean_oracle(truth, openloop, coarse=36):
    """The pixel-mean oracle of one time (nrows, ncols): the truth's coarse-pixel means plus the open loop's
    within-pixel anomalies, over the cells where both are finite (NaN elsewhere)."""
    t, o = np.asarray(truth, float), np.asarray(openloop, float)
    ok = (np.isfinite(t) & np.isfinite(o))[None]
    return (coarse_mean(np.where(ok, t[None], np.nan), coarse) + within_pixel_anomaly(o[None], coarse, ok))[0]


class SkillAccumulator:
    """Skill of one product against the truth (the columns of :func:`skill_table`), accumulated one time
    slice at a time, so that memory depends on the grid (21 float64 per cell) and not on the number of times."""

    def __init__(self, shape, coarse=36):
        self.coarse = coarse
        self.shape = tuple(shape)
        size = int(np.prod(shape))
        self.cells = _Moments(size)         # per cell: product and truth over time
        self.anom = _Moments(size)          # per cell: within-pixel anomalies of product and truth over time
        self.diff, self.pix, self.win = _Var(size), _Var(size), _Var(size)  # d, its pixel-mean and within parts
        self.within = _Moments()            # pooled within-pixel anomalies of product and truth
        self.n, self.sum_d, self.sum_d2, self.max_anomaly = 0, 0.0, 0.0, 0.0

    def add(self, product, truth):
        """One time: product and truth (nrows, ncols), m3/m3, NaN where none."""
        p, t = np.asarray(product, float), np.asarray(truth, float)
        if p.shape != self.shape or t.shape != self.shape:
            raise ValueError(f"product has shape {p.shape}, truth has {t.shape}, expected {self.shape}")
        ok = np.isfinite(p) & np.isfinite(t)
        d = (p - t)[ok]
        self.n += d.size
        self.sum_d += float(d.sum())
        self.sum_d2 += float((d * d).sum())
        okr = ok.ravel()
        self.cells.add_pairs(p.ravel(), t.ravel(), okr)
        ap = within_pixel_anomaly(p[None], self.coarse, ok[None])[0]
        at = within_pixel_anomaly(t[None], self.coarse, ok[None])[0]
        self.diff.add_values((p - t).ravel(), okr)
        self.win.add_values((ap - at).ravel(), okr)
        self.pix.add_values(((p - ap) - (t - at)).ravel(), okr)
        self.anom.add_pairs(ap.ravel(), at.ravel(), okr)
        ap, at = ap[ok], at[ok]
        if ap.size:
            self.max_anomaly = max(self.max_anomaly, float(np.abs(ap).max()))
            ma, mb = ap.mean(), at.mean()
            self.within.add(ap.size, ma, mb, ((ap - ma) ** 2).sum(), ((at - mb) ** 2).sum(),
                            ((ap - ma) * (at - mb)).sum())

    def row(self) -> dict:
        row = dict(ubRMSE=np.nan, ubRMSE_pixel=np.nan, ubRMSE_within=np.nan, within_share=np.nan, RMSE=np.nan,
                   bias=np.nan, R=np.nan, R_within=np.nan, R_within_dyn=np.nan, n=self.n)
        if not self.n:
            return row
        row["bias"] = self.sum_d / self.n
        row["RMSE"] = float(np.sqrt(self.sum_d2 / self.n))
        ub = {k: v.var() for k, v in (("ubRMSE", self.diff), ("ubRMSE_pixel", self.pix), ("ubRMSE_within", self.win))}
        if np.isfinite(ub["ubRMSE"]).any():
            mean = {k: float(np.nanmean(v)) for k, v in ub.items()}
            row.update({k: float(np.sqrt(v)) for k, v in mean.items()})
            parts = mean["ubRMSE_pixel"] + mean["ubRMSE_within"]
            row["within_share"] = mean["ubRMSE_within"] / parts if parts > 0 else np.nan
        r = self.cells.r()
        if np.isfinite(r).any():
            row["R"] = float(np.nanmedian(r))
        # a coarse product has only round-off anomalies: no downscaling information
        if self.max_anomaly > 1e-9:
            row["R_within"] = float(self.within.r())
            a = self.anom
            use = a.n >= 3
            saa, sbb = a.saa[use].sum(), a.sbb[use].sum()
            if saa > 0 and sbb > 0:
                row["R_within_dyn"] = float(a.sab[use].sum() / np.sqrt(saa * sbb))
        return row


def skill_frame(accumulators: dict) -> pd.DataFrame:
    """The skill table (see :func:`skill_table`) from one :class:`SkillAccumulator` per product; with an
    ``openloop`` and an :data:`ORACLE` row, the gain fraction of every product."""
    df = pd.DataFrame.from_dict({name: acc.row() for name, acc in accumulators.items()}, orient="index")
    df.index.name = "product"
    if "openloop" in df.index and ORACLE in df.index:
        ol, best = df.loc["openloop", "ubRMSE"], df.loc[ORACLE, "ubRMSE"]
        df.insert(df.columns.get_loc("RMSE"), "gain_fraction",
                  (ol - df["ubRMSE"]) / (ol - best) if ol - best > 0 else np.nan)
    return df


def skill_table(products: dict, truth, *, coarse=36) -> pd.DataFrame:
    """Skill of gridded products against the synthetic truth of a twin experiment.

    Parameters
    ----------
    products : dict name -> array (time, nrows, ncols), m3/m3, NaN where no estimate.
    truth : array (time, nrows, ncols), m3/m3 (NaN outside land).
    coarse : coarse pixel size in 1 km cells (36 for SMAP 36 km).

    Returns
    -------
    DataFrame indexed by product with columns
      ``ubRMSE`` : sqrt of the mean over cells of each cell's temporal ubMSD (m3/m3), i.e. each
                   cell's long-term bias removed, as at a station;
      ``ubRMSE_pixel``, ``ubRMSE_within`` : the same for the pixel-mean error (P - T) and the
                   within-pixel error (p' - t'); ``within_share`` = within / (pixel + within) of the
                   mean squares (the share of the error coarse observations cannot see);
      ``gain_fraction`` : (OL - product) / (OL - oracle) of ubRMSE (with an ``openloop`` product);
      ``RMSE``, ``bias`` : pooled over every finite (time, cell) pair (m3/m3);
      ``R`` : median over cells of the temporal Pearson R (cells with >= 3 pairs and variance);
      ``R_within`` : Pearson R of within-coarse-pixel anomalies, pooled over all (time, cell)
                   pairs (NaN for a product constant within coarse pixels);
      ``R_within_dyn`` : the same after removing each cell's time mean of the anomalies (the dynamic
                   part: no credit for the static pattern truth and model share);
      ``n`` : number of finite (time, cell) pairs.

    With an ``openloop`` product, the row :data:`ORACLE` (:func:`pixel_mean_oracle`) is added.
    Computed one time at a time (:class:`SkillAccumulator`), as the end of a run does from its files.
    """
    t = np.asarray(truth, float)
    if t.ndim != 3:
        raise ValueError(f"truth must be (time, nrows, ncols), got shape {t.shape}")
    if not products:
        raise ValueError("skill_table needs at least one product")
    accs = {}
    for name, arr in products.items():
        p = np.asarray(arr, float)
        if p.shape != t.shape:
            raise ValueError(f"product {name!r} has shape {p.shape}, truth has {t.shape}")
        accs[name] = SkillAccumulator(t.shape[1:], coarse)
        for i in range(t.shape[0]):
            accs[name].add(p[i], t[i])
    if "openloop" in products:
        ol = np.asarray(products["openloop"], float)
        accs[ORACLE] = SkillAccumulator(t.shape[1:], coarse)
        for i in range(t.shape[0]):
            accs[ORACLE].add(pixel_mean_oracle(t[i], ol[i], coarse), t[i])
    return skill_frame(accs)
