"""Generic observation sources: a user's table (CSV/netCDF), gridded CF netCDF, TU Wien cell files; files written here."""

import logging

import netCDF4
import numpy as np
import pyproj
import pytest

from smda.assimilation.observations.operator import FootprintOperator, finish
from smda.assimilation.observations.readers import in_saturation_units, read
from smda.model.grid import GRIDS, Domain, latlon_to_xy

SQRT12 = np.sqrt(12.0)


# --------------------------------------------------------------------------------------------------
# table
# --------------------------------------------------------------------------------------------------
def write_csv(path):
    path.write_text(
        "# my own observations\n"
        "date,latitude,lon,value,error,kind,pol,angle_deg,fov_km,flag\n"
        "2020-05-01T06:00:00Z,36.60,-97.49,0.25,0.03,sm,,,,0\n"
        "2020-05-01T06:00:00Z,36.70,-97.40,0.31,,sm,,,,1\n"
        "2020-05-02T18:00:00Z,36.60,-97.49,251.5,3.0,tb,H,40.0,20.0,0\n"
        "2020-05-02T18:00:00Z,36.60,-97.49,262.0,3.0,tb,v,52.5,20.0,0\n"
        "2020-05-03T06:00:00Z,10.00,10.00,0.20,0.03,sm,,,,0\n")


def test_table_csv_kinds_columns_domain_period(tmp_path):
    path = tmp_path / "obs.csv"
    write_csv(path)
    cols = {"time": "date", "lat": "latitude"}
    sm = read("table", [path], kind="sm", columns=cols, error_std=0.05)
    assert len(sm) == 3 and set(sm.kind) == {"sm"} and set(sm.footprint) == {"gauss"}
    np.testing.assert_allclose(sm.value, [0.25, 0.31, 0.20])
    np.testing.assert_allclose(sm.error_std, [0.03, 0.05, 0.03])       # missing error: the source's error_std
    assert list(sm.qc) == [0, 3, 0]                                     # flag column: product_quality_flag
    assert sm.time[0] == np.datetime64("2020-05-01T06:00:00")
    x, y = latlon_to_xy(36.60, -97.49)
    assert sm.x[0] == pytest.approx(x) and sm.y[0] == pytest.approx(y)
    np.testing.assert_allclose(sm.fov_km, 1.00089502334956 / SQRT12)    # a point: its 1 km cell
    tb = read("table", [path], kind="tb", columns=cols)
    assert list(tb.pol) == ["H", "V"] and list(tb.angle_deg) == [40.0, 52.5] and np.all(tb.fov_km == 20.0)
    every = read("table", [path], columns=cols)                         # no kind: every row, each its own
    assert len(every) == 5 and sorted(every.kind) == ["sm", "sm", "sm", "tb", "tb"]
    box = read("table", [path], columns=cols, bbox=(36, 37, -98, -97), halo_km=0,
               start=np.datetime64("2020-05-01T12:00"), end=np.datetime64("2020-05-03"))
    assert len(box) == 2 and set(box.kind) == {"tb"}
    with pytest.raises(ValueError, match="obs.csv.*lacks column.*'time'"):
        read("table", [path])
    with pytest.raises(ValueError, match="unknown column role"):
        read("table", [path], columns={"when": "date"})


def test_table_percent_of_saturation(tmp_path):
    path = tmp_path / "sat.csv"
    path.write_text("time,lat,lon,value,error,phi\n2020-05-01T06:00,36.6,-97.5,80,10,0.40\n"
                    "2020-05-01T06:00,36.7,-97.5,95,10,0.50\n")
    # converted with a porosity number (m3/m3) ...
    t = read("table", [path], kind="sm", units="percent_saturation", porosity=0.45)
    np.testing.assert_allclose(t.value, [0.36, 0.4275])
    np.testing.assert_allclose(t.error_std, [0.045, 0.045])
    # ... or a porosity column ...
    t = read("table", [path], kind="sm", units="percent_saturation", porosity="phi")
    np.testing.assert_allclose(t.value, [0.32, 0.475])
    # ... or left in degree of saturation (0-1, range 0-1: 0.95 is not "out of range") for the rescaling
    t = read("table", [path], kind="sm", units="percent_saturation")
    np.testing.assert_allclose(t.value, [0.80, 0.95])
    assert np.all(t.accepted)
    assert in_saturation_units("table", {"units": "percent_saturation"})
    assert not in_saturation_units("table", {"units": "percent_saturation", "porosity": 0.45})
    assert not in_saturation_units("smap_l2_sm_p", {}) and not in_saturation_units("gridded", {"units": "m3/m3"})
    with pytest.raises(ValueError, match="sat.csv.*units '%'.*not understood"):
        read("table", [path], kind="sm", units="%")
    with pytest.raises(ValueError, match="porosity must be in m3/m3"):
        read("table", [path], kind="sm", units="percent_saturation", porosity=45)


