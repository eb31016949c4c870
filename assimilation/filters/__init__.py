"""Ensemble filters chosen by name: settings dataclasses, registry and the analysis entry point.

Filters (see the modules for the equations and references):

- ``"enkf"``: stochastic EnKF with perturbed observations and gain tapering
  (Burgers et al. 1998), :mod:`smda.assimilation.filters.enkf`;
- ``"etkf"``: global ensemble transform Kalman filter, symmetric square root (Hunt et al. 2007);
- ``"letkf"``: local ETKF with R-localization (Hunt et al. 2007), weights computed on a lattice of
  analysis points and interpolated to the cells (Yang et al. 2009) or exactly per cell,
  :mod:`smda.assimilation.filters.letkf`;
- ``"eakf"``: serial ensemble adjustment Kalman filter (Anderson 2001) with localization of the
  regressions onto later observations and the state (Anderson 2003, as in DART),
  :mod:`smda.assimilation.filters.eakf`.

Usage::

    flt = make_filter("letkf", loc_radius_km=50.0, inflation=1.02, analysis_spacing_km=36.0)
    diag = flt.analyse(X, cell_xy_m, HX, y, obs_err_var, obs_xy_m, obs_ids=ids, cycle=k)

``X`` (n_cells, n_vars, N) float64 C-contiguous is updated in place: every variable given is
updated (pass only the variables to update). Localization radius ``loc_radius_km`` is the
Gaspari-Cohn half-width c: the taper is 0.208 at c and 0 beyond 2 c (inf: no localization).
``period_km`` makes the x coordinate periodic (ring test problems).

MPI contract: X and cell_xy_m are this rank's cells; HX, y, obs_err_var, obs_xy_m and obs_ids are
ALL observations (HX already summed across ranks). Everything in observation space is computed
from these global arrays only, and the LETKF lattice is anchored to the projection origin, so a
cell's analysis does not depend on the domain split. No communicator is needed.

Bounds: ``lower``/``upper`` (n_vars,) or (n_cells, n_vars) in state units (None: unbounded); values
outside are set to the bound and the amounts are reported in the diagnostics.
"""

from __future__ import annotations

import abc
import dataclasses
import logging
import math
from dataclasses import dataclass

import numpy as np

