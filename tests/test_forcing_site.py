"""Station forcing: elevation-aware fills, unit-mistake refusals, gaps, several files, time columns and zones."""

import logging

import numpy as np
import pandas as pd
import pytest

from smda.constants import GRAVITY, P_STANDARD, R_DRY
from smda.constants import saturation_vapour_pressure as es
from smda.forcing import fills as F
from smda.forcing import units as U
from smda.forcing.site import read_station_table
from smda.run.namelist import NamelistError, load
from tests.conftest import SAMPLE_DATA

BONDVILLE = SAMPLE_DATA / "forcing" / "bondville.dat"
COLUMNS = {"time": "date", "precip": "rain", "sw_down": "sw", "lw_down": "lw", "t_air": "ta", "rel_hum": "rh",
           "p_surf": "ps", "wind": "ws"}
UNITS = {"precip": "mm h-1", "sw_down": "W m-2", "lw_down": "W m-2", "t_air": "degC", "rel_hum": "%", "p_surf": "hPa",
         "wind": "m s-1"}


def station(hours=24 * 10, start="2019-05-01T00:00", seed=0):
    """An hourly station table in the user's units (degC, %, hPa, mm h-1): a diurnal cycle, rain every third day."""
    t = pd.date_range(start, periods=hours, freq="1h")
    h = t.hour.to_numpy()
    rng = np.random.default_rng(seed)
    day = np.arange(hours) // 24
    return pd.DataFrame({
        "date": t.strftime("%Y-%m-%dT%H:%M"), "rain": np.where((day % 3 == 0) & (h == 15), 2.0, 0.0),
        "sw": np.clip(850 * np.sin((h - 6) / 12 * np.pi), 0, None), "lw": 300 + 10 * rng.standard_normal(hours),
        "ta": 12 + 7 * np.sin((h - 9) / 12 * np.pi), "rh": 65 - 20 * np.sin((h - 9) / 12 * np.pi),
        "ps": 1003 + rng.standard_normal(hours), "ws": 3 + rng.random(hours)})


def write(df, path):
    df.to_csv(path, index=False)
    return path


def read(paths, **kw):
    return read_station_table(paths, **{"columns": COLUMNS, "units": UNITS, **kw})


# --- elevation-aware fills ----------------------------------------------------------------------
def test_pressure_fill_at_2842_m_is_hypsometric(tmp_path):
    z = 2842.0
    df = station().drop(columns="ps")
    df["ta"] -= 15.0  # a mountain station
    got = read(write(df, tmp_path / "mountain.csv"), units={k: v for k, v in UNITS.items() if k != "p_surf"},
               columns={k: v for k, v in COLUMNS.items() if k != "p_surf"}, fill=("p_surf",), elevation_m=z)
    assert "2842 m" in got.attrs["forcing_fill"]["p_surf"] and "hypsometric" in got.attrs["forcing_fill"]["p_surf"]
    # independent: hydrostatic integration of dp/dz = -g p / (R_d T_v) from 101325 Pa at sea level up a column
    # with the standard lapse rate to the station temperature, virtual temperature from the station humidity
    t = got.t_air.to_numpy()
    q = got.q_air.to_numpy()
    zs = np.linspace(0.0, z, 2001)
    temp = t[:, None] + 6.5e-3 * (z - zs[None, :])
    tv = temp * (1 + 0.608 * q[:, None])
    lnp = np.log(P_STANDARD) - GRAVITY / R_DRY * np.trapezoid(1.0 / tv, zs, axis=1)
    np.testing.assert_allclose(got.p_surf, np.exp(lnp), rtol=0.01)
    np.testing.assert_allclose(got.p_surf, np.exp(lnp), rtol=2e-4)  # the column-mean temperature is near exact
    assert 0.70 < got.p_surf.mean() / P_STANDARD < 0.73  # about 720 hPa, not the sea-level pressure
    # humidity conversion used the filled pressure: RH is recovered
    np.testing.assert_allclose(U.rh_from_q(got.q_air, got.t_air, got.p_surf), df.rh / 100, rtol=1e-9)


def test_pressure_fill_needs_the_elevation(tmp_path):
    case = tmp_path / "c.yaml"
    case.write_text("forcing:\n  source: site\n  paths: [x.csv]\n  fill: [p_surf]\n")
    with pytest.raises(NamelistError, match="station_elevation_m.*needs the station elevation"):
        load(case)
    with pytest.raises(ValueError, match="station elevation"):
        read_station_table(write(station().drop(columns="ps"), tmp_path / "s.csv"), fill=("p_surf",),
                           columns={k: v for k, v in COLUMNS.items() if k != "p_surf"}, units=UNITS)


