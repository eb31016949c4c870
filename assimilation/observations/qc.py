"""Quality control of satellite observations: product flags, fill values, physical ranges, model screening.

Every rejection sets a QC code (:data:`smda.assimilation.observations.table.QC_REASONS`) on the row, which stays in the
table (the diagnostics file reports it); the first reason that applies wins, in the order of
:data:`REASON_ORDER`, so ``ObsTable.qc_counts()`` counts each rejected observation once. Flagged
surface conditions come before the range check, so that an ocean TB of 80 K counts as open water.

Product flags (a set bit means the condition is flagged or failed; PRODUCTS.md sections 2, 3, 6):

- SMAP ``tb_qual_flag_{h,v}``: bit 0 quality, 2 RFI detection, 3 RFI correction, 12 null value. An
  observation is rejected when bit 0 is set (GEOSldas practice); the reason is ``rfi`` when bit 2 or 3
  is also set, ``fill_value`` when bit 12 is set, else ``product_quality_flag``.
- SMAP ``retrieval_qual_flag``: bit 0 set = retrieval not recommended (``product_quality_flag``).
- SMAP ``surface_flag``: bits 0/1 water (``open_water``), 5/6 snow or ice (``snow``), 7/8 radiometer or
  model frozen ground (``frozen_ground``), 10 dense vegetation (``dense_vegetation``, soil moisture only:
  TB is assimilated through a vegetation-aware operator). ``static_water_body_fraction`` > 0.05 is
  ``open_water`` too.
- SMOS L2 ``Science_Flags``: bit 5 OW and 13/14 wetlands/flood (``open_water``), 6-8 snow (``snow``),
  11 frost and 12 ice (``frozen_ground``), 3/4 topography (``product_quality_flag``); RFI when
  ``RFI_Prob`` > 0.2 or ``(N_RFI_X + N_RFI_Y) / M_AVA0`` > 0.2 (qa4sm); ``Confidence_Flags`` 16 NO_PROD
  (``fill_value``), 32 RANGE (``out_of_range``), 64 DQX and 128 CHI2_P (``product_quality_flag``).

Physical ranges: TB 100-320 K (GEOSldas), SM 0-0.6 m3/m3 (values above porosity are not physical; the
SMAP valid range [0.02, 0.5] is not enforced by the product itself).

Model-based screening (SMAP L4 practice, Reichle et al. 2017, doi:10.1175/JHM-D-16-0138.1): no update
where the modelled soil is frozen or snow-covered, where open water exceeds 5 % of the footprint, where
heavy rain fell in the last 24 h, or where TB exceeds the soil temperature by more than 5 K (a physically
impossible emissivity > 1, a sign of RFI or of a wrong model temperature).
"""

from __future__ import annotations

import numpy as np

from smda.assimilation.observations.table import QC_CODES, ObsTable

#: Order in which reasons are applied (first match wins).
REASON_ORDER = (
    "fill_value", "rfi", "frozen_ground", "snow", "open_water", "dense_vegetation", "product_quality_flag",
    "out_of_range",
)
PHYSICAL_RANGE = {"tb": (100.0, 320.0), "sm": (0.0, 0.6)}
MAX_WATER_FRACTION = 0.05


def _bit(flags, *bits) -> np.ndarray:
    f = np.asarray(flags).astype(np.uint64)
    mask = np.uint64(sum(1 << b for b in bits))
    return (f & mask) != 0


def apply_masks(table: ObsTable, masks: dict) -> ObsTable:
    """Set QC codes from ``{reason: bool (n_obs,)}`` in :data:`REASON_ORDER`; NaN values become fill.

    Any row whose value is NaN but is still accepted afterwards is rejected as ``fill_value``, so a NaN
    is never passed on as an accepted observation.
    """
    unknown = set(masks) - set(QC_CODES)
    if unknown:
        raise ValueError(f"unknown QC reasons {sorted(unknown)}; valid: {', '.join(QC_CODES)}")
    order = list(REASON_ORDER) + [r for r in masks if r not in REASON_ORDER]
    for reason in order:
        if reason in masks:
            m = np.asarray(masks[reason], bool)
            if m.shape != (len(table),):
                raise ValueError(f"QC mask {reason!r} has shape {m.shape}, expected ({len(table)},)")
            table = table.with_qc(m, reason)
    return table.with_qc(~np.isfinite(table.value), "fill_value")