from smda.assimilation.filters import eakf, enkf, letkf
from smda.assimilation.filters.diagnostics import AnalysisDiagnostics, gross_error_mask, innovation_statistics
from smda.assimilation.filters.inflation import adaptive_inflation, check_inflation
from smda.assimilation.filters.localization import _period_m, pairwise_taper

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class _Filter(abc.ABC):
    """Settings shared by all filters.

    inflation : multiplicative prior (variance) inflation lambda >= 1
    adaptive_inflation : estimate lambda each cycle from innovations (then ``inflation`` is a floor)
    adaptive_inflation_max : upper bound of the adaptive estimate
    rtps, rtpp : relaxation to prior spread / perturbations, in [0, 1]
    gross_error_sigma : background check threshold in units of sqrt(sigma_HX^2 + R) (inf: off)
    period_km : period of the x coordinate for ring problems (None: plane)
    seed : random seed (perturbed observations)
    """

    inflation: float = 1.0
    adaptive_inflation: bool = False
    adaptive_inflation_max: float = 2.0
    rtps: float = 0.0
    rtpp: float = 0.0
    gross_error_sigma: float = math.inf
    period_km: float | None = None
    seed: int = 0

    def __post_init__(self):
        check_inflation(self.inflation, self.rtps, self.rtpp)
        if not self.adaptive_inflation_max >= 1.0:
            raise ValueError(f"adaptive_inflation_max must be >= 1, got {self.adaptive_inflation_max}")
        if not self.gross_error_sigma > 0:
            raise ValueError(f"gross_error_sigma must be > 0, got {self.gross_error_sigma}")
        if self.period_km is not None and not (math.isfinite(self.period_km) and self.period_km > 0):
            raise ValueError(f"period_km must be a positive finite length or None, got {self.period_km}")
        if int(self.seed) != self.seed or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed}")

    # -- entry point -------------------------------------------------------------------------------
    def analyse(self, X, cell_xy_m, HX, y, obs_err_var, obs_xy_m, *, obs_ids, cycle,
                lower=None, upper=None) -> AnalysisDiagnostics:
        """Analyse the ensemble X in place; see the module docstring for the arguments.

        Returns :class:`smda.assimilation.filters.diagnostics.AnalysisDiagnostics` (O-F statistics of the used
        observations, per-observation O-F and HX spread, used mask, inflation, clipped amounts).
        """
        a = _check_inputs(X, cell_xy_m, HX, y, obs_err_var, obs_xy_m, obs_ids, cycle, lower, upper)
        HX, y, r, oxy, ids, lo, hi = a
        n = X.shape[2]
        d_all = y - HX.mean(axis=1)
        var_all = HX.var(axis=1, ddof=1)
        used = gross_error_mask(d_all, var_all, r, self.gross_error_sigma)
        HXu, yu, ru, oxyu, idsu = HX[used], y[used], r[used], oxy[used], ids[used]
        lam = self.inflation
        if self.adaptive_inflation:
            lam = max(lam, adaptive_inflation(d_all[used], var_all[used], ru, self.adaptive_inflation_max))
        clip = np.zeros((X.shape[1], 3))
        cxy = np.ascontiguousarray(cell_xy_m, dtype=np.float64)
        if X.shape[0] > 0:
            self._update(X, cxy[:, 0].copy(), cxy[:, 1].copy(), np.ascontiguousarray(HXu), yu, ru,
                         np.ascontiguousarray(oxyu[:, 0]), np.ascontiguousarray(oxyu[:, 1]), idsu,
                         int(cycle), lam, lo, hi, clip)
        n_used = int(used.sum())
        logger.debug("%s: %d obs used, %d rejected, inflation %.4f, N=%d", type(self).__name__,
                     n_used, used.size - n_used, lam, n)
        return AnalysisDiagnostics(
            omf=innovation_statistics(y, HX, r, mask=used), inflation=float(lam), n_obs=int(used.size),
            n_used=n_used, n_rejected=int(used.size - n_used), used=used, omf_per_obs=d_all,
            hx_spread_per_obs=np.sqrt(var_all), clipped_below=clip[:, 0].copy(),
            clipped_above=clip[:, 1].copy(), n_clipped=clip[:, 2].astype(np.int64))

    @abc.abstractmethod
    def _update(self, X, cx, cy, HX, y, r, ox, oy, ids, cycle, lam, lo, hi, clip):
        """Analyse X in place with the used observations (inflation lam, bounds lo/hi, clip diagnostics)."""


def _radius_m(c_km):
    return float(c_km) * 1000.0


def _check_radius(value, name="loc_radius_km"):
    if not value > 0:
        raise ValueError(f"{name} must be > 0 (inf for no localization), got {value}")


@dataclass(frozen=True, kw_only=True)
class StochasticEnKF(_Filter):
    """Stochastic EnKF with perturbed observations (Burgers et al. 1998) and gain tapering.

    loc_radius_km : Gaspari-Cohn half-width c in km (inf: no localization)
    center_perturbations : remove the ensemble mean of the observation perturbations
    """

    loc_radius_km: float = math.inf
    center_perturbations: bool = True

    def __post_init__(self):
        super().__post_init__()
        _check_radius(self.loc_radius_km)

    def _update(self, X, cx, cy, HX, y, r, ox, oy, ids, cycle, lam, lo, hi, clip):
        n = X.shape[2]
        eps = enkf.perturbed_obs(self.seed, ids, n, cycle, r, center=self.center_perturbations)
        rho_oo = None
        if math.isfinite(self.loc_radius_km) and y.size:
            rho_oo = pairwise_taper(np.stack([ox, oy], 1), np.stack([ox, oy], 1), self.loc_radius_km,
                                    self.period_km)
        if y.size:
            v, Yp = enkf.innovation_weights(HX, y, eps, r, lam, rho_oo)
        else:
            v = Yp = np.zeros((0, n))
        enkf.enkf_update_cells(X, cx, cy, ox, oy, Yp, v, _radius_m(self.loc_radius_km),
                               _period_m(self.period_km), lam, self.rtpp, self.rtps, lo, hi, clip)


