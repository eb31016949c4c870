"""Per-observation localization half-widths: the PSD cross taper, bitwise equality with a scalar radius,
each observation acting only within its own cut-off, split independence and bad input."""

import numpy as np
import pytest

from smda.assimilation.filters import make_filter
from smda.assimilation.filters.localization import cross_taper, gaspari_cohn, gaspari_cohn_taper, pairwise_taper
from smda.model.streams import normal_field


# -- the observation-observation taper ---------------------------------------------------------------
def test_cross_taper_is_gaspari_cohn_for_equal_radii_and_continuous():
    d = np.linspace(0.0, 2.2, 23)
    for di in d:
        assert cross_taper(di, 1.0, 1.0) == gaspari_cohn(di)
        # quadrature of the cone convolution: tends to the closed form GC as the radii merge
        assert cross_taper(di, 1.0, 1.0 + 1e-7) == pytest.approx(gaspari_cohn(di), abs=1e-6)
        assert cross_taper(di, 3.0, 12.0) == cross_taper(di, 12.0, 3.0)
    # coincident points: 4 pi int_0^3 r^2 (1 - r/3)(1 - r/12) dr / sqrt(N_3 N_12), N_c = 2 pi c^3 / 15
    exact = 4 * np.pi * (9.0 - 81.0 / 4 * (1 / 3 + 1 / 12) + 243.0 / 5 / 36) / (2 * np.pi / 15 * np.sqrt(27.0 * 1728.0))
    assert cross_taper(0.0, 3.0, 12.0) == pytest.approx(exact, rel=1e-12)
    assert cross_taper(1e-6, 3.0, 12.0) == pytest.approx(exact, rel=1e-9)
    assert cross_taper(15.0, 3.0, 12.0) == 0.0 and cross_taper(14.9, 3.0, 12.0) > 0.0  # support c_i + c_j
    x = np.linspace(0.0, 15.0, 301)
    assert np.all(np.diff([cross_taper(v, 3.0, 12.0) for v in x]) <= 1e-15)  # decreasing with distance


def test_pairwise_taper_stays_psd_with_mixed_radii_where_simple_choices_do_not():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0.0, 40e3, (30, 2))
    c = np.where(np.arange(30) % 2 == 0, 3.0, 20.0)
    rho = pairwise_taper(xy, xy, c)
    np.testing.assert_array_equal(rho, rho.T)
    np.testing.assert_array_equal(np.diag(rho), 1.0)
    assert np.linalg.eigvalsh(rho).min() > -1e-12
    d = np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(-1)) / 1000.0
    ci, cj = c[:, None], c[None]
    geometric = gaspari_cohn_taper(d / np.sqrt(ci * cj), 1.0)
    product = gaspari_cohn_taper(d / ci, 1.0) * gaspari_cohn_taper(d / cj, 1.0)
    assert np.linalg.eigvalsh(geometric).min() < -0.1 and np.linalg.eigvalsh(product).min() < -0.1
    same = pairwise_taper(xy, xy, 7.0)  # one radius: the Gaspari-Cohn matrix of before
    np.testing.assert_array_equal(same, pairwise_taper(xy, xy, np.full(30, 7.0)))
    np.testing.assert_allclose(same, gaspari_cohn_taper(d, 7.0), rtol=0, atol=1e-14)
    with pytest.raises(ValueError, match="infinite and finite"):
        pairwise_taper(xy, xy, np.where(c > 5, np.inf, c))


# -- filters -----------------------------------------------------------------------------------------
def _problem(n=12, n_obs=20):
    gx, gy = np.meshgrid(np.arange(16), np.arange(14), indexing="ij")
    cell_xy = np.stack([gx.ravel(), gy.ravel()], 1) * 1000.0 + np.array([4.0e5, 2.0e5])
    gid = np.arange(cell_xy.shape[0])
    X = np.empty((gid.size, 2, n))
    for v in range(2):
        X[:, v, :] = 0.2 + 0.04 * normal_field(3, "test.radius", gid, n, 0) + 0.01 * normal_field(3, "test.radius", gid, n,
                                                                                                   0, draw=v + 1)
    oid = np.arange(n_obs)
    obs_xy = cell_xy.mean(0) + 5000.0 * normal_field(6, "test.radius.pos", oid, 2, 0)
    near = np.argmin(((cell_xy[None] - obs_xy[:, None]) ** 2).sum(-1), axis=1)
    HX = X[near, 0, :].copy()
    y = HX.mean(1) + 0.03 * normal_field(6, "test.radius.val", oid, 1, 0)[:, 0]
    return X, cell_xy, HX, y, np.full(n_obs, 0.02 ** 2), obs_xy, oid + 50


