"""Several observation sources in one analysis: the namelist list form, per-source QC (background check,
duplicates, a source with nothing accepted), adaptive errors and unique observation ids; real samples."""

import textwrap
from types import SimpleNamespace

import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from smda.assimilation.observations.table import QC_CODES, ObsTable
from smda.run.driver import Driver
from smda.run.info import keys_markdown
from smda.run.namelist import NamelistError, load
from smda.run.schema import describe
from smda.run.sources import SourceBook
from tests.conftest import SAMPLE_DATA
from tests.test_driver import smda

SMAP_L2 = SAMPLE_DATA / "smap" / "SMAP_L2_SM_P_02801_A_20150811T013002_R18290_001.h5"
SMOS_L2 = SAMPLE_DATA / "smos" / "SM_OPER_MIR_SMUDP2_20230401T150613_20230401T155931_700_001_1.nc"

TWIN = """\
name: two
seed: 3
domain:
  centre: [41.35, -5.40]
  size_km: [36, 36]
  landscape: synthetic
time:
  start: 2019-05-02T00:00
  end: 2019-05-07T00:00
model:
  ensemble_size: 6
observations:
{observations}
assimilation:
  loc_radius_km: 30
comparison:
  methods: []
output:
  dir: {out}
  figures: false
"""
GOOD = "  - name: smap\n    orbits: [am, pm]\n"
OUTLIER = "  - name: outlier\n    orbits: [am, pm]\n    tb_bias_K: 40\n"


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


# ------------------------------------------------------------------------------------------------ namelist
def test_list_form_keys_errors_and_overrides(tmp_path):
    body = TWIN.format(observations=GOOD + "  - name: s1\n    kind: sm\n    grid: M03\n    error: 0.05\n", out="o")
    nl = load(_write(tmp_path, "a.yaml", body), ["observations[1].error=0.06"])
    assert [o.label for o in nl.observations] == ["smap", "s1"] and nl.observations[1].error_std == 0.06
    assert nl.observations[0].error_std == 4.0 and nl.twin and nl.observed
    # the single mapping (today's form) is a list of one, with the same keys and overrides
    one = load(_write(tmp_path, "b.yaml", TWIN.format(observations="  orbits: [am, pm]", out="o")),
               ["observations.tb_bias_K=2"])
    assert len(one.observations) == 1 and one.observations[0].label == "synthetic" and one.observations[0].tb_bias_K == 2
    # every problem at once, with the item's key path and YAML line
    bad = GOOD + "  - name: smap\n    error: -1\n    polarizations: []\n    min_inside_fraction: 0\n    orbits: []\n"
    with pytest.raises(NamelistError) as e:
        load(_write(tmp_path, "c.yaml", TWIN.format(observations=bad, out="o")))
    msg = str(e.value)
    for expected in ("line 16: observations[1].error: -1", "observations[1].polarizations: kind tb needs",
                     "observations[1].min_inside_fraction: must be > 0", "observations[1].orbits",
                     "observations[1].name: 'smap' is also the name of observations[0]"):
        assert expected in msg, msg
    with pytest.raises(NamelistError, match="is a list of 2: use observations"):
        load(_write(tmp_path, "d.yaml", body), ["observations.error=0.1"])
    # the command line: exit 2 naming the key
    r = smda("run", _write(tmp_path, "e.yaml", TWIN.format(observations="  min_inside_fraction: 0", out="o")), check=False)
    assert r.returncode == 2 and "observations.min_inside_fraction: must be > 0" in r.stderr
    # documentation of the list section
    assert any(row[0] == "observations[].background_k" for row in describe(type(nl)))
    assert "observations[].error_corr_km" in keys_markdown()


def test_saturation_units_need_rescaling_or_porosity(tmp_path):
    (tmp_path / "obs.csv").write_text("time,lat,lon,value\n")
    sat = ("  - name: own\n    source: table\n    paths: [obs.csv]\n    kind: sm\n"
           "    options: {units: percent_saturation}\n")
    with pytest.raises(NamelistError, match=r"observations\[1\].rescaling: values in degree of saturation"):
        load(_write(tmp_path, "a.yaml", TWIN.format(observations=GOOD + sat, out="o")))
    nl = load(_write(tmp_path, "b.yaml", TWIN.format(observations=GOOD + sat, out="o")), ["assimilation.filter=none"])
    assert nl.observations[1].options == {"units": "percent_saturation"}  # the open loop fits the statistics
    load(_write(tmp_path, "c.yaml", TWIN.format(observations=GOOD + sat.replace("}", ", porosity: 0.45}"), out="o")))


