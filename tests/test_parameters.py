"""``smda parameters``: rasters in two CRSs onto the 1 km EASE-Grid 2.0 cells against a hand reprojection, mode
for classes, organic soils and per-class overrides reaching the model, and the real-case rule of the namelist."""


import numpy as np
import pyproj
import pytest
import xarray as xr

from smda.model.soil import soil_parameters
from smda.run import cli
from smda.run.experiment import build
from smda.run.namelist import load
from smda.run.setup import make_domain

rasterio = pytest.importorskip("rasterio", reason="rasterio (the rasters extra) is not installed")
pytest.importorskip("rioxarray", reason="rioxarray (the rasters extra) is not installed")
from rasterio.transform import from_origin  # noqa: E402

# rasterio and rioxarray multiply affine transforms with `*`, which affine 3.0 flags as pending deprecation
pytestmark = pytest.mark.filterwarnings("ignore:Use `@` matmul:PendingDeprecationWarning")

CASE = ("name: p15\ndomain:\n  centre: [41.3, -3.0]\n  size_km: [36, 36]\ntime:\n  start: 2019-05-01T00:00\n"
        "  end: 2019-05-02T00:00\nmodel:\n  ensemble_size: 2\noutput:\n  dir: out\n")
UTM = "EPSG:32630"  # zone 30N, central meridian 3 W: the domain's cells are nearly unrotated squares in it
GEO = "EPSG:4326"
SAND = (0.45, 0.25, 2600.0, 3100.0)  # mean, amplitude, wavelengths (m, in UTM x and y)
CLAY = (0.15, 0.08, 0.030, 0.025)  # mean, amplitude, wavelengths (deg, in lon and lat)
IGBP_CYCLE = np.array([12, 10, 7, 4, 12, 1, 11, 14])
DATES = np.array(["2020-01-16", "2020-04-16", "2020-07-16", "2020-10-16"], "datetime64[ns]")
NDVI_LAYERS = (0.2, 0.5, 0.7, 0.3)


def _grid(domain, crs, res):
    """Source pixel grid covering the domain in ``crs``: (left, top, nx, ny) with a 2 km margin."""
    s = 1000.89502334956
    xx, yy = np.meshgrid(np.r_[domain.x - s / 2, domain.x[-1] + s / 2], np.r_[domain.y + s / 2, domain.y[-1] - s / 2])
    u, v = pyproj.Transformer.from_crs("EPSG:6933", crs, always_xy=True).transform(xx, yy)
    pad = 2000.0 if crs == UTM else 0.02
    left, top = u.min() - pad, v.max() + pad
    return left, top, int((u.max() + pad - left) / res), int((top - (v.min() - pad)) / res)


def _tif(path, data, left, top, res, crs, nodata=None):
    data = np.atleast_3d(np.asarray(data)).transpose(2, 0, 1) if np.ndim(data) == 2 else np.asarray(data)
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
                       dtype=data.dtype, crs=crs, transform=from_origin(left, top, res, res), nodata=nodata) as dst:
        dst.write(data)


def _centres(left, top, nx, ny, res):
    return left + (np.arange(nx) + 0.5) * res, top - (np.arange(ny) + 0.5) * res