def _analyse(name, p, radii=None, **kw):
    X, cell_xy, HX, y, r, oxy, ids = p
    Xa = X.copy()
    make_filter(name, **kw).analyse(Xa, cell_xy, HX, y, r, oxy, obs_ids=ids, cycle=1, obs_loc_radius_km=radii)
    return Xa


FILTER_SETTINGS = [("letkf", {"loc_radius_km": 3.0, "analysis_spacing_km": 2.0, "taper_cutoff": 0.01}),
                   ("letkf", {"loc_radius_km": 3.0, "weight_interpolation": False, "inflation": 1.1}),
                   ("enkf", {"loc_radius_km": 3.0, "seed": 4}),
                   ("enkf", {"seed": 4}),
                   ("eakf", {"loc_radius_km": 3.0, "taper_cutoff": 0.01, "inflation": 1.05})]


@pytest.mark.parametrize("name,kw", FILTER_SETTINGS + [("etkf", {})])
def test_per_observation_radii_equal_to_the_scalar_are_bitwise_identical(name, kw):
    p = _problem()
    ref = _analyse(name, p, **kw)
    assert np.abs(ref - p[0]).max() > 1e-4
    c = kw.get("loc_radius_km", np.inf) if name != "etkf" else 5.0  # the global ETKF ignores radii
    np.testing.assert_array_equal(_analyse(name, p, np.full(p[3].size, c), **kw), ref)


@pytest.mark.parametrize("name,kw", [("letkf", {"weight_interpolation": False}), ("letkf", {"analysis_spacing_km": 2.0}),
                                     ("enkf", {}), ("eakf", {})])
def test_each_observation_acts_within_its_own_cutoff(name, kw):
    # cells on a line every 1 km over 0..60 km, a fully correlated ensemble, observations at 0 and 50 km
    n = 10
    cell_xy = np.stack([np.arange(61.0) * 1000.0, np.zeros(61)], 1)
    X = np.ascontiguousarray(np.broadcast_to(0.25 + 0.03 * normal_field(1, "test.line", np.array([0]), n, 0),
                                             (61, 1, n)))
    HX = X[[0, 50], 0, :].copy()
    p = (X, cell_xy, HX, HX.mean(1) + np.array([0.05, -0.05]), np.full(2, 1e-4), cell_xy[[0, 50]], np.array([3, 8]))
    margin = 2 if kw.get("analysis_spacing_km") else 0  # interpolated weights reach one lattice square further
    x = np.arange(61)
    for c0, c1 in ((2.0, 10.0), (10.0, 2.0)):  # cut-offs 4 / 20 km, then 20 / 4 km
        Xa = _analyse(name, p, np.array([c0, c1]), loc_radius_km=30.0, **kw)
        changed = np.abs(Xa - X).max(axis=(1, 2)) > 0
        reach = (x < 2 * c0 + margin) | (np.abs(x - 50) < 2 * c1 + margin)
        np.testing.assert_array_equal(Xa[~reach], X[~reach])  # beyond both cut-offs: bitwise unchanged
        assert changed[x < 2 * c0 - margin].all() and changed[np.abs(x - 50) < 2 * c1 - margin].all()
        to_large = x if c0 > c1 else np.abs(x - 50)  # only the large radius reaches beyond 2 min(c0, c1)
        far = (to_large >= 2 * min(c0, c1) + margin) & (to_large < 2 * max(c0, c1) - margin)
        assert far.sum() >= 10 and changed[far].all()


@pytest.mark.parametrize("name,kw", FILTER_SETTINGS[:1] + FILTER_SETTINGS[2:3] + FILTER_SETTINGS[4:])
def test_mixed_radii_independent_of_domain_split(name, kw):
    p = _problem()
    radii = np.where(np.arange(p[3].size) % 3 == 0, 6.0, 2.0)
    full = _analyse(name, p, radii, **kw)
    assert np.abs(full - _analyse(name, p, **kw)).max() > 1e-4  # the radii matter
    for sel in (np.arange(0, 90), np.arange(90, p[0].shape[0])):
        part = (np.ascontiguousarray(p[0][sel]), p[1][sel]) + p[2:]
        np.testing.assert_array_equal(_analyse(name, part, radii, **kw), full[sel])


def test_bad_per_observation_radii():
    p = _problem()
    with pytest.raises(ValueError, match="obs_loc_radius_km must have shape"):
        _analyse("letkf", p, np.full(3, 5.0))
    with pytest.raises(ValueError, match="obs_loc_radius_km must be > 0"):
        _analyse("eakf", p, np.r_[0.0, np.full(p[3].size - 1, 5.0)])
    with pytest.raises(ValueError, match="infinite and finite"):
        _analyse("enkf", p, np.r_[np.inf, np.full(p[3].size - 1, 5.0)])
