"""DISPATCH: disaggregation of coarse soil moisture with 1 km soil evaporative efficiency.

DISaggregation based on Physical And Theoretical scale CHange (Merlin et al. 2008,
doi:10.1016/j.rse.2008.01.009; Merlin et al. 2012, doi:10.1109/TGRS.2011.2175000; Merlin et al.
2013, doi:10.1016/j.rse.2013.02.016; Molero et al. 2016, doi:10.1016/j.rse.2016.02.045).

Equations (SCIENCE.md section 5)::

    fv    = clip((NDVI - NDVIs) / (NDVIv - NDVIs), 0, 1)      NDVIs = 0.15, NDVIv = 0.90
    LST  <- LST + gamma (z - <z>_LR)                           optional, gamma = 6 K/km
    Ts    = (LST - fv Tv) / (1 - fv)                           soil temperature (K)
    SEE   = (Tsmax - Ts) / (Tsmax - Tsmin)                     soil evaporative efficiency, clipped to [0, 1]
    SM_HR = SM_LR + (dSM/dSEE)_LR (SEE_HR - <SEE_HR>_LR)
    linear    SEE = SM / SMp:                   SMp = SM_LR / SEE_LR,  dSM/dSEE = SMp
    nonlinear SEE = 0.5 - 0.5 cos(pi SM / SMp): SMp = pi SM_LR / arccos(1 - 2 SEE_LR),
                                                dSM/dSEE = SMp / (pi sqrt(SEE_LR (1 - SEE_LR)))

with SEE_LR = <SEE_HR>_LR the mean of the valid 1 km SEE of the coarse pixel. With the linear model
the valid 1 km estimates of a coarse pixel average back exactly to SM_LR.

End-members (per coarse pixel, or per scene with ``end_members="scene"``), from the LST-fv polygon
of the valid cells of one acquisition:

* Tsmax = the maximum LST (dry bare soil), Tvmin = the minimum LST (well-watered full cover);
* Tsmin = the minimum LST of the cells with fv <= ``fv_soil_edge`` (wet bare soil); without such
  cells Tsmin = Tvmin (wet soil and transpiring vegetation at about the same temperature);
* Tvmax = the maximum LST of the cells with fv >= ``fv_veg_edge`` (stressed vegetation);
* safeguard: Tvmax >= Tvmin + 0.5 (Tsmax - Tsmin) (also used when no dense cell exists), so the
  hourglass is never degenerate; and Tsmax - Tsmin >= ``min_soil_range_k``, otherwise the
  polygon has too little thermal contrast and the pixel gets no estimate.

Vegetation temperature by the "hourglass" zones (Moran et al. 1994; Merlin et al. 2012): the
diagonals D1 from (0, Tsmax) to (1, Tvmin) and D2 from (0, Tsmin) to (1, Tvmax) cut the polygon
into four zones. Above both diagonals (zone B, dry): Tv = (Tv_dry + Tvmax)/2 with
Tv_dry = (LST - (1 - fv) Tsmax)/fv; below both (zone C, wet): Tv = (Tv_wet + Tvmin)/2 with
Tv_wet = (LST - (1 - fv) Tsmin)/fv; between them on the soil side (zone A): Tv = (Tvmin + Tvmax)/2;
between them on the vegetation side (zone D) the soil temperature is undetermined and the cell gets
no estimate (NaN).

Quality control: cells with fv > ``fv_max`` get no estimate (soil hidden); a coarse pixel needs at
least ``min_valid_fraction`` of its 1 km cells with a valid SEE, and SEE_LR inside
[``see_lr_min``, 1 - ``see_lr_min``] (the nonlinear slope diverges at 0 and 1). Cloud-masked LST
(NaN) gives NaN, never zero. Several LST acquisitions (Terra/Aqua, day/night) are downscaled
separately and the valid estimates averaged. Results are clipped below at ``clip_min`` (0 by
default, which never binds when SM_HR stays positive).

Units: LST, temperatures K; SM m3/m3; NDVI, fv, SEE dimensionless; elevation m.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from smda.assimilation.downscaling.inputs import Settings, check_inputs, elevation_corrected_lst, make_settings
from smda.jit import kernel
from smda.model.vegetation import NDVI_SOIL, NDVI_VEG, vegetation_fraction

logger = logging.getLogger(__name__)

SEE_MODELS = ("linear", "nonlinear")  # the SM(SEE) relations of smp_and_slope


# --------------------------------------------------------------------------------------------
# scalar relations (numpy, any shape) -- the published equations, also used by the tests
# --------------------------------------------------------------------------------------------
def soil_temperature(lst, fv, tv):
    """Ts = (LST - fv Tv)/(1 - fv), K. fv must be < 1."""
    lst, fv, tv = np.asarray(lst, float), np.asarray(fv, float), np.asarray(tv, float)
    return (lst - fv * tv) / (1.0 - fv)


def soil_evaporative_efficiency(ts, ts_max, ts_min, clip=True):
    """SEE = (Tsmax - Ts)/(Tsmax - Tsmin), dimensionless; clipped to [0, 1] by default."""
    see = (np.asarray(ts_max, float) - np.asarray(ts, float)) / (np.asarray(ts_max, float) - ts_min)
    return np.clip(see, 0.0, 1.0) if clip else see


def smp_and_slope(sm_lr, see_lr, model="linear"):
    """Soil moisture parameter SMp (m3/m3) and dSM/dSEE at SEE_LR (m3/m3) for 'linear' / 'nonlinear'."""
    sm_lr, see_lr = np.asarray(sm_lr, float), np.asarray(see_lr, float)
    if model == "linear":
        smp = sm_lr / see_lr
        return smp, smp
    if model == "nonlinear":
        smp = np.pi * sm_lr / np.arccos(1.0 - 2.0 * see_lr)
        return smp, smp / (np.pi * np.sqrt(see_lr * (1.0 - see_lr)))
    raise ValueError(f"unknown SEE model {model!r}; valid: {', '.join(SEE_MODELS)}")


def downscaling_relation(sm_lr, see_hr, see_lr, model="linear"):
    """SM_HR = SM_LR + (dSM/dSEE)_LR (SEE_HR - SEE_LR), m3/m3."""
    _, slope = smp_and_slope(sm_lr, see_lr, model)
    return np.asarray(sm_lr, float) + slope * (np.asarray(see_hr, float) - see_lr)


# --------------------------------------------------------------------------------------------
# numba kernels
# --------------------------------------------------------------------------------------------
@kernel
def _end_members_kernel(lst, fv, group, n_group, fv_soil_edge, fv_veg_edge, min_soil_range_k):
    """End-members per (acquisition, group): (n_acq, n_group, 4) = Tsmax, Tsmin, Tvmax, Tvmin (NaN if none)."""
    n_acq, n_cells = lst.shape
    em = np.full((n_acq, n_group, 4), np.nan)
    for a in range(n_acq):
        lmax = np.full(n_group, -np.inf)
        lmin = np.full(n_group, np.inf)
        smin = np.full(n_group, np.inf)
        vmax = np.full(n_group, -np.inf)
        for i in range(n_cells):
            g = group[i]
            t = lst[a, i]
            f = fv[i]
            if g < 0 or not np.isfinite(t) or not np.isfinite(f):
                continue
            if t > lmax[g]:
                lmax[g] = t
            if t < lmin[g]:
                lmin[g] = t
            if f <= fv_soil_edge and t < smin[g]:
                smin[g] = t
            if f >= fv_veg_edge and t > vmax[g]:
                vmax[g] = t
        for g in range(n_group):
            if not np.isfinite(lmax[g]):
                continue
            tsmax = lmax[g]
            tvmin = lmin[g]
            tsmin = smin[g] if np.isfinite(smin[g]) else tvmin
            if tsmax - tsmin < min_soil_range_k:
                continue
            tvmax = vmax[g]
            floor = tvmin + 0.5 * (tsmax - tsmin)
            if not (tvmax >= floor):
                tvmax = floor
            em[a, g, 0] = tsmax
            em[a, g, 1] = tsmin
            em[a, g, 2] = tvmax
            em[a, g, 3] = tvmin
    return em


@kernel
def _tv_hourglass(t, f, tsmax, tsmin, tvmax, tvmin):
    """Vegetation temperature (K) of one cell by the hourglass zones; NaN in zone D."""
    d1 = tsmax + f * (tvmin - tsmax)
    d2 = tsmin + f * (tvmax - tsmin)
    hi = max(d1, d2)
    lo = min(d1, d2)
    if t > hi and f > 0.0:  # zone B (dry side)
        return 0.5 * ((t - (1.0 - f) * tsmax) / f + tvmax)
    if t < lo and f > 0.0:  # zone C (wet side)
        return 0.5 * ((t - (1.0 - f) * tsmin) / f + tvmin)
    fstar = (tsmax - tsmin) / ((tsmax - tsmin) + (tvmax - tvmin))
    if f <= fstar:  # zone A (soil side)
        return 0.5 * (tvmin + tvmax)
    return np.nan  # zone D: soil temperature undetermined


@kernel
def _see_kernel(lst, fv, group, em, fv_max):
    """SEE (n_acq, n_cells), NaN where undefined."""
    n_acq, n_cells = lst.shape
    see = np.full((n_acq, n_cells), np.nan)
    for a in range(n_acq):
        for i in range(n_cells):
            g = group[i]
            t = lst[a, i]
            f = fv[i]
            if g < 0 or not np.isfinite(t) or not np.isfinite(f) or f > fv_max:
                continue
            tsmax = em[a, g, 0]
            if not np.isfinite(tsmax):
                continue
            tsmin = em[a, g, 1]
            tv = _tv_hourglass(t, f, tsmax, tsmin, em[a, g, 2], em[a, g, 3])
            if not np.isfinite(tv):
                continue
            ts = (t - f * tv) / (1.0 - f)
            s = (tsmax - ts) / (tsmax - tsmin)
            see[a, i] = min(1.0, max(0.0, s))
    return see


@kernel
def _downscale_kernel(see, pixel, sm_lr, n_cells_pix, min_valid_fraction, nonlinear, see_lr_min, clip_min):
    """SM_HR per acquisition (n_acq, n_cells) and SEE_LR (n_acq, n_pix)."""
    n_acq, n_cells = see.shape
    n_pix = sm_lr.shape[0]
    total = np.zeros((n_acq, n_pix))
    count = np.zeros((n_acq, n_pix))
    for a in range(n_acq):
        for i in range(n_cells):
            p = pixel[i]
            if p >= 0 and np.isfinite(see[a, i]):
                total[a, p] += see[a, i]
                count[a, p] += 1.0
    see_lr = np.full((n_acq, n_pix), np.nan)
    slope = np.full((n_acq, n_pix), np.nan)
    for a in range(n_acq):
        for p in range(n_pix):
            if count[a, p] == 0.0 or count[a, p] < min_valid_fraction * n_cells_pix[p]:
                continue
            s = total[a, p] / count[a, p]
            see_lr[a, p] = s
            if not np.isfinite(sm_lr[p]) or s < see_lr_min or s > 1.0 - see_lr_min:
                continue
            if nonlinear:
                smp = np.pi * sm_lr[p] / np.arccos(1.0 - 2.0 * s)
                slope[a, p] = smp / (np.pi * np.sqrt(s * (1.0 - s)))
            else:
                slope[a, p] = sm_lr[p] / s
    out = np.full((n_acq, n_cells), np.nan)
    for a in range(n_acq):
        for i in range(n_cells):
            p = pixel[i]
            if p < 0 or not np.isfinite(see[a, i]) or not np.isfinite(slope[a, p]):
                continue
            out[a, i] = max(clip_min, sm_lr[p] + slope[a, p] * (see[a, i] - see_lr[a, p]))
    return out, see_lr


@kernel
def _mean_valid(x):
    """Mean over axis 0 of the finite values; NaN where none. (n_acq, n) -> (n,)."""
    n_acq, n = x.shape
    out = np.full(n, np.nan)
    for i in range(n):
        s = 0.0
        c = 0
        for a in range(n_acq):
            if np.isfinite(x[a, i]):
                s += x[a, i]
                c += 1
        if c > 0:
            out[i] = s / c
    return out


# --------------------------------------------------------------------------------------------
# orchestration
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class DispatchSettings(Settings):
    """DISPATCH settings (see the module docstring for their meaning; the common ones in Settings)."""

    see_model: str = "linear"  # one of SEE_MODELS
    end_members: str = "pixel"  # "pixel" (per coarse pixel) or "scene" (whole domain)
    ndvi_soil: float = NDVI_SOIL
    ndvi_veg: float = NDVI_VEG
    fv_soil_edge: float = 0.2
    fv_veg_edge: float = 0.7
    fv_max: float = 0.9
    min_soil_range_k: float = 2.0
    see_lr_min: float = 0.02

    def problems(self) -> list[str]:
        errors = super().problems()
        if self.see_model not in SEE_MODELS:
            errors.append(f"see_model={self.see_model!r}; valid: {', '.join(SEE_MODELS)}")
        if self.end_members not in ("pixel", "scene"):
            errors.append(f"end_members={self.end_members!r}; valid: pixel, scene")
        if not self.ndvi_veg > self.ndvi_soil:
            errors.append(f"ndvi_veg ({self.ndvi_veg}) must exceed ndvi_soil ({self.ndvi_soil})")
        for name in ("fv_soil_edge", "fv_veg_edge"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                errors.append(f"{name}={v}; allowed 0..1")
        if not 0.0 < self.fv_max < 1.0:
            errors.append(f"fv_max={self.fv_max}; allowed 0 < fv_max < 1")
        if not 0.0 <= self.see_lr_min < 0.5:
            errors.append(f"see_lr_min={self.see_lr_min}; allowed 0..0.5")
        if not self.min_soil_range_k > 0.0:
            errors.append(f"min_soil_range_k={self.min_soil_range_k}; must be > 0 K")
        return errors


def end_members(lst, fv, group, n_group, settings: DispatchSettings = DispatchSettings()):
    """End-members (n_acq, n_group, 4) = (Tsmax, Tsmin, Tvmax, Tvmin) K, NaN where undefined.

    lst (n_acq, n_cells) K, fv (n_cells,), group (n_cells,) int (-1 ignored).
    """
    lst = np.ascontiguousarray(np.atleast_2d(lst), dtype=np.float64)
    return _end_members_kernel(lst, np.ascontiguousarray(fv, np.float64), np.ascontiguousarray(group, np.int64),
                               int(n_group), settings.fv_soil_edge, settings.fv_veg_edge, settings.min_soil_range_k)


def vegetation_temperature(lst, fv, tsmax, tsmin, tvmax, tvmin):
    """Hourglass vegetation temperature (K) for arrays of LST and fv with scalar end-members (NaN in zone D)."""
    lst, fv = np.broadcast_arrays(np.asarray(lst, float), np.asarray(fv, float))
    out = _tv_array(np.ascontiguousarray(lst).ravel(), np.ascontiguousarray(fv).ravel(),
                    float(tsmax), float(tsmin), float(tvmax), float(tvmin))
    return out.reshape(lst.shape)


@kernel
def _tv_array(lst, fv, tsmax, tsmin, tvmax, tvmin):
    out = np.empty(lst.shape[0])
    for k in range(lst.shape[0]):
        out[k] = _tv_hourglass(lst[k], fv[k], tsmax, tsmin, tvmax, tvmin)
    return out


def downscale_fields(inp, s: DispatchSettings):
    """DISPATCH on checked inputs; returns (sm (n_cells,), per-acquisition sm (n_acq, n_cells), see, see_lr)."""
    fv = vegetation_fraction(inp.ndvi, s.ndvi_soil, s.ndvi_veg)
    lst = inp.lst
    if inp.elevation_m is not None and s.elevation_correction:
        lst = elevation_corrected_lst(lst, inp.elevation_m, inp.pixel, inp.n_pix, s.lapse_rate_k_per_km)
    if s.end_members == "scene":
        group, n_group = np.where(inp.pixel >= 0, 0, -1).astype(np.int64), 1
    else:
        group, n_group = inp.pixel, inp.n_pix
    em = _end_members_kernel(lst, fv, group, n_group, s.fv_soil_edge, s.fv_veg_edge, s.min_soil_range_k)
    see = _see_kernel(lst, fv, group, em, s.fv_max)
    per_acq, see_lr = _downscale_kernel(see, inp.pixel, inp.sm_coarse, inp.cells_per_pixel().astype(np.float64),
                                        s.min_valid_fraction, s.see_model == "nonlinear", s.see_lr_min, s.clip_min)
    return _mean_valid(per_acq), per_acq, see, see_lr


def downscale(*, sm_coarse, pixel_of_cell, lst, ndvi, elevation_m=None, tb_h=None, tb_v=None, history=None,
              **settings):
    """DISPATCH 1 km soil moisture for one coarse observation time.

    Parameters
    ----------
    sm_coarse : (n_pix,) m3/m3, NaN where no coarse retrieval.
    pixel_of_cell : (nrows, ncols) int, coarse pixel of each 1 km cell, -1 outside / not land.
    lst : (n_acq, nrows, ncols) or (nrows, ncols) K, NaN for clouds / bad QC.
    ndvi : (nrows, ncols).
    elevation_m : (nrows, ncols) m or None (no elevation correction).
    tb_h, tb_v, history : accepted for the common signature, unused by DISPATCH.
    **settings : fields of :class:`DispatchSettings`.

    Returns
    -------
    (nrows, ncols) m3/m3 with NaN where no estimate.
    """
    s = make_settings(DispatchSettings, settings)
    inp = check_inputs(sm_coarse, pixel_of_cell, lst, ndvi, elevation_m, tb_h, tb_v)
    sm, *_ = downscale_fields(inp, s)
    logger.debug("DISPATCH: %d of %d cells estimated", int(np.isfinite(sm).sum()), sm.size)
    return inp.unflatten(sm)