# ------------------------------------------------------------------------------------------------ per-source QC
def _table(values, source, x=0.0, kind="tb", error=4.0):
    n = len(values)
    return ObsTable(time=np.datetime64("2019-05-02T06:00", "s"), x=x + np.arange(n) * 1000.0, y=4.6e6, lat=41.0,
                    lon=-5.0, kind=kind, pol="H" if kind == "tb" else "", angle_deg=40.0 if kind == "tb" else 0.0,
                    value=np.asarray(values, float), error_std=error, flags=0, footprint="M36", row=0, col=0,
                    fov_km=0.0, source=source, qc=0)


def test_background_check_rejects_a_40_K_outlier(tmp_path):
    nl = load(_write(tmp_path, "a.yaml", TWIN.format(observations=GOOD + "  - name: loose\n    background_k: 0\n", out="o")))
    book = SourceBook(nl)
    assert nl.observations[0].background_k == 4.0
    table = ObsTable.concat([_table([250.0, 290.0, 262.0], "smap"), _table([290.0], "loose")])
    z = np.random.default_rng(0).normal(size=24)
    hx = np.tile(250.0 + 3.0 * (z - z.mean()) / z.std(ddof=1), (4, 1))  # mean 250 K, spread 3 K
    sidx = book.index(table)
    assert sidx.tolist() == [0, 0, 0, 1]
    out = book.background_check(table, sidx, hx)
    # +40 K against sqrt(3^2 + 4^2) = 5 K: 8 sigma > 4 rejected; +12 K (2.4 sigma) kept; k = 0 switches it off
    assert out.qc.tolist() == [0, QC_CODES["background_check"], 0, 0]
    book.count(out, sidx)
    assert book.qc_counts(0) == {"accepted": 2, "background_check": 1}


def test_adaptive_error_converges_to_the_innovation_estimate_within_bounds(tmp_path):
    obs = GOOD + "    adaptive_error: true\n    adaptive_error_bounds: [0.5, 3.0]\n    adaptive_error_memory: 0.5\n"
    nl = load(_write(tmp_path, "a.yaml", TWIN.format(observations=obs + "  - name: fixed\n", out="o")))
    book = SourceBook(nl)
    rng = np.random.default_rng(4)
    n = 4000
    table = ObsTable.concat([_table(np.zeros(n), "smap"), _table(np.zeros(n), "fixed")])
    sidx = book.index(table)
    # true errors of std 8 K (prescribed 4 K): d_ob = e_o - e_b, d_oa = half of it, so E[d_oa d_ob] = (64 + 4) / 2
    e = rng.normal(0.0, 8.0, 2 * n) - rng.normal(0.0, 2.0, 2 * n)
    hx_b = -e[:, None] + np.zeros((1, 2))
    hx_a = -0.5 * e[:, None] + np.zeros((1, 2))
    used = np.ones(2 * n, bool)
    for _ in range(6):
        prepared = book.prepare(table, sidx)
        book.learn(prepared, sidx, used, hx_b, hx_a)
    f = book.factor()
    assert f[1] == 1.0 and f[0] == pytest.approx(np.sqrt(34.0 / 16.0), rel=0.05)
    np.testing.assert_allclose(book.prepare(table, sidx).error_std, np.r_[np.full(n, 4.0 * f[0]), np.full(n, 4.0)])
    book.adaptive[0] = (1e6, 1.0)  # a wild estimate is bounded
    assert book.factor()[0] == 3.0
    counters, arrays = book.state()
    other = SourceBook(nl)
    other.set_state(counters, {k: a for k, (_, a) in arrays.items()})
    np.testing.assert_array_equal(other.adaptive, book.adaptive)


def test_observation_ids_are_unique_across_sources(tmp_path):
    nl = load(_write(tmp_path, "a.yaml", TWIN.format(observations=GOOD + "  - name: smos\n", out="o")))
    table = ObsTable.concat([_table([250.0, 251.0], "smap"), _table([250.0], "smos"), _table([252.0], "smap")])
    ids = Driver._obs_ids(SimpleNamespace(book=SourceBook(nl)), table)
    assert np.unique(ids).size == 4  # two sources at one place, and one source twice there in a step
    single = load(_write(tmp_path, "b.yaml", TWIN.format(observations="  orbits: [am]", out="o")))
    t1 = _table([250.0, 251.0], "synthetic")
    ids1 = Driver._obs_ids(SimpleNamespace(book=SourceBook(single)), t1)
    assert (ids1 % 1000 == 400).all() and np.unique(ids1).size == 2  # one source: (position, pol, angle) as before