@pytest.fixture(scope="module")
def rasters(tmp_path_factory):
    """Small inputs: sand and land cover in UTM (GeoTIFF), clay, elevation and a dated NDVI climatology in
    lat/lon (netCDF and GeoTIFF), organic carbon and bulk density; each with its pixel grid for the hand checks."""
    d = tmp_path_factory.mktemp("rasters")
    (d / "case.yaml").write_text(CASE)
    domain = make_domain(load(d / "case.yaml"))
    out = {"dir": d, "domain": domain}
    # sand (g/kg) in UTM at 100 m: a field varying on the 1 km scale, smooth on the pixel scale
    left, top, nx, ny = g = _grid(domain, UTM, 100.0)
    u, v = _centres(*g, 100.0)
    m, a, lu, lv = SAND
    sand = 1000 * (m + a * np.sin(2 * np.pi * u[None, :] / lu) * np.cos(2 * np.pi * v[:, None] / lv))
    _tif(d / "sand.tif", sand.astype(np.float32), left, top, 100.0, UTM)
    out["sand"] = (UTM, g, 100.0, sand / 1000)
    # IGBP classes in UTM blocks of 2.7 x 2.3 km, 30 % of the pixels another class at random (so the pixel at a
    # cell's centre is often not the cell's majority), a water block in the north-west corner, 255 no data
    cls = IGBP_CYCLE[(np.floor(u[None, :] / 2700) + 3 * np.floor(v[:, None] / 2300)).astype(int) % IGBP_CYCLE.size]
    rng = np.random.default_rng(0)
    cls = np.where(rng.random(cls.shape) < 0.3, rng.choice(IGBP_CYCLE, cls.shape), cls)
    cls = np.where((u[None, :] < u[0] + 9000) & (v[:, None] > v[0] - 9000), 17, cls).astype(np.uint8)
    _tif(d / "igbp.tif", cls, left, top, 100.0, UTM, nodata=255)
    out["igbp"] = (UTM, g, 100.0, cls)
    # organic carbon (dg/kg) and bulk density (cg/cm3) in UTM at 250 m: a peat east of the 8th column
    g2 = _grid(domain, UTM, 250.0)
    u2, _ = _centres(*g2, 250.0)
    east = np.broadcast_to(u2[None, :] > float(pyproj.Transformer.from_crs("EPSG:6933", UTM, always_xy=True).transform(
        domain.x[8] + 500.0, domain.y[18])[0]), (g2[3], g2[2]))
    soc = np.where(east, 1621.0, 100.0)  # 16.2 % or 1 % organic carbon
    _tif(d / "soc.tif", soc.astype(np.float32), g2[0], g2[1], 250.0, UTM)
    _tif(d / "bdod.tif", np.where(east, 30.0, 140.0).astype(np.float32), g2[0], g2[1], 250.0, UTM)
    # clay (g/kg) on lat/lon at 0.001 deg, netCDF with units and ascending latitude
    left, top, nx, ny = g = _grid(domain, GEO, 0.001)
    lon, lat = _centres(*g, 0.001)
    m, a, llon, llat = CLAY
    clay = 1000 * (m + a * np.sin(2 * np.pi * lon[None, :] / llon) * np.cos(2 * np.pi * lat[:, None] / llat))
    xr.Dataset({"CLAY": (("lat", "lon"), clay[::-1], {"units": "g/kg"})},
               coords={"lat": lat[::-1], "lon": lon}).to_netcdf(d / "clay.nc")
    out["clay"] = (GEO, g, 0.001, clay / 1000)
    # elevation (m) on lat/lon GeoTIFF with a no-data hole of 4 x 4 km at the domain centre
    elev = 700.0 + 2000.0 * (lon[None, :] - lon.mean()) + 0 * lat[:, None]
    hole = (np.abs(lon[None, :] - lon.mean()) < 0.025) & (np.abs(lat[:, None] - lat.mean()) < 0.018)
    _tif(d / "elev.tif", np.where(hole, -32768, elev).astype(np.float32), left, top, 0.001, GEO, nodata=-32768)
    out["elev"] = (GEO, g, 0.001, np.where(hole, np.nan, elev))
    # soil classes on lat/lon: 10 (say Andosols) in the southern half, 3 elsewhere
    wrb = np.broadcast_to(np.where(lat[:, None] < lat.mean(), 10, 3), (lat.size, lon.size)).astype(np.uint8)
    _tif(d / "wrb.tif", wrb, left, top, 0.001, GEO)
    # NDVI climatology: 4 dated uniform layers at 0.01 deg
    g3 = _grid(domain, GEO, 0.01)
    lon3, lat3 = _centres(*g3, 0.01)
    ndvi = np.broadcast_to(np.array(NDVI_LAYERS)[:, None, None], (4, lat3.size, lon3.size))
    xr.Dataset({"NDVI": (("time", "lat", "lon"), ndvi)}, coords={"time": DATES, "lat": lat3, "lon": lon3}).to_netcdf(
        d / "ndvi.nc")
    return out


def _parameters(rasters, *extra, name="params.nc"):
    d = rasters["dir"]
    args = ["parameters", d / "case.yaml", "--sand", d / "sand.tif", "--clay", d / "clay.nc:CLAY", "--landcover",
            d / "igbp.tif", "--elevation", d / "elev.tif", "--ndvi", d / "ndvi.nc", "-o", d / name, "-q", *extra]
    assert cli.main([str(a) for a in args]) == 0
    return d / name


@pytest.fixture(scope="module")
def params(rasters):
    path = _parameters(rasters)
    with xr.open_dataset(path) as ds:
        return ds.load()