def range_mask(kind, value, ranges=None) -> np.ndarray:
    """True where a finite value lies outside the physical range of its kind (see PHYSICAL_RANGE)."""
    ranges = PHYSICAL_RANGE if ranges is None else {**PHYSICAL_RANGE, **ranges}
    kind = np.asarray(kind)
    value = np.asarray(value, float)
    out = np.zeros(value.shape, bool)
    for k, (lo, hi) in ranges.items():
        sel = kind == k
        with np.errstate(invalid="ignore"):
            out |= sel & np.isfinite(value) & ((value < lo) | (value > hi))
    return out


def smap_tb_qual_masks(tb_qual) -> dict:
    """Masks from a SMAP ``tb_qual_flag_{h,v}`` (uint16; fill 65534 treated as fill)."""
    q = np.asarray(tb_qual)
    fill = q == 65534
    bad = _bit(q, 0) & ~fill
    return {
        "fill_value": fill | (bad & _bit(q, 12)),
        "rfi": bad & _bit(q, 2, 3),
        "product_quality_flag": bad,
    }


def smap_surface_masks(surface_flag, water_fraction=None, kind="tb") -> dict:
    """Masks from a SMAP ``surface_flag`` (uint16) and optional static water fraction (0-1)."""
    s = np.asarray(surface_flag)
    fill = s == 65534
    ok = ~fill
    water = ok & _bit(s, 0, 1)
    if water_fraction is not None:
        w = np.asarray(water_fraction, float)
        water |= np.isfinite(w) & (w > MAX_WATER_FRACTION) & (w <= 1.0)
    masks = {
        "open_water": water,
        "snow": ok & _bit(s, 5, 6),
        "frozen_ground": ok & _bit(s, 7, 8),
    }
    if kind == "sm":
        masks["dense_vegetation"] = ok & _bit(s, 10)
    return masks


def smap_retrieval_masks(retrieval_qual) -> dict:
    """Masks from a SMAP ``retrieval_qual_flag`` (bit 0 set: not recommended)."""
    q = np.asarray(retrieval_qual)
    fill = q == 65534
    return {"fill_value": fill, "product_quality_flag": ~fill & _bit(q, 0)}


def smos_science_masks(science_flags) -> dict:
    """Masks from SMOS ``Science_Flags`` (L2 bit positions; also used for CATDS L3)."""
    s = np.asarray(science_flags)
    return {
        "open_water": _bit(s, 5, 13, 14),
        "snow": _bit(s, 6, 7, 8),
        "frozen_ground": _bit(s, 11, 12),
        "product_quality_flag": _bit(s, 3, 4),
    }


def smos_confidence_masks(confidence_flags) -> dict:
    """Masks from SMOS L2 ``Confidence_Flags`` (masks 16 NO_PROD, 32 RANGE, 64 DQX, 128 CHI2_P)."""
    c = np.asarray(confidence_flags)
    return {
        "fill_value": _bit(c, 4),
        "out_of_range": _bit(c, 5),
        "product_quality_flag": _bit(c, 6, 7),
    }


def smos_rfi_mask(rfi_prob=None, n_rfi=None, n_views=None, max_rfi_prob=0.2, max_rfi_ratio=0.2):
    """RFI mask (qa4sm): RFI probability above ``max_rfi_prob`` or flagged-view ratio above ``max_rfi_ratio``."""
    out = None
    if rfi_prob is not None:
        p = np.asarray(rfi_prob, float)
        out = np.isfinite(p) & (p > max_rfi_prob)
    if n_rfi is not None and n_views is not None:
        n = np.asarray(n_views, float)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(n > 0, np.asarray(n_rfi, float) / np.where(n > 0, n, 1.0), 0.0)
        m = ratio > max_rfi_ratio
        out = m if out is None else out | m
    return out