def test_table_netcdf(tmp_path):
    path = tmp_path / "obs.nc"
    with netCDF4.Dataset(path, "w", format="NETCDF3_64BIT_OFFSET") as ds:
        ds.createDimension("obs", 3)
        t = ds.createVariable("time", "f8", ("obs",))
        t.units = "hours since 2020-05-01 00:00:00"
        t[:] = [6, 30, 54]
        ds.createVariable("lat", "f4", ("obs",))[:] = [36.6, 36.7, 36.8]
        ds.createVariable("lon", "f4", ("obs",))[:] = [-97.5, -97.5, -97.5]
        v = ds.createVariable("value", "f4", ("obs",), fill_value=-999.0)
        v.units = "m3 m-3"
        v[:] = np.ma.masked_array([0.2, 0.3, 0.0], mask=[False, False, True])
    tab = read("table", [path], kind="sm")
    assert list(tab.time.astype(str)) == ["2020-05-01T06:00:00", "2020-05-02T06:00:00", "2020-05-03T06:00:00"]
    assert list(tab.qc) == [0, 0, 1] and np.isnan(tab.value[2])
    np.testing.assert_allclose(tab.value[:2], [0.2, 0.3], rtol=1e-6)


# --------------------------------------------------------------------------------------------------
# gridded CF netCDF
# --------------------------------------------------------------------------------------------------
def write_latlon(path, units="percent", nt=2):
    lat = np.arange(36.05, 36.55, 0.1)
    lon = np.arange(-97.95, -97.45, 0.1)
    with netCDF4.Dataset(path, "w") as ds:
        ds.createDimension("time", nt)
        ds.createDimension("lat", lat.size)
        ds.createDimension("lon", lon.size)
        t = ds.createVariable("time", "i4", ("time",))
        t.units = "days since 2020-05-01"
        t[:] = np.arange(nt)
        la = ds.createVariable("lat", "f8", ("lat",))
        la.units = "degrees_north"
        la[:] = lat
        lo = ds.createVariable("lon", "f8", ("lon",))
        lo.units = "degrees_east"
        lo[:] = lon
        v = ds.createVariable("ssm", "i2", ("time", "lat", "lon"), fill_value=-1)
        v.units = units
        v.scale_factor = 0.5
        raw = (np.arange(nt * lat.size * lon.size).reshape(nt, lat.size, lon.size) * 7 % 180 + 20).astype(np.int16)
        raw[0, 0, 0] = -1
        v.set_auto_maskandscale(False)
        v[:] = raw
        e = ds.createVariable("ssm_noise", "f4", ("time", "lat", "lon"))
        e.units = units
        e[:] = np.full(raw.shape, 8.0)
        f = ds.createVariable("qflag", "u1", ("time", "lat", "lon"))
        q = np.zeros(raw.shape, np.uint8)
        q[:, 1, :] = 4                         # bit 2 on the second row: e.g. "frozen"
        q[:, 2, 0] = 1                         # bit 0: not rejected unless asked
        f[:] = q
    return lat, lon, raw * 0.5


