"""End-to-end validation: product files against the real REMEDHUS sample and CSV stations."""

import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from smda.model.grid import Domain
from smda.run import metrics as mt
from smda.run.insitu import Station, load_stations
from smda.run.validate import NothingValidated, Product, ValidationSettings, main, match_times, open_product, validate

DATA = Path(os.environ.get("SMDA_SAMPLE_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))
REMEDHUS = DATA / "ismn" / "REMEDHUS_header_values_2005-2007"
needs_data = pytest.mark.skipif(not REMEDHUS.is_dir(), reason=f"sample data folder {REMEDHUS} is absent")

TIMES = pd.date_range("2005-06-01 06:00", "2006-05-31 06:00", freq="D")


def _write_product(path, dom, field, name):
    lat, lon = dom.latlon()
    ds = xr.Dataset(
        {"sm_surface": (("time", "y", "x"), field, {"units": "m3/m3"}),
         "lat": (("y", "x"), lat, {"units": "degrees_north"}), "lon": (("y", "x"), lon, {"units": "degrees_east"})},
        coords={"time": TIMES.to_numpy(), "x": dom.x, "y": dom.y}, attrs={"product": name, "Conventions": "CF-1.8"})
    ds.to_netcdf(path)
    return path


def _products(tmp_path, stations, dom):
    """analysis = in situ + 0.02, openloop = 0.5 in situ + 0.1, satellite = 0.25 everywhere,
    all at the stations' cells (product times 06 UTC daily)."""
    shape = (len(TIMES), dom.nrows, dom.ncols)
    fields = {k: np.full(shape, 0.25) for k in ("analysis", "openloop", "satellite")}
    utc = TIMES.tz_localize("UTC")
    for st in stations:
        prod = Product("t", Path("."), None, utc, dom.x, dom.y)
        cell = prod.cell(st.lat, st.lon)
        if cell is None:
            continue
        s = st.sm.reindex(utc).to_numpy()
        fields["analysis"][:, cell[0], cell[1]] = s + 0.02
        fields["openloop"][:, cell[0], cell[1]] = 0.5 * s + 0.1
    # the satellite varies in time but is one value over the coarse pixel (no NaN)
    fields["satellite"] += 0.05 * np.sin(np.arange(len(TIMES)) / 20.0)[:, None, None]
    return {k: _write_product(tmp_path / f"{k}.nc", dom, v, k) for k, v in fields.items()}


def _csv_stations(tmp_path):
    rows = []
    hours = pd.date_range("2005-07-01", periods=24 * 30, freq="h", tz="UTC")
    for name, lat, lon, t, flag in (("Faraway", 10.0, 20.0, hours, "G"),                  # outside the domain
                                    ("Later", 41.3, -5.46, hours + pd.Timedelta(days=3650), "G"),  # no overlap
                                    ("Dubious", 41.3, -5.46, hours, "D03"),              # only bad flags
                                    ("Brief", 41.3, -5.46, hours[:30], "G")):             # 2 pairs only
        for k, tt in enumerate(t):
            rows.append(dict(station=name, network="TEST", lat=lat, lon=lon, depth_from_m=0.0, depth_to_m=0.05,
                             time=tt.isoformat(), soil_moisture=0.2 + 0.001 * (k % 50), flag=flag))
    p = tmp_path / "stations.csv"
    pd.DataFrame(rows).to_csv(p, index=False)
    return p


@needs_data
def test_end_to_end_remedhus_and_csv(tmp_path):
    src = tmp_path / "remedhus"
    shutil.copytree(REMEDHUS, src)
    stations = load_stations(src, cache_dir=tmp_path / "cache") + load_stations(_csv_stations(tmp_path))
    dom = Domain.from_bbox(41.2, 41.5, -5.5, -5.4)
    paths = _products(tmp_path, [s for s in stations if s.network == "REMEDHUS"], dom)
    out = tmp_path / "val"
    df = validate(paths, stations, out_dir=out, settings={"min_samples": 20, "window_h": 0.25,
                                                                "triple": ("analysis", "openloop")})

    st = df[(df.level == "station") & (df.season == "all")].set_index(["station", "product"])
    assert set(st.index.get_level_values(0)) == {"CasaGorrizo", "GranjaToresana"}
    for name in ("CasaGorrizo", "GranjaToresana"):
        sm = next(s for s in stations if s.name == name).sm
        s = sm.reindex(TIMES.tz_localize("UTC")).dropna().to_numpy()
        a = st.loc[(name, "analysis")]
        assert a["n"] == len(s) > 300
        assert a["bias"] == pytest.approx(0.02, abs=1e-9)
        assert a["ubrmsd"] == pytest.approx(0.0, abs=1e-9)
        assert a["r"] == pytest.approx(1.0, abs=1e-9) and a["r_anom_paired"] == pytest.approx(1.0, abs=1e-9)
        # QA4SM anomalies: the hourly in situ series' own moving average, not the daily pairs': close to 1, not 1
        assert 0.95 < a["r_anom"] < 1.0 - 1e-6
        o = st.loc[(name, "openloop")]
        assert o["bias"] == pytest.approx(np.mean(0.1 - 0.5 * s), abs=1e-9)
        assert o["ubrmsd"] == pytest.approx(0.5 * np.std(s), abs=1e-9)
        assert o["rho"] == pytest.approx(1.0, abs=1e-9)
        sat = st.loc[(name, "satellite")]
        ref = mt.all_metrics(0.25 + 0.05 * np.sin(np.flatnonzero(sm.reindex(TIMES.tz_localize("UTC")).notna())
                                                   / 20.0), s)
        assert sat["ubrmsd"] == pytest.approx(ref["ubrmsd"], abs=1e-9)
        assert sat["r"] == pytest.approx(ref["r"], abs=1e-9)
        assert sat["ubrmsd_lo"] < sat["ubrmsd"] < sat["ubrmsd_hi"]
    # seasons: the four seasons of June 2005 - May 2006 each have their rows
    seasons = set(df[(df.level == "station") & (df.station == "CasaGorrizo") & (df["product"] == "analysis")].season)
    assert seasons == {"all", "DJF", "MAM", "JJA", "SON"}
    # network and overall rows are station medians
    ov = df[(df.level == "overall") & (df.season == "all")].set_index("product")
    assert ov.loc["openloop", "n_stations"] == 2
    assert ov.loc["openloop", "ubrmsd"] == pytest.approx(st.xs("openloop", level=1)["ubrmsd"].median())
    assert ov.loc["openloop", "n"] == st.xs("openloop", level=1)["n"].sum()
    net = df[(df.level == "network") & (df.season == "all")]
    assert set(net.network) == {"REMEDHUS"}
    # the skipped stations and their reasons
    sk = df.attrs["skipped"].set_index("station")
    assert "outside the domain" in sk.loc["Faraway", "reason"]
    assert "no good-quality" in sk.loc["Dubious", "reason"]
    assert (sk.loc["Later", "reason"].str.contains("no overlap in time")).all()
    assert (sk.loc["Brief", "reason"].str.contains("too few collocated samples")).all()
    # outputs: tables, report listing skipped stations, PNG figures
    table = pd.read_csv(out / "validation_metrics.csv")
    assert len(table) == len(df)
    report = (out / "validation_report.md").read_text()
    for word in ("Faraway", "Dubious", "Later", "Brief", "CasaGorrizo", "## Overall"):
        assert word in report
    figs = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert {"scatter.png", "bars_ubrmsd_r.png", "taylor.png", "station_skill_map.png"} <= set(figs)
    assert "timeseries_REMEDHUS_CasaGorrizo.png" in figs
    assert all((out / "figures" / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for f in figs)
    # triple collocation: in situ and two error-free rescalings have no error
    tc = pd.read_csv(out / "triple_collocation.csv")
    assert len(tc) == 2 and np.abs(tc[["err_std_insitu", "err_std_analysis"]].to_numpy()).max() < 1e-6


def _station(times, values, lat=41.3, lon=-5.46):
    return Station("S", "NET", lat, lon, 0.0, 0.05, pd.Series(values, pd.DatetimeIndex(times, tz="UTC")))


def test_main_on_an_output_folder_with_csv_stations(tmp_path):
    dom = Domain.from_centre(41.3, -5.46, 36, 36)
    utc = TIMES.tz_localize("UTC")
    # station: hourly from the product times +- 30 min; values 0.2 + small daily cycle
    t_hours = pd.date_range(utc[0] - pd.Timedelta(hours=1), utc[-1] + pd.Timedelta(hours=1), freq="30min")
    vals = 0.2 + 0.05 * np.sin(np.arange(len(t_hours)) / 300.0)
    st = _station(t_hours, vals)
    from smda.run.insitu import write_csv

    csv = write_csv([st], tmp_path / "s.csv")
    outputs = tmp_path / "out"
    outputs.mkdir()
    field = np.full((len(TIMES), 36, 36), np.nan)
    truth_at = pd.Series(vals, t_hours).reindex(utc).to_numpy()
    field[:] = (truth_at - 0.01)[:, None, None]
    _write_product(outputs / "case_analysis.nc", dom, field, "analysis")
    xr.Dataset({"other": ("t", np.zeros(3))}).to_netcdf(outputs / "restart.nc")   # ignored
    df = main(outputs, csv, tmp_path / "v", {"figures": False, "min_samples": 10})
    row = df[(df.level == "station") & (df.season == "all")].iloc[0]
    assert row["product"] == "analysis" and row["n"] == len(TIMES)
    assert row["bias"] == pytest.approx(-0.01, abs=1e-9) and row["r"] == pytest.approx(1.0)
    assert (tmp_path / "v" / "validation_report.md").exists()
    assert not (tmp_path / "v" / "figures").exists()
    with pytest.raises(ValueError, match="no product files"):
        main(tmp_path / "v", csv, tmp_path / "v2")
    # called by the CLI with a loaded namelist: output.dir and the validation section
    nl = SimpleNamespace(output=SimpleNamespace(dir=outputs),
                         validation=SimpleNamespace(insitu=csv, depth_m=(0.0, 0.05), window_h=1.0, min_samples=400))
    with pytest.raises(NothingValidated, match="0 station-product pairs .* too few collocated samples"):
        main(nl, insitu=None)
    assert (outputs / "validation" / "validation_report.md").exists()


def test_match_times_nearest_and_daily():
    p = pd.Series([0.1, 0.2, 0.3], pd.DatetimeIndex(["2020-01-01 06:00", "2020-01-02 06:00", "2020-01-03 06:00"],
                                                     tz="UTC"))
    s = pd.Series([0.11, 0.19, 0.5, 0.6],
                  pd.DatetimeIndex(["2020-01-01 06:20", "2020-01-02 05:50", "2020-01-02 20:00", "2020-01-03 09:00"],
                                   tz="UTC"))
    m = match_times(p, s, window_h=1.0)
    assert list(m["insitu"]) == [0.11, 0.19] and list(m["product"]) == [0.1, 0.2]
    assert len(match_times(p, s, window_h=4.0)) == 3
    d = match_times(p, s, time_match="daily")
    assert list(d["insitu"]) == pytest.approx([0.11, (0.19 + 0.5) / 2, 0.6])


def test_bad_settings_and_products(tmp_path):
    with pytest.raises(ValueError, match="time_match"):
        ValidationSettings(time_match="closest")
    with pytest.raises(ValueError, match="unknown validation setting"):
        ValidationSettings.coerce({"window": 2})
    with pytest.raises(ValueError, match="min_samples"):
        ValidationSettings(min_samples=1)
    bad = tmp_path / "bad.nc"
    xr.Dataset({"sm_surface": (("y", "x"), np.zeros((2, 2)))}, coords={"x": [0.0, 1.0], "y": [1.0, 0.0]}
               ).to_netcdf(bad)
    with pytest.raises(ValueError, match="dims"):
        open_product(bad)
    with pytest.raises(ValueError, match="no variable"):
        open_product(bad, variable="sm_rootzone")
    with pytest.raises(ValueError, match="at least one product"):
        validate({}, [], out_dir=tmp_path)


def test_common_pairs_rank_every_product_on_the_same_times(tmp_path):
    """A product with gaps (a satellite seen every third day) and a complete one: with common_pairs both are
    scored on the gappy product's times, and their n agree; without, each uses all of its own pairs."""
    dom = Domain.from_centre(41.3, -5.46, 36, 36)
    utc = TIMES.tz_localize("UTC")
    vals = 0.2 + 0.05 * np.sin(np.arange(len(utc)) / 9.0)
    st = _station(utc, vals)
    full = np.broadcast_to((vals + 0.01)[:, None, None], (len(TIMES), 36, 36)).copy()
    gappy = full.copy()
    gappy[np.arange(len(TIMES)) % 3 != 0] = np.nan
    paths = {"analysis": _write_product(tmp_path / "a.nc", dom, full, "analysis"),
             "satellite": _write_product(tmp_path / "s.nc", dom, gappy, "satellite")}
    n = {}
    for common in (False, True):
        df = validate(paths, [st], out_dir=tmp_path / f"v{common}",
                      settings={"figures": False, "min_samples": 10, "common_pairs": common})
        rows = df[(df.level == "station") & (df.season == "all")].set_index("product")
        n[common] = rows["n"].to_dict()
        assert rows.loc["analysis", "bias"] == pytest.approx(0.01, abs=1e-9)
    assert n[False] == {"analysis": len(TIMES), "satellite": (len(TIMES) + 2) // 3}
    assert n[True] == {"analysis": (len(TIMES) + 2) // 3, "satellite": (len(TIMES) + 2) // 3}