def _hand(domain, crs, grid, res, src, rows, n=40, reduce="mean"):
    """Each 1 km cell of ``rows`` as the mean (or majority and its share) of the source pixels under n x n
    points spread over the cell's footprint, transformed to the source CRS with pyproj."""
    s = 1000.89502334956
    f = (np.arange(n) + 0.5) / n
    X = np.broadcast_to((domain.x[:, None] - s / 2 + f[None, :] * s)[None, None], (rows.size, n, domain.ncols, n))
    Y = np.broadcast_to((domain.y[rows][:, None] + s / 2 - f[None, :] * s)[:, :, None, None], X.shape)
    u, v = pyproj.Transformer.from_crs("EPSG:6933", crs, always_xy=True).transform(X, Y)
    left, top = grid[0], grid[1]
    vals = src[np.floor((top - v) / res).astype(int), np.floor((u - left) / res).astype(int)]
    if reduce == "mean":
        return vals.mean(axis=(1, 3))
    vals = vals.transpose(0, 2, 1, 3).reshape(rows.size, domain.ncols, n * n)
    classes = np.unique(vals)
    share = (vals[..., None] == classes).mean(axis=2)
    return classes[share.argmax(axis=-1)], share.max(axis=-1)


def _centre_value(domain, crs, grid, res, src, rows):
    xx, yy = np.meshgrid(domain.x, domain.y[rows])
    u, v = pyproj.Transformer.from_crs("EPSG:6933", crs, always_xy=True).transform(xx, yy)
    return src[np.floor((grid[1] - v) / res).astype(int), np.floor((u - grid[0]) / res).astype(int)]


@pytest.mark.parametrize("field", ["sand", "clay"])
def test_average_matches_a_hand_reprojection_in_utm_and_lat_lon(rasters, params, field):
    domain, rows = rasters["domain"], np.arange(0, 36, 4)
    crs, grid, res, src = rasters[field]
    hand = _hand(domain, crs, grid, res, src, rows)
    got = params[field].values[rows]
    land = params["land_mask"].values[rows] == 1
    amplitude = (SAND if field == "sand" else CLAY)[1]
    assert land.sum() > 250
    err = np.abs(got - hand)[land]
    assert err.max() < 0.02 * amplitude, err.max() / amplitude
    # the check can fail: the value at the cell centre (nearest-neighbour resampling) is far off
    centre = _centre_value(domain, crs, grid, res, src, rows)
    assert np.abs(centre - hand)[land].max() > 0.3 * amplitude


def test_classes_by_mode_and_water_is_not_land(rasters, params):
    domain, rows = rasters["domain"], np.arange(0, 36, 3)
    crs, grid, res, src = rasters["igbp"]
    majority, share = _hand(domain, crs, grid, res, src, rows, n=30, reduce="mode")
    got = params["igbp"].values[rows]
    clear = share > 0.6
    assert clear.mean() > 0.3 and (clear & (share < 0.95)).sum() > 20  # mixed cells with a clear majority
    np.testing.assert_array_equal(got[clear], majority[clear])
    # the check can fail: the class of the pixel at the cell centre (nearest neighbour) is often not the majority
    centre = _centre_value(domain, crs, grid, res, src, rows)
    assert (centre[clear] != majority[clear]).mean() > 0.1
    assert set(np.unique(params["igbp"].values)) <= set(IGBP_CYCLE) | {17}
    np.testing.assert_array_equal(params["land_mask"].values == 1, params["igbp"].values != 17)
    assert (params["igbp"].values == 17).sum() > 30 and np.isnan(params["sand"].values[params["land_mask"].values == 0]).all()


def test_file_is_cf_on_the_domain_grid_with_provenance(rasters, params):
    domain = rasters["domain"]
    np.testing.assert_allclose(params["x"].values, domain.x)
    np.testing.assert_allclose(params["y"].values, domain.y)
    assert params["crs"].attrs["epsg_code"] == "EPSG:6933" and params.attrs["Conventions"] == "CF-1.8"
    assert params["sand"].attrs["grid_mapping"] == "crs" and params["elevation_m"].attrs["units"] == "m"
    src = params.attrs["sources"]
    assert "sand.tif" in src and "g/kg x 0.001" in src and "mode" in src and "clay.nc:CLAY" in src
    # the no-data hole of the elevation is filled from the nearest cells with data, and recorded
    assert "elevation_m" in params.attrs["gap_filled"]
    land = params["land_mask"].values == 1
    assert np.isfinite(params["elevation_m"].values[land]).all()
    # NDVI: the extremes of the dated layers, and the day of the largest (16 July 2020: day 198)
    np.testing.assert_allclose(params["ndvi_min"].values[land], min(NDVI_LAYERS), atol=1e-6)
    np.testing.assert_allclose(params["ndvi_max"].values[land], max(NDVI_LAYERS), atol=1e-6)
    np.testing.assert_allclose(params["green_up_doy"].values[land], 198.0)
    assert not list(rasters["dir"].glob(".*.part"))