def test_outlier_source_rejected_run_stays_physical_then_fails_naming_qc_counts(tmp_path):
    # with the check: the outlier source is rejected entirely (its +40 K TB) and the analysis is the one of the
    # good source alone, bit for bit; the run then fails, naming the source and its QC counts
    r = smda("run", _write(tmp_path, "two.yaml", TWIN.format(observations=GOOD + OUTLIER, out="two")), check=False)
    assert r.returncode == 1, r.stderr[-2000:]
    assert "observations[1] ('outlier', synthetic): no accepted observation in the whole run" in r.stderr
    assert "'background_check'" in r.stderr
    smda("run", _write(tmp_path, "one.yaml", TWIN.format(observations=GOOD, out="one")), "-q")
    with xr.open_dataset(tmp_path / "two" / "two_analysis.nc") as a, xr.open_dataset(tmp_path / "one" / "two_analysis.nc") as b:
        sm = a["sm_surface_analysis_mean"].values
        np.testing.assert_array_equal(sm, b["sm_surface_analysis_mean"].values)
        assert 0.05 < np.nanmin(sm) and np.nanmax(sm) < 0.45
    diag = pd.read_csv(tmp_path / "two" / "two_obs_diagnostics.csv")
    by = diag.groupby("source")["qc_reason"].value_counts().unstack(fill_value=0)
    assert by.loc["outlier", "background_check"] >= 5 and by.loc["outlier"].get("accepted", 0) == 0, by
    assert by.loc["smap", "accepted"] == by.loc["smap"].sum() >= 6, by
    # without it the +40 K observations dry the soil (TB rises as the soil dries)
    off = OUTLIER + "    background_k: 0\n"
    smda("run", _write(tmp_path, "off.yaml", TWIN.format(observations=GOOD + off, out="unchecked")), "-q")
    with xr.open_dataset(tmp_path / "unchecked" / "two_analysis.nc") as c:
        assert np.nanmean(c["sm_surface_analysis_mean"].values) < np.nanmean(sm) - 0.03


def test_missing_rescaling_statistics_say_how_to_make_them(tmp_path):
    obs = GOOD + "    rescaling: anomaly\n    rescaling_stats: nowhere.nc\n  - name: s1\n    kind: sm\n    grid: M09\n"
    path = _write(tmp_path, "a.yaml", TWIN.format(observations=obs, out="o"))
    r = smda("run", path, check=False)
    assert r.returncode == 2 and "observations[0].rescaling_stats: file not found" in r.stderr
    assert "an open-loop run of this case (--set assimilation.filter=none) writes it" in r.stderr
    with pytest.raises(FileNotFoundError, match=r"observations\[0\].rescaling_stats: file not found.*open-loop run.*"
                       r"assimilation.filter=none.*two_smap_rescaling_anomaly.nc"):
        SourceBook(load(path))


