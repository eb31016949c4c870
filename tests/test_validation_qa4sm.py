"""Validation at the QA4SM / pytesmo standard: sensor choice on the validation period (a real ISMN station
given a second sensor), full-series anomalies, triple collocation output, nearest valid pixel, strata, the
ISMN metadata cache and an empty validation exiting 1."""

import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from smda.model.grid import Domain
from smda.run import metrics as mt
from smda.run.cli import main as cli_main
from smda.run.insitu import Station, load_stations, write_csv
from smda.run.validate import NothingValidated, ValidationSettings, collocate, main

DATA = Path(os.environ.get("SMDA_SAMPLE_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))
REMEDHUS = DATA / "ismn" / "REMEDHUS_header_values_2005-2007"
needs_data = pytest.mark.skipif(not REMEDHUS.is_dir(), reason=f"sample data folder {REMEDHUS} is absent")
CASA = "REMEDHUS_REMEDHUS_CasaGorrizo_sm_0.000000_0.050000_{}_19500101_20210131.stm"


def _two_sensor_remedhus(tmp_path):
    """REMEDHUS with CasaGorrizo split into two 0-5 cm sensors: the Hydra probe until 2006-08-31 (more values),
    a ThetaProbe from 2006-09-01 (the same values, another instrument), as in a multi-sensor ISMN download."""
    src = tmp_path / "remedhus"
    shutil.copytree(REMEDHUS, src)
    d = src / "REMEDHUS" / "CasaGorrizo"
    lines = (d / CASA.format("Stevens-Hydra-Probe")).read_text().splitlines(keepends=True)
    early = [ln for ln in lines if ln[:10] < "2006/09/01"]
    late = [ln for ln in lines if ln[:10] >= "2006/09/01"]
    (d / CASA.format("Stevens-Hydra-Probe")).write_text("".join(early))
    (d / CASA.format("ThetaProbe-ML2X")).write_text("".join(late))
    return src, len(early), len(late)


def _product(path, dom, times, field, name):
    lat, lon = dom.latlon()
    xr.Dataset({"sm_surface": (("time", "y", "x"), field, {"units": "m3/m3"}),
                "lat": (("y", "x"), lat), "lon": (("y", "x"), lon)},
               coords={"time": times.tz_localize(None).to_numpy(), "x": dom.x, "y": dom.y},
               attrs={"product": name}).to_netcdf(path)
    return path


@needs_data
def test_multi_sensor_station_validated_with_the_sensor_covering_the_period(tmp_path):
    src, n_early, n_late = _two_sensor_remedhus(tmp_path)
    assert n_early > n_late > 3000
    cache = tmp_path / "cache"
    # without a period the sensor with most values (the early one) is chosen: the old behaviour
    (casa_all, _) = load_stations(src, cache_dir=cache)
    assert casa_all.instrument == "Stevens-Hydra-Probe"
    # the validation period (the products' span) picks the sensor that covers it
    dom = Domain.from_bbox(41.2, 41.5, -5.5, -5.4)
    times = pd.date_range("2006-10-01 06:00", "2007-05-15 06:00", freq="D", tz="UTC")
    field = np.full((times.size, dom.nrows, dom.ncols), 0.2) + 0.05 * np.sin(np.arange(times.size) / 9.0)[:, None, None]
    out = tmp_path / "run"
    out.mkdir()
    _product(out / "analysis.nc", dom, times, field, "analysis")
    df = main(out, src, tmp_path / "val", {"figures": False, "window_h": 0.25, "cache_dir": cache})
    st = df[(df.level == "station") & (df.season == "all")].set_index("station")
    assert set(st.index) == {"CasaGorrizo", "GranjaToresana"}
    assert st.loc["CasaGorrizo", "n"] > 150
    assert df.attrs["skipped"].empty
    # every sensor separately: the early one has no overlap with the products and is reported as such
    each = load_stations(src, cache_dir=cache, sensors="each", period=(times[0], times[-1]))
    casa = [s for s in each if s.name == "CasaGorrizo"]
    assert sorted(s.instrument for s in casa) == ["Stevens-Hydra-Probe", "ThetaProbe-ML2X"]
    assert all(s.sensor for s in casa) and len({s.key for s in casa}) == 2
    # the mean of the sensors: here the union of the two records
    (mean, _) = load_stations(src, cache_dir=cache, sensors="mean")
    assert len(mean.sm) == len(casa[0].sm) + len(casa[1].sm) and "mean of 2" in mean.sensor


@needs_data
def test_ismn_metadata_cache_reused_and_quiet(tmp_path, monkeypatch, caplog):
    src, _, _ = _two_sensor_remedhus(tmp_path)
    monkeypatch.setenv("SMDA_CACHE_DIR", str(tmp_path / "cachehome"))
    with caplog.at_level(logging.INFO):
        first = load_stations(src)
    assert "built in" in caplog.text and str(tmp_path / "cachehome" / "ismn") in caplog.text
    assert not any(r.name.startswith("ismn") and r.levelno >= logging.INFO for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        second = load_stations(src)
    assert "reused from" in caplog.text
    assert [s.key for s in first] == [s.key for s in second]
    assert not (src / "python_metadata").exists()       # nothing written next to the data


def _series(t, v):
    return pd.Series(v, pd.DatetimeIndex(t))


def test_full_series_anomaly_r_equals_an_independent_computation():
    """In situ hourly, product at 06 UTC on about a third of the days = in situ + a 25-day cycle: R_anom uses anomalies of each
    full series (QA4SM), R_anom_paired those of the pairs alone; both checked against direct computations."""
    th = pd.date_range("2019-01-01", "2019-12-31 23:00", freq="h", tz="UTC")
    k = np.arange(th.size)
    ins = 0.25 + 0.1 * np.sin(2 * np.pi * k / 8766) + 0.03 * np.sin(2 * np.pi * k / 600) + 0.01 * np.sin(k / 5.0)
    s = _series(th, ins)
    td = th[6::24]
    td = td[np.random.default_rng(0).random(td.size) < 0.35]     # a satellite's irregular revisit
    prod = s.loc[td].to_numpy() + 0.02 * np.cos(2 * np.pi * (td - td[0]).days.to_numpy() / 25.0)
    p = _series(td, prod)
    settings = ValidationSettings(window_h=0.5)
    pairs = collocate(p, s, settings)
    assert len(pairs) == td.size

    def anomaly(series):
        t = ((series.index - series.index[0]) / pd.Timedelta(days=1)).to_numpy()
        v = series.to_numpy()
        return np.array([v[i] - v[np.abs(t - t[i]) <= 17.5].mean() for i in range(v.size)])

    a_ins = pd.Series(anomaly(s), th).loc[td].to_numpy()
    a_prod = anomaly(p)
    res = mt.all_metrics(pairs["product"], pairs["insitu"], x_anom=pairs["product_anom"], y_anom=pairs["insitu_anom"],
                         x_anom_paired=pairs["product_anom_paired"], y_anom_paired=pairs["insitu_anom_paired"])
    assert res["r_anom"] == pytest.approx(np.corrcoef(a_prod, a_ins)[0, 1], abs=1e-12)
    paired_ins = anomaly(_series(td, s.loc[td].to_numpy()))
    assert res["r_anom_paired"] == pytest.approx(np.corrcoef(a_prod, paired_ins)[0, 1], abs=1e-12)
    assert abs(res["r_anom"] - res["r_anom_paired"]) > 1e-3     # the two definitions differ here


def _grid_case(tmp_path, stations, fields, times, dom):
    out = tmp_path / "run"
    out.mkdir(exist_ok=True)
    for name, f in fields.items():
        _product(out / f"{name}.nc", dom, times, f, name)
    return out, write_csv(stations, tmp_path / "stations.csv")


def test_triple_collocation_strata_nearest_valid_and_figures(tmp_path):
    dom = Domain.from_centre(41.3, -5.46, 36, 36)
    times = pd.date_range("2019-01-01 06:00", periods=365, freq="D", tz="UTC")
    rng = np.random.default_rng(3)
    lat, lon = dom.latlon()
    stations, fields = [], {k: np.full((times.size, dom.nrows, dom.ncols), np.nan) for k in ("analysis", "satellite")}
    for i, (r, c, lc) in enumerate(((5, 5, "CCI 10"), (20, 25, "CCI 10"), (30, 10, "CCI 130"))):
        truth = 0.25 + 0.06 * np.sin(2 * np.pi * (np.arange(times.size) + 40 * i) / 365) + 0.03 * rng.standard_normal(times.size)
        stations.append(Station(f"S{i}", "NET", float(lat[r, c]), float(lon[r, c]), 0.0, 0.05,
                                pd.Series(truth + 0.01 * rng.standard_normal(times.size), times), landcover=lc))
        fields["analysis"][:, r, c] = 0.8 * truth + 0.05 + 0.015 * rng.standard_normal(times.size)
        # the satellite is masked at the station's cell: only the cell 2 km east has it
        fields["satellite"][:, r, c + 2] = 1.5 * truth - 0.1 + 0.03 * rng.standard_normal(times.size)
    out, csv = _grid_case(tmp_path, stations, fields, times, dom)
    diag = pd.DataFrame({"time": np.repeat(times[:40].tz_localize(None).astype(str), 5), "source": "smap", "kind": "tb",
                         "qc": 0, "value": 250 + rng.standard_normal(200), "hx_forecast_mean": 250.0,
                         "hx_forecast_spread": 1.0, "error_std": 4.0})
    diag.to_csv(out / "case_obs_diagnostics.csv", index=False)
    settings = {"triple": ("analysis", "satellite"), "tc_bootstrap": 200, "figures": True}
    with pytest.raises(NothingValidated, match="nothing could be validated"):
        main(out, csv, tmp_path / "v0", {**settings, "triple": None, "figures": False, "nearest_valid_km": 0.0,
                                         "min_samples": 400})
    df = main(out, csv, tmp_path / "v", {**settings, "nearest_valid_km": 3.0})
    st = df[(df.level == "station") & (df.season == "all")]
    assert set(st["product"]) == {"analysis", "satellite"} and len(st) == 6
    lc = df[(df.level == "landcover") & (df.season == "all") & (df["product"] == "analysis")].set_index("landcover")
    assert lc.loc["CCI 10", "n_stations"] == 2 and lc.loc["CCI 130", "n_stations"] == 1
    tc = pd.read_csv(tmp_path / "v" / "triple_collocation.csv")
    assert len(tc) == 3
    # scaled into the in situ units: error stds of 0.01 (in situ), 0.015 / 0.8, 0.03 / 1.5 (sampling: 20 %)
    for who, expect in (("insitu", 0.01), ("analysis", 0.015 / 0.8), ("satellite", 0.03 / 1.5)):
        assert tc[f"err_std_{who}"].median() == pytest.approx(expect, rel=0.25), who
        assert (tc[f"err_std_lo_{who}"] <= tc[f"err_std_{who}"]).all() and (tc[f"err_std_{who}"] <= tc[f"err_std_hi_{who}"]).all()
    assert tc["beta_analysis"].median() == pytest.approx(1 / 0.8, rel=0.1)
    assert tc["beta_satellite"].median() == pytest.approx(1 / 1.5, rel=0.1)
    figs = {p.name for p in (tmp_path / "v" / "figures").glob("*.png")}
    assert {"taylor.png", "station_skill_map.png", "scatter.png", "bars_ubrmsd_r.png", "timeseries_NET_S0.png",
            "omf_smap_tb.png"} <= figs
    report = (tmp_path / "v" / "validation_report.md").read_text()
    assert "## Per land cover class" in report and "## Triple collocation" in report


def test_nothing_to_validate_exits_1_with_a_message(tmp_path, caplog):
    dom = Domain.from_centre(41.3, -5.46, 36, 36)
    times = pd.date_range("2019-01-01 06:00", periods=30, freq="D", tz="UTC")
    far = Station("Far", "NET", 10.0, 20.0, 0.0, 0.05, pd.Series(0.2, times))
    out, csv = _grid_case(tmp_path, [far], {"analysis": np.full((times.size, dom.nrows, dom.ncols), 0.2)}, times, dom)
    nl = tmp_path / "case.yaml"
    nl.write_text(f"name: case\ndomain:\n  centre: [41.3, -5.46]\n  size_km: [36, 36]\noutput:\n  dir: {out}\n"
                  "validation:\n  figures: false\n")
    code = cli_main(["validate", str(nl), "--insitu", str(csv)])
    err = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)
    assert code == 1
    assert "nothing could be validated" in err and "outside the domain" in err


def test_root_zone_matched_to_root_zone_sensors_and_the_run_file(tmp_path):
    """variable sm_rootzone: the products are the truth / open loop / analysis means of <name>_analysis.nc and
    the sensor is the one in rootzone_depth_m (0.5 m), not the surface one."""
    dom = Domain.from_centre(41.3, -5.46, 36, 36)
    times = pd.date_range("2019-01-01 06:00", periods=60, freq="D", tz="UTC")
    lat, lon = dom.latlon()
    deep = 0.3 + 0.05 * np.sin(np.arange(times.size) / 8.0)
    rows = []
    for depth, values in ((0.05, deep[::-1]), (0.5, deep)):
        for t, v in zip(times, values, strict=True):
            rows.append(dict(station="S", network="N", lat=float(lat[10, 10]), lon=float(lon[10, 10]), depth_from_m=depth,
                             depth_to_m=depth, time=t.isoformat(), soil_moisture=v))
    csv = tmp_path / "s.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    out = tmp_path / "run"
    out.mkdir()
    field = np.broadcast_to(deep[:, None, None], (times.size, dom.nrows, dom.ncols))
    xr.Dataset({"sm_rootzone_truth": (("time", "y", "x"), field, {"units": "m3 m-3"}),
                "sm_rootzone_analysis_mean": (("time", "y", "x"), field + 0.01, {"units": "m3 m-3"}),
                "sm_rootzone_analysis_spread": (("time", "y", "x"), np.full(field.shape, 0.01), {"units": "m3 m-3"})},
               coords={"time": times.tz_localize(None).to_numpy(), "x": dom.x, "y": dom.y}).to_netcdf(out / "c_analysis.nc")
    df = main(out, csv, tmp_path / "v", {"variable": "sm_rootzone", "figures": False})
    st = df[(df.level == "station") & (df.season == "all")].set_index("product")
    assert set(st.index) == {"truth", "analysis"}
    assert st.loc["truth", "r"] == pytest.approx(1.0) and st.loc["analysis", "bias"] == pytest.approx(0.01)
