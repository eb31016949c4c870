"""Synthetic weather: purity (split invariance), cycles, intermittent rain, totals, degraded version."""

import numpy as np
import pytest

from smda.forcing.synthetic import NAMES, SyntheticSettings, SyntheticWeather
from smda.model.grid import Domain, xy_to_latlon


@pytest.fixture(scope="module")
def cells():
    d = Domain.from_centre(40.0, -88.3, 72, 72)
    xx, yy = np.meshgrid(d.x, d.y)
    lat, lon = d.latlon()
    return xx.ravel(), yy.ravel(), lat.ravel(), lon.ravel()


def test_split_invariance(cells):
    x, y, lat, lon = cells
    w = SyntheticWeather(seed=3)
    elev = 200.0 + 0.01 * (x - x.min())
    t = np.datetime64("2019-06-10T20:00")
    full = w.fields(10, t, x, y, lat, lon, elev)
    idx = np.arange(x.size)[::7]
    part = w.fields(10, t, x[idx], y[idx], lat[idx], lon[idx], elev[idx])
    for k in NAMES:
        np.testing.assert_array_equal(full[k][idx], part[k], err_msg=k)
    other = SyntheticWeather(seed=4).fields(10, t, x, y, lat, lon, elev)
    assert not np.array_equal(other["t_air"], full["t_air"])


def test_diurnal_cycle_and_bounds(cells):
    x, y, lat, lon = cells
    x, y, lat, lon = x[:50], y[:50], lat[:50], lon[:50]
    w = SyntheticWeather(seed=1)
    day = np.datetime64("2019-07-01T00:00")
    f = [w.fields(h, day + np.timedelta64(h, "h"), x, y, lat, lon) for h in range(24)]
    sw = np.array([g["sw_down"].mean() for g in f])
    t = np.array([g["t_air"].mean() for g in f])
    # Illinois: local noon ~ 18 UTC, night ~ 06 UTC
    assert np.all(sw[3:10] == 0.0)
    assert sw[18] > 300.0
    assert t[21] > t[10] + 3.0  # afternoon warmer than pre-dawn
    for g in f:
        assert np.all(g["q_air"] > 0) and np.all(g["q_air"] < 0.03)
        assert np.all((g["p_surf"] > 9e4) & (g["p_surf"] < 1.1e5))
        assert np.all(g["lw_down"] > 200) and np.all(g["lw_down"] < 500)
        assert np.all(g["wind"] > 0) and np.all(g["precip"] >= 0)


def test_rain_statistics_and_storm_scales():
    # scattered cells over a wide area average out the wet regimes: mean rate near the setting
    rng = np.random.default_rng(0)
    x = -8.0e6 + rng.uniform(0, 2.5e6, 300)
    y = 4.0e6 + rng.uniform(0, 1.2e6, 300)
    lat, lon = xy_to_latlon(x, y)
    st = SyntheticSettings()
    w = SyntheticWeather(st, seed=2)
    t0 = np.datetime64("2019-05-01T00:00")
    n_h = 40 * 24
    acc = np.zeros(x.size)
    wet = np.zeros(x.size)
    for h in range(n_h):
        p = w.fields(h, t0 + np.timedelta64(h, "h"), x, y, lat, lon)["precip"] * 3600.0
        acc += p
        wet += p > 0.1
    mean_mm_day = acc.mean() / 40.0
    # sampling error of a 40-day mean with regimes of 300 km / 36 h: about 15 %
    assert mean_mm_day == pytest.approx(st.mean_precip_mm_day, rel=0.3)
    # a growing season (150 days) at this rate: 300-500 mm
    assert 300 <= st.mean_precip_mm_day * 150 <= 500
    assert 0.02 < (wet / n_h).mean() < 0.2  # intermittent: most hours dry


def test_storm_structure_is_kilometre_scale(cells):
    x, y, lat, lon = cells  # 72 x 72 km
    w = SyntheticWeather(seed=9)
    t0 = np.datetime64("2019-06-01T00:00")
    for h in range(600):
        p = w.fields(h, t0 + np.timedelta64(h, "h"), x, y, lat, lon)["precip"]
        if (p > 1e-4).mean() > 0.05 and (p < 1e-5).mean() > 0.2:
            break
    else:
        pytest.fail("no partially wet hour found")
    # heterogeneous inside the domain (a 36 km pixel would not see a uniform field)
    field = p.reshape(72, 72)
    assert field.max() > 5 * field.mean()
    # neighbouring 1 km cells are strongly correlated (smooth at 1 km), distant ones much less
    a = field[:, :-1].ravel()
    b = field[:, 1:].ravel()
    assert np.corrcoef(a, b)[0, 1] > 0.9
    # variogram grows with lag: structure at tens of km
    g1 = np.mean((field[:, 1:] - field[:, :-1]) ** 2)
    g20 = np.mean((field[:, 20:] - field[:, :-20]) ** 2)
    assert g20 > 10 * g1


def test_degraded_is_smoothed_and_biased(cells):
    x, y, lat, lon = cells
    w = SyntheticWeather(seed=3)
    d = w.degraded(coarsen_km=36.0, precip_bias=0.7, t_bias_k=1.0)
    t0 = np.datetime64("2019-06-01T00:00")
    tot_t = tot_d = 0.0
    for h in range(0, 240, 3):
        t = t0 + np.timedelta64(h, "h")
        ft = w.fields(h, t, x, y, lat, lon)
        fd = d.fields(h, t, x, y, lat, lon)
        tot_t += ft["precip"].sum()
        tot_d += fd["precip"].sum()
        # uniform within each 36 km block (whole 36 km pixels of this domain)
        blk = fd["t_air"].reshape(2, 36, 2, 36)
        assert np.allclose(blk, blk[:, :1, :, :1], rtol=0, atol=1e-9)
    assert tot_d / tot_t == pytest.approx(0.7, rel=0.25)


def test_bad_settings():
    with pytest.raises(ValueError, match="mean_precip_mm_day"):
        SyntheticSettings(mean_precip_mm_day=-1.0)
    with pytest.raises(ValueError, match="storm_radius_max_km"):
        SyntheticSettings(storm_radius_min_km=30.0)
    with pytest.raises(ValueError, match="same length"):
        SyntheticWeather(seed=1).fields(0, np.datetime64("2019-06-01"), [0.0], [0.0, 1.0], [40.0], [0.0])
