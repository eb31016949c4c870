"""In situ readers on the real ISMN samples (COSMOS, SMOSMANIA, REMEDHUS) and the plain CSV format."""

import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from smda.run.insitu import load_stations, station_summary, write_csv

DATA = Path(os.environ.get("SMDA_SAMPLE_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))
ISMN = DATA / "ismn"
needs_data = pytest.mark.skipif(not ISMN.is_dir(), reason=f"sample data folder {ISMN} is absent")


def _copy(name, tmp_path):
    dst = tmp_path / name
    shutil.copytree(ISMN / name, dst)
    return dst


def _listing(p):
    return sorted(str(f.relative_to(p)) for f in p.rglob("*"))


@needs_data
def test_remedhus_ceop_format_values_depths_flags(tmp_path):
    src = _copy("REMEDHUS_header_values_2005-2007", tmp_path)
    before = _listing(src)
    st = load_stations(src, depth_m=(0, 0.05), cache_dir=tmp_path / "cache")
    assert _listing(src) == before          # nothing written next to the data
    assert [s.name for s in st] == ["CasaGorrizo", "GranjaToresana"]
    casa, granja = st
    assert casa.network == "REMEDHUS" and casa.instrument == "Stevens-Hydra-Probe"
    assert (casa.lat, casa.lon) == pytest.approx((41.23432, -5.47197))
    assert (granja.lat, granja.lon) == pytest.approx((41.46426, -5.44884))
    assert (casa.depth_from, casa.depth_to) == (0.0, 0.05)
    # only "G" values kept: counted in the files (19141 lines, 454 with D flags)
    assert (len(casa.sm), casa.n_raw) == (18687, 19141)
    assert (len(granja.sm), granja.n_raw) == (17539, 18132)
    assert str(casa.sm.index.tz) == "UTC"
    assert casa.sm.index[0] == pd.Timestamp("2005-03-15 18:00", tz="UTC")
    assert casa.sm.iloc[0] == pytest.approx(0.155)
    assert casa.sm.index[-1] == pd.Timestamp("2007-05-22 07:00", tz="UTC")
    assert casa.sm.iloc[-1] == pytest.approx(0.252)
    assert granja.sm.iloc[0] == pytest.approx(0.009)
    assert casa.sm.between(0, 1).all() and casa.sm.index.is_monotonic_increasing


@needs_data
def test_cosmos_header_values_depth_selection(tmp_path):
    src = _copy("COSMOS_header_values_2017-2018", tmp_path)
    # cosmic-ray probes integrate 0-0.19 / 0-0.21 m: not a surface (0-5 cm) sensor
    assert load_stations(src, depth_m=(0, 0.05), cache_dir=tmp_path / "c1") == []
    st = load_stations(src, depth_m=(0, 0.3), cache_dir=tmp_path / "c2")
    arm, barrow = st
    assert (arm.name, barrow.name) == ("ARM-1", "Barrow-ARM")
    assert (arm.lat, arm.lon) == pytest.approx((36.6054, -97.4878))
    assert (barrow.lat, barrow.lon) == pytest.approx((71.3298, -156.6287))
    assert (arm.depth_from, arm.depth_to) == (0.0, 0.19) and barrow.depth_to == 0.21
    assert arm.instrument == "Cosmic-ray-Probe"
    assert (len(arm.sm), arm.n_raw) == (6514, 6865)
    assert (len(barrow.sm), barrow.n_raw) == (4963, 7059)
    assert arm.sm.iloc[:3].to_numpy() == pytest.approx([0.141, 0.139, 0.139])


@needs_data
def test_smosmania_only_unchecked_flags_gives_empty_series(tmp_path, caplog):
    src = _copy("SMOSMANIA_header_values_2007", tmp_path)
    with caplog.at_level("WARNING", logger="smda.run.insitu"):
        st = load_stations(src, depth_m=(0, 0.05), cache_dir=tmp_path / "c")
    (narbonne,) = st
    assert (narbonne.lat, narbonne.lon) == pytest.approx((43.15, 2.9567))
    assert (narbonne.depth_from, narbonne.depth_to) == (0.05, 0.05)
    assert narbonne.n_raw == 741 and narbonne.sm.empty      # 736 "U" and 5 "D05"
    assert "no good-quality values" in caplog.text
    # accepting "U" (unchecked) keeps them
    (u,) = load_stations(src, depth_m=(0, 0.05), good_flags=("G", "U"), cache_dir=tmp_path / "c2")
    assert len(u.sm) == 736 and u.sm.iloc[0] == pytest.approx(0.214)
    assert u.sm.index[0] == pd.Timestamp("2007-01-01 01:00", tz="UTC")


@needs_data
def test_zip_archive_same_as_folder(tmp_path):
    src = ISMN / "REMEDHUS_header_values_2005-2007"
    z = tmp_path / "remedhus.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for f in src.rglob("*"):
            zf.write(f, f.relative_to(src))
    st = load_stations(z, cache_dir=tmp_path / "c")
    ref = load_stations(_copy("REMEDHUS_header_values_2005-2007", tmp_path), cache_dir=tmp_path / "c2")
    assert [s.name for s in st] == [s.name for s in ref]
    for a, b in zip(st, ref, strict=True):
        pd.testing.assert_series_equal(a.sm, b.sm)


def _csv(tmp_path, rows):
    p = tmp_path / "stations.csv"
    pd.DataFrame(rows).to_csv(p, index=False)
    return p


def test_plain_csv_flags_depths_and_time_zones(tmp_path):
    rows = []
    for k in range(4):
        t = f"2020-06-01T0{k}:00:00"
        rows.append(dict(station="A", network="N1", lat=45.0, lon=5.0, depth_from_m=0.0, depth_to_m=0.05,
                         time=t + "+02:00", soil_moisture=0.2 + 0.01 * k, flag="G" if k != 2 else "D03"))
        rows.append(dict(station="A", network="N1", lat=45.0, lon=5.0, depth_from_m=0.3, depth_to_m=0.3,
                         time=t, soil_moisture=0.3, flag="G"))
        rows.append(dict(station="B", network="N2", lat=46.0, lon=6.0, depth_from_m=0.02, depth_to_m=0.02,
                         time=t, soil_moisture=np.nan if k == 0 else 0.1, flag="G"))
    st = load_stations(_csv(tmp_path, rows))
    a, b = st
    assert (a.name, a.network, a.depth_to) == ("A", "N1", 0.05)
    assert a.sm.to_numpy() == pytest.approx([0.20, 0.21, 0.23])
    assert a.sm.index[0] == pd.Timestamp("2020-05-31T22:00", tz="UTC")   # offset applied
    assert len(b.sm) == 3 and (b.depth_from, b.depth_to) == (0.02, 0.02)
    # root zone picks the 0.3 m sensor of A (closest mid depth to 0.5 m)
    a_rz = load_stations(_csv(tmp_path, rows), depth_m=(0, 1.0))[0]
    assert a_rz.depth_from == 0.3 and len(a_rz.sm) == 4
    # a round trip through write_csv keeps values
    again = load_stations(write_csv(st, tmp_path / "out.csv"))
    for x, y in zip(st, again, strict=True):
        assert x.sm.to_numpy() == pytest.approx(y.sm.to_numpy())
        assert (x.sm.index == y.sm.index).all()
    summ = station_summary(st)
    assert list(summ["n_good"]) == [3, 3]


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_stations(tmp_path / "nothing")
    with pytest.raises(ValueError, match="depth_m"):
        load_stations(tmp_path, depth_m=(0.1, 0.0))
    with pytest.raises(ValueError, match="neither ISMN"):
        load_stations(tmp_path)
    base = dict(station="A", network="N", lat=45.0, lon=5.0, depth_from_m=0.0, depth_to_m=0.05,
                time="2020-01-01T00:00Z", soil_moisture=25.0)
    with pytest.raises(ValueError, match="percent"):
        load_stations(_csv(tmp_path, [base]))
    with pytest.raises(ValueError, match="missing CSV column"):
        load_stations(_csv(tmp_path, [{k: v for k, v in base.items() if k != "lat"}]))
    with pytest.raises(ValueError, match="lat must"):
        load_stations(_csv(tmp_path, [dict(base, soil_moisture=0.2, lat=95.0)]))


def test_csv_sensors_on_the_period_frm_classes_and_modes(tmp_path):
    """Two sensors at 5 cm: A (representative) hourly in 2016, B (undeducible) every 2 h in 2017-2018; a third
    at 5 cm flagged 'not representative'."""
    rows = []
    for sensor, times, frm in (("A", pd.date_range("2016-01-01", "2016-12-31", freq="h"), "representative"),
                               ("B", pd.date_range("2017-01-01", "2018-12-31", freq="2h"), ""),
                               ("C", pd.date_range("2017-01-01", "2018-12-31", freq="h"), "not representative")):
        for t in times[:: 24]:
            rows.append(dict(station="S", network="N", lat=45.0, lon=5.0, depth_from_m=0.05, depth_to_m=0.05, sensor=sensor,
                             time=t.isoformat(), soil_moisture=0.2, frm_class=frm, landcover="CCI 10"))
    p = _csv(tmp_path, rows)
    # without a period: the most values (C); in 2017-2018 without C: B although A has more values in total
    assert load_stations(p)[0].instrument == "C"
    (b,) = load_stations(p, period=("2017-01-01", "2018-12-31"), frm_classes=("representative", "undeducible"))
    assert (b.instrument, b.frm_class, b.landcover) == ("B", "undeducible", "CCI 10")
    (a,) = load_stations(p, frm_classes=("representative",))
    assert a.instrument == "A"
    each = load_stations(p, sensors="each")
    assert [s.instrument for s in each] == ["A", "B", "C"] and len({s.key for s in each}) == 3
    (mean,) = load_stations(p, sensors="mean", frm_classes=("representative", "undeducible"))
    assert len(mean.sm) == len(a.sm) + len(b.sm) and mean.sensor == "mean of 2 sensors"
    with pytest.raises(ValueError, match="sensors must be"):
        load_stations(p, sensors="all")
