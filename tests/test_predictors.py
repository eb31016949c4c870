"""Real 1 km predictors (run/predictors.py): MODIS tiles (written here in the HDF4-EOS structure of MOD11A1 and
MOD13A2) and CF netCDF grids onto the EASE-Grid 2.0 1 km cells, checked against hand computations with pyproj."""

from types import SimpleNamespace

import numpy as np
import pyproj
import pytest
import xarray as xr
from pyhdf.SD import SD, SDC

from smda.assimilation.observations.readers import modis
from smda.model.grid import Domain
from smda.run.namelist import NamelistError, load
from smda.run.predictors import Predictors

# rioxarray multiplies affine transforms with `*`, which affine 3.0 flags as pending deprecation
pytestmark = pytest.mark.filterwarnings("ignore:Use `@` matmul:PendingDeprecationWarning")
SINU = "+proj=sinu +lon_0=0 +x_0=0 +y_0=0 +R=6371007.181 +units=m"
CELL = 1000.89502334956


def _struct(grid_name, h, v):
    ul_x, ul_y = modis.SINU_X_MIN + h * modis.TILE_M, modis.SINU_Y_MAX - v * modis.TILE_M
    return (f'GROUP=GridStructure\n\tGROUP=GRID_1\n\t\tGridName="{grid_name}"\n\t\tXDim=1200\n\t\tYDim=1200\n'
            f"\t\tUpperLeftPointMtrs=({ul_x:.6f},{ul_y:.6f})\n"
            f"\t\tLowerRightMtrs=({ul_x + modis.TILE_M:.6f},{ul_y - modis.TILE_M:.6f})\n"
            "\t\tProjection=GCTP_SNSOID\n\t\tProjParams=(6371007.181000,0,0,0,0,0,0,0,0,0,0,0,0)\n"
            "\t\tSphereCode=-1\n\t\tGridOrigin=HDFE_GD_UL\n\tEND_GROUP=GRID_1\nEND_GROUP=GridStructure\nEND\n")


def _sds(sd, name, dtype, data, fill, valid, scale=None):
    v = sd.create(name, dtype, data.shape)
    v.setfillvalue(fill)
    v.attr("valid_range").set(dtype, list(valid))
    if scale is not None:
        v.attr("scale_factor").set(SDC.FLOAT64, scale)
        v.attr("add_offset").set(SDC.FLOAT64, 0.0)
    v[:] = data
    v.endaccess()


def write_mod11a1(path, h, v, lst_day, lst_night, qc=None, view_h=10.5):
    """A MOD11A1 tile: LST (K, NaN: not produced) day and night, QC (0: good; 2 where not produced), view time."""
    sd = SD(str(path), SDC.WRITE | SDC.CREATE)
    sd.attr("StructMetadata.0").set(SDC.CHAR8, _struct("MODIS_Grid_Daily_1km_LST", h, v))
    for suffix, lst in (("Day", lst_day), ("Night", lst_night)):
        raw = np.where(np.isfinite(lst), np.rint(np.nan_to_num(lst) / 0.02), 0).astype(np.uint16)
        _sds(sd, f"LST_{suffix}_1km", SDC.UINT16, raw, 0, (7500, 65535), 0.02)
        q = np.where(np.isfinite(lst), 0 if qc is None else qc, 2).astype(np.uint8)
        _sds(sd, f"QC_{suffix}", SDC.UINT8, q, 0, (0, 255))
        t = np.where(np.isfinite(lst), np.rint(view_h / 0.1), 255).astype(np.uint8)
        _sds(sd, f"{suffix}_view_time", SDC.UINT8, t, 255, (0, 240), 0.1)
    sd.end()


def write_mod13a2(path, h, v, ndvi, reliability=None):
    sd = SD(str(path), SDC.WRITE | SDC.CREATE)
    sd.attr("StructMetadata.0").set(SDC.CHAR8, _struct("MODIS_Grid_16DAY_1km_VI", h, v))
    raw = np.where(np.isfinite(ndvi), np.rint(np.nan_to_num(ndvi) * 10000), -3000).astype(np.int16)
    _sds(sd, "1 km 16 days NDVI", SDC.INT16, raw, -3000, (-2000, 10000), 10000.0)
    rel = np.zeros(ndvi.shape, np.int8) if reliability is None else reliability.astype(np.int8)
    _sds(sd, "1 km 16 days pixel reliability", SDC.INT8, rel, -1, (0, 3))
    sd.end()


