"""A year of the land surface model on real forcing (Bondville, Illinois, 1998, half-hourly)."""

import os
from pathlib import Path

import numpy as np
import pytest

from smda.model import site_run

SAMPLE_DATA = Path(os.environ.get("SMDA_SAMPLE_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))

SOILS = {"sand": (0.92, 0.03), "silt loam": (0.20, 0.20), "clay": (0.10, 0.60)}


@pytest.fixture(scope="module")
def year():
    path = SAMPLE_DATA / "forcing" / "bondville.dat"
    if not path.is_file():
        pytest.skip(f"real sample data not found at {path} (set SMDA_SAMPLE_DATA)")
    met = site_run.read_bondville(path)
    fveg, lai = site_run.crop_phenology(met["time"])
    sand = [s for s, _ in SOILS.values()]
    clay = [c for _, c in SOILS.values()]
    return met, site_run.run_site(met, sand, clay, fveg, lai, n_members=2, sm0=0.30)


def test_reader_parses_real_file(year):
    met, _ = year
    assert met["dt_s"] == 1800.0
    assert met["precip"].size == 17521
    assert 850.0 < met["precip"].sum() * 1800.0 < 1000.0  # about 926 mm in 1998
    assert 240.0 < met["t_air"].min() and met["t_air"].max() < 315.0
    assert np.all((met["q_air"] > 0) & (met["q_air"] < 0.03))
    assert 9.0e4 < met["p_surf"].mean() < 1.03e5


def test_water_balance_closes_over_the_year(year):
    _, r = year
    loss = sum(r["flux_sum"][k] for k in ("evaporation", "transpiration", "interception_loss",
                                          "surface_runoff", "drainage"))
    residual = (r["storage1"] - r["storage0"]) - (r["precip_sum"] - loss)
    assert np.max(np.abs(residual) / r["precip_sum"]) < 1e-10


def test_annual_totals_plausible(year):
    _, r = year
    f = r["flux_sum"]
    et = f["evaporation"] + f["transpiration"] + f["interception_loss"]
    out = f["surface_runoff"] + f["drainage"]
    p = r["precip_sum"]
    # Illinois ET is roughly 400-800 mm/yr (this model: about 620-750 mm, bare-soil evaporation dominating)
    assert np.all((et > 350.0) & (et < 800.0)), et[:, 0]
    assert et.mean() > 400.0
    assert np.all(out > 50.0) and np.all(out < 0.75 * p)
    assert np.all(f["transpiration"] > f["interception_loss"])
    # sand drains more and runs off less than clay
    assert f["drainage"][0, 0] > f["drainage"][2, 0]
    assert f["surface_runoff"][0, 0] < f["surface_runoff"][2, 0]
    # annual energy: net radiation positive, LE + H close to it (ground heat small over a year)
    rn = f["net_radiation"] / (365 * 86400.0)
    g = f["ground_heat"] / (365 * 86400.0)
    assert np.all((rn > 40.0) & (rn < 130.0)) and np.all(np.abs(g) < 5.0)


def test_seasonal_cycle(year):
    _, r = year
    st = r["state"]
    doy = np.arange(st["t_skin"].shape[0])
    summer = (doy >= 160) & (doy < 250)
    winter = (doy < 60) | (doy >= 335)
    ts = st["t_skin"][:, :, 0]
    assert np.all(ts[summer].mean(axis=0) > ts[winter].mean(axis=0) + 15.0)
    assert np.all(ts[summer].mean(axis=0) > 290.0) and np.all(ts[winter].mean(axis=0) < 280.0)
    td = st["t_deep"][:, :, 0]
    assert np.all(td[summer].mean(axis=0) > td[winter].mean(axis=0) + 15.0)
    # the root zone dries through the summer and recovers in winter/spring
    w2 = st["sm_rootzone"][:, :, 0]
    assert np.all(w2[(doy >= 210) & (doy < 260)].mean(axis=0) < w2[(doy >= 60) & (doy < 130)].mean(axis=0) - 0.02)
    # surface moisture varies more than the root zone
    assert np.all(st["sm_surface"][:, :, 0].std(axis=0) > w2.std(axis=0))
    # snow only in the cold season
    assert np.all(st["swe"][summer] == 0.0)