def test_gridded_latlon_percent_saturation_error_flags(tmp_path):
    path = tmp_path / "ssm.nc"
    lat, lon, pct = write_latlon(path)
    t = read("gridded", [path], variable="ssm", units="percent_saturation", porosity=0.4, error_variable="ssm_noise",
             flag_variables={"qflag": {"bits": [2], "reason": "frozen_ground"}})
    assert len(t) == 2 * 25 and set(t.footprint) == {"gauss"}
    assert t.qc_counts() == {"accepted": 39, "fill_value": 1, "frozen_ground": 10}
    ok = t.accepted
    li = np.rint((t.lat - 36.05) / 0.1).astype(int)
    lj = np.rint((t.lon + 97.95) / 0.1).astype(int)
    k = (t.time - np.datetime64("2020-05-01")).astype("timedelta64[D]").astype(int)
    np.testing.assert_allclose(t.value[ok], pct[k, li, lj][ok] / 100 * 0.4)
    np.testing.assert_allclose(t.error_std, 0.08 * 0.4)
    # footprint: the 0.1 deg pixel as a box, sigma = side / sqrt(12), side = R * sqrt(dlat * dlon * cos(lat))
    side = 6371.0088 * np.radians(0.1) * np.sqrt(np.cos(np.radians(t.lat)))
    np.testing.assert_allclose(t.fov_km, side / SQRT12, rtol=1e-6)
    # left in degree of saturation without porosity; flag bit 0 added as a product quality rejection
    s = read("gridded", [path], variable="ssm", units="percent_saturation", flag_variables={"qflag": [0]},
             start=np.datetime64("2020-05-02"))
    assert len(s) == 25 and s.qc_counts() == {"accepted": 24, "product_quality_flag": 1}
    assert s.value[s.accepted].max() > 0.6                   # saturation up to 1 is not out of range
    with pytest.raises(ValueError, match="ssm.nc.*units 'percent'.*not understood"):
        read("gridded", [path], variable="ssm")              # the file's bare "percent" is ambiguous
    with pytest.raises(ValueError, match="give the option 'variable'"):
        read("gridded", [path], units="percent_saturation")
    with pytest.raises(ValueError, match="not a QC reason"):
        read("gridded", [path], variable="ssm", units="saturation", flag_variables={"qflag": {"bits": [2], "reason": "x"}})


def _write_projected(path, crs, xc, yc, values, name="sm", units="m3 m-3"):
    with netCDF4.Dataset(path, "w") as ds:
        ds.createDimension("y", yc.size)
        ds.createDimension("x", xc.size)
        ds.createVariable("y", "f8", ("y",))[:] = yc
        ds.createVariable("x", "f8", ("x",))[:] = xc
        gm = ds.createVariable("crs", "i4")
        gm.crs_wkt = crs.to_wkt()
        v = ds.createVariable(name, "f4", ("y", "x"), fill_value=-9999.0)
        v.units = units
        v.grid_mapping = "crs"
        v[:] = values
        ds.time_coverage_start = "2020-05-01T06:00:00Z"


def test_gridded_projected_utm_and_ease(tmp_path):
    # UTM zone 33N: x = 500 km is the central meridian 15 E, y = 0 the equator (known answers, not pyproj's)
    utm = pyproj.CRS.from_epsg(32633)
    xc = 500000.0 + np.arange(-2, 3) * 1000.0
    yc = 1000.0 * np.arange(3)[::-1] + 500.0
    path = tmp_path / "utm.nc"
    _write_projected(path, utm, xc, yc, np.full((3, 5), 0.3))
    t = read("gridded", [path], error_std=0.05)
    assert len(t) == 15 and np.all(t.time == np.datetime64("2020-05-01T06:00:00"))
    mid = (np.abs(t.lon - 15.0) < 1e-9)
    assert mid.sum() == 3 and np.all(t.lat[mid] > 0) and t.lat[mid].min() == pytest.approx(500.0 / 110574.3, rel=1e-3)
    np.testing.assert_allclose(t.fov_km, 1.0 / SQRT12)
    # EASE-Grid 2.0 at 9 km: the exact pixel box with its global row/col; at 1 km: the one cell
    ease = pyproj.CRS.from_epsg(6933)
    g9 = GRIDS["M09"]
    rows, cols = np.arange(560, 563), np.arange(880, 884)
    x9, y9 = g9.xy(np.zeros(cols.size, int), cols)[0], g9.xy(rows, np.zeros(rows.size, int))[1]
    p9 = tmp_path / "ease9.nc"
    _write_projected(p9, ease, x9, y9, np.full((3, 4), 0.25))
    t9 = read("gridded", [p9])
    assert set(t9.footprint) == {"M09"} and sorted(set(t9.row)) == list(rows) and sorted(set(t9.col)) == list(cols)
    assert set(read("gridded", [p9], footprint="gauss").footprint) == {"gauss"}
    with pytest.raises(ValueError, match="footprint 'box' needs an EASE"):
        read("gridded", [path], footprint="box")


