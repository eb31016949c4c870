"""CF-1.8 outputs: the IOOS compliance checker on every netCDF file of a short run, EPSG:6933 as rioxarray and
GDAL read it, coordinates without fill values, daily means with time bounds, provenance, the final chunks."""

import re

import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from pyproj import CRS

from smda import __version__
from smda.assimilation.observations import bias
from smda.model.grid import M01, Domain
from smda.run.output import chunk_sizes, grid_mapping
from smda.run.recorder import Recorder
from tests.test_driver import case, smda

COORDS = ("time", "time_bnds", "x", "y", "lat", "lon", "crs", "group", "period", "group_row", "group_col",
          "group_observable", "group_incidence_angle")
# compliance-checker 6.1 (cf/appendix_f.py) writes the one required attribute of lambert_cylindrical_equal_area as
# a string where a tuple is meant, and so reports each letter of "longitude_of_central_meridian" as a missing
# attribute; these messages are dropped and the attribute is checked by test_the_grid_mapping_is_epsg_6933.
CHECKER_LETTER_BUG = re.compile(r"^\w is a required attribute for grid mapping lambert_cylindrical_equal_area$")


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    """A two-day twin experiment (about 15 s): analysis, daily means, predictors, the products of the runs, the
    satellite and a comparison method, and the rescaling statistics."""
    p = case(tmp_path_factory.mktemp("cf"), end="2019-05-04T00:00")
    smda("run", p, "-q")
    return p.parent / "out"


def outputs(out):
    """Every netCDF output but the restarts (the internal state of a run, not a product)."""
    files = sorted(p for p in out.rglob("*.nc") if "restart" not in p.relative_to(out).parts)
    names = {p.relative_to(out).as_posix() for p in files}
    assert {"tiny_analysis.nc", "tiny_daily.nc", "predictors.nc", "products/analysis.nc", "products/dispatch.nc",
            "tiny_rescaling_cdf.nc", "tiny_rescaling_meanstd.nc"} <= names
    return files


def cf_findings(path) -> dict:
    """The IOOS compliance checker's cf:1.8 failures of ``path``: errors (high priority: CF requirements),
    warnings (medium: recommendations) and checks that raised."""
    from compliance_checker.runner import CheckSuite

    suite = CheckSuite()
    suite.load_all_available_checkers()
    ds = suite.load_dataset(str(path))
    try:
        groups, raised = suite.run_all(ds, ["cf:1.8"])["cf:1.8"]
    finally:
        ds.close()
    found = {"errors": [], "warnings": [], "raised": sorted(raised)}
    for g in groups:
        if g.value[1] and g.value[0] < g.value[1] and g.weight >= 2:
            msgs = [m for m in g.msgs if not CHECKER_LETTER_BUG.match(m)]
            found["errors" if g.weight == 3 else "warnings"] += [f"{g.name}: {m}" for m in msgs]
    return found


def test_every_output_passes_the_cf_checker(out):
    pytest.importorskip("compliance_checker", reason="the IOOS compliance-checker (the test extra) is not installed")
    report = {p.relative_to(out).as_posix(): cf_findings(p) for p in outputs(out)}
    bad = {name: f for name, f in report.items() if any(f.values())}
    assert not bad, bad


def test_the_grid_mapping_is_epsg_6933():
    gm = grid_mapping()
    assert CRS.from_cf(gm).to_epsg() == 6933 and CRS.from_wkt(gm["crs_wkt"]).to_epsg() == 6933
    epsg = CRS.from_epsg(6933).to_cf()  # the written parameters (the grid's constants) agree with the EPSG definition
    for k in ("longitude_of_central_meridian", "standard_parallel", "false_easting", "false_northing",
              "semi_major_axis", "inverse_flattening"):
        assert gm[k] == pytest.approx(epsg[k], rel=1e-12), k


def _assert_ease_1km(transform):
    """An affine transform of whole cells of the global EASE-Grid 2.0 1 km grid (north up)."""
    assert transform.a == pytest.approx(M01.cell_m, rel=1e-9) and transform.e == pytest.approx(-M01.cell_m, rel=1e-9)
    assert transform.b == 0 and transform.d == 0
    for offset in ((transform.c - M01.x0) / M01.cell_m, (M01.y0 - transform.f) / M01.cell_m):
        assert offset == pytest.approx(round(offset), abs=1e-6)


