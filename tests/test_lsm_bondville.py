"""A year of the land surface model at Bondville, Illinois, on the real half-hourly 1998 station forcing.

The run goes through the driver, as ``smda run namelists/site_template.yaml`` does (station table read by
:mod:`smda.forcing.site`), in open loop with perturbations off: one member on three land cells of the
template's 36 km domain, one per soil (sand, silt loam, clay), under a cropland NDVI season (Bondville is
a no-till corn/soybean field: IGBP 12, NDVI 0.2 in winter to 0.85 in mid-July). The driver is advanced
one step at a time, so the test sees every step's forcing, fluxes and state.

The bounds are physics, not observed values: water and surface energy balances close to round-off over
the year, latent heat is the latent heat of vaporization (sublimation) times evapotranspiration, a closed
summer canopy transpires more than the soil evaporates, a bare winter field does not transpire. The wide
Illinois ET range (350-800 mm) is a plausibility check only: the model gives 700-770 mm here (P = 926 mm),
50-65 % of it soil evaporation, mostly outside the closed-canopy summer.
"""

import numpy as np
import pytest
import xarray as xr

from smda.constants import LS, LV
from smda.forcing.site import read_station_table
from smda.model import lsm
from smda.model.state import water_storage
from smda.run.driver import Driver
from smda.run.namelist import load
from smda.run.setup import make_domain
from tests.conftest import REPO, SAMPLE_DATA

TEMPLATE = REPO / "namelists" / "site_template.yaml"
BONDVILLE = SAMPLE_DATA / "forcing" / "bondville.dat"
SOILS = {"sand": (0.92, 0.03), "silt loam": (0.20, 0.20), "clay": (0.10, 0.60)}
CELLS = ((9, 9), (18, 18), (27, 27))  # (row, col) in the 36 x 36 domain
STATE_OUT = ("sm_surface", "sm_rootzone", "t_skin", "t_deep", "swe")
YEAR = ["time.start=1998-01-01T06:30", "time.end=1999-01-01T06:30"]  # the table's first to last record


def _site_parameters(path, shape):
    """Static fields of the site domain: land only at CELLS, one soil each; station elevation; a crop season."""
    land = np.zeros(shape, bool)
    sand, clay = np.full(shape, 0.3), np.full(shape, 0.2)
    for (r, c), (s, cl) in zip(CELLS, SOILS.values(), strict=True):
        land[r, c], sand[r, c], clay[r, c] = True, s, cl
    fields = {"sand": sand, "clay": clay, "elevation_m": np.full(shape, 213.0), "ndvi_min": np.full(shape, 0.2),
              "ndvi_max": np.full(shape, 0.85), "green_up_doy": np.full(shape, 200.0), "igbp": np.full(shape, 12),
              "land_mask": land.astype(np.int8)}
    xr.Dataset({k: (("y", "x"), v) for k, v in fields.items()}).to_netcdf(path)


def run_year(workdir, forcing_path=BONDVILLE):
    """The site template's year on the SOILS cells, through the driver, collected at every step.

    Returns ``flux`` and ``state``: name -> (n_days, n_soils) daily sums of the model fluxes and the
    precipitation (kg m-2 for water, J m-2 for energy) and daily means of the state; ``storage``: the
    soil, snow and canopy water (kg m-2) at the start and the end; ``days``: the first time of each day.
    (Also drawn by benchmarks/lsm_bondville_figure.py.)
    """
    _site_parameters(workdir / "site.nc", make_domain(load(TEMPLATE)).shape)
    nl = load(TEMPLATE, overrides=YEAR + [
        f"forcing.paths=[{forcing_path}]", f"domain.parameters={workdir / 'site.nc'}", f"output.dir={workdir / 'out'}",
        "observations.source=none", "assimilation.filter=none", "forcing.perturbations.enabled=false",
        "model.ensemble_size=1", "model.sm_perturbation_std=0"])
    drv = Driver(nl)
    run, dt, per_day = drv.openloop, drv.dt, drv.steps_per_day
    n_days = drv.n_steps // per_day
    flux = {name: np.zeros((n_days, len(SOILS))) for name in lsm.FLUXES + ("precip",)}
    state = {name: np.zeros((n_days, len(SOILS))) for name in STATE_OUT}
    storage0 = water_storage(run.state, drv.exp.soil)[:, 0].copy()
    for k in range(drv.n_steps):
        drv.run(stop_after_days=1 / per_day)  # one step of the driver's loop
        day = k // per_day
        flux["precip"][day] += drv.forcing["precip"] * dt  # one member, perturbations off: the base field
        for name in lsm.FLUXES:
            flux[name][day] += run.fluxes.mean[lsm.F[name]] * dt
        for name in STATE_OUT:
            state[name][day] += run.state[name][:, 0] / per_day
    assert drv.step0 == drv.n_steps and drv.exp.n == len(SOILS)
    np.testing.assert_array_equal(drv.exp.static["sand"], [s for s, _ in SOILS.values()])
    return {"flux": flux, "state": state, "storage": (storage0, water_storage(run.state, drv.exp.soil)[:, 0]),
            "days": nl.start + np.arange(n_days) * np.timedelta64(1, "D")}


