"""Readers (real ERA5 and Bondville files), units, regridding, lapse rate, time interpolation."""

import os
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import xarray as xr

from smda.constants import saturation_vapour_pressure
from smda.forcing import units as U
from smda.forcing.readers import GriddedForcing
from smda.forcing.regrid import LAPSE_RATE, BilinearWeights, lapse_adjust
from smda.forcing.site import SiteForcing, read_station_table
from smda.forcing.timeinterp import distribute_shortwave, flux_interval

DATA = Path(os.environ.get("SMDA_SAMPLE_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))
ERA5 = DATA / "forcing" / "era5_testfile.nc"
BONDVILLE = DATA / "forcing" / "bondville.dat"
need_era5 = pytest.mark.skipif(not ERA5.is_file(), reason=f"sample data {ERA5} absent")
need_bondville = pytest.mark.skipif(not BONDVILLE.is_file(), reason=f"sample data {BONDVILLE} absent")


# --- units ----------------------------------------------------------------------------------
@pytest.mark.parametrize("units, name, value, expected, interval", [
    ("kg m-2 s-1", "precip", 1e-4, 1e-4, None),
    ("kg m{-2} s{-1}", "precip", 1e-4, 1e-4, None),
    ("mm/h", "precip", 3.6, 1e-3, None),
    ("m", "precip", 0.0036, 1e-3, 3600.0),  # ERA5 tp: m over the hour
    ("J m**-2", "sw_down", 3.6e6, 1000.0, 3600.0),  # ERA5 ssrd
    ("W m**-2", "sw_down", 400.0, 400.0, None),
    ("degC", "t_air", 20.0, 293.15, None),
    ("hPa", "p_surf", 1000.0, 1e5, None),
    ("g/kg", "q_air", 10.0, 0.01, None),
    ("%", "rel_hum", 50.0, 0.5, None),
    ("m s**-1", "wind", 2.0, 2.0, None),
])
def test_unit_conversion(units, name, value, expected, interval):
    got = U.convert(value, units, U.ALLOWED[name], where="test", interval_s=interval)
    assert got == pytest.approx(expected, rel=1e-12)


def test_unit_errors_name_file_and_variable():
    with pytest.raises(ValueError, match="f.nc, variable 'tp'.*wrong dimension"):
        U.convert(1.0, "K", U.ALLOWED["precip"], where="file f.nc, variable 'tp'")
    with pytest.raises(ValueError, match="unknown units 'furlongs'"):
        U.convert(1.0, "furlongs", U.ALLOWED["wind"], where="file f.nc, variable 'u10'")
    with pytest.raises(ValueError, match="accumulation interval"):
        U.convert(1.0, "J m-2", U.ALLOWED["sw_down"], where="x")


def test_humidity_round_trip():
    # Bolton e_s(20 C) within 0.1 % of the tabulated 2339 Pa (WMO, Goff-Gratch)
    assert saturation_vapour_pressure(293.15) == pytest.approx(2339.0, rel=2e-3)
    q = U.q_from_rh(0.6, 293.15, 1e5)
    assert U.rh_from_q(q, 293.15, 1e5) == pytest.approx(0.6, rel=1e-12)
    assert U.q_from_dewpoint(293.15, 1e5) == pytest.approx(U.q_from_rh(1.0, 293.15, 1e5), rel=1e-12)


# --- ERA5 ---------------------------------------------------------------------------------
@need_era5
def test_era5_values_and_units():
    g = GriddedForcing(ERA5, "era5", required=("t_air", "p_surf", "wind", "sw_down"), chunk_steps=48)
    assert g.sources == {"t_air": ("t2m",), "p_surf": ("sp",), "wind": ("u10", "v10"), "sw_down": ("msdwswrf",)}
    assert g.times.size == 8784 and g.dt_s == 3600.0
    assert g.times[0] == np.datetime64("2020-01-01T00:00:00")
    with netCDF4.Dataset(ERA5) as nc:  # independent decoding (scale_factor / add_offset)
        k = 24 * 152 + 12  # 2020-06-01T12
        t2m = float(nc["t2m"][k, 0, 0])
        sp = float(nc["sp"][k, 0, 0])
        u, v = float(nc["u10"][k, 0, 0]), float(nc["v10"][k, 0, 0])
        sw13 = float(nc["msdwswrf"][k + 1, 0, 0])
    f = g.fields(np.datetime64("2020-06-01T12:00"), [55.7], [12.5])
    assert f["t_air"][0] == pytest.approx(t2m, abs=1e-3)
    assert f["p_surf"][0] == pytest.approx(sp, abs=0.1)
    assert f["wind"][0] == pytest.approx(np.hypot(u, v), abs=1e-3)
    assert 250 < f["t_air"][0] < 310 and 9e4 < f["p_surf"][0] < 1.1e5
    # shortwave over (12, 13] UTC: the mean is preserved by the zenith distribution
    sub = [g.fields(np.datetime64("2020-06-01T12:00") + np.timedelta64(m, "m"), [55.7], [12.5])["sw_down"][0]
           for m in range(1, 61)]
    assert np.mean(sub) == pytest.approx(sw13, rel=0.01)
    g2 = GriddedForcing(ERA5, "era5", required=("sw_down",), sw_zenith=False)
    assert g2.fields(np.datetime64("2020-06-01T12:30"), [55.7], [12.5])["sw_down"][0] == pytest.approx(sw13, abs=1e-3)
    # night: zero shortwave
    assert g.fields(np.datetime64("2020-01-01T01:00"), [55.7], [12.5])["sw_down"][0] == pytest.approx(0, abs=0.1)
    g.close()
    g2.close()


@need_era5
def test_era5_missing_and_bad_units(tmp_path):
    with pytest.raises(ValueError, match=r"missing forcing variables \['precip', 'lw_down', 'q_air'\]"):
        GriddedForcing(ERA5, "era5")
    with pytest.raises(ValueError, match="unknown forcing preset"):
        GriddedForcing(ERA5, "era6")
    ds = xr.open_dataset(ERA5).isel(time=slice(0, 5)).load()
    ds["t2m"].attrs["units"] = "m s-1"
    bad = tmp_path / "bad.nc"
    ds.to_netcdf(bad)
    ds.close()
    with pytest.raises(ValueError, match=r"bad.nc, variable 't2m'.*wrong for t_air"):
        GriddedForcing(bad, "era5", required=("t_air",))


@need_era5
def test_era5_unit_mistake_refused_and_overlapping_files_read_once(tmp_path, caplog):
    ds = xr.open_dataset(ERA5).isel(time=slice(0, 72)).load()
    ds.to_netcdf(tmp_path / "all.nc")
    ds.isel(time=slice(0, 40)).to_netcdf(tmp_path / "a.nc")
    ds.isel(time=slice(30, 72)).to_netcdf(tmp_path / "b.nc")
    bad = ds.copy()
    bad["sp"].attrs["units"] = "hPa"  # values in Pa under an hPa label
    bad.to_netcdf(tmp_path / "bad.nc")
    ds.close()
    cells = ([55.7], [12.5])
    g = GriddedForcing(tmp_path / "bad.nc", "era5", required=("p_surf",))
    with pytest.raises(ValueError, match=r"bad.nc, variable 'sp': p_surf value .* Pa \(labelled 'hPa'\) at "
                       r"2020-01-01T00:00:00 .*likely pressure in Pa labelled hPa"):  # first bad record read
        g.fields(np.datetime64("2020-01-01T03:00"), *cells)
    g.close()
    req = ("t_air", "p_surf", "wind", "sw_down")
    one = GriddedForcing(tmp_path / "all.nc", "era5", required=req, chunk_steps=24)
    with caplog.at_level("WARNING", logger="smda.forcing.readers"):
        two = GriddedForcing([tmp_path / "b.nc", tmp_path / "a.nc"], "era5", required=req, chunk_steps=24)
    assert "10 time stamps appear in several files" in caplog.text
    np.testing.assert_array_equal(two.times, one.times)
    for t in one.times[1::7]:
        f1, f2 = one.fields(t, *cells), two.fields(t, *cells)
        assert f1.keys() == f2.keys() and all(np.array_equal(f1[k], f2[k]) for k in f1)
    one.close()
    two.close()


def _synthetic_era5_land(path):
    """Two days of ERA5-Land-like accumulations (reset at 00 UTC) on a 3 x 4 grid."""
    t = np.arange(np.datetime64("2020-06-01T00"), np.datetime64("2020-06-03T01"), np.timedelta64(1, "h"))
    rate = 1e-4 * (1 + np.arange(t.size) % 5)  # kg m-2 s-1 over each hour
    hours = (t - t.astype("datetime64[D]")) // np.timedelta64(1, "h")
    acc = np.zeros(t.size)
    for i in range(t.size):
        acc[i] = rate[i] * 3600 / 1000.0 + (acc[i - 1] if i > 0 and hours[i] != 1 else 0.0)
    field = np.broadcast_to(acc[:, None, None], (t.size, 3, 4)).copy()
    ds = xr.Dataset({"tp": (("time", "latitude", "longitude"), field, {"units": "m"})},
                    coords={"time": t, "latitude": [41.0, 40.0, 39.0], "longitude": [-90.0, -89.0, -88.0, -87.0]})
    ds.to_netcdf(path)
    return t, rate


def test_era5_land_deaccumulation_streaming(tmp_path):
    t, rate = _synthetic_era5_land(tmp_path / "e5l.nc")
    g = GriddedForcing(tmp_path / "e5l.nc", "era5_land", required=("precip",), chunk_steps=7)
    got = [g.fields(t[k], [40.2], [-88.5])["precip"][0] for k in range(1, t.size)]
    np.testing.assert_allclose(got, rate[1:], rtol=1e-9)
    # the reader keeps only one chunk in memory
    assert g._chunk[2]["precip"].shape[0] <= 7


# --- regridding ------------------------------------------------------------------------------
def test_precip_conservation_to_round_off():
    rng = np.random.default_rng(1)
    glat = np.arange(45.0, 39.9, -0.25)
    glon = np.arange(-92.0, -85.9, 0.25)
    p = rng.gamma(0.5, 2e-4, (glat.size, glon.size))
    p[p < 1e-4] = 0.0
    # 1 km-like cells covering the interior forcing cells completely
    lat = np.linspace(41.0 - 0.125 + 0.005, 44.0 + 0.125 - 0.005, 150)
    lon = np.linspace(-91.0 - 0.125 + 0.005, -87.0 + 0.125 - 0.005, 200)
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    area = np.cos(np.radians(la.ravel()))
    w = BilinearWeights(glat, glon, la.ravel(), lo.ravel())
    out = w.conservative(p, cell_area=area)
    a_k = np.bincount(w.owner, weights=area, minlength=p.size)
    total_src = np.sum(p.ravel() * a_k)
    assert np.sum(out * area) == pytest.approx(total_src, rel=1e-12)
    assert np.all(out >= 0)
    # each forcing cell's mean is reproduced exactly, bilinear alone is not conservative
    mean_k = np.bincount(w.owner, weights=out * area, minlength=p.size)[a_k > 0] / a_k[a_k > 0]
    np.testing.assert_allclose(mean_k, p.ravel()[a_k > 0], rtol=1e-12, atol=1e-20)
    assert abs(np.sum(w.bilinear(p) * area) / total_src - 1) > 1e-6


def test_bilinear_exact_for_linear_field_and_outside():
    glat = np.array([42.0, 41.0, 40.0])  # descending like ERA5
    glon = np.array([10.0, 11.0, 12.0, 13.0])
    f = 2.0 * glat[:, None] + 3.0 * glon[None, :]
    lat = np.array([40.3, 41.7, 41.0])
    lon = np.array([10.2, 12.9, 11.5])
    w = BilinearWeights(glat, glon, lat, lon)
    np.testing.assert_allclose(w.bilinear(f), 2 * lat + 3 * lon, rtol=1e-13)
    with pytest.raises(ValueError, match="outside the forcing grid's latitude"):
        BilinearWeights(glat, glon, [45.0], [11.0], where="file x.nc")


def test_lapse_rate_on_a_slope():
    n = 11
    z = np.linspace(0.0, 2000.0, n)  # a slope from 0 to 2 km above the forcing grid
    t = np.full(n, 290.0)
    p = np.full(n, 101325.0)
    q = np.full(n, U.q_from_rh(0.6, 290.0, 101325.0))
    lapse_adjust(t, p, q, z, LAPSE_RATE)
    np.testing.assert_allclose(t, 290.0 - 6.5e-3 * z, rtol=1e-13)
    assert np.all(np.diff(t) < 0) and np.all(np.diff(p) < 0)
    # hydrostatic check: d ln p / dz = -g / (R_d T) along the slope (finite difference, mid-points)
    dlnp = np.diff(np.log(p)) / np.diff(z)
    tm = 0.5 * (t[1:] + t[:-1])
    np.testing.assert_allclose(dlnp, -9.80665 / (287.05 * tm), rtol=1e-4)
    # 2 km up: about 79.5 kPa in the standard atmosphere scaled to 290 K at the bottom
    assert p[-1] == pytest.approx(101325.0 * (277.0 / 290.0) ** 5.2559, rel=1e-4)
    np.testing.assert_allclose(U.rh_from_q(q, t, p), 0.6, rtol=1e-12)


def test_gridded_lapse_correction(tmp_path):
    t = np.arange(np.datetime64("2020-06-01T00"), np.datetime64("2020-06-01T04"), np.timedelta64(1, "h"))
    lat, lon = [41.0, 40.0], [-89.0, -88.0]
    shape = (t.size, 2, 2)
    ds = xr.Dataset({
        "T2M": (("time", "lat", "lon"), np.full(shape, 295.0), {"units": "K"}),
        "PS": (("time", "lat", "lon"), np.full(shape, 1.0e5), {"units": "Pa"}),
        "QV2M": (("time", "lat", "lon"), np.full(shape, 0.01), {"units": "kg kg-1"}),
    }, coords={"time": t, "lat": lat, "lon": lon})
    ds.to_netcdf(tmp_path / "m2.nc")
    g = GriddedForcing(tmp_path / "m2.nc", "merra2", required=("t_air",),
                       forcing_elevation_m=np.full((2, 2), 200.0))
    f = g.fields(t[1], [40.5, 40.5], [-88.5, -88.2], elevation_m=[200.0, 1200.0])
    assert f["t_air"] == pytest.approx([295.0, 295.0 - 6.5], abs=1e-9)
    assert f["p_surf"][1] < f["p_surf"][0] == pytest.approx(1e5)


def test_flux_intervals_and_zenith_distribution():
    times = np.arange(np.datetime64("2020-06-01T00"), np.datetime64("2020-06-02T00"), np.timedelta64(3, "h"))
    k, t0, t1 = flux_interval(times, np.datetime64("2020-06-01T04:00"), "end", 3 * 3600)
    assert k == 2 and t0 == np.datetime64("2020-06-01T03:00") and t1 == np.datetime64("2020-06-01T06:00")
    k, t0, _ = flux_interval(times, np.datetime64("2020-06-01T04:00"), "start", 3 * 3600)
    assert k == 1 and t0 == np.datetime64("2020-06-01T03:00")
    # zenith distribution preserves the interval mean
    lat, lon = np.array([40.0, 10.0]), np.array([-88.0, 20.0])
    t0, t1 = np.datetime64("2020-06-01T12:00"), np.datetime64("2020-06-01T15:00")
    vals = [distribute_shortwave(np.array([500.0, 500.0]), t0, t1, t0 + np.timedelta64(30 * i + 15, "m"), lat, lon)
            for i in range(6)]
    np.testing.assert_allclose(np.mean(vals, axis=0), 500.0, rtol=0.02)


# --- Bondville station table -----------------------------------------------------------------------
@need_bondville
def test_bondville_table():
    df = read_station_table(BONDVILLE)
    assert list(df.columns) == list(U.NAMES)
    assert len(df) == 17521
    assert df.index[0] == np.datetime64("1998-01-01T06:30")
    first = df.iloc[0]
    assert first.t_air == pytest.approx(263.9499816895)
    assert first.p_surf == pytest.approx(100200.0)
    assert first.wind == pytest.approx(5.6300001144)
    assert first.lw_down == pytest.approx(281.0)
    # RH 86.1 % at 263.95 K and 1002 hPa
    assert first.q_air == pytest.approx(U.q_from_rh(0.860999984741, 263.9499816895, 100200.0), rel=1e-9)
    # annual totals: Illinois ~ 900-1000 mm, shortwave annual mean ~ 150-200 W m-2
    year = df.loc["1998-01-01T06:30":"1999-01-01T06:00"]
    assert 700 < year.precip.sum() * 1800 < 1200
    assert 120 < year.sw_down.mean() < 200
    assert df.attrs["forcing_fill"] == {}


@need_bondville
def test_site_fill_is_recorded_and_required(tmp_path):
    df = read_station_table(BONDVILLE)
    small = tmp_path / "site.csv"
    out = df.iloc[:96][["precip", "t_air", "p_surf"]].copy()
    out["t_c"] = out.t_air - 273.15
    out.reset_index().to_csv(small, index=False)
    cols = {"precip": "precip", "t_air": "t_c", "p_surf": "p_surf"}
    units = {"precip": "kg m-2 s-1", "t_air": "degC", "p_surf": "Pa"}
    with pytest.raises(ValueError, match="lacks forcing variables"):
        read_station_table(small, columns=cols, units=units)
    got = read_station_table(small, columns=cols, units=units, fill=("sw_down", "lw_down", "q_air", "wind"),
                             lat=40.0, lon=-88.3)
    assert set(got.attrs["forcing_fill"]) == {"sw_down", "lw_down", "q_air", "wind"}
    np.testing.assert_allclose(got.t_air, df.t_air.iloc[:96], rtol=1e-12)
    assert got.sw_down.max() > 100 and got.sw_down.min() == 0.0
    s = SiteForcing(got)
    f = s.fields(got.index[10].to_datetime64(), np.zeros(5), np.zeros(5))
    assert all(v.shape == (5,) for v in f.values()) and s.fill_record == got.attrs["forcing_fill"]
    with pytest.raises(ValueError, match="units"):
        read_station_table(small, columns=cols, units={**units, "t_air": "W"})


# --- gaps in gridded forcing --------------------------------------------------------------------
_LAT, _LON = [41.0, 40.0, 39.0], [-90.0, -89.0, -88.0, -87.0]


def _era5_like(path, hours=120, drop=()):
    """Hourly ERA5-like t2m (K, a diurnal cycle: not linear in time) and tp (m) on a 3 x 4 grid; records ``drop``
    left out of the file (holes in the time axis). Returns (times, t2m (K), tp (m)) before dropping."""
    t = np.datetime64("2020-01-01T00") + np.arange(hours) * np.timedelta64(1, "h")
    h = np.arange(hours)[:, None, None]
    t2m = 275.0 + 8.0 * np.sin(2 * np.pi * h / 24.0) + np.arange(12.0).reshape(1, 3, 4)
    tp = np.broadcast_to(1e-3 * (1 + h % 3), (hours, 3, 4)).astype(float)
    keep = np.setdiff1d(np.arange(hours), drop)
    ds = xr.Dataset({"t2m": (("time", "latitude", "longitude"), t2m[keep], {"units": "K"}),
                     "tp": (("time", "latitude", "longitude"), tp[keep], {"units": "m"})},
                    coords={"time": t[keep], "latitude": _LAT, "longitude": _LON})
    return t, t2m, tp, ds


def _at_nodes(g, t):
    """t2m and precip at the 12 grid nodes (bilinear weights 1 at a node)."""
    lat, lon = np.meshgrid(_LAT, _LON, indexing="ij")
    f = g.fields(t, lat.ravel(), lon.ravel())
    return f["t_air"].reshape(3, 4), f["precip"].reshape(3, 4)


def _linear(t2m, s, e, mask):
    """t2m with records s..e replaced where ``mask`` (3, 4) by linear interpolation from records s-1 and e+1."""
    w = ((np.arange(s, e + 1) - (s - 1)) / (e + 1 - (s - 1)))[:, None, None]
    out = t2m.copy()
    out[s:e + 1] = np.where(mask, (1 - w) * t2m[s - 1] + w * t2m[e + 1], t2m[s:e + 1])
    return out


@pytest.mark.parametrize("chunk_steps", [24, 8])  # 8: the gap of records 6..9 crosses the chunk boundary at 8
def test_gridded_gap_filled_linearly_and_recorded(tmp_path, chunk_steps):
    t, t2m, tp, ds = _era5_like(tmp_path, drop=[50, 51])  # a hole of 2 h in the time axis
    cells = np.zeros((3, 4), bool)
    cells[[0, 1, 2], [1, 2, 3]] = True
    ds["t2m"].values[6:10, cells] = np.nan  # a 4-hour gap (_FillValue in the file) at three cells
    ds["tp"].values[20:23] = np.nan  # 3 hours without precipitation at every cell
    ds.to_netcdf(tmp_path / "gap.nc", encoding={"t2m": {"_FillValue": -32767.0}})
    g = GriddedForcing(tmp_path / "gap.nc", "era5", required=("t_air", "precip"), chunk_steps=chunk_steps,
                       sw_zenith=False)
    assert g.times.size == t.size and g.dt_s == 3600.0
    expected = _linear(_linear(t2m, 6, 9, cells), 50, 51, np.ones((3, 4), bool))
    got = np.array([_at_nodes(g, tk)[0] for tk in t])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
    assert np.abs(got[7][cells] - t2m[7][cells]).max() > 0.1  # interpolation, not the (unknown) truth
    precip = np.array([_at_nodes(g, tk)[1] for tk in t[1:]])  # precip at t[k] is the hour ending at t[k]
    np.testing.assert_allclose(precip[19:22], 0.0)  # records 20..22
    np.testing.assert_allclose(precip[49:51], 0.0)  # the missing records 50, 51
    np.testing.assert_allclose(precip[22], tp[23] / 3.6, rtol=1e-9)  # m per hour -> kg m-2 s-1
    rec = g.fill_record
    assert rec.keys() == {"t_air", "precip"}
    assert rec["t_air"].startswith("36 values at 6 time steps") and "longest 4 h" in rec["t_air"]
    assert rec["precip"].startswith("60 values at 5 time steps") and rec["precip"].endswith("set to 0 (no rain assumed)")
    g.close()


def test_gridded_long_gap_refused(tmp_path):
    t, t2m, tp, ds = _era5_like(tmp_path)
    ds["t2m"].values[20:92, 1, :2] = np.nan  # 3 days at two cells
    ds.to_netcdf(tmp_path / "long.nc")
    msg = (r"long.nc: variable 't2m' \(t_air\) is missing at 2 of 12 forcing grid cells from 2020-01-01T20:00:00 to "
           r"2020-01-04T19:00:00 \(72 h\), longer than forcing.max_gap_h = 6 h")
    for k in (0, 50):  # a chunk where the gap starts, and one inside it: the period is the whole gap
        g = GriddedForcing(tmp_path / "long.nc", "era5", required=("t_air", "precip"), chunk_steps=24)
        with pytest.raises(ValueError, match=msg):
            _at_nodes(g, t[k])
        g.close()
    g = GriddedForcing(tmp_path / "long.nc", "era5", required=("t_air", "precip"), max_gap_h=72.0)
    assert np.isfinite(_at_nodes(g, t[50])[0]).all()
    g.close()
    # a hole of a day in the time axis (a missing daily download) is the same error at every cell
    _, _, _, ds = _era5_like(tmp_path, drop=np.arange(48, 72))
    ds.to_netcdf(tmp_path / "hole.nc")
    g = GriddedForcing(tmp_path / "hole.nc", "era5", required=("t_air", "precip"))
    with pytest.raises(ValueError, match=r"hole.nc: variable 't2m' \(t_air\) is missing at 12 of 12 forcing grid cells "
                       r"from 2020-01-03T00:00:00 to 2020-01-03T23:00:00 \(24 h\)"):
        _at_nodes(g, t[60])
    g.close()
