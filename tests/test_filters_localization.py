"""Gaspari-Cohn taper, cut-off, periodic distance and inflation helpers."""

import numpy as np
import pytest

from smda.assimilation.filters.inflation import adaptive_inflation, check_inflation
from smda.assimilation.filters.localization import gaspari_cohn_taper, local_obs, pairwise_taper
from smda.model.streams import normal_field


def test_gaspari_cohn_reference_values():
    # SCIENCE.md section 4: GC(r = d/c) at r = 0, 0.5, 1, 1.5, 2
    got = gaspari_cohn_taper(np.array([0.0, 5.0, 10.0, 15.0, 20.0, 25.0]), 10.0)
    np.testing.assert_allclose(got, [1.0, 0.684896, 0.208333, 0.016493, 0.0, 0.0], atol=5e-7)


def test_gaspari_cohn_continuous_and_monotone():
    r = np.linspace(0.0, 2.5, 2501)
    g = gaspari_cohn_taper(r, 1.0)
    assert np.all(np.diff(g) <= 1e-15)
    assert np.max(np.abs(np.diff(g))) < 2e-3  # no jump at r = 1 or r = 2
    assert np.all(gaspari_cohn_taper(r, np.inf) == 1.0)


def test_gaspari_cohn_bad_radius():
    with pytest.raises(ValueError, match="radius"):
        gaspari_cohn_taper(1.0, 0.0)


def test_local_obs_cutoff_is_twice_radius():
    ox = np.array([0.0, 1.9, 2.1, -1.0, 5.0])
    oy = np.zeros(5)
    idx = np.empty(5, np.int64)
    rho = np.empty(5)
    k = local_obs(0.0, 0.0, ox, oy, 1.0, 0.0, 0.0, idx, rho)
    assert list(idx[:k]) == [0, 1, 3]
    np.testing.assert_allclose(rho[:k], gaspari_cohn_taper(np.abs(ox[[0, 1, 3]]), 1.0))


def test_periodic_distance():
    # ring of 40 km: points at 1 km and 39 km are 2 km apart
    t = pairwise_taper(np.array([[1000.0, 0.0]]), np.array([[39000.0, 0.0], [3000.0, 0.0]]), 2.0, period_km=40.0)
    np.testing.assert_allclose(t[0, 0], t[0, 1])
    np.testing.assert_allclose(t[0, 0], 0.208333, atol=1e-6)
    t_plane = pairwise_taper(np.array([[1000.0, 0.0]]), np.array([[39000.0, 0.0]]), 2.0)
    assert t_plane[0, 0] == 0.0


def test_adaptive_inflation_recovers_underdispersion():
    # background error variance 2, ensemble variance 1, R = 0.5: expect lambda = 2
    z = normal_field(3, "test.adaptive", np.arange(200000), 1, 0)[:, 0]
    d = z * np.sqrt(2.0 + 0.5)
    lam = adaptive_inflation(d, np.ones_like(d), np.full_like(d, 0.5), lambda_max=5.0)
    assert abs(lam - 2.0) < 0.03
    assert adaptive_inflation(d * 0.1, np.ones_like(d), np.full_like(d, 0.5)) == 1.0
    assert adaptive_inflation(d, np.ones_like(d), np.full_like(d, 0.5), lambda_max=1.5) == 1.5


@pytest.mark.parametrize("kw", [dict(inflation=0.9, rtps=0, rtpp=0), dict(inflation=1.0, rtps=1.5, rtpp=0),
                                dict(inflation=np.nan, rtps=0, rtpp=0), dict(inflation=1.0, rtps=0, rtpp=-0.1)])
def test_check_inflation_rejects(kw):
    with pytest.raises(ValueError):
        check_inflation(**kw)
