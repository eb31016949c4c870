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
    diag = flt.analyse(..., obs_loc_radius_km=c_per_obs)    # each observation its own half-width
    diag = flt.analyse(..., obs_error_corr_km=L_per_obs, obs_group=source)  # correlated errors (etkf, letkf)

``X`` (n_cells, n_vars, N) float64 C-contiguous is updated in place: every variable given is
updated (pass only the variables to update). ``period_km`` makes the x coordinate periodic (ring
test problems).

Conventions, with the conversion from DAPPER / Sakov and Oke (2008) settings:

- ``inflation`` is the multiplicative factor of the background *anomalies* (variance factor
  inflation^2), as DAPPER's ``infl``: ``infl=1.013`` -> ``inflation=1.013``. A variance factor rho
  (Hunt et al. 2007; DART) is ``inflation = sqrt(rho)``.
- ``loc_radius_km`` is the Gaspari-Cohn half-width c: the taper is 0.208 at c and 0 beyond 2 c
  (inf: no localization). DAPPER's ``loc_rad`` r (grid lengths) is c = 1.82 r
  (:data:`~smda.assimilation.filters.localization.DAPPER_HALF_WIDTH`): ``loc_rad=4`` on a 1 km
  grid -> ``loc_radius_km=7.28``. ``taper_cutoff=1e-3`` reproduces DAPPER's taper cut-off.
- ``obs_loc_radius_km`` (analyse, (n_obs,) km) gives each observation its own c (e.g. per source):
  observation-to-cell tapers use the observation's c (LETKF, EnKF gain, EAKF regressions; EAKF
  observation-to-observation regressions the c of the observation processed), the EnKF
  observation-observation taper the PSD cross taper of
  :func:`~smda.assimilation.filters.localization.cross_taper` (GC(d / c) for equal radii). A scalar
  ``loc_radius_km`` and per-observation radii all equal to it give bitwise the same analysis.
- ``obs_error_corr_km`` and ``obs_group`` (analyse, (n_obs,)): errors within a group correlated over L km
  (a non-diagonal R, whitened in the local analysis: :mod:`~smda.assimilation.filters.letkf`); ETKF and LETKF
  only, the EnKF and EAKF raise ValueError (their serial/perturbed-observation forms assume a diagonal R).

MPI contract: X and cell_xy_m are this rank's cells; HX, y, obs_err_var, obs_xy_m, obs_ids and
obs_loc_radius_km are ALL observations (HX already summed across ranks). Everything in observation
space is computed from these global arrays only, and the LETKF lattice is anchored to the projection
origin, so a cell's analysis does not depend on the domain split. No communicator is needed.

Bounds: ``lower``/``upper`` (n_vars,) or (n_cells, n_vars) in state units (None: unbounded); values
outside are set to the bound and the amounts are reported in the diagnostics.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from smda.assimilation.filters import eakf, enkf, letkf
from smda.assimilation.filters.base import Filter, check_radius, radius_m
from smda.assimilation.filters.localization import _period_m, taper_matrix
from smda.registry import Registry


@dataclass(frozen=True, kw_only=True)
class _Localized(Filter):
    """Settings of the localized filters.

    loc_radius_km : Gaspari-Cohn half-width c in km (taper 0 beyond 2 c; inf: no localization);
        DAPPER's radius r converts as c = 1.82 r
    taper_cutoff : taper values at or below it count as 0 (the observation is not used; DAPPER: 1e-3)
    """

    loc_radius_km: float = 50.0
    taper_cutoff: float = 0.0

    def __post_init__(self):
        super().__post_init__()
        check_radius(self.loc_radius_km)
        if not 0.0 <= self.taper_cutoff < 1.0:
            raise ValueError(f"taper_cutoff must be in [0, 1), got {self.taper_cutoff}")

    def _radii(self, c_m, n_obs):
        """Per-observation half-widths in m (n_obs,): those given to analyse, else ``loc_radius_km`` for all."""
        return np.full(n_obs, radius_m(self.loc_radius_km)) if c_m is None else np.ascontiguousarray(c_m)


@dataclass(frozen=True, kw_only=True)
class StochasticEnKF(_Localized):
    """Stochastic EnKF with perturbed observations (Burgers et al. 1998) and gain tapering.

    loc_radius_km : as in the localized filters, default inf (no localization)
    center_perturbations : remove the ensemble mean of the observation perturbations
    """

    loc_radius_km: float = math.inf
    center_perturbations: bool = True

    def _update(self, X, cx, cy, HX, y, r, ox, oy, ids, cycle, lam, lo, hi, clip, c_m, corr):
        n = X.shape[2]
        eps = enkf.perturbed_obs(self.seed, ids, n, cycle, r, center=self.center_perturbations)
        c = self._radii(c_m, y.size)
        rho_oo = None
        if np.isfinite(c).any():  # (all infinite: no localization)
            xy = np.stack([ox, oy], 1)
            rho_oo = taper_matrix(xy, xy, c, c, _period_m(self.period_km), self.taper_cutoff)
        if y.size:
            v, Yp = enkf.innovation_weights(HX, y, eps, r, lam, rho_oo)
        else:
            v = Yp = np.zeros((0, n))
        enkf.enkf_update_cells(X, cx, cy, ox, oy, Yp, v, c, _period_m(self.period_km), self.taper_cutoff, lam,
                               self.rtpp, self.rtps, lo, hi, clip)


def _rotation(flt, n, cycle):
    """The cycle's mean-preserving rotation (N, N) if ``flt.random_rotation``, else an empty (0, 0) array."""
    return letkf.mean_preserving_rotation(flt.seed, n, cycle) if flt.random_rotation else np.empty((0, 0))