# ------------------------------------------------------------------------------------------------ real samples
def _smos_l2_copy(path, lat, lon, when):
    """A SMOS L2 SM file in the real sample's format: 20 of its retrievals moved to ``lat``/``lon`` at ``when``
    with nominal flags and 0.25 m3/m3."""
    seconds = (np.datetime64(when, "s") - np.datetime64("2000-01-01", "s")).astype(np.int64)
    src = netCDF4.Dataset(SMOS_L2)
    src.set_auto_maskandscale(False)
    idx = np.flatnonzero(src["Soil_Moisture"][:] != -999)[:lat.size]
    with netCDF4.Dataset(path, "w", format="NETCDF4") as dst:
        dst.createDimension("n_grid_points", idx.size)
        for name in ("Latitude", "Longitude", "Days", "Seconds", "Microseconds", "Soil_Moisture", "Science_Flags",
                     "Confidence_Flags", "RFI_Prob", "N_RFI_X", "N_RFI_Y", "M_AVA0", "Optical_Thickness_Nad"):
            sv = src[name]
            dv = dst.createVariable(name, sv.dtype, ("n_grid_points",), fill_value=sv.getncattr("_FillValue"))
            dv.setncatts({a: sv.getncattr(a) for a in sv.ncattrs() if a != "_FillValue"})
            dv.set_auto_maskandscale(False)
            data = {"Latitude": lat, "Longitude": lon, "Days": np.full(idx.size, seconds // 86400),
                    "Seconds": np.full(idx.size, seconds % 86400), "Soil_Moisture": np.full(idx.size, 0.25),
                    "Optical_Thickness_Nad": np.full(idx.size, 0.3)}.get(name)
            if data is None:
                data = sv[:][idx]
                if name in ("Science_Flags", "Confidence_Flags", "RFI_Prob", "N_RFI_X", "N_RFI_Y", "Microseconds"):
                    data = np.zeros_like(data)
            dv[:] = np.asarray(data).astype(sv.dtype)
    src.close()


def test_smap_tb_and_smos_sm_in_one_analysis_with_duplicates_dropped(tmp_path, sample_data):
    lat, lon = np.meshgrid(np.linspace(64.2, 65.1, 5), np.linspace(-146.6, -146.1, 4), indexing="ij")
    smos = tmp_path / "SM_OPER_MIR_SMUDP2_20150811T020000_copy.nc"
    _smos_l2_copy(smos, lat.ravel(), lon.ravel(), "2015-08-11T02:10:00")
    again = tmp_path / "SM_OPER_MIR_SMUDP2_20150811T020000_again.nc"
    again.write_bytes(smos.read_bytes())  # the same granule under a second name
    case = textwrap.dedent(f"""\
        name: two_products
        domain:
          centre: [64.5, -146.5]
          size_km: [72, 72]
          landscape: synthetic
        time:
          start: 2015-08-10T00:00
          end: 2015-08-12T00:00
        model:
          ensemble_size: 6
        observations:
          - name: smap
            source: smap_l2_sm_p
            paths: [{SMAP_L2.parent}/SMAP_L2_SM_P_*_R18290_001.h5, {SMAP_L2}]
            kind: tb
            footprint: gauss
          - name: smos
            source: smos_l2_sm
            paths: [{smos}, {again}]
            kind: sm
        assimilation:
          loc_radius_km: 40
        comparison:
          methods: []
        output:
          dir: out
          figures: false
        """)
    r = smda("run", _write(tmp_path, "case.yaml", case))
    assert f"{SMAP_L2} is listed twice" in r.stderr
    assert f"20 observations of {again} repeat those of {smos}" in r.stderr
    diag = pd.read_csv(tmp_path / "out" / "two_products_obs_diagnostics.csv")
    used = diag[diag["qc"] == 0]
    # one analysis (one model step, hence one cycle) holds both sources, each counted
    cycle = pd.to_datetime(used["time"]).dt.ceil("h")
    assert cycle.nunique() == 1 and used["source"].nunique() == 2
    counts = used.groupby("source").size()
    assert counts["smos"] >= 15 and counts["smap"] >= 5, counts
    assert not diag.duplicated(["time", "x", "y", "pol", "angle_deg", "source"]).any()
    line = next(ln for ln in r.stderr.splitlines() if "accepted/total by source" in ln)
    assert f"smap {counts['smap']}/" in line and f"smos {counts['smos']}/20" in line, line
    assert f"smap: {(diag['source'] == 'smap').sum()} observations, {counts['smap']} accepted" in r.stderr
    assert set(diag.loc[diag["source"] == "smos", "footprint"]) == {"gauss"}
    np.testing.assert_allclose(used.loc[used["source"] == "smos", "error_std"], 0.04)
    assert np.isfinite(used["hx_analysis_mean"]).all()


@pytest.mark.slow
@pytest.mark.mpi
def test_adaptive_errors_identical_on_two_ranks_and_across_a_restart(tmp_path):
    from tests.test_driver import assert_same_outputs

    obs = ("  - name: smap\n    orbits: [am, pm]\n    adaptive_error: true\n"
           "  - name: fine\n    kind: sm\n    grid: M09\n    error_corr_km: 10\n    adaptive_error: true\n"
           "    adaptive_error_memory: 0.5\n")
    runs = {}
    for sub in ("one", "two"):
        (tmp_path / sub).mkdir()
        runs[sub] = _write(tmp_path / sub, "case.yaml", TWIN.format(observations=obs, out="out").replace(
            "name: two", "name: tiny").replace("size_km: [36, 36]", "size_km: [72, 36]").replace("05-07", "05-09"))
    smda("run", runs["one"])
    smda("run", runs["two"], "--stop-after-days", 3, ranks=2)
    ckpt = sorted((tmp_path / "two" / "out" / "restart").glob("*.nc"))
    smda("run", runs["two"], "--restart", ckpt[-1], ranks=2)
    assert_same_outputs(tmp_path / "one" / "out", tmp_path / "two" / "out")
    diag = pd.read_csv(tmp_path / "one" / "out" / "tiny_obs_diagnostics.csv")
    err = diag.groupby("source")["error_std"].agg(["min", "max"])
    assert err.loc["smap", "min"] < err.loc["smap", "max"] and err.loc["fine", "min"] < err.loc["fine", "max"], err
    assert err["min"].min() > 0