# rioxarray 0.19 multiplies affine transforms with `*`, which affine 3.0 flags as pending deprecation
@pytest.mark.filterwarnings("ignore:Use `@` matmul:PendingDeprecationWarning")
def test_rioxarray_and_gdal_read_epsg_6933_and_the_exact_grid(out):
    pytest.importorskip("rioxarray", reason="rioxarray (the test extra) is not installed")
    import rasterio

    for name, var in (("tiny_analysis.nc", "sm_surface_analysis_mean"), ("products/analysis.nc", "sm_surface"),
                      ("products/dispatch.nc", "sm_surface"), ("tiny_daily.nc", "sm_surface_analysis_mean")):
        with xr.open_dataset(out / name, decode_coords="all") as ds:
            da = ds[var]
            assert da.rio.crs.to_epsg() == 6933, name
            _assert_ease_1km(da.rio.transform())
            assert da.rio.shape == (36, 72)
        with rasterio.open(f"netcdf:{out / name}:{var}") as src:  # GDAL's netCDF driver
            assert src.crs.to_epsg() == 6933, name
            _assert_ease_1km(src.transform)


def test_coordinates_have_no_fill_value_and_files_say_where_they_come_from(out):
    for path in outputs(out):
        with netCDF4.Dataset(path) as ds:
            filled = [v for v in COORDS if v in ds.variables and "_FillValue" in ds[v].ncattrs()]
            assert not filled, f"{path.name}: {filled}"
            assert ds.Conventions == "CF-1.8" and ds.title
            assert "'tiny'" in ds.history and __version__ in ds.history and ds.source == f"smda {__version__}"
            for v in ds.variables.values():
                if v.name not in ("crs", "time_bnds"):
                    assert "long_name" in v.ncattrs(), f"{path.name}:{v.name}"


def test_daily_means_of_soil_moisture_with_time_bounds(out):
    with xr.open_dataset(out / "tiny_daily.nc") as d, xr.open_dataset(out / "tiny_analysis.nc") as a:
        days = np.array(["2019-05-02", "2019-05-03"], "datetime64[ns]")
        np.testing.assert_array_equal(d["time"].values, days + np.timedelta64(12, "h"))
        np.testing.assert_array_equal(d["time_bnds"].values, np.stack([days, days + np.timedelta64(1, "D")], axis=1))
        assert d["time"].attrs["bounds"] == "time_bnds"
        gridded = [v for v in d.data_vars if d[v].dims == ("time", "y", "x")]
        assert all(d[v].attrs["cell_methods"] == "time: mean" for v in gridded)
        assert "cell_methods" not in a["sm_surface_analysis_mean"].attrs  # instantaneous values
        for run in ("truth", "openloop_mean", "analysis_mean"):
            for layer in ("surface", "rootzone"):
                sm = d[f"sm_{layer}_{run}"]
                assert sm.attrs["standard_name"] == "volume_fraction_of_condensed_water_in_soil"
                assert np.nanmin(sm) > 0.0 and np.nanmax(sm) < 0.6
            # the root zone changes slowly: its daily mean is close to the value at that day's analysis time
            i = int(np.flatnonzero(a["time"].values.astype("datetime64[D]") == days[0])[0])
            diff = np.abs(d[f"sm_rootzone_{run}"][0] - a[f"sm_rootzone_{run}"][i])
            assert 0 < float(diff.max()) < 0.01