@dataclass(frozen=True, kw_only=True)
class ETKF(Filter):
    """Global ensemble transform Kalman filter (symmetric square root, Hunt et al. 2007).

    random_rotation : multiply the transform by a random mean-preserving rotation each cycle
        (Sakov and Oke 2008; DAPPER's ``rot=True``)
    """

    random_rotation: bool = False
    correlated_errors = True

    def _update(self, X, cx, cy, HX, y, r, ox, oy, ids, cycle, lam, lo, hi, clip, c_m, corr):
        n = X.shape[2]
        ybar = HX.mean(axis=1)
        Yp = np.ascontiguousarray(HX - ybar[:, None])
        k = y.size
        T = np.empty((n, n))
        cor = letkf.correlation_args(ox, oy, *(corr or (None, None)), 0.0)
        letkf.point_weights(Yp, y - ybar, 1.0 / r, np.arange(k, dtype=np.int64), np.ones(k), k, lam,
                            np.empty((max(k, 1), n)), T, cor)
        if self.random_rotation:
            T = T @ _rotation(self, n, cycle)
        letkf.apply_global_weights(X, T, self.rtpp, self.rtps, lo, hi, clip)


@dataclass(frozen=True, kw_only=True)
class LETKF(_Localized):
    """Local ETKF (Hunt et al. 2007) with R-localization and optional weight interpolation.

    loc_radius_km, taper_cutoff : as in the localized filters (observations beyond 2 c are not used)
    weight_interpolation : compute weights on the analysis lattice and interpolate (Yang et al.
        2009); False: one eigen-solve per cell (exact)
    analysis_spacing_km : lattice spacing; analysis points at integer multiples of it in x and y
    random_rotation : one random mean-preserving rotation per cycle applied to every cell's
        transform (Sakov and Oke 2008; DAPPER's ``rot=True``)
    """

    weight_interpolation: bool = True
    analysis_spacing_km: float = 9.0
    random_rotation: bool = False
    correlated_errors = True

    def __post_init__(self):
        super().__post_init__()
        if not (math.isfinite(self.analysis_spacing_km) and self.analysis_spacing_km > 0):
            raise ValueError(f"analysis_spacing_km must be > 0 and finite, got {self.analysis_spacing_km}")

    def _update(self, X, cx, cy, HX, y, r, ox, oy, ids, cycle, lam, lo, hi, clip, c_m, corr):
        ybar = HX.mean(axis=1)
        Yp = np.ascontiguousarray(HX - ybar[:, None])
        d = y - ybar
        rinv = 1.0 / r
        radius, period = self._radii(c_m, y.size), _period_m(self.period_km)
        n = X.shape[2]
        rotation = _rotation(self, n, cycle)
        cor = letkf.correlation_args(ox, oy, *(corr or (None, None)), period)
        if not self.weight_interpolation:
            letkf.letkf_exact_cells(X, cx, cy, ox, oy, Yp, d, rinv, radius, period, self.taper_cutoff, lam,
                                    rotation, self.rtpp, self.rtps, lo, hi, clip, cor)
            return
        s = self.analysis_spacing_km * 1000.0
        px, py, needed, i0, j0, ny = letkf.analysis_lattice(cx, cy, s)
        Tgrid = np.zeros((px.size, n, n))
        letkf.lattice_weights(px, py, needed, ox, oy, Yp, d, rinv, radius, period, self.taper_cutoff, lam, Tgrid, cor)
        if rotation.size:  # linear: rotating the lattice weights rotates the interpolated ones
            Tgrid = np.ascontiguousarray(Tgrid @ rotation)
        letkf.interpolate_apply(X, cx, cy, s, i0, j0, ny, Tgrid, self.rtpp, self.rtps, lo, hi, clip)


@dataclass(frozen=True, kw_only=True)
class EAKF(_Localized):
    """Serial ensemble adjustment Kalman filter (Anderson 2001, 2003) with localization.

    loc_radius_km, taper_cutoff : as in the localized filters, for the observation-observation and
        observation-cell regressions

    Observations are processed one at a time in ascending global observation id, so every MPI
    rank does the same sequence.
    """

    def _update(self, X, cx, cy, HX, y, r, ox, oy, ids, cycle, lam, lo, hi, clip, c_m, corr):
        order = np.argsort(ids, kind="stable")
        HXs = np.ascontiguousarray(HX[order])  # a copy: overwritten by the serial sequence
        ys, rs, oxs, oys = y[order], r[order], ox[order], oy[order]
        radius, period = self._radii(c_m, y.size)[order], _period_m(self.period_km)
        Hp = np.empty_like(HXs)
        dH = np.empty_like(HXs)
        g = np.empty(ys.size)
        cut = self.taper_cutoff
        eakf.observation_increments(HXs, ys, rs, oxs, oys, radius, period, cut, lam, Hp, dH, g)
        eakf.eakf_update_cells(X, cx, cy, oxs, oys, Hp, dH, g, radius, period, cut, lam, self.rtpp, self.rtps,
                               lo, hi, clip)


FILTERS: Registry[type[Filter]] = Registry("filter", {"enkf": StochasticEnKF, "etkf": ETKF, "letkf": LETKF,
                                                     "eakf": EAKF})


def make_filter(name, **settings) -> Filter:
    """Filter settings object for a registered ``name`` (see :data:`FILTERS`).

    Unknown names or settings raise ValueError listing the valid ones.
    """
    cls = FILTERS[name]
    valid = {f.name for f in dataclasses.fields(cls)}
    bad = sorted(set(settings) - valid)
    if bad:
        raise ValueError(f"unknown setting(s) {bad} for filter {name!r}; valid settings: {sorted(valid)}")
    return cls(**settings)