@dataclass(frozen=True, kw_only=True)
class ETKF(_Filter):
    """Global ensemble transform Kalman filter (symmetric square root, Hunt et al. 2007)."""

    def _update(self, X, cx, cy, HX, y, r, ox, oy, ids, cycle, lam, lo, hi, clip):
        n = X.shape[2]
        ybar = HX.mean(axis=1)
        Yp = np.ascontiguousarray(HX - ybar[:, None])
        k = y.size
        T = np.empty((n, n))
        letkf.point_weights(Yp, y - ybar, 1.0 / r, np.arange(k, dtype=np.int64), np.ones(k), k, lam,
                            np.empty((max(k, 1), n)), T)
        letkf.apply_global_weights(X, T, self.rtpp, self.rtps, lo, hi, clip)


@dataclass(frozen=True, kw_only=True)
class LETKF(_Filter):
    """Local ETKF (Hunt et al. 2007) with R-localization and optional weight interpolation.

    loc_radius_km : Gaspari-Cohn half-width c in km (observations beyond 2 c are not used)
    weight_interpolation : compute weights on the analysis lattice and interpolate (Yang et al.
        2009); False: one eigen-solve per cell (exact)
    analysis_spacing_km : lattice spacing; analysis points at integer multiples of it in x and y
    """

    loc_radius_km: float = 50.0
    weight_interpolation: bool = True
    analysis_spacing_km: float = 9.0

    def __post_init__(self):
        super().__post_init__()
        _check_radius(self.loc_radius_km)
        if not (math.isfinite(self.analysis_spacing_km) and self.analysis_spacing_km > 0):
            raise ValueError(f"analysis_spacing_km must be > 0 and finite, got {self.analysis_spacing_km}")

    def _update(self, X, cx, cy, HX, y, r, ox, oy, ids, cycle, lam, lo, hi, clip):
        ybar = HX.mean(axis=1)
        Yp = np.ascontiguousarray(HX - ybar[:, None])
        d = y - ybar
        rinv = 1.0 / r
        radius, period = _radius_m(self.loc_radius_km), _period_m(self.period_km)
        if not self.weight_interpolation:
            letkf.letkf_exact_cells(X, cx, cy, ox, oy, Yp, d, rinv, radius, period, lam, self.rtpp,
                                    self.rtps, lo, hi, clip)
            return
        s = self.analysis_spacing_km * 1000.0
        px, py, needed, i0, j0, ny = letkf.analysis_lattice(cx, cy, s)
        n = X.shape[2]
        Tgrid = np.zeros((px.size, n, n))
        letkf.lattice_weights(px, py, needed, ox, oy, Yp, d, rinv, radius, period, lam, Tgrid)
        letkf.interpolate_apply(X, cx, cy, s, i0, j0, ny, Tgrid, self.rtpp, self.rtps, lo, hi, clip)


@dataclass(frozen=True, kw_only=True)
class EAKF(_Filter):
    """Serial ensemble adjustment Kalman filter (Anderson 2001, 2003) with localization.

    loc_radius_km : Gaspari-Cohn half-width c in km for the observation-observation and
        observation-cell regressions (inf: no localization)

    Observations are processed one at a time in ascending global observation id, so every MPI
    rank does the same sequence.
    """

    loc_radius_km: float = 50.0

    def __post_init__(self):
        super().__post_init__()
        _check_radius(self.loc_radius_km)

    def _update(self, X, cx, cy, HX, y, r, ox, oy, ids, cycle, lam, lo, hi, clip):
        order = np.argsort(ids, kind="stable")
        HXs = np.ascontiguousarray(HX[order])  # a copy: overwritten by the serial sequence
        ys, rs, oxs, oys = y[order], r[order], ox[order], oy[order]
        radius, period = _radius_m(self.loc_radius_km), _period_m(self.period_km)
        Hp = np.empty_like(HXs)
        dH = np.empty_like(HXs)
        g = np.empty(ys.size)
        eakf.observation_increments(HXs, ys, rs, oxs, oys, radius, period, lam, Hp, dH, g)
        eakf.eakf_update_cells(X, cx, cy, oxs, oys, Hp, dH, g, radius, period, lam, self.rtpp, self.rtps,
                               lo, hi, clip)


