"""MODIS readers: real MOD11A1 sample (scaling, fill, QC bits, geolocation, reprojection) and a
MOD13A2 file written here in the official HDF4-EOS structure."""

import os
from pathlib import Path

import numpy as np
import pyproj
import pytest
from pyhdf.SD import SD, SDC

from smda.assimilation.observations.readers import modis
from smda.model.grid import Domain

DATA = Path(os.environ.get("SMDA_SAMPLE_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))
MOD11 = DATA / "modis" / "MOD11A1.hdf"
needs_sample = pytest.mark.skipif(not MOD11.is_file(), reason=f"MODIS sample not found at {MOD11}")


def _raw(name):
    sd = SD(str(MOD11), SDC.READ)
    try:
        return sd.select(name).get()
    finally:
        sd.end()


@needs_sample
def test_lst_scaling_fill_and_metadata():
    f = modis.read_lst(MOD11, "day")
    raw = _raw("LST_Day_1km")
    assert f.values.shape == (1200, 1200) and f.units == "K"
    fill = raw == 0
    np.testing.assert_array_equal(np.isnan(f.values), fill)  # QC 2/3 occur exactly at the fill
    np.testing.assert_allclose(f.values[~fill], raw[~fill] * 0.02)
    assert 291.3 < np.nanmin(f.values) < 291.5 and 325.6 < np.nanmax(f.values) < 325.8
    assert not (f.values == 0).any()
    assert f.meta["rangebeginningdate"] == "2019-11-01"
    assert f.meta["localgranuleid"].startswith("MOD11A1.A2019305.h14v09")
    view = f.meta["view_time_h"]
    assert np.nanmax(view) <= 24.0 and np.isnan(view[fill]).mean() > 0.99
    night = modis.read_lst(MOD11, "night")
    assert np.isfinite(night.values).any() and night.name == "lst_night"


@needs_sample
def test_lst_qc_bits():
    bits = modis.decode_lst_qc(np.array([0, 2, 3, 17, 65, 81, 145], np.uint8))
    assert bits["mandatory"].tolist() == [0, 2, 3, 1, 1, 1, 1]
    assert bits["emis_error"].tolist() == [0, 0, 0, 1, 0, 1, 1]
    assert bits["lst_error"].tolist() == [0, 0, 0, 0, 1, 1, 2]
    qc = _raw("QC_Day")
    assert set(np.unique(qc)) == {0, 2, 3, 17, 65, 81, 145}
    good = modis.read_lst(MOD11, good_only=True)
    np.testing.assert_array_equal(np.isfinite(good.values), qc == 0)
    tight = modis.read_lst(MOD11, max_lst_error_class=1)
    np.testing.assert_array_equal(np.isfinite(tight.values), np.isin(qc, [0, 17, 65, 81]))
    with pytest.raises(ValueError, match="max_lst_error_class"):
        modis.read_lst(MOD11, max_lst_error_class=5)
    with pytest.raises(ValueError, match="acquisition"):
        modis.read_lst(MOD11, "noon")


@needs_sample
def test_geolocation_of_the_tile():
    f = modis.read_lst(MOD11)
    assert f.grid.tile == (14, 9)
    assert f.grid.pixel_x == pytest.approx(926.625433139, abs=1e-6)
    lat, lon = f.grid.latlon(0, 0)
    assert lat == pytest.approx(-0.0041667, abs=1e-7) and lon == pytest.approx(-39.99583, abs=1e-5)
    # against pyproj's sinusoidal projection on the MODIS sphere
    sinu = pyproj.Transformer.from_crs("+proj=sinu +lon_0=0 +x_0=0 +y_0=0 +R=6371007.181 +units=m", "EPSG:4326",
                                       always_xy=True)
    x, y = f.grid.xy(np.array([0, 599, 1199]), np.array([0, 300, 1199]))
    plon, plat = sinu.transform(x, y)
    mlat, mlon = f.grid.latlon(np.array([0, 599, 1199]), np.array([0, 300, 1199]))
    np.testing.assert_allclose(mlat, plat, atol=1e-9)
    np.testing.assert_allclose(mlon, plon, atol=1e-9)
    r, c = f.grid.rowcol_of_latlon(mlat, mlon)
    assert r.tolist() == [0, 599, 1199] and c.tolist() == [0, 300, 1199]
    r, c = f.grid.rowcol_of_latlon(np.array([5.0]), np.array([-35.0]))
    assert r[0] == -1 and c[0] == -1


@needs_sample
def test_reprojection_onto_small_ease_domain():
    f = modis.read_lst(MOD11)
    d = Domain.from_centre(-7.2, -37.5, 72, 72)
    near = modis.to_domain(f, d)
    assert near.shape == d.shape
    # independent nearest pixel: EASE cell centre -> sinusoidal (x, y) with pyproj -> tile pixel
    tr = pyproj.Transformer.from_crs("EPSG:6933", "+proj=sinu +lon_0=0 +x_0=0 +y_0=0 +R=6371007.181 +units=m",
                                     always_xy=True)
    xx, yy = np.meshgrid(d.x, d.y)
    sx, sy = tr.transform(xx, yy)
    col = np.floor((sx - f.grid.ul_x) / f.grid.pixel_x).astype(int)
    row = np.floor((f.grid.ul_y - sy) / f.grid.pixel_y).astype(int)
    np.testing.assert_array_equal(near, f.values[row, col])
    assert np.isfinite(near).mean() > 0.99
    area = modis.to_domain(f, d, "area_mean", subsamples=3)
    ok = np.isfinite(near) & np.isfinite(area)
    assert np.abs(area[ok] - near[ok]).mean() < 1.0  # K; same field, smoother
    assert np.nanmean(area) == pytest.approx(np.nanmean(near), abs=0.1)
    # every sub-sample point of an EASE cell falls in the 3 x 3 tile pixels around its centre pixel
    hood = np.stack([f.values[row + i, col + j] for i in (-1, 0, 1) for j in (-1, 0, 1)])
    ok = np.isfinite(area)
    assert (area[ok] >= np.nanmin(hood, axis=0)[ok] - 1e-9).all()
    assert (area[ok] <= np.nanmax(hood, axis=0)[ok] + 1e-9).all()
    # a domain outside the tile is all NaN
    far = modis.to_domain(f, Domain.from_centre(20.0, 10.0, 36, 36))
    assert np.isnan(far).all()
    with pytest.raises(ValueError, match="nearest, area_mean"):
        modis.to_domain(f, d, "bilinear")


def _write_mod13a2(path, ndvi_raw, reliability):
    sd = SD(str(path), SDC.WRITE | SDC.CREATE)
    struct = (
        "GROUP=SwathStructure\nEND_GROUP=SwathStructure\nGROUP=GridStructure\n\tGROUP=GRID_1\n"
        '\t\tGridName="MODIS_Grid_16DAY_1km_VI"\n\t\tXDim=1200\n\t\tYDim=1200\n'
        "\t\tUpperLeftPointMtrs=(-4447802.079066,0.000000)\n"
        "\t\tLowerRightMtrs=(-3335851.559300,-1111950.519767)\n"
        "\t\tProjection=GCTP_SNSOID\n\t\tProjParams=(6371007.181000,0,0,0,0,0,0,0,0,0,0,0,0)\n"
        "\t\tSphereCode=-1\n\t\tGridOrigin=HDFE_GD_UL\n\tEND_GROUP=GRID_1\nEND_GROUP=GridStructure\nEND\n"
    )
    sd.attr("StructMetadata.0").set(SDC.CHAR8, struct)
    sd.attr("CoreMetadata.0").set(SDC.CHAR8, 'OBJECT = RANGEBEGINNINGDATE\n NUM_VAL = 1\n VALUE = "2019-10-16"\n')
    v = sd.create("1 km 16 days NDVI", SDC.INT16, ndvi_raw.shape)
    v.dim(0).setname("YDim:MODIS_Grid_16DAY_1km_VI")
    v.dim(1).setname("XDim:MODIS_Grid_16DAY_1km_VI")
    v.setfillvalue(-3000)
    v.attr("long_name").set(SDC.CHAR8, "1 km 16 days NDVI")
    v.attr("units").set(SDC.CHAR8, "NDVI")
    v.attr("valid_range").set(SDC.INT16, [-2000, 10000])
    v.attr("scale_factor").set(SDC.FLOAT64, 10000.0)
    v.attr("add_offset").set(SDC.FLOAT64, 0.0)
    v[:] = ndvi_raw
    v.endaccess()
    r = sd.create("1 km 16 days pixel reliability", SDC.INT8, reliability.shape)
    r.setfillvalue(-1)
    r.attr("valid_range").set(SDC.INT8, [0, 3])
    r[:] = reliability
    r.endaccess()
    sd.end()


def test_mod13a2_written_in_official_structure(tmp_path):
    rng = np.random.default_rng(0)
    raw = rng.integers(-2000, 10001, (1200, 1200)).astype(np.int16)
    raw[:5, :] = -3000
    raw[5, :3] = -2500  # below valid range
    rel = np.zeros((1200, 1200), np.int8)
    rel[10:20, :] = 3  # cloudy
    rel[20:22, :] = 2  # snow
    rel[22:24, :] = 1  # marginal
    path = tmp_path / "MOD13A2.A2019289.h14v09.061.2020300000000.hdf"
    _write_mod13a2(path, raw, rel)
    f = modis.read_ndvi(path)
    assert f.grid.tile == (14, 9) and f.grid.name == "MODIS_Grid_16DAY_1km_VI"
    assert f.meta["rangebeginningdate"] == "2019-10-16"
    ok = (raw != -3000) & (raw >= -2000) & (rel <= 1)
    np.testing.assert_array_equal(np.isfinite(f.values), ok)
    np.testing.assert_allclose(f.values[ok], raw[ok] / 10000.0)
    assert np.nanmax(f.values) <= 1.0 and np.nanmin(f.values) >= -0.2
    strict = modis.read_ndvi(path, max_reliability=0)
    assert np.isnan(strict.values[22:24]).all()
    d = Domain.from_centre(-5.0, -37.0, 36, 36)
    on_ease = modis.to_domain(f, d)
    assert np.isfinite(on_ease).all() and np.nanmax(np.abs(on_ease)) <= 1.0


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        modis.read_lst(tmp_path / "nope.hdf")
    bad = tmp_path / "MOD11A1.bad.hdf"
    bad.write_bytes(b"this is not an HDF4 file" * 100)
    with pytest.raises(ValueError, match="not a readable HDF4 file"):
        modis.read_lst(bad)
    # an HDF4 file without the HDF-EOS metadata
    plain = tmp_path / "plain.hdf"
    sd = SD(str(plain), SDC.WRITE | SDC.CREATE)
    s = sd.create("LST_Day_1km", SDC.UINT16, (4, 4))
    s[:] = np.zeros((4, 4), np.uint16)
    s.endaccess()
    sd.end()
    with pytest.raises(ValueError, match="StructMetadata"):
        modis.read_lst(plain)


@needs_sample
def test_wrong_product_lists_available_sds():
    with pytest.raises(ValueError, match="no SDS '1 km 16 days NDVI'; available: LST_Day_1km"):
        modis.read_ndvi(MOD11)