@pytest.fixture(scope="module")
def year(tmp_path_factory):
    if not BONDVILLE.is_file():
        pytest.skip(f"real sample data not found at {BONDVILLE} (set SMDA_SAMPLE_DATA)")
    return run_year(tmp_path_factory.mktemp("bondville"))


def test_every_rain_step_of_the_table_reaches_the_model(year):
    table = read_station_table(BONDVILLE)
    p = year["flux"]["precip"].sum(axis=0)
    np.testing.assert_allclose(p, table["precip"].iloc[1:].sum() * 1800.0, rtol=1e-12)  # about 926 mm in 1998


def test_water_and_energy_balances_close_over_the_year(year):
    f = {k: v.sum(axis=0) for k, v in year["flux"].items()}
    storage0, storage1 = year["storage"]
    loss = sum(f[k] for k in lsm.WATER_LOSSES)
    np.testing.assert_allclose(storage1 - storage0, f["precip"] - loss, rtol=0, atol=1e-10 * f["precip"][0])
    # surface energy: net radiation = sensible + latent + ground heat (J m-2 over the year)
    np.testing.assert_allclose(f["net_radiation"], f["sensible_heat"] + f["latent_heat"] + f["ground_heat"],
                               rtol=1e-12)
    # latent heat is the latent heat of vaporization (of sublimation, for snow) times the vapour flux
    et = f["soil_evaporation"] + f["transpiration"] + f["interception_loss"]
    assert np.all((f["latent_heat"] >= LV * et) & (f["latent_heat"] <= LS * et))


def test_annual_totals_and_partition(year):
    d = year["flux"]
    f = {k: v.sum(axis=0) for k, v in d.items()}
    et = f["soil_evaporation"] + f["transpiration"] + f["interception_loss"]
    out = f["surface_runoff"] + f["drainage"]
    p = f["precip"]
    # Illinois ET is roughly 400-800 mm/yr; a plausibility range, not an observation
    assert np.all((et > 350.0) & (et < 800.0)), et
    assert np.all(out > 50.0) and np.all(out < 0.75 * p)
    # partition: a closed summer canopy (NDVI ~0.85, fveg ~0.9) transpires more than the shaded soil
    # evaporates; the bare winter field hardly transpires; interception is a minor loss
    jja, jfm = slice(151, 243), slice(0, 90)
    assert np.all(d["transpiration"][jja].sum(axis=0) > d["soil_evaporation"][jja].sum(axis=0))
    et_jfm = (d["soil_evaporation"] + d["transpiration"] + d["interception_loss"])[jfm].sum(axis=0)
    assert np.all(d["transpiration"][jfm].sum(axis=0) < 0.05 * et_jfm)
    assert np.all(f["transpiration"] > 3 * f["interception_loss"])
    # sand drains more and runs off less than clay
    assert f["drainage"][0] > f["drainage"][2]
    assert f["surface_runoff"][0] < f["surface_runoff"][2]
    # annual energy: net radiation positive, ground heat small over a year
    seconds = d["precip"].shape[0] * 86400.0
    rn, g = f["net_radiation"] / seconds, f["ground_heat"] / seconds
    assert np.all((rn > 40.0) & (rn < 130.0)) and np.all(np.abs(g) < 5.0)


def test_seasonal_cycle(year):
    st = year["state"]
    doy = np.arange(st["t_skin"].shape[0])
    summer = (doy >= 160) & (doy < 250)
    winter = (doy < 60) | (doy >= 335)
    ts = st["t_skin"]
    assert np.all(ts[summer].mean(axis=0) > ts[winter].mean(axis=0) + 15.0)
    assert np.all(ts[summer].mean(axis=0) > 290.0) and np.all(ts[winter].mean(axis=0) < 280.0)
    td = st["t_deep"]
    assert np.all(td[summer].mean(axis=0) > td[winter].mean(axis=0) + 15.0)
    # the root zone dries through the summer and recovers in winter/spring
    w2 = st["sm_rootzone"]
    assert np.all(w2[(doy >= 210) & (doy < 260)].mean(axis=0) < w2[(doy >= 60) & (doy < 130)].mean(axis=0) - 0.02)
    # surface moisture varies more than the root zone
    assert np.all(st["sm_surface"].std(axis=0) > w2.std(axis=0))
    # snow only in the cold season
    assert np.all(st["swe"][summer] == 0.0)