def test_gridded_1km_pixels_are_the_model_cells(tmp_path):
    """A 1 km EASE grid read as gauss (sigma 1/sqrt(12) km) goes through the footprint operator as the identity."""
    dom = Domain.from_centre(36.6, -97.5, 72.0, 72.0)
    g1 = GRIDS["M01"]
    rows = np.arange(dom.row0 + 10, dom.row0 + 14)
    cols = np.arange(dom.col0 + 20, dom.col0 + 23)
    path = tmp_path / "ease1.nc"
    _write_projected(path, pyproj.CRS.from_epsg(6933), g1.xy(0, cols)[0], g1.xy(rows, 0)[1], np.full((4, 3), 0.2))
    t = read("gridded", [path])
    assert set(t.footprint) == {"gauss"} and np.allclose(t.fov_km, g1.km / SQRT12)
    field = np.arange(dom.n_cells, dtype=float)[:, None] * np.ones((1, 2))
    op = FootprintOperator.build(t, dom, np.arange(dom.n_cells), kind="auto", fov_km=t.fov_km)   # as run.operator does
    hx, inside = finish(*op.partial_sums(field), 0.5)
    r, c = g1.rowcol(t.x, t.y)
    np.testing.assert_array_equal(hx[:, 0], (r - dom.row0) * dom.ncols + (c - dom.col0))
    assert np.all(inside == 1.0)


# --------------------------------------------------------------------------------------------------
# TU Wien cell files
# --------------------------------------------------------------------------------------------------
def test_tuw_cells_round_trip(tmp_path, caplog):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pynetcf")
    from pygeogrids.grids import BasicGrid
    from pygeogrids.netcdf import save_grid
    from pynetcf.time_series import GriddedNcOrthoMultiTs

    lons, lats = np.meshgrid(np.arange(-97.9, -97.0, 0.25), np.arange(36.1, 37.0, 0.25))
    grid = BasicGrid(lons.ravel(), lats.ravel()).to_cell_grid(5.0)
    save_grid(str(tmp_path / "grid.nc"), grid)
    times = pd.date_range("2017-01-01 06:00", periods=6, freq="D")
    with GriddedNcOrthoMultiTs(str(tmp_path), grid=grid, mode="w") as ds:
        for gpi in grid.activegpis:
            sm = 30.0 + gpi + np.arange(6.0)
            sm[2] = np.nan
            ds.write(int(gpi), pd.DataFrame({"sm": sm, "sm_noise": np.full(6, 4.0), "flag": [0, 0, 0, 8, 0, 0]},
                                            index=times))
    cell = tmp_path / f"{int(grid.activearrcell[0]):04d}.nc"
    assert cell.is_file()
    t = read("tuw_cells", [cell], units="percent_saturation", porosity=0.5, error_variable="sm_noise",
             flag_variable="flag", reject_bits=[3], start=np.datetime64("2017-01-02"))
    n = grid.activegpis.size
    assert len(t) == 5 * n and t.qc_counts() == {"accepted": 3 * n, "fill_value": n, "product_quality_flag": n}
    first = t.select(t.time == np.datetime64("2017-01-02T06:00"))
    np.testing.assert_allclose(np.sort(first.value), np.sort((31.0 + grid.activegpis) / 100 * 0.5))
    np.testing.assert_allclose(t.error_std, 0.02)
    assert set(t.footprint) == {"gauss"} and np.all(t.fov_km == 20.0)
    m36 = read("tuw_cells", [cell], footprint="M36", units="percent_saturation", porosity=0.5,
               bbox=(36.0, 36.3, -98.0, -97.7), halo_km=0.0)
    r, c = GRIDS["M36"].rowcol_of_latlon(36.1, -97.9)
    assert len(m36) == 6 and set(zip(m36.row, m36.col, strict=True)) == {(r, c)}
    with pytest.raises(ValueError, match="not a cell file"):
        read("tuw_cells", [tmp_path / "grid.nc"])


def test_duplicate_table_listed_twice(tmp_path, caplog):
    path = tmp_path / "obs.csv"
    write_csv(path)
    with caplog.at_level(logging.WARNING):
        t = read("table", [path, str(path)], columns={"time": "date", "lat": "latitude"})
    assert len(t) == 5 and any("listed twice" in r.getMessage() for r in caplog.records)