def test_rescaling_statistics_document_their_groups(out):
    """The decoded group coordinates name the footprints, polarizations and angles of the observations fitted."""
    d = pd.read_csv(out / "tiny_obs_diagnostics.csv")
    d = d[(d["qc"] == 0) & np.isfinite(d["hx_forecast_mean"])]
    row, col = M01.rowcol(d["x"].to_numpy(), d["y"].to_numpy())
    observed = set(zip(row, col, np.where(d["pol"] == "H", 4, 5), np.round(d["angle_deg"] * 2) / 2, strict=True))
    for name in ("meanstd", "cdf"):
        path = out / f"tiny_rescaling_{name}.nc"
        with xr.open_dataset(path) as ds:
            obs = ds["group_observable"]
            decoded = set(zip(ds["group_row"].values, ds["group_col"].values, obs.values,
                              ds["group_incidence_angle"].values, strict=True))
            assert decoded == observed
            assert obs.attrs["flag_meanings"].split()[4] == "brightness_temperature_h" and "group = " in ds["group"].comment
            assert list(ds["method"].attrs["flag_values"]) == [0, 1, 2] and ds["ref_mean"].attrs["units"] == "K"
            assert ds.attrs["window"] in ds["period"].attrs["long_name"] and ds["period"].size == bias.PERIODS[ds.window]
            g = ds["group"].values
        m = bias.load(path)  # the CF file reads back into the same statistics
        np.testing.assert_array_equal(m.groups, g.astype(np.int64))
        assert m.n_ref.dtype == np.int64 and m.method.dtype == np.int8


def test_finished_files_are_chunked_for_maps_and_series(tmp_path):
    dom = Domain(5004, 9000, 144, 288, np.ones((144, 288), bool))
    rec = Recorder(tmp_path, dom, [np.arange(dom.n_cells)])
    rng = np.random.default_rng(1)
    fields = rng.random((40, 144, 288), dtype=np.float32)
    t0 = np.datetime64("2020-01-01T00:00")
    for i in range(40):
        day = t0 + np.timedelta64(i, "D")
        rec.append("x_daily.nc", day + np.timedelta64(12, "h"), {"sm_surface_analysis_mean": fields[i]},
                   bounds=(day, day + np.timedelta64(1, "D")))
    with netCDF4.Dataset(rec.part("x_daily.nc")) as ds:  # streamed: one record by a tile per chunk
        assert ds["sm_surface_analysis_mean"].chunking() == [1, 64, 64]
    rec.finish()
    assert chunk_sizes(40, 144, 288) == (8, 64, 64)
    with netCDF4.Dataset(tmp_path / "x_daily.nc") as ds:
        v = ds["sm_surface_analysis_mean"]
        assert v.chunking() == [8, 64, 64]
        np.testing.assert_array_equal(v[:], fields)
        assert ds["time_bnds"][-1, 1] - ds["time_bnds"][-1, 0] == 86400.0
    assert not list(tmp_path.glob("*.part")) and not list(tmp_path.glob(".*.tmp"))


def test_forcing_fills_known_only_at_the_end_reach_the_final_files(tmp_path):
    """Gridded forcing learns its gap fills while it is read: the run gathers every rank's account and the
    final files carry it as ``forcing_fill`` (one account where the ranks agree, each rank's where not)."""
    from types import SimpleNamespace

    from smda.run.products import fill_text, gather_fill_record

    class Comm:  # two ranks, as gathered on rank 0
        size = 2

        def gather(self, mine, root=0):
            return [mine, {"t_air": "2 values filled", "precip": "1 value set to 0"}]

    weather = SimpleNamespace(fill_record={"t_air": "2 values filled"})
    assert gather_fill_record(weather, None) == {"t_air": "2 values filled"}
    merged = gather_fill_record(weather, Comm())
    assert merged == {"t_air": "2 values filled", "precip": "rank 1: 1 value set to 0"}
    dom = Domain(5004, 9000, 36, 36, np.ones((36, 36), bool))
    rec = Recorder(tmp_path, dom, [np.arange(dom.n_cells)], attrs={"case": "x"})
    rec.append("x_daily.nc", np.datetime64("2020-01-01T12:00"), {"sm_surface_analysis_mean": np.zeros((36, 36))},
               bounds=(np.datetime64("2020-01-01"), np.datetime64("2020-01-02")))
    rec.finish({"forcing_fill": fill_text(merged)})
    with netCDF4.Dataset(tmp_path / "x_daily.nc") as ds:
        assert ds.forcing_fill == "t_air: 2 values filled; precip: rank 1: 1 value set to 0" and ds.case == "x"
