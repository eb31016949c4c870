"""Quality control of satellite observations: product flags, fill values, physical ranges, model screening.

Every rejection sets a QC code (:data:`smda.assimilation.observations.table.QC_REASONS`) on the row, which stays in the
table (the diagnostics file reports it); the first reason that applies wins, in the order of
:data:`REASON_ORDER`, so ``ObsTable.qc_counts()`` counts each rejected observation once. Flagged
surface conditions come before the range check, so that an ocean TB of 80 K counts as open water.

Product flags (a set bit means the condition is flagged or failed; PRODUCTS.md sections 2, 3, 6). Which
bits reject is a reader option per flag field, ``reject_bits={field: [bit, ...]}`` (replacing that field's
default); the reason of each bit comes from the product's bit table below (bits without one count as
``product_quality_flag``):

- SMAP ``tb_qual_flag_{h,v}`` (default: bit 0 quality). A rejected row is ``rfi`` when bit 2 or 3 is also
  set, ``fill_value`` when bit 12 is set, else ``product_quality_flag`` (GEOSldas practice).
- SMAP ``retrieval_qual_flag`` (default: bit 0, retrieval not recommended).
- SMAP ``surface_flag`` (default: bits 0/1 water ``open_water``, 5/6 snow or ice ``snow``; for soil
  moisture also 10 dense vegetation ``dense_vegetation``: TB is assimilated through a vegetation-aware
  operator). ``static_water_body_fraction`` > 0.05 is ``open_water`` too.
- Frozen ground is NOT taken from the ``surface_flag`` bits 7 (radiometer frozen ground) and 8 (model
  frozen ground) by default: a set bit means "flagged or not determined", and bit 7 is set where the
  radiometer freeze/thaw detection does not run (on the real L2 sample it is set on 45 cells whose
  GMAO surface temperature is 278-298 K). Frozen ground comes from the product's own freeze/thaw field
  (SMAP ``freeze_thaw_fraction`` above ``max_frozen_fraction``, where it is not fill) and from the
  model's soil temperature (:func:`model_screening`, reason ``model_frozen_or_snow``). ``reject_bits``
  can add bits 7/8 back.
- SMOS L2 ``Science_Flags`` (default: 5 OW and 13/14 wetlands/flood ``open_water``, 6-8 snow ``snow``,
  11 frost and 12 ice ``frozen_ground``, 3/4 topography ``product_quality_flag``); RFI when
  ``RFI_Prob`` > 0.2 or ``(N_RFI_X + N_RFI_Y) / M_AVA0`` > 0.2 (qa4sm); ``Confidence_Flags`` (default for
  soil moisture: 16 NO_PROD ``fill_value``, 32 RANGE ``out_of_range``, 64 DQX and 128 CHI2_P
  ``product_quality_flag``; for TB only 128 CHI2_P, the others describe the soil moisture value).

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


#: Reason of each bit of the product flag fields (bits not listed: ``product_quality_flag``).
BIT_REASONS = {
    "tb_qual_flag": {2: "rfi", 3: "rfi", 12: "fill_value", 14: "rfi"},
    "retrieval_qual_flag": {},
    "surface_flag": {0: "open_water", 1: "open_water", 2: "open_water", 4: "heavy_rain", 5: "snow", 6: "snow",
                     7: "frozen_ground", 8: "frozen_ground", 10: "dense_vegetation"},
    "Science_Flags": {5: "open_water", 6: "snow", 7: "snow", 8: "snow", 11: "frozen_ground", 12: "frozen_ground",
                      13: "open_water", 14: "open_water", 25: "heavy_rain"},
    "Confidence_Flags": {4: "fill_value", 5: "out_of_range"},
}
#: Default rejecting bits per flag field (and kind where they differ); see the module docstring.
DEFAULT_REJECT_BITS = {
    "tb_qual_flag": (0,),
    "retrieval_qual_flag": (0,),
    "surface_flag": {"tb": (0, 1, 5, 6), "sm": (0, 1, 5, 6, 10)},
    "Science_Flags": (3, 4, 5, 6, 7, 8, 11, 12, 13, 14),
    "Confidence_Flags": {"tb": (7,), "sm": (4, 5, 6, 7)},
}


def reject_bits_for(field: str, kind: str, reject_bits=None, n_bits: int = 32) -> tuple:
    """Rejecting bits of flag ``field`` for ``kind``: the reader option ``reject_bits[field]`` when given,
    else :data:`DEFAULT_REJECT_BITS`. ValueError naming the field for bits outside 0..n_bits-1."""
    if reject_bits and field in reject_bits:
        bits = reject_bits[field]
        bits = () if bits is None else tuple(np.atleast_1d(bits).tolist())
        bad = [b for b in bits if not (isinstance(b, (int, np.integer)) and 0 <= b < n_bits)]
        if bad:
            raise ValueError(f"reject_bits[{field!r}]: bits must be integers in 0..{n_bits - 1}, got {bad}")
        return tuple(int(b) for b in bits)
    d = DEFAULT_REJECT_BITS[field]
    return d[kind] if isinstance(d, dict) else d


def check_reject_bits(reject_bits, fields, product: str):
    """ValueError naming the product when ``reject_bits`` is not a mapping of its flag fields."""
    if reject_bits is None:
        return
    if not isinstance(reject_bits, dict):
        raise ValueError(f"{product}: reject_bits must be a mapping {{flag field: [bits]}}, got {reject_bits!r}")
    unknown = sorted(set(reject_bits) - set(fields))
    if unknown:
        raise ValueError(f"{product}: reject_bits has unknown flag field(s) {unknown}; valid: {', '.join(fields)}")


def bit_masks(flags, bits, field: str, valid=None) -> dict:
    """``{reason: mask}`` of the rows with any of ``bits`` set in ``flags`` (reasons from :data:`BIT_REASONS`);
    ``valid`` (bool) limits the test to rows whose flag is not fill."""
    f = np.asarray(flags)
    ok = np.ones(f.shape, bool) if valid is None else np.asarray(valid, bool)
    out: dict = {}
    for b in bits:
        reason = BIT_REASONS.get(field, {}).get(b, "product_quality_flag")
        m = ok & _bit(f, b)
        out[reason] = out[reason] | m if reason in out else m
    return out


def smap_tb_qual_masks(tb_qual, reject_bits=None) -> dict:
    """Masks from a SMAP ``tb_qual_flag_{h,v}`` (uint16; fill 65534 treated as fill). A row rejected by bit 0
    is ``rfi`` when bit 2 or 3 is also set and ``fill_value`` when bit 12 is set."""
    q = np.asarray(tb_qual)
    fill = q == 65534
    bits = reject_bits_for("tb_qual_flag", "tb", reject_bits, 16)
    masks = bit_masks(q, [b for b in bits if b != 0], "tb_qual_flag", ~fill)
    if 0 in bits:
        bad = _bit(q, 0) & ~fill
        masks = merge_masks(masks, {"fill_value": bad & _bit(q, 12), "rfi": bad & _bit(q, 2, 3),
                                    "product_quality_flag": bad})
    return merge_masks({"fill_value": fill}, masks)


def smap_surface_masks(surface_flag, water_fraction=None, kind="tb", reject_bits=None, freeze_thaw_fraction=None,
                       max_frozen_fraction: float = 0.0) -> dict:
    """Masks from a SMAP ``surface_flag`` (uint16), the static water fraction (0-1) and the product's
    ``freeze_thaw_fraction`` (0-1, NaN where fill); see the module docstring for the frozen-ground rule."""
    s = np.asarray(surface_flag)
    fill = s == 65534
    masks = bit_masks(s, reject_bits_for("surface_flag", kind, reject_bits, 16), "surface_flag", ~fill)
    if water_fraction is not None:
        w = np.asarray(water_fraction, float)
        masks = merge_masks(masks, {"open_water": np.isfinite(w) & (w > MAX_WATER_FRACTION) & (w <= 1.0)})
    if freeze_thaw_fraction is not None:
        ft = np.asarray(freeze_thaw_fraction, float)
        with np.errstate(invalid="ignore"):
            masks = merge_masks(masks, {"frozen_ground": np.isfinite(ft) & (ft > max_frozen_fraction) & (ft <= 1.0)})
    return masks


def smap_retrieval_masks(retrieval_qual, reject_bits=None) -> dict:
    """Masks from a SMAP ``retrieval_qual_flag`` (default: bit 0 set, retrieval not recommended)."""
    q = np.asarray(retrieval_qual)
    fill = q == 65534
    bits = reject_bits_for("retrieval_qual_flag", "sm", reject_bits, 16)
    return merge_masks({"fill_value": fill}, bit_masks(q, bits, "retrieval_qual_flag", ~fill))


def smos_science_masks(science_flags, reject_bits=None, kind="sm") -> dict:
    """Masks from SMOS ``Science_Flags`` (L2 bit positions; also used for CATDS L3)."""
    return bit_masks(science_flags, reject_bits_for("Science_Flags", kind, reject_bits), "Science_Flags")


def smos_confidence_masks(confidence_flags, reject_bits=None, kind="sm") -> dict:
    """Masks from SMOS L2 ``Confidence_Flags`` (bits 4 NO_PROD, 5 RANGE, 6 DQX, 7 CHI2_P; TB: 7 only)."""
    return bit_masks(confidence_flags, reject_bits_for("Confidence_Flags", kind, reject_bits, 16), "Confidence_Flags")


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