def merge_masks(*dicts) -> dict:
    """Union of several ``{reason: mask}`` dicts (masks of the same reason are OR-ed)."""
    out: dict = {}
    for d in dicts:
        for k, m in d.items():
            m = np.asarray(m, bool)
            out[k] = out[k] | m if k in out else m
    return out


def _per_obs(name, arr, n):
    a = np.asarray(arr, float)
    if a.ndim == 0:
        a = np.full(n, float(a))
    if a.shape != (n,):
        raise ValueError(f"model_screening: {name} has shape {a.shape}, expected ({n},) (one per observation)")
    return a


def model_screening(table: ObsTable, *, t_soil_K, frozen_fraction, snow_fraction, water_fraction,
                    rain_24h_mm, heavy_rain_mm: float = 10.0, max_frozen_fraction: float = 0.0,
                    max_snow_fraction: float = 0.0, max_water_fraction: float = MAX_WATER_FRACTION,
                    max_tb_excess_K: float = 5.0) -> ObsTable:
    """Model-based screening of observations (SMAP L4 practice); pure: returns a new table.

    Parameters
    ----------
    table : ObsTable with n_obs rows.
    t_soil_K : (n_obs,) modelled surface soil temperature over the footprint, K.
    frozen_fraction, snow_fraction, water_fraction : (n_obs,) footprint fractions, 0-1.
    rain_24h_mm : (n_obs,) rain over the footprint in the last 24 h, mm (kg m-2).
    heavy_rain_mm : threshold above which no update is made (default 10 mm per 24 h, a project choice).
    max_frozen_fraction, max_snow_fraction : reject where the fraction exceeds this (default 0: any).
    max_water_fraction : reject where open water exceeds this (default 0.05).
    max_tb_excess_K : reject TB rows with TB > t_soil_K + this (default 5 K).

    NaN in a model quantity means "unknown" and that test is skipped for the observation. Scalars are
    broadcast. Codes: ``model_frozen_or_snow``, ``open_water``, ``heavy_rain``,
    ``tb_exceeds_soil_temperature``; rows already rejected keep their first reason.
    """
    n = len(table)
    t_soil = _per_obs("t_soil_K", t_soil_K, n)
    frozen = _per_obs("frozen_fraction", frozen_fraction, n)
    snow = _per_obs("snow_fraction", snow_fraction, n)
    water = _per_obs("water_fraction", water_fraction, n)
    rain = _per_obs("rain_24h_mm", rain_24h_mm, n)
    for name, a in (("frozen_fraction", frozen), ("snow_fraction", snow), ("water_fraction", water)):
        if np.any(np.isfinite(a) & ((a < -1e-9) | (a > 1 + 1e-9))):
            raise ValueError(f"model_screening: {name} must lie in [0, 1] (fraction), got min "
                             f"{np.nanmin(a):g}, max {np.nanmax(a):g}")
    if np.any(np.isfinite(rain) & (rain < 0)):
        raise ValueError("model_screening: rain_24h_mm must be >= 0 mm")
    if np.any(np.isfinite(t_soil) & ((t_soil < 150) | (t_soil > 400))):
        raise ValueError("model_screening: t_soil_K must be in kelvin (150-400 K); got values outside")
    with np.errstate(invalid="ignore"):
        cold = (frozen > max_frozen_fraction) | (snow > max_snow_fraction)
        wet = water > max_water_fraction
        storm = rain > heavy_rain_mm
        hot = (table.kind == "tb") & (table.value > t_soil + max_tb_excess_K)
    table = table.with_qc(cold, "model_frozen_or_snow")
    table = table.with_qc(wet, "open_water")
    table = table.with_qc(storm, "heavy_rain")
    return table.with_qc(hot, "tb_exceeds_soil_temperature")