def test_organic_soil_and_class_overrides_reach_the_model(rasters, tmp_path):
    (tmp_path / "over.yaml").write_text("igbp:\n  4: {porosity: 0.62, k_sat_ms: 3.0e-5}\n"
                                        "soil_class:\n  10: {porosity: 0.74}\n")
    path = _parameters(rasters, "--organic-carbon", rasters["dir"] / "soc.tif", "--bulk-density",
                       rasters["dir"] / "bdod.tif", "--overrides", tmp_path / "over.yaml", "--soil-class",
                       rasters["dir"] / "wrb.tif", name="organic.nc")
    nl = load(rasters["dir"] / "case.yaml", [f"domain.parameters={path}"])
    exp = build(nl)
    with xr.open_dataset(path) as ds:
        f = ds["organic_fraction"].values.ravel()[exp.cells]
        igbp = ds["igbp"].values.ravel()[exp.cells]
        assert np.isfinite(ds["porosity"].values[ds["igbp"].values == 4]).all()
    row, col = np.divmod(exp.cells, exp.domain.ncols)
    north = row < 17  # soil class 3 (no override) north of the centre, 10 south of it
    peat, mineral = (col > 9) & (igbp != 4) & north, (col < 7) & (igbp != 4) & north
    # 16.2 % organic carbon at 0.30 g/cm3: f = 1.724 x 0.1621 x 300 / 130 = 0.645, porosity ~0.74
    np.testing.assert_allclose(f[peat], 1.724 * 0.1621 * 300 / 130, rtol=1e-3)
    assert np.all(np.abs(exp.soil["wsat"][peat] - 0.74) < 0.02)
    mineral_only = soil_parameters(exp.static["sand"], exp.static["clay"])
    assert np.all(exp.soil["wsat"][mineral] < 0.60) and np.all(exp.soil["wsat"][peat] > mineral_only["wsat"][peat] + 0.2)
    assert np.all(exp.soil["ks_m_s"][peat] > mineral_only["ks_m_s"][peat])
    # class overrides win over the pedotransfer and the organic mixing, the soil class over the IGBP class
    np.testing.assert_allclose(exp.soil["wsat"][(igbp == 4) & north], 0.62)
    np.testing.assert_allclose(exp.soil["ks_m_s"][igbp == 4], 3.0e-5)
    south = row > 18
    assert south.sum() > 400
    np.testing.assert_allclose(exp.soil["wsat"][south], 0.74)  # e.g. a volcanic soil
    assert np.all(exp.soil["wfc"] < exp.soil["wsat"])


def test_units_mistake_and_existing_output_are_refused(rasters, caplog):
    d = rasters["dir"]
    args = ["parameters", d / "case.yaml", "--sand", d / "sand.tif", "--clay", d / "clay.nc", "--landcover", d / "igbp.tif",
            "--elevation", d / "elev.tif", "--ndvi", d / "ndvi.nc", "-o", d / "params.nc"]
    assert cli.main([str(a) for a in args]) == 2 and "--force" in caplog.text  # params.nc exists (the fixture)
    caplog.clear()
    args[-1] = d / "bad.nc"
    assert cli.main([str(a) for a in args + ["--units", "sand=1"]]) == 1  # g/kg read as fractions: sand + clay > 1
    assert "units" in caplog.text and not (d / "bad.nc").exists()


