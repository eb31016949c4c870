"""Namelist templates for real data: every one loads; each runs end to end on the real samples."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from smda.run.namelist import load
from tests.conftest import REPO
from tests.test_driver import smda

TEMPLATES = sorted((REPO / "namelists").glob("*.yaml"))


@pytest.mark.parametrize("path", TEMPLATES, ids=[p.stem for p in TEMPLATES])
def test_every_namelist_loads(path):
    nl = load(path)
    assert nl.name and nl.output.dir.is_absolute()


@pytest.mark.parametrize("stem, product", [("smos_sm_template", "smos_l3_sm"), ("smap_tb_template", "smap_l2_sm_p")])
def test_real_product_cases_run(tmp_path, sample_data, stem, product):
    out = tmp_path / "out"
    smda("run", REPO / "namelists" / f"{stem}.yaml", "--set", f"output.dir={out}", "--set", "model.ensemble_size=6",
         "--set", "domain.size_km=[72, 72]", "-q")
    nl = load(REPO / "namelists" / f"{stem}.yaml")
    diag = pd.read_csv(out / f"{nl.name}_obs_diagnostics.csv")
    used = diag[diag["qc"] == 0]
    assert len(used) > 0, diag["qc_reason"].value_counts()
    # every rejection is counted by reason, and accepted obs have model equivalents before and after
    assert diag["qc_reason"].notna().all()
    assert np.isfinite(used[["hx_forecast_mean", "hx_analysis_mean"]].to_numpy()).all()
    assert (used["hx_analysis_mean"] != used["hx_forecast_mean"]).all()
    with xr.open_dataset(out / "products" / "analysis.nc") as a, xr.open_dataset(out / "products" / "openloop.nc") as o:
        assert np.nanmax(np.abs(a["sm_surface"].values - o["sm_surface"].values)) > 1e-4


def test_site_mode_with_station_forcing(tmp_path, sample_data):
    out = tmp_path / "out"
    smda("run", REPO / "namelists" / "site_template.yaml", "--set", f"output.dir={out}", "--set",
         "time.end=1998-05-08T00:00", "--set", "model.ensemble_size=6", "-q")
    skill = pd.read_csv(out / "site_bondville_skill.csv", index_col=0)
    assert {"openloop", "analysis", "satellite"} <= set(skill.index)
    with xr.open_dataset(out / "site_bondville_daily.nc") as d:
        et = d["evapotranspiration_analysis_mean"].values
        assert np.all(np.isfinite(et[:, 0, 0])) and 0 < np.nanmean(et) * 86400 < 8  # mm/day in May


def test_site_csv_forcing_with_generated_longwave_is_recorded(tmp_path):
    t = pd.date_range("2019-05-01", "2019-05-04", freq="1h", tz="UTC")
    h = t.hour.to_numpy()
    pd.DataFrame({"time": t.strftime("%Y-%m-%dT%H:%M:%SZ"), "rain_mm_h": np.where(h == 15, 2.0, 0.0),
                  "sw": np.clip(800 * np.sin((h - 6) / 12 * np.pi), 0, None), "ta": 283 + 6 * np.sin((h - 9) / 12 * np.pi),
                  "rh": 60.0, "ps": 920.0, "u": 3.0}).to_csv(tmp_path / "station.csv", index=False)
    case = tmp_path / "site.yaml"
    case.write_text(
        "name: csv_site\ndomain:\n  centre: [41.3, -5.4]\n  size_km: [36, 36]\n  landscape: synthetic\ntime:\n"
        "  start: 2019-05-01T00:00\n"
        "  end: 2019-05-03T00:00\nmodel:\n  ensemble_size: 4\nforcing:\n  source: site\n  paths: [station.csv]\n"
        "  columns: {precip: rain_mm_h, sw_down: sw, t_air: ta, rel_hum: rh, p_surf: ps, wind: u}\n"
        "  units: {precip: mm h-1, sw_down: W m-2, t_air: K, rel_hum: '%', p_surf: hPa, wind: m s-1}\n"
        "  fill: [lw_down]\nobservations:\n  kind: sm\n  orbits: [am, pm]\ncomparison:\n  methods: []\n"
        "output:\n  dir: out\n  figures: false\n")
    smda("run", case, "-q")
    with xr.open_dataset(tmp_path / "out" / "csv_site_daily.nc") as ds:
        assert "lw_down" in ds.attrs["forcing_fill"] and "Brutsaert" in ds.attrs["forcing_fill"]
    # without the fill the missing longwave is an error naming the file
    r = smda("run", case, "--set", "forcing.fill=[]", check=False)
    assert r.returncode == 1 and "station.csv" in r.stderr


def test_multiscale_twin_assimilates_both_scales(tmp_path):
    """osse_multiscale.yaml, shortened: 36 km TB and 3 km SM (Sentinel-1-like revisit) enter the same analyses."""
    out = tmp_path / "out"
    smda("run", REPO / "namelists" / "osse_multiscale.yaml", "--set", f"output.dir={out}", "--set", "model.ensemble_size=6",
         "--set", "domain.size_km=[36, 36]", "--set", "time.end=2019-05-11T00:00", "--set", "output.figures=false",
         "--set", "comparison.methods=[]", "-q")
    diag = pd.read_csv(out / "osse_multiscale_obs_diagnostics.csv")
    used = diag[diag["qc"] == 0]
    by = used.groupby("source")
    assert set(by.groups) == {"smap_tb", "s1_sm"}
    assert set(used.loc[used["source"] == "s1_sm", "footprint"]) == {"M03"} and by.size()["s1_sm"] > 100
    # Sentinel-1-like revisit: days 0 and 3 of a 9-day cycle (gaps of 3 and 6 days)
    days = np.unique(pd.to_datetime(used.loc[used["source"] == "s1_sm", "time"]).dt.normalize())
    assert {int(d) for d in np.diff(days) / np.timedelta64(1, "D")} <= {3, 6} and len(days) >= 2
    np.testing.assert_allclose(used.loc[used["source"] == "s1_sm", "error_std"], 0.05)
    skill = pd.read_csv(out / "osse_multiscale_skill.csv", index_col=0)
    assert {"satellite", "satellite_s1_sm"} <= set(skill.index)
    assert skill.loc["analysis", "ubRMSE"] < skill.loc["openloop", "ubRMSE"], skill
    summary = (out / "osse_multiscale_obs_summary.md").read_text()  # per source: K and m3/m3 are not pooled
    assert "## smap_tb" in summary and "## s1_sm" in summary and summary.count("Desroziers") == 2


@pytest.mark.parametrize("tb", [False, True], ids=["sm", "tb_with_retrieval"])
def test_real_site_template_as_shipped_writes_the_satellite_product(tmp_path, sample_data, tb):
    """real_site_template.yaml on the real SMAP L2 sample alone: the retrievals (product flags passed) on the 1 km
    cells of their M36 pixels, next to the open loop and the analysis (tests/test_real_case.py adds the rest);
    assimilating TB instead, comparison.satellite_from_tb writes the same file's retrievals."""
    out = tmp_path / "out"
    tb_sets = ["--set", "observations.kind=tb", "--set", "observations.error=4", "--set",
               "comparison.satellite_from_tb=true"] if tb else []
    smda("run", REPO / "namelists" / "real_site_template.yaml", "--set", f"output.dir={out}", "--set",
         "model.ensemble_size=4", "--set", "output.figures=false", *tb_sets, "-q")
    assert {p.stem for p in (out / "products").glob("*.nc")} == {"satellite", "openloop", "analysis"}
    assert not (out / "predictors.nc").exists()
    with xr.open_dataset(out / "products" / "satellite.nc") as s:
        sat = s["sm_surface"].values[0]
    values = np.unique(sat[np.isfinite(sat)]).astype(float)
    assert values.size >= 4 and ((0.02 < values) & (values < 0.6)).all()
    if not tb:  # every value is a retrieval of the diagnostics
        diag = pd.read_csv(out / "real_site_obs_diagnostics.csv")
        assert (np.abs(values[:, None] - diag["value"].to_numpy()[None, :]).min(axis=1) < 1e-6).all()
