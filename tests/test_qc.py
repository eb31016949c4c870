"""Quality control: flag decoding, reason order, NaN handling and model-based screening."""

import numpy as np
import pytest

from smda.assimilation.observations.qc import (
    apply_masks,
    model_screening,
    range_mask,
    smap_retrieval_masks,
    smap_surface_masks,
    smap_tb_qual_masks,
    smos_confidence_masks,
    smos_rfi_mask,
    smos_science_masks,
)
from smda.assimilation.observations.table import QC_CODES, ObsTable

QC_CODES_INV = {v: k for k, v in QC_CODES.items()}


def table(values, kind="tb"):
    n = len(values)
    return ObsTable(time=np.datetime64("2020-01-01T00:00:00"), x=np.zeros(n), y=np.zeros(n), lat=0.0, lon=0.0,
                    kind=kind, pol="H" if kind == "tb" else "", angle_deg=40.0, value=np.asarray(values, float),
                    error_std=4.0, flags=0, footprint="M36", row=0, col=np.arange(n), fov_km=20.0, source="test", qc=0)


def test_smap_tb_quality_bits():
    q = np.array([0, 1, 1 | 4, 1 | 8, 4, 1 | (1 << 12), 65534], np.uint16)
    m = smap_tb_qual_masks(q)
    t = apply_masks(table(np.full(7, 250.0)), m)
    # bit 2 alone (RFI detected and corrected, quality good) is accepted, as in GEOSldas
    assert [QC_CODES_INV[c] for c in t.qc] == ["accepted", "product_quality_flag", "rfi", "rfi", "accepted",
                                                 "fill_value", "fill_value"]


def test_smap_surface_and_retrieval_bits():
    s = np.array([0, 1, 2, 1 << 5, 1 << 6, 1 << 7, 1 << 8, 1 << 10, 1 << 4, 65534], np.uint16)
    tb = smap_surface_masks(s, kind="tb")
    sm = smap_surface_masks(s, kind="sm")
    assert list(np.flatnonzero(tb["open_water"])) == [1, 2]
    assert list(np.flatnonzero(tb["snow"])) == [3, 4]
    # bits 7/8 ("frozen ground, or not determined") do not reject by default; frozen ground comes from the
    # product's freeze/thaw fraction (and the model's soil temperature, model_screening)
    assert "frozen_ground" not in tb and "frozen_ground" not in sm
    assert "dense_vegetation" not in tb and list(np.flatnonzero(sm["dense_vegetation"])) == [7]
    ft = smap_surface_masks(s, kind="tb", freeze_thaw_fraction=np.r_[np.zeros(5), 1.0, 0.0, 0.2, np.nan, 0.5])
    assert list(np.flatnonzero(ft["frozen_ground"])) == [5, 7, 9]
    assert list(np.flatnonzero(smap_surface_masks(s, freeze_thaw_fraction=np.full(10, 0.2),
                                                  max_frozen_fraction=0.5).get("frozen_ground", []))) == []
    # reject_bits replaces a field's defaults: bits 7 and 8 back, with their reason; bit 4 precipitation
    opt = smap_surface_masks(s, kind="tb", reject_bits={"surface_flag": [7, 8, 4]})
    assert list(np.flatnonzero(opt["frozen_ground"])) == [5, 6] and list(np.flatnonzero(opt["heavy_rain"])) == [8]
    assert "open_water" not in opt                                     # bits 0/1 no longer reject
    with pytest.raises(ValueError, match=r"reject_bits\['surface_flag'\].*0..15"):
        smap_surface_masks(s, reject_bits={"surface_flag": [16]})
    w = smap_surface_masks(np.zeros(3, np.uint16), water_fraction=[0.04, 0.06, -9999.0])
    assert list(w["open_water"]) == [False, True, False]
    r = smap_retrieval_masks(np.array([0, 1, 6, 65534], np.uint16))
    assert list(r["product_quality_flag"]) == [False, True, False, False] and r["fill_value"][3]


def test_smos_flags_and_rfi():
    sf = np.array([0, 1 << 5, 1 << 7, 1 << 11, 1 << 12, 1 << 3, 1 << 10, 1 << 18], np.uint32)
    m = smos_science_masks(sf)
    assert list(np.flatnonzero(m["open_water"])) == [1]
    assert list(np.flatnonzero(m["snow"])) == [2]
    assert list(np.flatnonzero(m["frozen_ground"])) == [3, 4]
    assert list(np.flatnonzero(m["product_quality_flag"])) == [5]      # NOMINAL (10) and SEA_ICE (18) pass
    c = smos_confidence_masks(np.array([0, 16, 32, 64, 128, 2], np.uint16))
    assert c["fill_value"][1] and c["out_of_range"][2] and c["product_quality_flag"][3:5].all()
    assert not any(v[5] for v in c.values())                         # RFI_PRONE_H alone is not a rejection
    ct = smos_confidence_masks(np.array([0, 16, 32, 64, 128], np.uint16), kind="tb")
    assert list(ct) == ["product_quality_flag"] and list(np.flatnonzero(ct["product_quality_flag"])) == [4]
    r = smos_rfi_mask(rfi_prob=[0.0, 0.19, 0.21, 0.0], n_rfi=[0, 0, 0, 3], n_views=[10, 10, 10, 10])
    assert list(r) == [False, False, True, True]
    assert not smos_rfi_mask(n_rfi=[5], n_views=[0])[0]              # no views: ratio undefined, not RFI