def test_sea_level_pressure_at_a_mountain_station_is_refused(tmp_path):
    path = write(station(), tmp_path / "s.csv")
    with pytest.raises(ValueError, match="'ps' \\(p_surf\\).*2842 m: likely sea-level pressure"):
        read(path, elevation_m=2842.0)
    assert read(path, elevation_m=60.0).p_surf.mean() == pytest.approx(100300, rel=1e-3)


def test_humidity_wind_and_shortwave_fills(tmp_path):
    df = station(hours=24 * 40)
    cols = {k: v for k, v in COLUMNS.items() if k not in ("rel_hum", "wind", "sw_down")}
    got = read(write(df, tmp_path / "s.csv"), columns=cols, fill=("q_air", "wind", "sw_down"), lat=41.3, lon=-5.4)
    rec = got.attrs["forcing_fill"]
    assert {"q_air", "wind", "sw_down"} == set(rec) and "FAO-56" in rec["wind"] and "Thornton" in rec["sw_down"]
    assert np.all(got.wind == 2.0)
    # dewpoint = daily minimum temperature: saturated at the daily minimum, never supersaturated
    rh = U.rh_from_q(got.q_air, got.t_air, got.p_surf)
    days = F.local_days(got.index.to_numpy(), -5.4)
    coldest = got.t_air.groupby(days).transform("min").to_numpy() == got.t_air.to_numpy()
    np.testing.assert_allclose(rh[coldest], 1.0, rtol=1e-9)
    assert rh.max() <= 1.0 + 1e-9
    tmin, tmax = (got.t_air.groupby(days).transform(f).to_numpy() for f in ("min", "max"))
    warmest = tmax == got.t_air.to_numpy()
    np.testing.assert_allclose(rh[warmest], es(tmin[warmest]) / es(tmax[warmest]), rtol=1e-9)  # about 0.4
    # shortwave: zero at night, below the top of the atmosphere, and rain days darker than dry ones
    toa, _ = F.toa_shortwave(got.index.to_numpy(), 41.3, -5.4, 3600.0)
    assert np.all(got.sw_down <= toa) and np.all(got.sw_down[toa == 0] == 0)
    daily = pd.DataFrame({"sw": got.sw_down.to_numpy(), "toa": toa, "rain": got.precip.to_numpy()}).groupby(days).sum()
    ratio = daily.sw / daily.toa
    assert ratio[daily.rain > 0].max() < ratio[daily.rain == 0].min()
    assert 0.5 < ratio[daily.rain == 0].mean() < 0.8  # a 14 K diurnal range: clear skies


@pytest.mark.skipif(not BONDVILLE.is_file(), reason=f"sample data {BONDVILLE} absent")
def test_shortwave_and_humidity_fills_against_the_real_bondville_record():
    df = read_station_table(BONDVILLE)
    times = df.index.to_numpy()
    sw = F.cloudy_shortwave(times, df.t_air, df.precip, df.q_air, df.p_surf, 40.01, -88.29, 1800.0)
    daily = pd.DataFrame({"obs": df.sw_down.to_numpy(), "fill": sw}, index=df.index).resample("1D").mean()
    assert daily.corr().iloc[0, 1] > 0.85
    assert abs(daily.fill.mean() / daily.obs.mean() - 1) < 0.15  # about +10 %
    q = F.humidity_fill(times, df.t_air, df.p_surf, -88.29)
    assert np.corrcoef(q, df.q_air)[0, 1] > 0.9 and abs(q.mean() / df.q_air.mean() - 1) < 0.15


# --- unit mistakes refused ---------------------------------------------------------------------
@pytest.mark.parametrize("column, change, match", [
    ("ps", lambda v: v * 100, "'ps'.*p_surf value .* likely pressure in Pa labelled hPa"),
    ("rh", lambda v: v / 100, "'rh'.*likely relative humidity as a fraction labelled percent"),
    ("rain", lambda v: v, "'rain'.*precip value .* likely precipitation per hour labelled per second"),
    ("ta", lambda v: v, "'ta'.*t_air value .* likely temperature in degC labelled K"),
    ("sw", lambda v: v * 3600, "'sw'.*sw_down value .* likely J m-2 accumulated over 3600 s labelled W m-2"),
])
def test_unit_mistakes_are_refused_naming_the_variable(tmp_path, column, change, match):
    df = station(hours=24 * 40)
    df[column] = change(df[column])
    units = dict(UNITS)
    if column == "rain":
        units["precip"] = "kg m-2 s-1"  # mm per hour under a per-second label
    if column == "ta":
        units["t_air"] = "K"
    path = write(df, tmp_path / "bad.csv")
    with pytest.raises(ValueError, match=match) as err:
        read(path, units=units)
    assert str(path) in str(err.value) and (column == "rh" or " at 2019-05-" in str(err.value))  # rh: a series check
    read(path, units=units, check=False)  # the checks can be turned off


