"""Observation rescaling to the model climatology (bias handling before assimilation).

Observations ``y`` are mapped onto the model's climatology, per group (pixel, or any integer group
key such as the global pixel index times 2 plus the orbit) and per seasonal period, from collocated
model (open-loop HX, the *reference*) and observation (the *source*) samples:

* mean/std matching:  ``y' = mu_ref + (y - mu_src) sigma_ref / sigma_src``  (sigma_src = 0: shift only);
* anomaly assimilation:  ``y' = mu_ref + (y - mu_src)`` (:class:`AnomalyMatcher`);
* CDF matching:  ``y' = F_ref^-1(F_src(y))``, with both CDFs represented by ``n_quantiles`` sample
  quantiles at equally spaced probabilities (Reichle & Koster 2004, doi:10.1029/2004GL020938;
  Drusch et al. 2005, doi:10.1029/2005GL022634) and piecewise-linear interpolation between them.

Known failure modes of CDF matching and what is done about them:

* ties (e.g. many zeros, saturated values): runs of equal source quantiles are collapsed to one
  knot whose reference value is the mean of the reference quantiles of the run, so the mapping
  stays a function and a tied value maps to the centre of the probability range it occupies;
* short records: below ``min_samples`` (default :data:`CDF_MIN_SAMPLES` = 60) samples in either the
  reference or the source of a (group, period), mean/std matching is used instead; below
  ``min_samples_meanstd`` (default :data:`MEANSTD_MIN_SAMPLES` = 10) there are no statistics and
  :meth:`apply` returns NaN there (or the value unchanged with ``missing="keep"``);
* outliers beyond the fitted range: ``tails="linear"`` extrapolates linearly with the slope of the
  end segment spanning the outer ``tail_prob`` (default 0.05) of probability, which is robust to the
  single extreme sample at the end knot; ``tails="clamp"`` maps them to the reference extremes.

Periods: ``"pentad"`` (73 five-day periods; doy 366 belongs to the last), ``"month"`` (12 calendar
months of a 365-day year; doy 366 is 31 December), ``"season"`` (DJF, MAM, JJA, SON) or
``"none"``. With ``half_window_days`` a period collects every sample whose day of year lies
within that many days (circular, 365-day year) of the period's centre, e.g. pentads with a 31-day
window (``half_window_days=15``).
Statistics are saved to and loaded from netCDF (:meth:`to_netcdf`, :func:`load`).
"""

from __future__ import annotations

import logging

import numpy as np

from smda.jit import kernel
from smda.registry import Registry

log = logging.getLogger(__name__)

CDF_MIN_SAMPLES = 60
MEANSTD_MIN_SAMPLES = 10
PERIODS = Registry("rescaling window", {"none": 1, "season": 4, "month": 12, "pentad": 73})  # name -> periods a year
_NONE, _MEANSTD, _CDF = 0, 1, 2
_MONTH_START = np.array([1, 32, 60, 91, 121, 152, 182, 213, 244, 274, 305, 335])  # 365-day calendar


def day_of_year(doy_or_time):
    """Day of year 1..366 from integers or datetime64 values."""
    a = np.asarray(doy_or_time)
    if np.issubdtype(a.dtype, np.datetime64):
        d = a.astype("datetime64[D]")
        return (d - d.astype("datetime64[Y]")).astype(np.int64) + 1
    a = a.astype(np.int64)
    if a.size and (a.min() < 1 or a.max() > 366):
        raise ValueError("doy must be a day of year in 1..366")
    return a