def test_reason_order_counts_and_nan():
    vals = np.array([250.0, np.nan, 400.0, 250.0, 250.0])
    masks = {"product_quality_flag": np.array([0, 0, 1, 1, 0], bool), "snow": np.array([0, 1, 0, 1, 0], bool)}
    t = apply_masks(table(vals), {**masks, "out_of_range": range_mask(np.full(5, "tb"), vals)})
    # snow before product quality before range; NaN never accepted
    assert [QC_CODES_INV[c] for c in t.qc] == ["accepted", "snow", "product_quality_flag", "snow", "accepted"]
    assert t.qc_counts() == {"accepted": 2, "snow": 2, "product_quality_flag": 1}
    t2 = apply_masks(table([np.nan, 1.0]), {})
    assert t2.qc_counts() == {"accepted": 1, "fill_value": 1}
    with pytest.raises(ValueError, match="unknown QC reasons"):
        apply_masks(table([1.0]), {"cloud": np.array([True])})
    with pytest.raises(ValueError, match="shape"):
        apply_masks(table([1.0, 2.0]), {"snow": np.array([True])})
    r = range_mask(np.array(["tb", "tb", "sm", "sm", "sm"]), [99.0, 320.0, -0.01, 0.6, 0.61])
    assert list(r) == [True, False, True, False, True]


def test_model_screening_reasons():
    vals = np.array([250.0, 250.0, 250.0, 250.0, 250.0, 296.0, 294.0, 250.0])
    t = table(vals)
    nan = np.nan
    out = model_screening(
        t,
        t_soil_K=np.array([280, 280, 280, 280, 280, 290, 290, nan]),
        frozen_fraction=np.array([0, 0.1, 0, 0, 0, 0, 0, nan]),
        snow_fraction=np.array([0, 0, 0.2, 0, 0, 0, 0, nan]),
        water_fraction=np.array([0, 0, 0, 0.06, 0.05, 0, 0, nan]),
        rain_24h_mm=np.array([0, 0, 0, 0, 30.0, 0, 0, nan]),
        heavy_rain_mm=20.0)
    assert [QC_CODES_INV[c] for c in out.qc] == [
        "accepted", "model_frozen_or_snow", "model_frozen_or_snow", "open_water", "heavy_rain",
        "tb_exceeds_soil_temperature", "accepted", "accepted"]        # 294 <= 290 + 5; NaN = unknown
    assert np.all(t.qc == 0)                                          # pure: input unchanged
    assert sum(out.qc_counts().values()) == len(t)
    # earlier rejections keep their reason
    pre = t.with_qc(np.array([0, 1, 0, 0, 0, 0, 0, 0], bool), "rfi")
    out2 = model_screening(pre, t_soil_K=280.0, frozen_fraction=np.array([0, 1, 0, 0, 0, 0, 0, 0.0]),
                           snow_fraction=0.0, water_fraction=0.0, rain_24h_mm=0.0)
    assert QC_CODES_INV[out2.qc[1]] == "rfi"
    # soil moisture rows are not checked against soil temperature
    sm = model_screening(table([0.3, 0.3], kind="sm"), t_soil_K=270.0, frozen_fraction=0.0, snow_fraction=0.0,
                         water_fraction=0.0, rain_24h_mm=0.0)
    assert sm.accepted.all()


def test_model_screening_bad_inputs():
    t = table([250.0, 250.0])
    ok = dict(t_soil_K=280.0, frozen_fraction=0.0, snow_fraction=0.0, water_fraction=0.0, rain_24h_mm=0.0)
    with pytest.raises(ValueError, match="t_soil_K.*shape"):
        model_screening(t, **{**ok, "t_soil_K": np.zeros(3)})
    with pytest.raises(ValueError, match="kelvin"):
        model_screening(t, **{**ok, "t_soil_K": 15.0})
    with pytest.raises(ValueError, match="water_fraction.*\\[0, 1\\]"):
        model_screening(t, **{**ok, "water_fraction": 5.0})
    with pytest.raises(ValueError, match="rain_24h_mm"):
        model_screening(t, **{**ok, "rain_24h_mm": -1.0})