def test_missing_raster_extra_names_it(rasters, caplog, monkeypatch):
    import importlib

    real_import = importlib.import_module

    def without_rioxarray(name, *a):
        if name == "rioxarray":
            raise ImportError("No module named 'rioxarray'")
        return real_import(name, *a)

    monkeypatch.setattr(importlib, "import_module", without_rioxarray)
    d = rasters["dir"]
    args = ["parameters", d / "case.yaml", "--sand", d / "sand.tif", "--clay", d / "clay.nc", "--landcover", d / "igbp.tif",
            "--elevation", d / "elev.tif", "--ndvi", d / "ndvi.nc", "-o", d / "none.nc"]
    assert cli.main([str(a) for a in args]) == 1 and "smda[rasters]" in caplog.text


REAL = CASE + "forcing:\n  source: site\n  paths: [station.csv]\n"


def test_real_case_without_parameters_is_refused(tmp_path, caplog):
    (tmp_path / "station.csv").write_text("time\n")
    case = tmp_path / "real.yaml"
    case.write_text(REAL)
    assert cli.main(["info", str(case), "-q"]) == 2
    assert "domain.parameters" in caplog.text and "smda parameters" in caplog.text
    assert load(case, ["domain.landscape=synthetic"]).domain.landscape == "synthetic"  # asked for explicitly
    assert load(case, [f"domain.parameters={tmp_path / 'p.nc'}"]).real
    # an observation product makes a real case too; twin experiments need no parameters
    (tmp_path / "obs.h5").write_text("")
    real_obs = tmp_path / "real_obs.yaml"
    real_obs.write_text(CASE + "observations:\n  source: smap_l2_sm_p\n  paths: [obs.h5]\n")
    with pytest.raises(ValueError, match="domain.parameters"):
        load(real_obs)
    (tmp_path / "twin.yaml").write_text(CASE)
    assert not load(tmp_path / "twin.yaml").real


def test_organic_mixing_limits():
    sand, clay = np.full(3, 0.4), np.full(3, 0.2)
    mineral, mixed = soil_parameters(sand, clay), soil_parameters(sand, clay, organic_fraction=[0.0, 0.5, 1.0])
    for name in ("wsat", "b", "psi_s_m", "ks_m_s", "wwilt", "wfc"):
        assert mixed[name][0] == pytest.approx(mineral[name][0])  # f = 0: the ISBA/Cosby values of SCIENCE.md
    # f = 1: the organic end member of Lawrence & Slater (2008)
    assert (mixed.wsat[2], mixed.b[2], mixed.psi_s_m[2], mixed.ks_m_s[2]) == pytest.approx((0.9, 2.7, 0.0103, 1e-4))
    # f = 0.5: porosity halfway; no percolating organic network yet, so Ks is the harmonic mixture
    assert mixed.wsat[1] == pytest.approx(0.5 * (0.9 + mineral.wsat[0]))
    assert mixed.ks_m_s[1] == pytest.approx(1.0 / (0.5 / mineral.ks_m_s[0] + 0.5 / 1e-4))
    assert np.all(np.diff(mixed.wsat) > 0) and np.all(mixed.wwilt < mixed.wfc) and np.all(mixed.wfc < mixed.wsat)


def test_undated_ndvi_bands_and_a_raster_off_the_domain(rasters, caplog):
    d = rasters["dir"]
    left, top, nx, ny = _grid(rasters["domain"], GEO, 0.01)
    monthly = np.array([0.2, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 0.7, 0.5, 0.4, 0.3, 0.2])  # peak in July (band 7)
    _tif(d / "ndvi12.tif", np.broadcast_to(monthly[:, None, None], (12, ny, nx)).astype(np.float32), left, top, 0.01, GEO)
    args = ["parameters", d / "case.yaml", "--sand", d / "sand.tif", "--clay", d / "clay.nc", "--landcover", d / "igbp.tif",
            "--elevation", d / "elev.tif", "--ndvi", d / "ndvi12.tif", "-o", d / "monthly.nc", "-q"]
    assert cli.main([str(a) for a in args]) == 0
    with xr.open_dataset(d / "monthly.nc") as ds:
        land = ds["land_mask"].values == 1
        np.testing.assert_allclose(ds["green_up_doy"].values[land], 6.5 * 365.25 / 12 + 1)  # mid-July
        np.testing.assert_allclose(ds["ndvi_max"].values[land], 0.8, atol=1e-6)
    _tif(d / "far.tif", np.ones((10, 10), np.float32), 10.0, 50.0, 0.01, GEO)  # central Europe
    args[args.index("--elevation") + 1], args[-2] = d / "far.tif", d / "far.nc"
    assert cli.main([str(a) for a in args]) == 1 and "does not cover the domain" in caplog.text