FILTERS = {"eakf": EAKF, "enkf": StochasticEnKF, "etkf": ETKF, "letkf": LETKF}


def make_filter(name, **settings):
    """Filter settings object for a registered ``name`` (see :data:`FILTERS`).

    Unknown names or settings raise ValueError listing the valid ones.
    """
    if name not in FILTERS:
        raise ValueError(f"unknown filter {name!r}; valid names: {', '.join(sorted(FILTERS))}")
    cls = FILTERS[name]
    valid = {f.name for f in dataclasses.fields(cls)}
    bad = sorted(set(settings) - valid)
    if bad:
        raise ValueError(f"unknown setting(s) {bad} for filter {name!r}; valid settings: {sorted(valid)}")
    return cls(**settings)


def _check_inputs(X, cell_xy_m, HX, y, obs_err_var, obs_xy_m, obs_ids, cycle, lower, upper):
    if not isinstance(X, np.ndarray) or X.dtype != np.float64 or X.ndim != 3 or not X.flags.c_contiguous:
        raise ValueError("X must be a C-contiguous float64 array (n_cells, n_vars, n_members)")
    if not X.flags.writeable:
        raise ValueError("X must be writeable (updated in place)")
    n_cells, n_vars, n = X.shape
    if n < 2:
        raise ValueError(f"need at least 2 ensemble members, got {n}")
    cxy = np.asarray(cell_xy_m, dtype=np.float64)
    if cxy.shape != (n_cells, 2) or not np.all(np.isfinite(cxy)):
        raise ValueError(f"cell_xy_m must be finite with shape ({n_cells}, 2), got {cxy.shape}")
    HX = np.asarray(HX, dtype=np.float64)
    if HX.ndim != 2 or HX.shape[1] != n:
        raise ValueError(f"HX must have shape (n_obs, {n}), got {HX.shape}")
    n_obs = HX.shape[0]
    y = np.asarray(y, dtype=np.float64)
    r = np.asarray(obs_err_var, dtype=np.float64)
    oxy = np.asarray(obs_xy_m, dtype=np.float64)
    ids = np.asarray(obs_ids)
    for nm, arr, shape in (("y", y, (n_obs,)), ("obs_err_var", r, (n_obs,)), ("obs_xy_m", oxy, (n_obs, 2)),
                           ("obs_ids", ids, (n_obs,))):
        if arr.shape != shape:
            raise ValueError(f"{nm} must have shape {shape} (n_obs from HX), got {arr.shape}")
    for nm, arr in (("HX", HX), ("y", y), ("obs_xy_m", oxy)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{nm} contains non-finite values")
    if not np.all((r > 0) & np.isfinite(r)):
        raise ValueError("obs_err_var must be finite and > 0")
    if not np.issubdtype(ids.dtype, np.integer) or np.any(ids < 0):
        raise ValueError("obs_ids must be non-negative integers (global observation ids)")
    if len(np.unique(ids)) != n_obs:
        raise ValueError("obs_ids must be unique")
    if int(cycle) != cycle or cycle < 0:
        raise ValueError(f"cycle must be a non-negative integer, got {cycle}")
    lo = _bounds(lower, -np.inf, n_cells, n_vars, "lower")
    hi = _bounds(upper, np.inf, n_cells, n_vars, "upper")
    if np.any(lo > hi):
        raise ValueError("lower bound exceeds upper bound")
    return HX, y, r, oxy, ids.astype(np.int64), lo, hi


def _bounds(b, default, n_cells, n_vars, name):
    if b is None:
        return np.full((1, n_vars), default)
    b = np.asarray(b, dtype=np.float64)
    if b.ndim == 0:
        b = np.full(n_vars, float(b))
    if b.shape == (n_vars,):
        return np.ascontiguousarray(b[None, :])
    if b.shape == (n_cells, n_vars):
        return np.ascontiguousarray(b)
    raise ValueError(f"{name} must be a scalar, ({n_vars},) or ({n_cells}, {n_vars}), got {b.shape}")
