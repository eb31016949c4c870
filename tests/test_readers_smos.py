"""SMOS readers: real CATDS L3 SM and L2 SM v700 samples, and official-structure CATDS L3 TB / full-grid L3 SM files."""

import os
from pathlib import Path

import netCDF4
import numpy as np
import pytest

from smda.assimilation.observations.readers import read
from smda.assimilation.observations.readers.common import smos_time
from smda.assimilation.observations.readers.smos import CATDS_TB_ANGLES
from smda.model.grid import GRIDS

DATA = Path(os.environ.get("SMDA_SAMPLE_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))
SMOS = DATA / "smos"
L3 = sorted(SMOS.glob("SM_OPER_MIR_CLF31A_*.DBL.nc")) if SMOS.is_dir() else []
L2 = SMOS / "SM_OPER_MIR_SMUDP2_20230401T150613_20230401T155931_700_001_1.nc"
SMAP_L2 = DATA / "smap" / "SMAP_L2_SM_P_02801_A_20150811T013002_R18290_001.h5"
need_l3 = pytest.mark.skipif(len(L3) != 2, reason=f"CATDS L3 SM samples not found in {SMOS}")
need_l2 = pytest.mark.skipif(not L2.is_file(), reason=f"SMOS L2 sample not found at {L2}")
M25 = GRIDS["M25"]


def test_smos_time_midnight_and_fill():
    t = smos_time([5604, 5604, 0], [0, 86399, 10], [0, 600_000, 0], valid=[True, True, False])
    assert t[0] == np.datetime64("2015-05-06T00:00:00")          # seconds 0 is midnight, not missing
    assert t[1] == np.datetime64("2015-05-07T00:00:00")          # 23:59:59.6 rounds up
    assert np.isnat(t[2])


@need_l3
def test_catds_l3_sm_real_samples():
    t = read("smos_l3_sm", L3)
    for path in L3:
        with netCDF4.Dataset(path) as ds:
            ds.set_auto_maskandscale(False)
            raw = ds["Soil_Moisture"][:]
            days = ds["Mean_Acq_Time_Days"][:]
            secs = ds["Mean_Acq_Time_Seconds"][:]
            lat, lon = ds["lat"][:], ds["lon"][:]
            scale = ds["Soil_Moisture"].scale_factor
        day = int(path.name.split("_")[4][6:8])
        sub = t.select((t.time >= np.datetime64(f"2015-05-{day:02d}")) & (t.time < np.datetime64(f"2015-05-{day + 1:02d}")))
        has_t = days != -2147483647
        assert set(np.unique(days[has_t])) == {5604 + day - 6}
        assert len(sub) == has_t.sum()                               # cells without acquisition are dropped
        # global EASE row from the ascending lat axis: the sample is rows 449..549 counted from the south
        li = 583 - sub.row - 449
        lj = sub.col - 699
        assert li.min() >= 0 and li.max() <= 100 and lj.min() >= 0 and lj.max() <= 150
        np.testing.assert_allclose(sub.lat, lat[li], atol=2e-5)
        np.testing.assert_allclose(sub.lon, lon[lj], atol=2e-5)
        r = raw[li, lj]
        fill = r == -32768
        assert np.all(sub.qc[fill] == 1) and np.all(np.isnan(sub.value[fill]))
        np.testing.assert_allclose(sub.value[~fill], r[~fill] * scale, rtol=1e-12)
        expect_t = np.datetime64("2000-01-01T00:00:00") + (days[li, lj].astype(np.int64) * 86400 + secs[li, lj]).astype(
            "timedelta64[s]")
        np.testing.assert_array_equal(sub.time, expect_t)
        acc = sub.select(sub.accepted)
        assert len(acc) > 1000 and np.all((acc.value >= 0) & (acc.value <= 0.6))
    c = t.qc_counts()
    assert c["out_of_range"] > 0 and np.all(t.value[t.qc == 2] > 0.6)   # values up to 1.0 in the sample
    assert set(t.footprint) == {"M25"} and np.all(t.error_std == 0.04)
    with pytest.raises(ValueError, match="kind must be 'sm'"):
        read("smos_l3_sm", L3, kind="tb")


@need_l3
def test_catds_l3_sm_subset_and_period():
    bbox = (45.0, 50.0, 5.0, 15.0)
    t = read("smos_l3_sm", L3, bbox=bbox, halo_km=0, start=np.datetime64("2015-05-07"))
    assert len(t) > 0 and np.all(t.time >= np.datetime64("2015-05-07"))
    assert np.all((t.lat >= 45) & (t.lat <= 50) & (t.lon >= 5) & (t.lon <= 15))
    assert len(read("smos_l3_sm", L3, bbox=(-40.0, -30.0, 5.0, 15.0))) == 0


def _write_catds_sm_full(path, li, lj, value):
    """Full-grid CATDS L3 SM file (584 x 1388, netCDF-3 64-bit offset) with one valid cell."""
    rows = np.arange(583, -1, -1)
    lat = M25.latlon(rows, np.zeros_like(rows))[0]
    lon = M25.latlon(np.zeros(1388, int), np.arange(1388))[1]
    with netCDF4.Dataset(path, "w", format="NETCDF3_64BIT_OFFSET") as ds:
        ds.createDimension("lat", 584)
        ds.createDimension("lon", 1388)
        ds.createVariable("lat", "f4", ("lat",))[:] = lat
        ds.createVariable("lon", "f4", ("lon",))[:] = lon
        sm = ds.createVariable("Soil_Moisture", "i2", ("lat", "lon"), fill_value=np.int16(-32768))
        sm.scale_factor = 3.05185094759971e-05
        sm.add_offset = 0.0
        sm.set_auto_maskandscale(False)
        a = np.full((584, 1388), -32768, np.int16)
        a[li, lj] = round(value / 3.05185094759971e-05)
        sm[:] = a
        for name, v in (("Mean_Acq_Time_Days", 7000), ("Mean_Acq_Time_Seconds", 0)):
            var = ds.createVariable(name, "i4", ("lat", "lon"), fill_value=np.int32(-2147483647))
            b = np.full((584, 1388), -2147483647, np.int32)
            b[li, lj] = v
            var[:] = b
        sf = ds.createVariable("Science_Flags", "i4", ("lat", "lon"))
        sf[:] = np.zeros((584, 1388), np.int32)


def test_catds_full_grid_orientation(tmp_path):
    path = tmp_path / "SM_RE07_MIR_CLF31D_20190301T000000_20190301T235959_300_001_7.DBL.nc"
    _write_catds_sm_full(path, li=400, lj=700, value=0.25)
    t = read("smos_l3_sm", [path])
    assert len(t) == 1
    assert (t.row[0], t.col[0]) == (583 - 400, 700)
    assert t.value[0] == pytest.approx(0.25, abs=2e-5) and t.qc[0] == 0
    assert t.time[0] == np.datetime64("2019-03-02T00:00:00")     # days 7000, seconds 0 = midnight
    lat, lon = M25.latlon(183, 700)
    assert t.lat[0] == pytest.approx(lat) and lat > 0            # row 183 from the north is northern hemisphere


# --------------------------------------------------------------------------------------------------
# CATDS L3 TB (multi-angle) in the official structure: (angle_class=14, lat, lon), packed int16
# --------------------------------------------------------------------------------------------------
def write_catds_tb(path, row0=120, col0=700, nlat=4, nlon=5):
    rows = np.arange(row0 + nlat - 1, row0 - 1, -1)             # lat ascending
    cols = np.arange(col0, col0 + nlon)
    lat = M25.latlon(rows, np.full(nlat, col0))[0]
    lon = M25.latlon(np.full(nlon, row0), cols)[1]
    k = np.arange(14)[:, None, None]
    i = np.arange(nlat)[None, :, None]
    j = np.arange(nlon)[None, None, :]
    tb_h = 200.0 + k + 0.5 * i + 0.1 * j + 0 * k
    scale = 0.0061037018951994385
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.createDimension("angle", 14)
        ds.createDimension("lat", nlat)
        ds.createDimension("lon", nlon)
        ds.createVariable("lat", "f4", ("lat",))[:] = lat
        ds.createVariable("lon", "f4", ("lon",))[:] = lon
        ds.createVariable("inc", "f4", ("angle",))[:] = np.array(CATDS_TB_ANGLES)
        for pol, add in (("H", 0.0), ("V", 30.0)):
            v = ds.createVariable(f"BT_{pol}", "i2", ("angle", "lat", "lon"), fill_value=np.int16(-32768), zlib=True)
            v.scale_factor = scale
            v.add_offset = 200.0
            v.units = "K"
            v.set_auto_maskandscale(False)
            raw = np.rint((tb_h + add - 200.0) / scale).astype(np.int16)
            raw[3, 0, 0] = -32768                                    # one fill value
            v[:] = raw
        days = np.full((14, nlat, nlon), 7000, np.int32)
        days[:, 3, 4] = -2147483647                                 # one cell never observed
        for name, data in (("Days", days), ("UTC_Seconds", np.full((14, nlat, nlon), 3600, np.int32)),
                           ("UTC_Microseconds", np.full((14, nlat, nlon), 700_000, np.int32))):
            var = ds.createVariable(name, "i4", ("angle", "lat", "lon"), fill_value=np.int32(-2147483647))
            var.set_auto_maskandscale(False)
            var[:] = data
        nv = ds.createVariable("Nviews", "i2", ("angle", "lat", "lon"))
        nv[:] = np.full((14, nlat, nlon), 10, np.int16)
        nr = ds.createVariable("Nb_RFI_Flags", "i2", ("angle", "lat", "lon"))
        r = np.zeros((14, nlat, nlon), np.int16)
        r[9, 1, 1] = 5                                             # half the views RFI-flagged at 42.5 deg
        nr[:] = r
    return tb_h


def test_catds_l3_tb_multi_angle(tmp_path):
    path = tmp_path / "SM_RE07_MIR_CDF3TA_20190301T000000_20190301T235959_330_001_7.DBL.nc"
    tb_h = write_catds_tb(path)
    t = read("smos_l3_tb", [path])
    assert len(t) == 14 * 2 * 19                                 # 14 angles x 2 pols x 19 observed cells
    assert t.qc_counts() == {"accepted": 14 * 2 * 19 - 4, "fill_value": 2, "rfi": 2}
    h = t.select((t.pol == "H") & t.accepted)
    k = np.array([CATDS_TB_ANGLES.index(a) for a in h.angle_deg])
    i = (120 + 3) - h.row                                          # lat index (ascending)
    j = h.col - 700
    np.testing.assert_allclose(h.value, tb_h[k, i, j], atol=0.004)   # int16 packing step 0.006 K
    assert np.all(t.time == np.datetime64("2019-03-02T01:00:01"))   # day 7000 + 3600.7 s
    one = read("smos_l3_tb", [path], angles=[42.5], pols=("H",))
    assert len(one) == 19 and np.all(one.angle_deg == 42.5)
    assert one.qc_counts() == {"accepted": 18, "rfi": 1}
    with pytest.raises(ValueError, match="angle 41.*valid"):
        read("smos_l3_tb", [path], angles=[41.0])
    assert set(t.footprint) == {"M25"} and np.all(t.error_std == 4.0)


def test_catds_l3_tb_fill_counted(tmp_path):
    path = tmp_path / "SM_RE07_MIR_CDF3TA_20190301T000000_20190301T235959_330_001_7.DBL.nc"
    write_catds_tb(path)
    t = read("smos_l3_tb", [path], angles=[17.5], pols=("H",))
    assert t.qc_counts() == {"accepted": 18, "fill_value": 1}
    assert np.isnan(t.value[t.qc == 1]).all() and np.isfinite(t.value[t.accepted]).all()


def test_catds_wrong_structure(tmp_path):
    path = tmp_path / "wrong_tb.nc"
    with netCDF4.Dataset(path, "w") as ds:
        ds.createDimension("lat", 3)
        ds.createDimension("lon", 3)
        ds.createVariable("lat", "f4", ("lat",))[:] = [1, 2, 3]
        ds.createVariable("lon", "f4", ("lon",))[:] = [1, 2, 3]
        for n in ("BT_H", "BT_V", "Days", "UTC_Seconds"):
            ds.createVariable(n, "i2", ("lat", "lon"))
    with pytest.raises(ValueError, match="wrong_tb.nc.*BT_H.*angle_class=14"):
        read("smos_l3_tb", [path])
    with pytest.raises(ValueError, match="wrong_tb.nc.*lacks 'Soil_Moisture'"):
        read("smos_l3_sm", [path])


# --------------------------------------------------------------------------------------------------
# SMOS L2 SM v700 (real sample)
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def l2_vars():
    with netCDF4.Dataset(L2) as ds:
        ds.set_auto_maskandscale(False)
        yield {k: ds[k][:] for k in ("Latitude", "Longitude", "Days", "Seconds", "Microseconds", "Soil_Moisture",
                                      "TB_ASL_Theta_B_H", "Science_Flags", "RFI_Prob", "N_RFI_X", "N_RFI_Y",
                                      "M_AVA0")}


@need_l2
def test_l2_sm_real_sample(l2_vars):
    v = l2_vars
    t = read("smos_l2_sm", [L2], kind="sm")
    has = v["Days"] > 0
    assert len(t) == has.sum() == 34714                          # Days == 0: no retrieval, dropped
    assert np.all(np.isnat(t.time) == False)  # noqa: E712
    assert t.time.min() >= np.datetime64("2023-04-01T15:06:12") and t.time.max() <= np.datetime64("2023-04-01T15:59:32")
    sm = v["Soil_Moisture"][has]
    assert (t.qc == 1).sum() >= (sm == -999).sum() and np.isnan(t.value[sm == -999]).all()
    ok = sm != -999
    np.testing.assert_allclose(t.value[ok], sm[ok], rtol=1e-7)
    # all 192 retrievals are in snow-covered Chukotka (FL_SNOW_DRY) or flagged ice: nothing accepted
    assert ok.sum() == 192 and t.accepted.sum() == 0
    assert t.qc_counts()["snow"] + t.qc_counts()["frozen_ground"] == 192
    assert set(t.footprint) == {"gauss"} and np.all(t.row == -1) and np.all(t.fov_km == 20.0)
    np.testing.assert_array_equal(t.flags, v["Science_Flags"][has])
    ts = np.datetime64("2000-01-01", "s") + (v["Days"][has].astype(np.int64) * 86400 + v["Seconds"][has]).astype(
        "timedelta64[s]")
    d = (t.time - ts).astype(int)
    np.testing.assert_array_equal(d, (v["Microseconds"][has] >= 500_000).astype(int))


@need_l2
def test_l2_tb_real_sample_independent_qc(l2_vars):
    v = l2_vars
    t = read("smos_l2_sm", [L2], kind="tb", pols=("H",))
    has = v["Days"] > 0
    tb = v["TB_ASL_Theta_B_H"][has]
    sf = v["Science_Flags"][has].astype(np.int64)
    rfi = (v["RFI_Prob"][has] * 0.005 > 0.2) | (
        (v["N_RFI_X"][has].astype(float) + v["N_RFI_Y"][has]) / np.maximum(v["M_AVA0"][has], 1) > 0.2)
    flagged = (sf & ((1 << 5) | (1 << 13) | (1 << 14) | (7 << 6) | (3 << 11) | (3 << 3))) != 0
    expected_ok = (tb != -999) & ~rfi & ~flagged & (tb > 100) & (tb < 320)
    assert t.accepted.sum() == expected_ok.sum()
    assert np.all(t.angle_deg == 42.5) and set(t.pol) == {"H"}
    np.testing.assert_allclose(t.value[tb != -999], tb[tb != -999], rtol=1e-7)
    from smda.model.grid import latlon_to_xy
    x, y = latlon_to_xy(v["Latitude"][has], v["Longitude"][has])
    np.testing.assert_allclose(t.x, x)
    np.testing.assert_allclose(t.y, y)


@need_l2
def test_l2_decoding_without_masking(tmp_path, l2_vars):
    """A copy of 20 real retrievals with nominal flags: Seconds 0 (midnight) and RFI_Prob 0 stay valid."""
    src = netCDF4.Dataset(L2)
    src.set_auto_maskandscale(False)
    idx = np.flatnonzero(src["Soil_Moisture"][:] != -999)[:20]
    path = tmp_path / "SM_OPER_MIR_SMUDP2_small.nc"
    with netCDF4.Dataset(path, "w", format="NETCDF4") as dst:
        dst.createDimension("n_grid_points", len(idx))
        for name in ("Latitude", "Longitude", "Days", "Seconds", "Microseconds", "Soil_Moisture", "Science_Flags",
                     "Confidence_Flags", "RFI_Prob", "N_RFI_X", "N_RFI_Y", "M_AVA0", "Optical_Thickness_Nad",
                     "TB_ASL_Theta_B_H"):
            sv = src[name]
            dv = dst.createVariable(name, sv.dtype, ("n_grid_points",), fill_value=sv.getncattr("_FillValue"))
            for a in sv.ncattrs():
                if a != "_FillValue":
                    dv.setncattr(a, sv.getncattr(a))
            dv.set_auto_maskandscale(False)
            data = sv[:][idx]
            if name in ("Science_Flags", "Confidence_Flags", "RFI_Prob", "N_RFI_X", "N_RFI_Y"):
                data = np.zeros_like(data)
            if name == "Seconds":
                data[0] = 0
            if name == "Microseconds":
                data[:] = 0
            if name == "Optical_Thickness_Nad":
                data[1] = 1.5
            if name == "Confidence_Flags":
                data[2], data[3], data[4] = 128, 64, 16          # CHI2_P, DQX, NO_PROD
            dv[:] = data
    src.close()
    t = read("smos_l2_sm", [path], kind="sm")
    assert len(t) == 20
    assert t.time[0] == np.datetime64("2023-04-01T00:00:00")
    assert t.qc_counts() == {"accepted": 16, "dense_vegetation": 1, "product_quality_flag": 2, "fill_value": 1}
    assert t.qc[1] == 8
    assert read("smos_l2_sm", [path], kind="sm", max_vod=None).accepted.sum() == 17
    assert read("smos_l2_sm", [path], kind="sm", reject_bits={"Confidence_Flags": [4]}).accepted.sum() == 18
    # TB (a retrieval output): only CHI2_P of the confidence flags rejects it; the vegetation limit is SM only
    tb = read("smos_l2_sm", [path], kind="tb", pols=("H",))
    assert tb.qc_counts() == {"accepted": 19, "product_quality_flag": 1} and tb.qc[2] == 3
    with pytest.raises(ValueError, match="reject_bits has unknown flag field.*Chi2"):
        read("smos_l2_sm", [path], reject_bits={"Chi2": [1]})


@need_l2
def test_wrong_product_and_corrupt(tmp_path):
    with pytest.raises(ValueError, match="SMUDP2.*not a smos_l3_sm file.*'Soil_Moisture'|SMUDP2.*Mean_Acq"):
        read("smos_l3_sm", [L2])
    if L3:
        with pytest.raises(ValueError, match="CLF31A.*lacks.*'Latitude'"):
            read("smos_l2_sm", [L3[0]])
        with pytest.raises(ValueError, match="CLF31A.*HDF5"):
            read("smap_l2_sm_p", [L3[0]])                       # netCDF-3 is not HDF5
    if SMAP_L2.is_file():
        with pytest.raises(ValueError, match="SMAP_L2_SM_P"):
            read("smos_l2_sm", [SMAP_L2])
    trunc = tmp_path / "SM_truncated.nc"
    trunc.write_bytes(L2.read_bytes()[:100_000])
    with pytest.raises(ValueError, match="SM_truncated.nc"):
        read("smos_l2_sm", [trunc])
    with pytest.raises(FileNotFoundError, match="absent.nc"):
        read("smos_l2_sm", [tmp_path / "absent.nc"])


@need_l3
def test_truncated_catds_netcdf3_refused_naming_the_file(tmp_path, caplog):
    """An interrupted download of a netCDF-3 file: netCDF4 reads past its end as zeros; the size check refuses it."""
    data = L3[0].read_bytes()
    cut = tmp_path / ("cut_" + L3[0].name)
    cut.write_bytes(data[: int(len(data) * 0.8)])
    ds = netCDF4.Dataset(cut)                      # the library itself opens it (the reason for the check)
    ds.close()
    with pytest.raises(ValueError, match=f"cut_{L3[0].name}.*truncated.*{int(len(data) * 0.8)} bytes"):
        read("smos_l3_sm", [cut])
    head = tmp_path / "header_only.DBL.nc"
    head.write_bytes(data[:200])
    with pytest.raises(ValueError, match="header_only.DBL.nc.*header is cut off"):
        read("smos_l3_sm", [head])
    assert len(read("smos_l3_sm", [L3[0]])) > 0    # the whole file passes


def test_netcdf3_size_check_record_variables(tmp_path):
    """The header arithmetic on record (unlimited) variables, classic, 64-bit offset and CDF-5, one or two of them."""
    from smda.assimilation.observations.readers.common import check_netcdf3_size

    for fmt in ("NETCDF3_CLASSIC", "NETCDF3_64BIT_OFFSET", "NETCDF3_64BIT_DATA"):
        for n_rec in (1, 2):
            path = tmp_path / f"rec_{fmt}_{n_rec}.nc"
            with netCDF4.Dataset(path, "w", format=fmt) as ds:
                ds.createDimension("time", None)
                ds.createDimension("x", 3)
                ds.createVariable("fixed", "f8", ("x",))[:] = [1, 2, 3]
                for k in range(n_rec):
                    ds.createVariable(f"v{k}", "i2", ("time", "x"))[:] = np.arange(15).reshape(5, 3)
            check_netcdf3_size(path)               # complete: no error
            whole = path.read_bytes()
            path.write_bytes(whole[:-4])          # the last record loses data (its 2 padding bytes and 2 more)
            with pytest.raises(ValueError, match="truncated"):
                check_netcdf3_size(path)


@need_l3
def test_duplicate_granule_read_once_with_warning(tmp_path, caplog):
    import logging
    import shutil

    copy_dir = tmp_path / "mirror"
    copy_dir.mkdir()
    twin = copy_dir / L3[0].name
    shutil.copy(L3[0], twin)
    once = read("smos_l3_sm", [L3[0]])
    with caplog.at_level(logging.WARNING):
        t = read("smos_l3_sm", [L3[0], twin, L3[0]])
    assert len(t) == len(once)
    msgs = [r.getMessage() for r in caplog.records if "listed twice" in r.getMessage()]
    assert len(msgs) == 2 and str(L3[0]) in msgs[0] and str(twin) in msgs[0]
    # same name, different content: an error naming both files
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(L3[1], other / L3[0].name)
    with pytest.raises(ValueError, match=f"same granule name: {L3[0]} and {other / L3[0].name}"):
        read("smos_l3_sm", [L3[0], other / L3[0].name])
