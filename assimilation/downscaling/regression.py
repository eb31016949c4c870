"""Empirical downscaling operators: linear regression (BEC SMOS L4 style) and a random forest.

Linear model (Piles et al. 2014, doi:10.1109/JSTARS.2014.2325398; SCIENCE.md section 6)::

    SM = b0 + b1 LST + b2 NDVI + b3 TBH + b4 TBV

fitted by least squares at the coarse scale, on coarse SM (m3/m3) against the coarse means of the
1 km LST (K) and NDVI and the coarse TB (K), over a moving spatio-temporal window: the samples of
the current time plus those kept by :class:`CoarseHistory` (its ``window_days``), from the coarse
pixels whose centroids lie within ``window_km`` of the target pixel (``None``: the whole domain).
The fitted relation is then applied with the 1 km LST and NDVI while TB stays coarse:
``SM_1km = b0 + b1 LST_1km + b2 NDVI_1km + b3 TBH_LR + b4 TBV_LR``.
When TB is not available (``tb_h``/``tb_v`` None, or ``use_tb=False``) the model is
``SM = b0 + b1 LST + b2 NDVI``.

Numerics: predictors are standardised with the mean and standard deviation of the training rows,
the normal equations of every target pixel are the window sums of per-pixel Gram matrices
(``G_t = sum_{p in window(t)} Z_p^T Z_p``), solved in one batched call with a tiny ridge
(``ridge * n``, default 1e-10, which leaves well-posed fits unchanged to round-off); the
coefficients are returned in physical units. A target pixel needs ``min_samples`` training rows.

Random forest (a second empirical operator; e.g. Breiman 2001, doi:10.1023/A:1010933404324, as
used for SM downscaling in the literature reviewed by the project's seed paper): scikit-learn
``RandomForestRegressor`` with a fixed ``random_state`` and few shallow trees (fast), trained on the
same coarse rows pooled over the whole domain and the temporal window, applied to the 1 km
predictors. Note: the training set is the domain given, so run the comparison operators on the
whole domain (not per MPI rank) when results must not depend on the decomposition.

LST acquisitions (Terra/Aqua, day/night) are kept apart: one model per acquisition slot, and the
valid 1 km estimates of the acquisitions are averaged. LST may be corrected to the coarse-pixel
mean elevation with a lapse rate (as in DISPATCH) before aggregation and application. By default
no estimate is produced where the current coarse SM is missing (``require_coarse``), and the result
is clipped to [``clip_min``, ``clip_max``] m3/m3. With ``preserve_mean`` the residual
SM_LR - <SM_1km>_LR is added so the valid 1 km values average back to the coarse value (off by default,
as in BEC L4).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from smda.assimilation.downscaling.inputs import (
    ComparisonInputs,
    Settings,
    check_inputs,
    elevation_corrected_lst,
    make_settings,
    pixel_mean,
)
from smda.extras import require
from smda.model.grid import M01

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# coarse samples and their history
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CoarseSample:
    """Coarse-scale predictors and target at one time: sm (n_pix,), lst (n_acq, n_pix), ndvi (n_pix,),
    tb_h / tb_v (n_pix,) or None. NaN where the aggregate is not valid."""

    sm: np.ndarray
    lst: np.ndarray
    ndvi: np.ndarray
    tb_h: np.ndarray | None
    tb_v: np.ndarray | None


def _prepared_lst(inp: ComparisonInputs, elevation_correction: bool, lapse_rate_k_per_km: float):
    if inp.elevation_m is not None and elevation_correction:
        return elevation_corrected_lst(inp.lst, inp.elevation_m, inp.pixel, inp.n_pix, lapse_rate_k_per_km)
    return inp.lst


def coarse_sample(inp: ComparisonInputs, lst: np.ndarray, min_valid_fraction: float) -> CoarseSample:
    """Aggregate the 1 km predictors to the coarse pixels (mean of valid cells; NaN below the fraction)."""
    n_cells_pix = np.maximum(inp.cells_per_pixel(), 1)
    lst_c, n_lst = pixel_mean(lst, inp.pixel, inp.n_pix)
    lst_c[n_lst < min_valid_fraction * n_cells_pix] = np.nan
    ndvi_c, n_nd = pixel_mean(inp.ndvi[None, :], inp.pixel, inp.n_pix)
    ndvi_c = ndvi_c[0]
    ndvi_c[n_nd[0] < min_valid_fraction * n_cells_pix] = np.nan
    return CoarseSample(inp.sm_coarse.copy(), lst_c, ndvi_c, inp.tb_h, inp.tb_v)


class CoarseHistory:
    """Past coarse samples for the moving temporal window of the empirical operators.

    The driver calls :meth:`add` after each coarse observation time; samples older than
    ``window_days`` before the newest are dropped. Pass the object as ``history=`` to
    :func:`downscale_linear` / :func:`downscale_random_forest` (the current time is always added
    by the operator itself, so add it to the history after downscaling).
    """

    def __init__(self, window_days: float = 30.0, min_valid_fraction: float = 0.5,
                 elevation_correction: bool = True, lapse_rate_k_per_km: float = 6.0):
        if not window_days > 0:
            raise ValueError(f"window_days must be > 0, got {window_days}")
        self.window_days = float(window_days)
        self.min_valid_fraction = float(min_valid_fraction)
        self.elevation_correction = bool(elevation_correction)
        self.lapse_rate_k_per_km = float(lapse_rate_k_per_km)
        self.times: list[float] = []
        self.samples: list[CoarseSample] = []

    def add(self, time_days: float, *, sm_coarse, pixel_of_cell, lst, ndvi, elevation_m=None, tb_h=None, tb_v=None):
        """Aggregate and store one time (time in days, any origin, increasing)."""
        inp = check_inputs(sm_coarse, pixel_of_cell, lst, ndvi, elevation_m, tb_h, tb_v)
        lst_p = _prepared_lst(inp, self.elevation_correction, self.lapse_rate_k_per_km)
        self.add_sample(time_days, coarse_sample(inp, lst_p, self.min_valid_fraction))

    def add_sample(self, time_days: float, sample: CoarseSample):
        if self.samples and (sample.sm.shape != self.samples[0].sm.shape
                             or sample.lst.shape != self.samples[0].lst.shape):
            raise ValueError("history samples must share n_pix and n_acq")
        self.times.append(float(time_days))
        self.samples.append(sample)
        newest = max(self.times)
        keep = [k for k, t in enumerate(self.times) if t >= newest - self.window_days]
        self.times = [self.times[k] for k in keep]
        self.samples = [self.samples[k] for k in keep]

    def __len__(self):
        return len(self.samples)


def _training_rows(samples, acq, use_tb):
    """Stack samples: X (n_rows, k), y (n_rows,), pixel (n_rows,) for one acquisition; valid rows only."""
    xs, ys, ps = [], [], []
    for s in samples:
        cols = [s.lst[acq], s.ndvi]
        if use_tb:
            cols += [s.tb_h, s.tb_v]
        x = np.column_stack(cols)
        ok = np.isfinite(x).all(axis=1) & np.isfinite(s.sm)
        xs.append(x[ok])
        ys.append(s.sm[ok])
        ps.append(np.nonzero(ok)[0])
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(ps).astype(np.int64)


def pixel_centroids_km(pixel, shape, n_pix):
    """Centroid (row, col) of each coarse pixel in km (1 km EASE cells of 1.000895 km), (n_pix, 2)."""
    rows, cols = np.divmod(np.arange(pixel.size), shape[1])
    inside = pixel >= 0
    n = np.maximum(np.bincount(pixel[inside], minlength=n_pix), 1)
    r = np.bincount(pixel[inside], weights=rows[inside], minlength=n_pix) / n
    c = np.bincount(pixel[inside], weights=cols[inside], minlength=n_pix) / n
    return np.column_stack([r, c]) * M01.km


def window_matrix(centroids_km, window_km):
    """(n_pix, n_pix) 0/1 matrix: pixel q is in the window of pixel t when their distance <= window_km."""
    n = centroids_km.shape[0]
    if window_km is None:
        return np.ones((n, n))
    d = np.sqrt(((centroids_km[:, None, :] - centroids_km[None, :, :]) ** 2).sum(-1))
    return (d <= window_km + 1e-9).astype(np.float64)


def fit_linear_window(x, y, row_pixel, window, min_samples, ridge=1e-10):
    """Least-squares coefficients per target pixel over its spatial window.

    x (n_rows, k) predictors, y (n_rows,) target, row_pixel (n_rows,) pixel of each row,
    window (n_pix, n_pix) 0/1. Returns (n_pix, k + 1) coefficients [b0, b1..bk] in the units of
    x and y, NaN where the window holds fewer than ``min_samples`` rows.
    """
    n_pix = window.shape[0]
    k = x.shape[1]
    coef = np.full((n_pix, k + 1), np.nan)
    if y.size == 0:
        return coef
    mu = x.mean(axis=0)
    sd = x.std(axis=0)
    sd[sd == 0] = 1.0
    z = np.column_stack([np.ones(y.size), (x - mu) / sd])
    gram_rows = (z[:, :, None] * z[:, None, :]).reshape(y.size, -1)
    m = k + 1
    gram_pix = np.zeros((n_pix, m * m))
    rhs_pix = np.zeros((n_pix, m))
    np.add.at(gram_pix, row_pixel, gram_rows)
    np.add.at(rhs_pix, row_pixel, z * y[:, None])
    n_pix_rows = np.bincount(row_pixel, minlength=n_pix).astype(np.float64)
    gram_t = (window @ gram_pix).reshape(n_pix, m, m)
    rhs_t = window @ rhs_pix
    n_t = window @ n_pix_rows
    ok = n_t >= max(min_samples, m)
    if not ok.any():
        return coef
    lam = ridge * n_t[ok]
    gram_ok = gram_t[ok] + lam[:, None, None] * np.eye(m)[None]
    c = np.linalg.solve(gram_ok, rhs_t[ok][:, :, None])[:, :, 0]
    b = c[:, 1:] / sd
    coef[ok, 0] = c[:, 0] - (b * mu).sum(axis=1)
    coef[ok, 1:] = b
    return coef


# --------------------------------------------------------------------------------------------
# settings
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class EmpiricalSettings(Settings):
    """Settings of both empirical operators (the common ones in Settings).

    min_samples : least coarse samples in the window for a fit; use_tb : TB H and V as predictors;
    require_coarse : estimate only where the coarse pixel has an observation; preserve_mean : shift
    each coarse pixel's 1 km estimates to its observed mean; clip_max : upper bound, m3/m3.
    """

    min_samples: int = 10
    use_tb: bool = True
    require_coarse: bool = True
    preserve_mean: bool = False
    clip_max: float = 1.0

    def problems(self) -> list[str]:
        errors = super().problems()
        if not int(self.min_samples) >= 1:
            errors.append(f"min_samples={self.min_samples}; must be >= 1")
        if not self.clip_min < self.clip_max:
            errors.append(f"clip_min ({self.clip_min}) must be < clip_max ({self.clip_max})")
        return errors


@dataclass(frozen=True, kw_only=True)
class RegressionSettings(EmpiricalSettings):
    """Linear empirical operator settings (see the module docstring)."""

    window_km: float | None = None
    ridge: float = 1e-10

    def problems(self) -> list[str]:
        errors = super().problems()
        if self.window_km is not None and not self.window_km > 0:
            errors.append(f"window_km={self.window_km}; must be > 0 km or None (whole domain)")
        if not self.ridge >= 0:
            errors.append(f"ridge={self.ridge}; must be >= 0")
        return errors


@dataclass(frozen=True, kw_only=True)
class ForestSettings(EmpiricalSettings):
    """Random-forest operator settings (scikit-learn RandomForestRegressor; few shallow trees)."""

    n_estimators: int = 10
    max_depth: int = 8
    min_samples_leaf: int = 2
    random_state: int = 0

    def problems(self) -> list[str]:
        counts = {name: getattr(self, name) for name in ("n_estimators", "max_depth", "min_samples_leaf")}
        return super().problems() + [f"{k}={v}; must be >= 1" for k, v in counts.items() if not int(v) >= 1]


# --------------------------------------------------------------------------------------------
# operators
# --------------------------------------------------------------------------------------------
def _prepare(s, sm_coarse, pixel_of_cell, lst, ndvi, elevation_m, tb_h, tb_v, history):
    inp = check_inputs(sm_coarse, pixel_of_cell, lst, ndvi, elevation_m, tb_h, tb_v)
    lst_p = _prepared_lst(inp, s.elevation_correction, s.lapse_rate_k_per_km)
    current = coarse_sample(inp, lst_p, s.min_valid_fraction)
    samples = [current]
    if history is not None:
        if not isinstance(history, CoarseHistory):
            raise ValueError(f"history must be a CoarseHistory or None, got {type(history).__name__}")
        for h in history.samples:
            if h.sm.shape != current.sm.shape or h.lst.shape != current.lst.shape:
                raise ValueError(f"history samples have n_pix/n_acq {h.lst.shape}, current {current.lst.shape}")
        samples = list(history.samples) + samples
    use_tb = s.use_tb and inp.tb_h is not None and all(x.tb_h is not None for x in samples)
    if s.use_tb and not use_tb:
        logger.debug("TB not available for every sample: regression on LST and NDVI only")
    return inp, lst_p, samples, use_tb


def _predictors_1km(inp, lst_p, acq, use_tb):
    p = np.maximum(inp.pixel, 0)
    cols = [lst_p[acq], inp.ndvi]
    if use_tb:
        cols += [inp.tb_h[p], inp.tb_v[p]]
    x = np.column_stack(cols)
    ok = (inp.pixel >= 0) & np.isfinite(x).all(axis=1)
    return x, ok


def _finish(inp, per_acq, s):
    """Mask, optional mean preservation, clip, and average of the acquisitions -> (n_cells,)."""
    p = np.maximum(inp.pixel, 0)
    if s.require_coarse:
        per_acq[:, ~np.isfinite(inp.sm_coarse[p]) | (inp.pixel < 0)] = np.nan
    if s.preserve_mean:
        mean, _ = pixel_mean(per_acq, inp.pixel, inp.n_pix)
        per_acq = per_acq + (inp.sm_coarse[None, :] - mean)[:, p]
    per_acq = np.clip(per_acq, s.clip_min, s.clip_max)
    valid = np.isfinite(per_acq)
    n = valid.sum(axis=0)
    total = np.where(valid, per_acq, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / np.maximum(n, 1), np.nan)


def fit_linear(samples, pixel, shape, n_acq, settings: RegressionSettings, use_tb: bool):
    """Coefficients (n_acq, n_pix, k + 1) fitted on the coarse samples (see :func:`fit_linear_window`)."""
    n_pix = samples[0].sm.shape[0]
    window = window_matrix(pixel_centroids_km(pixel, shape, n_pix), settings.window_km)
    k = 4 if use_tb else 2
    coef = np.full((n_acq, n_pix, k + 1), np.nan)
    for a in range(n_acq):  # loop over LST acquisitions (1..4), not cells
        x, y, rp = _training_rows(samples, a, use_tb)
        coef[a] = fit_linear_window(x, y, rp, window, settings.min_samples, settings.ridge)
    return coef


def downscale_linear(*, sm_coarse, pixel_of_cell, lst, ndvi, elevation_m=None, tb_h=None, tb_v=None, history=None,
                     **settings):
    """Empirical linear downscaling (BEC L4 style) for one coarse time; (nrows, ncols) m3/m3, NaN gaps.

    Arguments as :func:`smda.assimilation.downscaling.downscale`; ``history`` is a :class:`CoarseHistory`
    or None; ``settings`` are fields of :class:`RegressionSettings`.
    """
    s = make_settings(RegressionSettings, settings)
    inp, lst_p, samples, use_tb = _prepare(s, sm_coarse, pixel_of_cell, lst, ndvi, elevation_m, tb_h, tb_v, history)
    coef = fit_linear(samples, inp.pixel, inp.shape, inp.n_acq, s, use_tb)
    p = np.maximum(inp.pixel, 0)
    per_acq = np.full((inp.n_acq, inp.n_cells), np.nan)
    for a in range(inp.n_acq):
        x, ok = _predictors_1km(inp, lst_p, a, use_tb)
        c = coef[a][p]
        per_acq[a] = np.where(ok, c[:, 0] + (c[:, 1:] * x).sum(axis=1), np.nan)
    return inp.unflatten(_finish(inp, per_acq, s))


def downscale_random_forest(*, sm_coarse, pixel_of_cell, lst, ndvi, elevation_m=None, tb_h=None, tb_v=None,
                            history=None, **settings):
    """Random-forest empirical downscaling for one coarse time; (nrows, ncols) m3/m3, NaN gaps.

    Arguments as :func:`smda.assimilation.downscaling.downscale`; ``settings`` are fields of
    :class:`ForestSettings`.
    """
    RandomForestRegressor = require("sklearn.ensemble", "ml", "the random-forest operator").RandomForestRegressor
    s = make_settings(ForestSettings, settings)
    inp, lst_p, samples, use_tb = _prepare(s, sm_coarse, pixel_of_cell, lst, ndvi, elevation_m, tb_h, tb_v, history)
    per_acq = np.full((inp.n_acq, inp.n_cells), np.nan)
    for a in range(inp.n_acq):
        x, y, _ = _training_rows(samples, a, use_tb)
        if y.size < s.min_samples:
            continue
        forest = RandomForestRegressor(n_estimators=int(s.n_estimators), max_depth=int(s.max_depth),
                                       min_samples_leaf=int(s.min_samples_leaf), random_state=int(s.random_state),
                                       n_jobs=1)
        forest.fit(x, y)
        x1, ok = _predictors_1km(inp, lst_p, a, use_tb)
        if ok.any():
            per_acq[a, ok] = forest.predict(x1[ok])
    return inp.unflatten(_finish(inp, per_acq, s))