def tile_of(lat, lon):
    x, y = modis.latlon_to_sinusoidal(lat, lon)
    return int((x - modis.SINU_X_MIN) // modis.TILE_M), int((modis.SINU_Y_MAX - y) // modis.TILE_M)


def _experiment(domain, nl):
    cells = np.arange(domain.n_cells)
    return SimpleNamespace(domain=domain, cells=cells, rank=0, static={"elevation_m": np.zeros(cells.size)})


def _comparison(tmp_path, **keys):
    text = "".join(f"  {k}: {v}\n" for k, v in keys.items())
    path = tmp_path / "case.yaml"
    path.write_text("name: p\ndomain:\n  centre: [61.86, -130.52]\n  size_km: [36, 36]\n  landscape: synthetic\n"
                    "time:\n  start: 2015-08-10T00:00\n  end: 2015-08-12T00:00\nobservations:\n  source: none\n"
                    "assimilation:\n  filter: none\ncomparison:\n" + text)
    return load(path)


def test_modis_tiles_onto_ease_cells_match_a_hand_computation(tmp_path):
    """area_mean: the tile pixels under 3 x 3 points of each EASE cell (pyproj EPSG:6933 -> sinusoidal), QC applied;
    nearest: the pixel under the centre; NDVI from the composite begun at most 16 days before."""
    h, v = tile_of(61.86, -130.52)
    rng = np.random.default_rng(1)
    day = 290.0 + 20.0 * rng.random((1200, 1200))
    day[::7, ::5] = np.nan  # not produced (cloud)
    qc = np.where(rng.random((1200, 1200)) < 0.1, 0b11000001, 0)  # LST error class 3 (> 3 K): rejected by default
    write_mod11a1(tmp_path / f"MOD11A1.A2015223.h{h:02d}v{v:02d}.061.hdf", h, v, day, day - 15.0, qc, view_h=11.3)
    ndvi = rng.random((1200, 1200)) * 0.8
    write_mod13a2(tmp_path / f"MOD13A2.A2015217.h{h:02d}v{v:02d}.061.hdf", h, v, ndvi)
    nl = _comparison(tmp_path, methods="[dispatch]", predictors="modis", lst_paths="['MOD11A1.*.hdf']",
                     ndvi_paths="['MOD13A2.*.hdf']")
    domain = Domain.from_centre(61.86, -130.52, 36, 36)
    pred = Predictors(_experiment(domain, nl), nl)
    got = pred.fields(np.datetime64("2015-08-11"))
    assert set(got) == {"lst", "lst_night", "lst_view_time", "ndvi"}

    ul_x, ul_y, p = modis.SINU_X_MIN + h * modis.TILE_M, modis.SINU_Y_MAX - v * modis.TILE_M, modis.TILE_M / 1200
    valid = np.where(qc >> 6 <= 2, day, np.nan)
    to_sinu = pyproj.Transformer.from_crs("EPSG:6933", SINU, always_xy=True)
    for r, c in ((0, 0), (5, 7), (11, 3), (8, 11)):
        off = (np.arange(3) - 1) * CELL / 3
        sx, sy = to_sinu.transform(domain.x[c] + off[None, :] + 0 * off[:, None], domain.y[r] - off[:, None] + 0 * off)
        i, j = np.floor((ul_y - sy) / p).astype(int), np.floor((sx - ul_x) / p).astype(int)
        hand = np.nanmean(valid[i, j]) if np.isfinite(valid[i, j]).any() else np.nan
        np.testing.assert_allclose(got["lst"][r, c], hand, atol=0.011)  # raw counts of 0.02 K
        np.testing.assert_allclose(got["lst_night"][r, c], np.nanmean(valid[i, j] - 15.0), atol=0.011)
        np.testing.assert_allclose(got["ndvi"][r, c], np.mean(ndvi[i, j]), atol=1e-4)
        assert got["lst_view_time"][r, c] == pytest.approx(11.3)
    assert 290.0 <= np.nanmin(got["lst"]) and np.nanmax(got["lst"]) <= 310.0
    # nearest: the pixel holding the cell centre, rejected QC included when the class is allowed
    near = Predictors(_experiment(domain, nl), _comparison(
        tmp_path, methods="[dispatch]", predictors="modis", lst_paths="['MOD11A1.*.hdf']", ndvi_paths="['MOD13A2.*.hdf']",
        resampling="nearest", lst_max_error_class=3)).fields(np.datetime64("2015-08-11"))
    xx, yy = np.meshgrid(domain.x, domain.y)
    sx, sy = to_sinu.transform(xx, yy)
    i, j = np.floor((ul_y - sy) / p).astype(int), np.floor((sx - ul_x) / p).astype(int)
    np.testing.assert_allclose(near["lst"], day[i, j], atol=0.011)
    # a day without a LST file is NaN; the NDVI composite reaches 16 days
    assert np.isnan(pred.fields(np.datetime64("2015-08-12"))["lst"]).all()
    assert np.isfinite(pred.fields(np.datetime64("2015-08-20"))["ndvi"]).all()
    assert np.isnan(pred.fields(np.datetime64("2015-08-02"))["ndvi"]).all()


def test_netcdf_predictors_in_lat_lon_with_celsius(tmp_path):
    """A CF lat/lon grid of LST in degC (daily) and NDVI: K on the EASE cells; a linear field averages to its value
    at the cell centre; wrong units or scaled NDVI are refused naming the file."""
    lat = np.arange(61.30, 62.40, 0.005)  # around the 36 km pixel of the domain
    lon = np.arange(-131.60, -129.40, 0.01)
    lo2, la2 = np.meshgrid(lon, lat)
    time = np.array(["2015-08-10T10:00", "2015-08-11T10:00"], "datetime64[ns]")
    lst = np.stack([20.0 + 30.0 * (la2 - 61.8) + 5.0 * (lo2 + 130.5), 21.0 + 0 * la2])
    ds = xr.Dataset({"LST": (("time", "lat", "lon"), lst, {"units": "degC"}),
                     "NDVI": (("time", "lat", "lon"), np.stack([0.4 + 0 * la2, 0.6 + 0 * la2]))},
                    coords={"time": time, "lat": lat, "lon": lon})
    ds.to_netcdf(tmp_path / "pred.nc")
    nl = _comparison(tmp_path, methods="[dispatch]", predictors="netcdf", lst_paths="[pred.nc]", ndvi_paths="[pred.nc]",
                     lst_variable="LST", ndvi_variable="NDVI")
    domain = Domain.from_centre(61.86, -130.52, 36, 36)
    pred = Predictors(_experiment(domain, nl), nl)
    got = pred.fields(np.datetime64("2015-08-10"))
    lat_c, lon_c = domain.latlon()
    np.testing.assert_allclose(got["lst"], 273.15 + 20.0 + 30.0 * (lat_c - 61.8) + 5.0 * (lon_c + 130.5), atol=0.05)
    np.testing.assert_allclose(got["ndvi"], 0.4)
    later = pred.fields(np.datetime64("2015-08-13"))
    assert np.isnan(later["lst"]).all() and np.allclose(later["ndvi"], 0.6)
    ds["LST"].attrs["units"] = "hPa"
    ds.to_netcdf(tmp_path / "bad.nc")
    bad = _comparison(tmp_path, methods="[dispatch]", predictors="netcdf", lst_paths="[bad.nc]", ndvi_paths="[bad.nc]",
                      lst_variable="LST", ndvi_variable="NDVI")
    with pytest.raises(ValueError, match="bad.nc: LST units 'hPa'"):
        Predictors(_experiment(domain, bad), bad).fields(np.datetime64("2015-08-10"))


def test_real_case_needs_real_predictors(tmp_path):
    (tmp_path / "obs.h5").write_text("")
    case = tmp_path / "real.yaml"
    case.write_text("name: r\ndomain:\n  centre: [61.86, -130.52]\n  landscape: synthetic\nobservations:\n"
                    "  source: smap_l2_sm_p\n  paths: [obs.h5]\n  kind: sm\n")
    with pytest.raises(NamelistError, match="comparison.predictors: methods \\['dispatch', 'empirical'\\] need 1 km LST"):
        load(case)
    assert load(case, ["comparison.methods=[]"]).comparison.predictors == "synthetic"
    with pytest.raises(NamelistError, match="comparison.lst_paths: predictors 'modis' needs files"):
        load(case, ["comparison.predictors=modis"])