def test_in_range_but_implausible_precipitation_series_is_refused(tmp_path):
    df = station(hours=24 * 40)
    df["rain"] = 0.05  # 0.05 mm h-1 every hour labelled per second: in range, but 1.6 m per year
    with pytest.raises(ValueError, match="'rain'.*above the wettest place.*per hour labelled per second"):
        read(write(df, tmp_path / "s.csv"), units={**UNITS, "precip": "kg m-2 s-1"})


# --- gaps --------------------------------------------------------------------------------------
def test_three_hour_gap_is_filled_and_recorded(tmp_path):
    df = station()
    ref = read(write(df, tmp_path / "full.csv"))
    df.loc[50:52, "ta"] = np.nan  # three missing hours
    df.loc[60:61, "rain"] = -9999.0  # a missing-value marker
    df = df.drop(index=[80, 81, 82])  # three missing records
    got = read(write(df, tmp_path / "gaps.csv"))
    assert got.index.equals(ref.index)
    lin = np.interp(np.arange(50, 53), [49, 53], ref.t_air.iloc[[49, 53]])
    np.testing.assert_allclose(got.t_air.iloc[50:53], lin, rtol=1e-12)
    assert np.all(got.precip.iloc[[60, 61, 80, 81, 82]] == 0.0)
    rec = got.attrs["forcing_fill"]
    assert "interpolated linearly" in rec["t_air"] and "set to 0" in rec["precip"] and "longest 3 h" in rec["wind"]
    mask = np.ones(len(ref), bool)
    mask[[50, 51, 52, 60, 61, 80, 81, 82]] = False
    pd.testing.assert_frame_equal(got[mask], ref[mask])


def test_three_day_gap_is_refused_naming_file_variable_and_period(tmp_path):
    df = station(hours=24 * 10)
    df.loc[24:24 + 71, "ta"] = np.nan
    path = write(df, tmp_path / "gap.csv")
    with pytest.raises(ValueError, match=r"gap.csv: variable 'ta' \(t_air\) is missing from 2019-05-02T00:00:00 to "
                       r"2019-05-04T23:00:00 \(72 h, 72 records\), longer than forcing.max_gap_h = 6 h"):
        read(path)
    assert read(path, max_gap_h=72).t_air.notna().all()


# --- several files, columns, time zones ----------------------------------------------------------------
def test_two_files_concatenate_to_the_same_forcing_as_one(tmp_path, caplog):
    df = station()
    one = read(write(df, tmp_path / "all.csv"))
    a, b = write(df.iloc[:130], tmp_path / "a.csv"), write(df.iloc[120:], tmp_path / "b.csv")  # 10 h overlap
    with caplog.at_level(logging.WARNING, logger="smda.forcing.site"):
        two = read([b, a])
    pd.testing.assert_frame_equal(two, one)
    assert "10 repeated records" in caplog.text
    c = df.iloc[120:].copy()
    c.loc[125, "ta"] += 1.0
    with pytest.raises(ValueError, match="a.csv and .*c.csv: time 2019-05-06T05:00:00 appears twice with different t_air"):
        read([a, write(c, tmp_path / "c.csv")])
    with pytest.raises(ValueError, match="different time steps"):
        read([a, write(df.iloc[::2].iloc[70:], tmp_path / "d.csv")])


def test_time_column_format_and_zone(tmp_path):
    df = station()
    ref = read(write(df, tmp_path / "utc.csv"))
    local = df.rename(columns={"date": "Fecha"})
    local["Fecha"] = (pd.to_datetime(df.date) + pd.Timedelta(hours=2)).dt.strftime("%d/%m/%Y %H:%M")
    got = read(write(local, tmp_path / "local.csv"), columns={**COLUMNS, "time": "Fecha"}, time_format="%d/%m/%Y %H:%M",
               time_zone="Europe/Madrid")  # CEST in May: UTC+2
    pd.testing.assert_frame_equal(got, ref)
    assert read(tmp_path / "local.csv", columns={**COLUMNS, "time": "Fecha"}, time_format="%d/%m/%Y %H:%M",
                time_zone="+02:00").equals(ref)
    with pytest.raises(ValueError, match="time zone 'Mars/Olympus' unknown"):
        read(tmp_path / "local.csv", columns={**COLUMNS, "time": "Fecha"}, time_format="%d/%m/%Y %H:%M",
             time_zone="Mars/Olympus")
