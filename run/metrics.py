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

Anomalies (short-term, "35-day moving average" of QA4SM/pytesmo ``calc_anomaly``): the centred
moving mean over a window of 35 days (time-based, so gaps are handled) is subtracted from each
series before the anomaly correlation R_anom is computed.

Triple collocation (covariance notation, McColl et al. 2014, doi:10.1002/2014GL061322;
Gruber et al. 2016, doi:10.1016/j.jag.2015.09.002): for three collocated products with
independent zero-mean errors and covariances C_ij,

    sigma_x^2 = C_xx - C_xy C_xz / C_yz   (and cyclic),   R_x,truth^2 = C_xy C_xz / (C_xx C_yz)

Twin-experiment skill (:func:`skill_table`): every product is compared with the synthetic truth
on the 1 km grid. The within-coarse-pixel anomaly of a field is its value minus the mean of its
coarse pixel (``coarse`` x ``coarse`` 1 km cells) at the same time; the correlation of product and
truth anomalies measures real downscaling skill, which a good coarse estimate alone cannot earn
(a product constant within each coarse pixel has no such anomaly: R_within is NaN).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy import stats

log = logging.getLogger(__name__)

METRIC_NAMES = ("n", "bias", "bias_lo", "bias_hi", "rmsd", "rmsd_lo", "rmsd_hi", "ubrmsd", "ubrmsd_lo",
                "ubrmsd_hi", "r", "r_lo", "r_hi", "r_p", "rho", "rho_lo", "rho_hi", "r_anom")


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
    """Series minus its centred time-based moving mean over ``window_days`` (same index).

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
        step = np.median(np.diff(s.index.asi8)) / 1e9 / 86400.0
        min_periods = max(1, int(min_fraction * window_days / step))
    mean = s.rolling(pd.Timedelta(days=window_days), center=True, min_periods=min_periods).mean()
    return (s - mean).reindex(series.index)


def all_metrics(x, y, alpha=0.05, *, x_anom=None, y_anom=None) -> dict:
    """Every metric of :data:`METRIC_NAMES` for product x against reference y (finite pairs).

    x_anom, y_anom: optional anomaly series (same length as x, y) for R_anom.
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
    if x_anom is not None and y_anom is not None:
        out["r_anom"] = pearson_r(np.asarray(x_anom, float).ravel()[ok], np.asarray(y_anom, float).ravel()[ok])
    return out


def triple_collocation(x, y, z) -> dict:
    """Error standard deviations and data-truth correlations of three collocated products.

    Returns {"err_std": (3,), "r_truth": (3,), "n": int} in the order (x, y, z); error std in
    the units of each product (no rescaling). NaN where the covariances are degenerate.
    """
    a = np.vstack([np.asarray(v, float).ravel() for v in (x, y, z)])
    if len({v.size for v in a}) != 1:
        raise ValueError("triple collocation needs three series of equal length")
    a = a[:, np.all(np.isfinite(a), axis=0)]
    n = a.shape[1]
    nan3 = np.full(3, np.nan)
    if n < 5:
        return {"err_std": nan3, "r_truth": nan3, "n": n}
    c = np.cov(a)
    err, rt = np.empty(3), np.empty(3)
    for i, (j, k) in enumerate(((1, 2), (0, 2), (0, 1))):
        if c[j, k] == 0:
            err[i] = rt[i] = np.nan
            continue
        signal = c[i, j] * c[i, k] / c[j, k]
        err[i] = np.sqrt(max(c[i, i] - signal, 0.0))
        rt[i] = np.sqrt(np.clip(signal / c[i, i], 0.0, 1.0)) if c[i, i] > 0 else np.nan
    return {"err_std": err, "r_truth": rt, "n": n}


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


class SkillAccumulator:
    """Skill of one product against the truth (the columns of :func:`skill_table`), accumulated one time
    slice at a time, so that memory depends on the grid and not on the number of times."""

    def __init__(self, shape, coarse=36):
        self.coarse = coarse
        self.shape = tuple(shape)
        self.cells = _Moments(int(np.prod(shape)))  # per cell: product and truth over time
        self.diff = _Moments(int(np.prod(shape)))   # per cell: d = product - truth (its spread is the ubMSD)
        self.within = _Moments()                     # pooled within-pixel anomalies of product and truth
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
        self.cells.add_pairs(p.ravel(), t.ravel(), ok.ravel())
        self.diff.add_pairs((p - t).ravel(), np.zeros(p.size), ok.ravel())
        ap = within_pixel_anomaly(p[None], self.coarse, ok[None])[0][ok]
        at = within_pixel_anomaly(t[None], self.coarse, ok[None])[0][ok]
        if ap.size:
            self.max_anomaly = max(self.max_anomaly, float(np.abs(ap).max()))
            ma, mb = ap.mean(), at.mean()
            self.within.add(ap.size, ma, mb, ((ap - ma) ** 2).sum(), ((at - mb) ** 2).sum(),
                            ((ap - ma) * (at - mb)).sum())

    def row(self) -> dict:
        row = dict(ubRMSE=np.nan, RMSE=np.nan, bias=np.nan, R=np.nan, R_within=np.nan, n=self.n)
        if not self.n:
            return row
        row["bias"] = self.sum_d / self.n
        row["RMSE"] = float(np.sqrt(self.sum_d2 / self.n))
        with np.errstate(invalid="ignore", divide="ignore"):
            ubmsd = np.where(self.diff.n >= 2, self.diff.saa / self.diff.n, np.nan)
        if np.isfinite(ubmsd).any():
            row["ubRMSE"] = float(np.sqrt(np.nanmean(ubmsd)))
        r = self.cells.r()
        if np.isfinite(r).any():
            row["R"] = float(np.nanmedian(r))
        # a coarse product has only round-off anomalies: no downscaling information
        if self.max_anomaly > 1e-9:
            row["R_within"] = float(self.within.r())
        return row


def skill_frame(accumulators: dict) -> pd.DataFrame:
    """The skill table (see :func:`skill_table`) from one :class:`SkillAccumulator` per product."""
    df = pd.DataFrame.from_dict({name: acc.row() for name, acc in accumulators.items()}, orient="index")
    df.index.name = "product"
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
      ``RMSE``, ``bias`` : pooled over every finite (time, cell) pair (m3/m3);
      ``R`` : median over cells of the temporal Pearson R (cells with >= 3 pairs and variance);
      ``R_within`` : Pearson R of within-coarse-pixel anomalies, pooled over all (time, cell)
                   pairs (NaN for a product constant within coarse pixels);
      ``n`` : number of finite (time, cell) pairs.

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
    return skill_frame(accs)