def period_of_doy(doy, window: str):
    """Period index (0-based) of each day of year for a window name."""
    PERIODS[window]  # an unknown name raises, listing the valid ones
    doy = np.minimum(day_of_year(doy), 365)
    if window == "pentad":
        return (doy - 1) // 5
    month = np.searchsorted(_MONTH_START, doy, side="right") - 1  # 0 = January
    if window == "month":
        return month
    if window == "season":
        return ((month + 1) // 3) % 4  # DJF 0, MAM 1, JJA 2, SON 3
    return np.zeros_like(doy)  # "none"


def period_centres(window: str):
    """Centre day of year of every period."""
    n = PERIODS[window]
    if window == "pentad":
        return 5.0 * np.arange(n) + 3.0
    if window == "month":
        return 0.5 * (_MONTH_START + np.r_[_MONTH_START[1:], 366]) - 0.5
    if window == "season":
        return np.array([15.5, 105.5, 197.0, 288.5])
    return np.array([183.0])


def _membership(doy, window, half_window_days):
    """bool (n_samples, n_periods): sample s contributes to period p."""
    n_p = PERIODS[window]
    if half_window_days is None or window == "none":
        p = period_of_doy(doy, window)
        return p[:, None] == np.arange(n_p)[None, :]
    d = np.minimum(day_of_year(doy), 365)[:, None] - period_centres(window)[None, :]
    d = np.abs((d + 182.5) % 365.0 - 182.5)
    return d <= half_window_days


class _Matcher:
    """Shared fitting machinery: per (group, period) statistics."""

    _kind = ""

    def __init__(self, *, window="pentad", half_window_days=None, min_samples_meanstd=MEANSTD_MIN_SAMPLES):
        PERIODS[window]  # an unknown name raises, listing the valid ones
        if half_window_days is not None and not (0 <= half_window_days <= 182):
            raise ValueError(f"half_window_days must be in [0, 182] or None, got {half_window_days}")
        if min_samples_meanstd < 2:
            raise ValueError(f"min_samples_meanstd must be >= 2, got {min_samples_meanstd}")
        self.window = window
        self.half_window_days = half_window_days
        self.min_samples_meanstd = int(min_samples_meanstd)
        self.groups = None

    # --- fitting ----------------------------------------------------------------------------
    def fit(self, reference, source, groups, doy):
        """Fit from collocated samples, each (n_samples,).

        reference : model values (open-loop HX); source : observations (same unit); NaNs are
        dropped from each independently. groups : integer group key; doy : day of year 1..366 or
        datetime64. Returns self.
        """
        ref = np.asarray(reference, float)
        src = np.asarray(source, float)
        groups = np.asarray(groups)
        n = ref.shape[0]
        doy = day_of_year(doy)
        for name, a in (("reference", ref), ("source", src), ("groups", groups), ("doy", doy)):
            if a.shape != (n,):
                raise ValueError(f"{name} has shape {a.shape}, expected ({n},) like reference")
        if not np.issubdtype(groups.dtype, np.integer):
            raise ValueError("groups must be integer keys (e.g. global pixel index)")
        self.groups, ginv = np.unique(groups, return_inverse=True)
        member = _membership(doy, self.window, self.half_window_days)
        self._allocate(self.groups.size, PERIODS[self.window])
        order = np.argsort(ginv, kind="stable")
        bounds = np.searchsorted(ginv[order], np.arange(self.groups.size + 1))
        for g in range(self.groups.size):
            idx = order[bounds[g]:bounds[g + 1]]
            for p in range(member.shape[1]):
                sel = idx[member[idx, p]]
                r = ref[sel]
                s = src[sel]
                self._fit_cell(g, p, r[np.isfinite(r)], s[np.isfinite(s)])
        log.info("%s: fitted %d groups x %d periods", type(self).__name__, *self.method.shape)
        return self

    def _allocate(self, n_g, n_p):
        self.method = np.zeros((n_g, n_p), np.int8)
        for name in ("ref_mean", "ref_std", "src_mean", "src_std"):
            setattr(self, name, np.full((n_g, n_p), np.nan))
        self.n_ref = np.zeros((n_g, n_p), np.int64)
        self.n_src = np.zeros((n_g, n_p), np.int64)

    def _fit_meanstd(self, g, p, r, s):
        self.n_ref[g, p], self.n_src[g, p] = r.size, s.size
        if min(r.size, s.size) < self.min_samples_meanstd:
            self.method[g, p] = _NONE
            return False
        self.ref_mean[g, p], self.ref_std[g, p] = r.mean(), r.std(ddof=1)
        self.src_mean[g, p], self.src_std[g, p] = s.mean(), s.std(ddof=1)
        self.method[g, p] = _MEANSTD
        return True

    def _fit_cell(self, g, p, r, s):
        self._fit_meanstd(g, p, r, s)

    # --- applying ---------------------------------------------------------------------------
    def _lookup(self, values, groups, doy):
        if self.groups is None:
            raise ValueError("the matcher has not been fitted (call fit() or load())")
        values = np.asarray(values, float)
        groups = np.asarray(groups)
        if groups.shape != values.shape:
            raise ValueError(f"groups shape {groups.shape} != values shape {values.shape}")
        doy = np.broadcast_to(day_of_year(doy), values.shape)
        gi = np.searchsorted(self.groups, groups)
        gi_c = np.minimum(gi, self.groups.size - 1)
        gi = np.where((gi < self.groups.size) & (self.groups[gi_c] == groups), gi_c, -1)
        p = period_of_doy(doy, self.window)
        return values, gi.astype(np.int64), p.astype(np.int64)

    def apply(self, values, groups, doy, missing: str = "nan"):
        """Rescaled values (same shape); groups/periods without statistics give NaN
        (``missing="nan"``) or the value unchanged (``missing="keep"``)."""
        if missing not in ("nan", "keep"):
            raise ValueError(f"missing must be 'nan' or 'keep', got {missing!r}")
        values, gi, p = self._lookup(values, groups, doy)
        out = np.empty(values.shape)
        self._apply(values.ravel(), gi.ravel(), p.ravel(), out.reshape(-1))
        if missing == "keep":
            out = np.where(np.isnan(out), values, out)
        return out

    def _apply(self, y, gi, p, out):
        _apply_meanstd(y, gi, p, self.method, self.ref_mean, self.ref_std, self.src_mean, self.src_std, out)

    # --- netCDF -----------------------------------------------------------------------------
    def _arrays(self):
        return {"method": ("group", "period"), "ref_mean": ("group", "period"),
                "ref_std": ("group", "period"), "src_mean": ("group", "period"),
                "src_std": ("group", "period"), "n_ref": ("group", "period"), "n_src": ("group", "period")}

    def _attrs(self):
        return {"matcher": self._kind, "window": self.window,
                "half_window_days": -1 if self.half_window_days is None else self.half_window_days,
                "min_samples_meanstd": self.min_samples_meanstd}

    def to_netcdf(self, path, *, attrs=None, units=None, group_attrs=None, group_coords=None):
        """Write the statistics (and settings, as global attributes) to a CF-1.8 netCDF file.

        attrs : further global attributes (provenance: title, history, source); units : the units of the
        rescaled values (None: the file says they are those of each group's observable); group_attrs : the
        attributes documenting the group keys (their encoding); group_coords : name -> (values (n_groups,),
        attributes), auxiliary coordinates along ``group`` (e.g. the observable, as flags).
        The group keys are stored as float64 (CF-1.8 has no 64-bit integers; exact below 2**53).
        """
        import xarray as xr

        if self.groups is None:
            raise ValueError("nothing to save: the matcher has not been fitted")
        if np.abs(self.groups).max() >= 2**53:
            raise ValueError(f"{path}: group keys above 2**53 cannot be stored exactly as float64")
        value = {"units": units} if units else {"comment": "in the units of the group's observable"}
        doc = {"method": ("rescaling applied in the group and period", {}),
               "ref_mean": ("mean of the reference (model equivalent) samples", value),
               "ref_std": ("standard deviation of the reference (model equivalent) samples", value),
               "src_mean": ("mean of the source (observation) samples", value),
               "src_std": ("standard deviation of the source (observation) samples", value),
               "n_ref": ("number of reference samples", {"units": "1"}),
               "n_src": ("number of source samples", {"units": "1"}),
               "src_q": ("source sample quantiles at equally spaced probabilities (ties collapsed)", value),
               "ref_q": ("reference values of the source quantiles", value),
               "n_knots": ("number of valid quantile knots", {"units": "1"}),
               "slope_lo": ("slope of the linear extrapolation below the lowest knot", {"units": "1"}),
               "slope_hi": ("slope of the linear extrapolation above the highest knot", {"units": "1"})}
        periods = {"none": "one period: the whole year", "season": "season: 0 DJF, 1 MAM, 2 JJA, 3 SON",
                   "month": "calendar month minus 1 (365-day year; day of year 366 is in December)",
                   "pentad": "pentad p: days of year 5p+1 to 5p+5 (365-day year; day 366 is in the last)"}
        data = {}
        for k, dims in self._arrays().items():
            a = getattr(self, k)
            data[k] = (dims, a.astype(np.int32) if a.dtype == np.int64 else a, {"long_name": doc[k][0], **doc[k][1]})
        window = "" if self.half_window_days is None else f"; samples within {self.half_window_days} days of its centre"
        coords = {"group": ("group", self.groups.astype(np.float64),
                            {"long_name": "rescaling group key", "units": "1", **(group_attrs or {})}),
                  "period": ("period", np.arange(PERIODS[self.window], dtype=np.int32),
                             {"long_name": f"seasonal period ({self.window})", "units": "1",
                              "comment": periods[self.window] + window})}
        coords.update({name: ("group", v, a) for name, (v, a) in (group_coords or {}).items()})
        ds = xr.Dataset(data, coords=coords, attrs={"Conventions": "CF-1.8", "title": f"observation rescaling "
                                                    f"statistics ({self._kind} matching)", **(attrs or {}), **self._attrs()})
        ds["method"].attrs.update(flag_values=np.array([_NONE, _MEANSTD, _CDF], np.int8),
                                  flag_meanings="none mean_std cdf")
        ds.to_netcdf(path, encoding={c: {"_FillValue": None} for c in ds.coords})


class MeanStdMatcher(_Matcher):
    """Mean/standard-deviation matching per (group, period); see the module docstring."""

    _kind = "mean_std"


class CDFMatcher(_Matcher):
    """CDF matching per (group, period) with tie, short-record and tail handling (module docstring)."""

    _kind = "cdf"

    def __init__(self, *, window="pentad", half_window_days=None, n_quantiles=101,
                 min_samples=CDF_MIN_SAMPLES, min_samples_meanstd=MEANSTD_MIN_SAMPLES, tails="linear",
                 tail_prob=0.05):
        super().__init__(window=window, half_window_days=half_window_days,
                         min_samples_meanstd=min_samples_meanstd)
        if tails not in ("linear", "clamp"):
            raise ValueError(f"tails must be 'linear' or 'clamp', got {tails!r}")
        if n_quantiles < 3:
            raise ValueError(f"n_quantiles must be >= 3, got {n_quantiles}")
        if min_samples < min_samples_meanstd:
            raise ValueError("min_samples must be >= min_samples_meanstd")
        if not (0 < tail_prob < 0.5):
            raise ValueError(f"tail_prob must be in (0, 0.5), got {tail_prob}")
        self.n_quantiles = int(n_quantiles)
        self.min_samples = int(min_samples)
        self.tails = tails
        self.tail_prob = float(tail_prob)

    def _allocate(self, n_g, n_p):
        super()._allocate(n_g, n_p)
        self.src_q = np.full((n_g, n_p, self.n_quantiles), np.nan)
        self.ref_q = np.full((n_g, n_p, self.n_quantiles), np.nan)
        self.n_knots = np.zeros((n_g, n_p), np.int64)
        self.slope_lo = np.full((n_g, n_p), np.nan)
        self.slope_hi = np.full((n_g, n_p), np.nan)

    def _fit_cell(self, g, p, r, s):
        if not self._fit_meanstd(g, p, r, s) or min(r.size, s.size) < self.min_samples:
            return
        prob = np.linspace(0.0, 1.0, self.n_quantiles)
        sq = np.quantile(s, prob)
        rq = np.quantile(r, prob)
        # collapse ties: one knot per distinct source value, mean reference value of its run
        uq, start = np.unique(sq, return_index=True)
        if uq.size < 2:
            return  # a constant source: mean/std (a shift) it is
        rq_c = np.add.reduceat(rq, start) / np.diff(np.r_[start, sq.size])
        k = self.n_knots[g, p] = uq.size
        self.src_q[g, p, :k] = uq
        self.ref_q[g, p, :k] = rq_c
        # tail slopes over the outer tail_prob of probability (at least one knot)
        lo = max(int(np.searchsorted(prob, self.tail_prob)), 1)
        hi = min(int(np.searchsorted(prob, 1.0 - self.tail_prob, side="right")) - 1, sq.size - 2)
        fallback = self.ref_std[g, p] / self.src_std[g, p]
        self.slope_lo[g, p] = (rq[lo] - rq[0]) / (sq[lo] - sq[0]) if sq[lo] > sq[0] else fallback
        self.slope_hi[g, p] = (rq[-1] - rq[hi]) / (sq[-1] - sq[hi]) if sq[-1] > sq[hi] else fallback
        self.method[g, p] = _CDF

    def _apply(self, y, gi, p, out):
        _apply_meanstd(y, gi, p, self.method, self.ref_mean, self.ref_std, self.src_mean, self.src_std, out)
        _apply_cdf(y, gi, p, self.method, self.src_q, self.ref_q, self.n_knots, self.slope_lo,
                   self.slope_hi, self.tails == "linear", out)

    def _arrays(self):
        a = super()._arrays()
        a.update({"src_q": ("group", "period", "knot"), "ref_q": ("group", "period", "knot"),
                  "n_knots": ("group", "period"), "slope_lo": ("group", "period"),
                  "slope_hi": ("group", "period")})
        return a

    def _attrs(self):
        a = super()._attrs()
        a.update({"n_quantiles": self.n_quantiles, "min_samples": self.min_samples, "tails": self.tails,
                  "tail_prob": self.tail_prob})
        return a


class AnomalyMatcher(_Matcher):
    """Anomaly assimilation: ``y' = mu_ref + (y - mu_src)`` per (group, period), the observation's anomaly from
    its own climatology added to the model-equivalent climatology (both climatologies from the statistics file).

    Unlike mean/std or CDF matching the anomaly keeps its observed amplitude: only the climatologies (the
    seasonal cycle with ``window``, or the long-term mean) are exchanged (Kumar et al. 2012, Water Resour.
    Res. 48, W03515, compare it with CDF matching). Statistics need
    ``min_samples_meanstd`` samples of each; elsewhere the value is NaN.
    """

    _kind = "anomaly"

    def _apply(self, y, gi, p, out):
        _apply_anomaly(y, gi, p, self.method, self.ref_mean, self.src_mean, out)


MATCHERS = Registry("rescaling method", {"meanstd": MeanStdMatcher, "cdf": CDFMatcher, "anomaly": AnomalyMatcher})


def load(path):
    """A fitted matcher (:data:`MATCHERS`) from a file written by to_netcdf."""
    import xarray as xr

    with xr.open_dataset(path) as ds:
        ds = ds.load()
    a = ds.attrs
    half = None if int(a["half_window_days"]) < 0 else float(a["half_window_days"])
    common = {"window": str(a["window"]), "half_window_days": half,
              "min_samples_meanstd": int(a["min_samples_meanstd"])}
    if a.get("matcher") == "cdf":
        m = CDFMatcher(n_quantiles=int(a["n_quantiles"]), min_samples=int(a["min_samples"]),
                       tails=str(a["tails"]), tail_prob=float(a["tail_prob"]), **common)
    elif a.get("matcher") == "mean_std":
        m = MeanStdMatcher(**common)
    elif a.get("matcher") == "anomaly":
        m = AnomalyMatcher(**common)
    else:
        raise ValueError(f"{path}: not a bias statistics file (global attribute matcher={a.get('matcher')!r})")
    groups = ds["group"].values
    if np.any(groups != np.round(groups)):
        raise ValueError(f"{path}: the group keys are not integers")
    m.groups = groups.astype(np.int64)
    for k in m._arrays():
        a = ds[k].values
        setattr(m, k, np.ascontiguousarray(a.astype(np.int64) if a.dtype.kind == "i" else a))  # counts: stored int32
    m.method = m.method.astype(np.int8)
    return m


@kernel
def _apply_meanstd(y, gi, p, method, ref_mean, ref_std, src_mean, src_std, out):
    for i in range(y.shape[0]):
        g = gi[i]
        if g < 0 or method[g, p[i]] == 0:
            out[i] = np.nan
            continue
        sd = src_std[g, p[i]]
        ratio = ref_std[g, p[i]] / sd if sd > 0 else 1.0
        out[i] = ref_mean[g, p[i]] + (y[i] - src_mean[g, p[i]]) * ratio


@kernel
def _apply_anomaly(y, gi, p, method, ref_mean, src_mean, out):
    for i in range(y.shape[0]):
        g = gi[i]
        if g < 0 or method[g, p[i]] == 0:
            out[i] = np.nan
        else:
            out[i] = ref_mean[g, p[i]] + (y[i] - src_mean[g, p[i]])


@kernel
def _apply_cdf(y, gi, p, method, src_q, ref_q, n_knots, slope_lo, slope_hi, linear, out):
    for i in range(y.shape[0]):
        g = gi[i]
        if g < 0 or method[g, p[i]] != 2 or np.isnan(y[i]):
            continue
        pp = p[i]
        k = n_knots[g, pp]
        v = y[i]
        if v <= src_q[g, pp, 0]:
            if linear:
                out[i] = ref_q[g, pp, 0] + slope_lo[g, pp] * (v - src_q[g, pp, 0])
            else:
                out[i] = ref_q[g, pp, 0]
        elif v >= src_q[g, pp, k - 1]:
            if linear:
                out[i] = ref_q[g, pp, k - 1] + slope_hi[g, pp] * (v - src_q[g, pp, k - 1])
            else:
                out[i] = ref_q[g, pp, k - 1]
        else:
            lo = 0
            hi = k - 1
            while hi - lo > 1:  # src_q[lo] <= v < src_q[hi]
                mid = (lo + hi) // 2
                if src_q[g, pp, mid] <= v:
                    lo = mid
                else:
                    hi = mid
            t = (v - src_q[g, pp, lo]) / (src_q[g, pp, hi] - src_q[g, pp, lo])
            out[i] = ref_q[g, pp, lo] + t * (ref_q[g, pp, hi] - ref_q[g, pp, lo])
