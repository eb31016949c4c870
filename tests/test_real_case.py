"""A real case end to end (namelists/real_site_template.yaml): real SMAP L2 soil moisture, static parameters built
from rasters, MODIS LST/NDVI tiles onto the 1 km cells, the satellite product and the comparison methods in
products/, `smda downscale` afterwards, and `smda validate` ranking satellite, open loop, analysis, DISPATCH and
the empirical regression on the same station pairs. The rasters, MODIS tiles and stations are written here for
the template's domain (no real sample overlaps the SMAP half-orbit)."""

import numpy as np
import pandas as pd
import pyproj
import pytest
import rasterio
import xarray as xr
from rasterio.transform import from_origin

from smda.model.grid import GRIDS
from smda.run.namelist import load
from smda.run.parameters import build_parameters
from smda.run.setup import make_domain
from tests.conftest import REPO
from tests.test_driver import smda
from tests.test_predictors import tile_of, write_mod11a1, write_mod13a2

pytestmark = pytest.mark.filterwarnings("ignore:Use `@` matmul:PendingDeprecationWarning")
TEMPLATE = REPO / "namelists" / "real_site_template.yaml"
DAYS = np.arange(np.datetime64("2015-08-10"), np.datetime64("2015-08-15"))


def _tif(path, bands, left, top, res):
    bands = np.atleast_3d(bands.T).T if bands.ndim == 2 else bands
    with rasterio.open(path, "w", driver="GTiff", width=bands.shape[2], height=bands.shape[1], count=bands.shape[0],
                       dtype="float32", crs="EPSG:4326", transform=from_origin(left, top, res, res)) as dst:
        dst.write(bands.astype(np.float32))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Parameter rasters (lat/lon GeoTIFF) -> params.nc, MOD11A1 tiles of every day and a MOD13A2 composite of the
    sinusoidal tile under the domain: LST hotter where NDVI is low and in a dry band (a DISPATCH-like signal)."""
    d = tmp_path_factory.mktemp("real")
    nl = load(TEMPLATE)
    domain = make_domain(nl)
    # parameters: 0.01 degree rasters around the domain
    lat, lon = domain.latlon()
    left, top, res = lon.min() - 0.3, lat.max() + 0.2, 0.01
    ny, nx = int((top - lat.min() + 0.2) / res), int((lon.max() + 0.3 - left) / res)
    glon, glat = np.meshgrid(left + (np.arange(nx) + 0.5) * res, top - (np.arange(ny) + 0.5) * res)
    wave = np.sin(glon * 7.0) * np.cos(glat * 11.0)
    _tif(d / "sand.tif", 450 + 150 * wave, left, top, res)
    _tif(d / "clay.tif", 200 - 50 * wave, left, top, res)
    _tif(d / "igbp.tif", np.where(wave > 0.5, 8.0, 10.0), left, top, res)  # woody savannas / grasslands
    _tif(d / "elev.tif", 900 + 300 * wave, left, top, res)
    _tif(d / "ndvi.tif", np.stack([0.2 + 0.1 * wave, 0.5 + 0.2 * wave, 0.3 + 0.1 * wave]), left, top, res)
    build_parameters(nl, sand=d / "sand.tif", clay=d / "clay.tif", landcover=d / "igbp.tif", elevation=d / "elev.tif",
                     ndvi=[d / "ndvi.tif"], output=d / "params.nc")
    # MODIS: NDVI 0.1-0.7 in patches; LST = 318 K - 22 K fv - 6 K wetness + noise (K); QC good; the domain's
    # north-east corner lies in the next tile east: both tiles are mosaicked
    tiles = {tile_of(float(a), float(b)) for a, b in zip(lat[[0, 0, -1, -1], [0, -1, 0, -1]],
                                                       lon[[0, 0, -1, -1], [0, -1, 0, -1]], strict=True)}
    assert len(tiles) == 2
    rng = np.random.default_rng(5)
    for h, v in sorted(tiles):
        i, j = np.mgrid[0:1200, 0:1200]
        ndvi = 0.4 + 0.3 * np.sin(i / 9.0) * np.cos((j + 1200 * h) / 13.0)
        wet = np.cos(i / 23.0 + j / 31.0)
        write_mod13a2(d / f"MOD13A2.A2015217.h{h:02d}v{v:02d}.061.hdf", h, v, ndvi)
        for day in DAYS:
            doy = int((day - day.astype("datetime64[Y]")) / np.timedelta64(1, "D")) + 1
            fv = np.clip((ndvi - 0.15) / 0.75, 0, 1)
            lst = 318.0 - 22.0 * fv - 6.0 * wet + rng.normal(0, 0.5, ndvi.shape)
            write_mod11a1(d / f"MOD11A1.A2015{doy:03d}.h{h:02d}v{v:02d}.061.hdf", h, v, lst, lst - 20.0)
    return d, domain


def _sets(d, out, *extra):
    sets = {"output.dir": out, "domain.parameters": d / "params.nc", "model.ensemble_size": 4, "output.figures": "false",
            "comparison.methods": "[dispatch,empirical]", "comparison.predictors": "modis",
            "comparison.lst_paths": f"[{d}/MOD11A1.*.hdf]", "comparison.ndvi_paths": f"[{d}/MOD13A2.*.hdf]", **dict(extra)}
    return [a for k, val in sets.items() for a in ("--set", f"{k}={val}")]


def test_real_smap_case_writes_every_product_and_downscales_again(tmp_path, sample_data, inputs):
    d, domain = inputs
    out = tmp_path / "out"
    smda("run", TEMPLATE, *_sets(d, out), "-q")
    names = {p.stem for p in (out / "products").glob("*.nc")}
    assert names == {"satellite", "openloop", "analysis", "dispatch", "empirical"}
    with xr.open_dataset(out / "predictors.nc") as p:
        assert p["time"].values.astype("datetime64[D]").tolist() == DAYS[:2].tolist()  # one record per day of the run
        assert {"lst", "lst_night", "lst_view_time", "ndvi", "elevation"} <= set(p.data_vars)
        land = np.isfinite(p["elevation"].values)
        assert np.isfinite(p["lst"].values[:, land]).all() and 280 < np.nanmean(p["lst"]) < 320
        np.testing.assert_allclose(p["lst"].values - p["lst_night"].values, 20.0, atol=0.02)
        assert 0.1 < np.nanmin(p["ndvi"]) < np.nanmax(p["ndvi"]) < 0.7
        assert p.attrs["predictor_source"].startswith("MODIS")
    # the satellite product: the SMAP retrievals (m3/m3) on the 1 km cells of their M36 pixels, at the cycle after
    # the overpass (2015-08-11 02:16 UTC)
    obs = pd.read_csv(out / "real_site_obs_diagnostics.csv")
    with xr.open_dataset(out / "products" / "satellite.nc") as s, xr.open_dataset(out / "products" / "dispatch.nc") as dp:
        sat, t = s["sm_surface"].values, s["time"].values
        assert t.astype("datetime64[h]").tolist() == [np.datetime64("2015-08-11T03", "h")]
        m36 = GRIDS["M36"]
        r, c = m36.rowcol(*np.meshgrid(domain.x, domain.y))
        for (row, col), value in obs.groupby(["row", "col"])["value"].first().items():
            cells = (r == row) & (c == col) & np.isfinite(sat[0])
            np.testing.assert_allclose(sat[0][cells], value, rtol=1e-6)
        assert np.isfinite(sat).sum() >= 2 * 36 * 36
        disp = dp["sm_surface"].values
        assert np.isfinite(disp).sum() > 1000 and np.nanstd(disp) > 0.005  # 1 km structure from the LST/NDVI
        assert np.all(np.isfinite(disp) <= np.isfinite(sat))
    # smda downscale on the stored inputs: the random forest (and DISPATCH again, identical)
    smda("downscale", TEMPLATE, *_sets(d, out), "--method", "random_forest", "--method", "dispatch", "-q")
    with xr.open_dataset(out / "products" / "dispatch.nc") as again:
        np.testing.assert_array_equal(again["sm_surface"].values, disp)
    assert (out / "products" / "random_forest.nc").exists()


def test_validate_ranks_satellite_openloop_analysis_dispatch_empirical(tmp_path, inputs):
    """Five daily coarse retrievals (a CF netCDF on the EASE M36 grid read by the gridded reader) and two stations:
    every product is validated on the same station pairs."""
    d, domain = inputs
    m36 = GRIDS["M36"]
    r0, c0 = m36.rowcol(domain.x[0], domain.y[0])
    rows, cols = np.arange(r0 - 1, r0 + 5), np.arange(c0 - 1, c0 + 5)
    x, y = m36.xy(np.zeros_like(cols), cols)[0], m36.xy(rows, np.zeros_like(rows))[1]
    times = DAYS.astype("datetime64[s]") + np.timedelta64(7800, "s")  # 02:10 UTC
    rng = np.random.default_rng(2)
    sm = 0.18 + 0.04 * np.sin(np.arange(5))[:, None, None] + rng.uniform(-0.03, 0.03, (5, rows.size, cols.size))
    ds = xr.Dataset({"sm": (("time", "y", "x"), sm, {"units": "m3 m-3", "grid_mapping": "crs"}),
                     "crs": ((), 0, {"crs_wkt": pyproj.CRS("EPSG:6933").to_wkt()})},
                    coords={"time": times, "x": ("x", x, {"units": "m"}), "y": ("y", y, {"units": "m"})})
    ds.to_netcdf(tmp_path / "sm.nc")
    lat, lon = domain.latlon()
    index = pd.date_range("2015-08-10", "2015-08-15", freq="1h", tz="UTC")
    rows_csv = [pd.DataFrame({"station": f"st{k}", "network": "test", "lat": lat[a, b], "lon": lon[a, b],
                              "depth_from_m": 0.0, "depth_to_m": 0.05, "time": index.strftime("%Y-%m-%dT%H:%M:%SZ"),
                              "soil_moisture": 0.2 + 0.03 * np.sin(np.arange(index.size) / 24.0 + k), "flag": "G"})
                for k, (a, b) in enumerate(((20, 30), (80, 70)))]
    pd.concat(rows_csv).to_csv(tmp_path / "stations.csv", index=False)
    case = tmp_path / "case.yaml"
    case.write_text(TEMPLATE.read_text().replace("end: 2015-08-12T00:00", "end: 2015-08-15T00:00"))
    out = tmp_path / "out"
    obs = (f"observations=[{{name: grid, source: gridded, paths: [{tmp_path / 'sm.nc'}], kind: sm, error: 0.04, "
           "options: {variable: sm}}]")
    smda("run", case, *_sets(d, out), "--set", obs, "-q")
    smda("validate", case, *_sets(d, out), "--insitu", tmp_path / "stations.csv", "--set", "validation.min_samples=3",
         "--set", "validation.figures=false", "-q")
    table = pd.read_csv(next(out.glob("**/validation_metrics.csv")))
    ranked = table[(table["level"] == "station")]
    assert {"satellite", "openloop", "analysis", "dispatch", "empirical"} <= set(ranked["product"])
    # every product at both stations, on the five retrieval times; the empirical regression has no estimate at the
    # first (9 coarse pixels < its 10 samples: it needs the history of a previous time)
    n = ranked.groupby(["station", "product"])["n"].max().unstack()
    assert list(n.index) == ["st0", "st1"]
    assert (n[["satellite", "openloop", "analysis", "dispatch"]] == 5).all().all() and (n["empirical"] == 4).all(), n
