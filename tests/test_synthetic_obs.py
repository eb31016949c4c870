"""Synthetic observations: error statistics, revisit, gaps, split invariance, LST clouds, NDVI."""

import numpy as np
import pytest

from smda.assimilation.observations.synthetic import (
    LSTConfig,
    NDVIConfig,
    RevisitPattern,
    SyntheticObsConfig,
    cloud_mask,
    modis_overpass_utc,
    overpasses,
    synthetic_coarse_obs,
    synthetic_lst,
    synthetic_ndvi,
)
from smda.assimilation.observations.table import ObsTable
from smda.model.grid import GRIDS, Domain

M36 = GRIDS["M36"]


def _pixels(n_rows=60, n_cols=80, r0=100, c0=200):
    rr, cc = np.meshgrid(np.arange(r0, r0 + n_rows), np.arange(c0, c0 + n_cols), indexing="ij")
    return rr.ravel(), cc.ravel()


def test_error_statistics_match_configuration():
    rows, cols = _pixels()
    n = rows.size
    truth = {("tb", "H", 40.0): np.full(n, 250.0), ("tb", "V", 40.0): np.full(n, 270.0),
             ("sm", "", 0.0): np.full(n, 0.25)}
    cfg = SyntheticObsConfig(seed=11, gap_fraction=0.0)
    t = synthetic_coarse_obs(truth, rows, cols, np.datetime64("2020-06-01T12:00"), 5, cfg)
    assert isinstance(t, ObsTable) and len(t) == 3 * n
    for kind, pol, mean, std in (("tb", "H", 250.0, 4.0), ("tb", "V", 270.0, 4.0), ("sm", "", 0.25, 0.04)):
        sel = (t.kind == kind) & (t.pol == pol)
        err = t.value[sel] - mean
        assert err.std() == pytest.approx(std, rel=0.04)  # 4800 samples: 1 % std error
        assert abs(err.mean()) < 4 * std / np.sqrt(sel.sum())
        np.testing.assert_array_equal(t.error_std[sel], std)
    # H and V errors are independent; footprint, EASE row/col and coordinates are set
    h = t.value[t.pol == "H"] - 250.0
    v = t.value[t.pol == "V"] - 270.0
    assert abs(np.corrcoef(h, v)[0, 1]) < 0.06
    assert set(t.footprint) == {"M36"} and np.all(t.qc == 0) and np.all(t.angle_deg[t.kind == "tb"] == 40.0)
    np.testing.assert_allclose(M36.xy(t.row, t.col)[0], t.x)
    # different steps give different errors, the same step the same errors
    t2 = synthetic_coarse_obs(truth, rows, cols, np.datetime64("2020-06-01T12:00"), 6, cfg)
    assert not np.allclose(t2.value, t.value)
    t3 = synthetic_coarse_obs(truth, rows, cols, np.datetime64("2020-06-01T12:00"), 5, cfg)
    np.testing.assert_array_equal(t3.value, t.value)


def test_spatially_correlated_errors_and_independent_sources():
    """error_corr_km: unit-variance errors correlated over about that length (3 km pixels, 10 km); each source
    (stream) has its own errors and gaps; the same pixel gets the same error whatever else is observed."""
    m03 = GRIDS["M03"]
    rows, cols = _pixels(n_rows=120, n_cols=120, r0=1500, c0=2400)
    n = rows.size
    truth = {("sm", "", 0.0): np.full(n, 0.25)}
    t0 = np.datetime64("2020-06-01T06:00")
    cfg = SyntheticObsConfig(seed=5, footprint="M03", sm_error_std=0.05, gap_fraction=0.0, error_corr_km=10.0)
    e = np.stack([synthetic_coarse_obs(truth, rows, cols, t0, k, cfg, grid_name="M03").value - 0.25 for k in range(40)])
    assert e.std() == pytest.approx(0.05, rel=0.05)
    grid = e.reshape(40, 120, 120)
    near = np.corrcoef(grid[:, :, :-1].ravel(), grid[:, :, 1:].ravel())[0, 1]      # 3 km apart
    far = np.corrcoef(grid[:, :, :-4].ravel(), grid[:, :, 4:].ravel())[0, 1]       # 12 km apart
    assert near > 0.8 and abs(far) < 0.15, (near, far)
    white = dict(vars(cfg), error_corr_km=0.0)
    w = synthetic_coarse_obs(truth, rows, cols, t0, 0, SyntheticObsConfig(**white), grid_name="M03").value.reshape(120, 120)
    assert abs(np.corrcoef(w[:, :-1].ravel(), w[:, 1:].ravel())[0, 1]) < 0.05
    sub = synthetic_coarse_obs({("sm", "", 0.0): np.full(rows[::7].size, 0.25)}, rows[::7], cols[::7], t0, 0, cfg,
                               grid_name="M03")
    np.testing.assert_array_equal(sub.value - 0.25, e[0][::7])
    other = synthetic_coarse_obs(truth, rows, cols, t0, 0, SyntheticObsConfig(**dict(vars(cfg), stream=1)), grid_name="M03")
    assert abs(np.corrcoef(other.value - 0.25, e[0])[0, 1]) < 0.2
    np.testing.assert_allclose(m03.xy(sub.row, sub.col)[0], sub.x)


def test_gaps_and_split_invariance():
    rows, cols = _pixels()
    n = rows.size
    truth = {("tb", "H", 40.0): np.linspace(240, 280, n), ("tb", "V", 40.0): np.linspace(250, 290, n)}
    truth[("tb", "H", 40.0)][:10] = np.nan  # no truth (e.g. water): no observation
    cfg = SyntheticObsConfig(seed=3, gap_fraction=0.2)
    times = np.datetime64("2020-07-01T12:00")
    full = synthetic_coarse_obs(truth, rows, cols, times, 9, cfg)
    n_v = np.sum(full.pol == "V")
    assert n_v / n == pytest.approx(0.8, abs=0.025)
    # any split of the pixels gives the same observations
    rng = np.random.default_rng(0)
    part = rng.permutation(n)
    a, b = np.sort(part[: n // 3]), np.sort(part[n // 3:])
    ta = synthetic_coarse_obs({k: v[a] for k, v in truth.items()}, rows[a], cols[a], times, 9, cfg)
    tb = synthetic_coarse_obs({k: v[b] for k, v in truth.items()}, rows[b], cols[b], times, 9, cfg)
    both = ObsTable.concat([ta, tb])
    key = lambda t: np.lexsort((t.pol, t.col, t.row))  # noqa: E731
    for f in ("value", "row", "col", "pol"):
        np.testing.assert_array_equal(getattr(both, f)[key(both)], getattr(full, f)[key(full)])
    # gaps remove all variables of a pixel together
    h = set(zip(full.row[full.pol == "H"], full.col[full.pol == "H"], strict=True))
    v = set(zip(full.row[full.pol == "V"], full.col[full.pol == "V"], strict=True))
    assert h <= v and len(v - h) <= 10


def test_m25_and_gauss_footprints():
    cfg = SyntheticObsConfig(seed=1, gap_fraction=0.0, footprint="gauss", fov_km=20.0)
    t = synthetic_coarse_obs({("tb", "H", 42.5): np.array([260.0])}, [200], [500],
                             np.datetime64("2020-01-01T06:00"), 0, cfg)
    assert t.footprint[0] == "gauss" and t.fov_km[0] == 20.0
    cfg25 = SyntheticObsConfig(seed=1, gap_fraction=0.0, footprint="M25")
    t25 = synthetic_coarse_obs({("tb", "V", 42.5): np.array([260.0])}, [200], [500],
                               np.datetime64("2020-01-01T06:00"), 0, cfg25, grid_name="M25")
    np.testing.assert_allclose(t25.x, GRIDS["M25"].xy(200, 500)[0])


def test_revisit_frequency_and_times():
    pattern = RevisitPattern()
    lon = np.linspace(-179.5, 179.5, 72)
    days = np.arange(np.datetime64("2019-01-01"), np.datetime64("2020-01-01"))
    for orbit, hour in (("am", 6.0), ("pm", 18.0)):
        cov = np.array([overpasses(lon, d, orbit, pattern)[0] for d in days])
        assert cov.mean() == pytest.approx(3 / 8, abs=0.01)
        for j in range(lon.size):
            gaps = np.diff(np.flatnonzero(cov[:, j]))
            assert gaps.min() >= 2 and gaps.max() <= 3  # every 2-3 days
        covered, t = overpasses(lon, days[0], orbit, pattern)
        local = (t[covered] - days[0].astype("datetime64[s]")).astype(float) / 3600 + lon[covered] / 15
        np.testing.assert_allclose(local, hour, atol=1 / 3600)
        assert np.all(np.isnat(t[~covered]))
    # a daily pattern covers every day
    daily = RevisitPattern(cycle_days=1, am_days=(0,), pm_days=(0,))
    assert overpasses(lon, days[3], "pm", daily)[0].all()
    with pytest.raises(ValueError, match="am_days"):
        RevisitPattern(cycle_days=3, am_days=(0, 3))
    with pytest.raises(ValueError, match="orbit"):
        overpasses(lon, days[0], "noon")


@pytest.fixture(scope="module")
def domain():
    return Domain.from_centre(40.0, -98.0, 280, 280)  # 288 x 288 km


def test_lst_noise_clouds_and_nan(domain):
    cfg = LSTConfig(seed=4, noise_std_k=1.0, cloud_fraction=0.3, cloud_scale_km=30.0)
    ts = np.full(domain.shape, 300.0)
    gidx = domain.global_index().reshape(domain.shape)
    fracs = []
    for step in range(12):
        lst = synthetic_lst(ts, domain.x[None, :], domain.y[:, None], gidx, step, cfg, "terra")
        clear = np.isfinite(lst)
        assert np.all(np.isnan(lst[~clear])) and not np.any(lst == 0)
        fracs.append(1 - clear.mean())
        if step == 0:
            err = lst[clear] - 300.0
            assert err.std() == pytest.approx(1.0, rel=0.03)
            assert abs(err.mean()) < 0.02
            # spatially coherent: neighbouring cells share their state, distant ones do not
            same1 = np.mean(clear[:, 1:] == clear[:, :-1])
            assert same1 > 0.97
            c = clear.astype(float) - clear.mean()
            r5 = np.mean(c[:, 5:] * c[:, :-5]) / c.var()
            r150 = np.mean(c[:, 150:] * c[:, :-150]) / c.var()
            assert r5 > 0.6 and abs(r150) < 0.25
    assert np.mean(fracs) == pytest.approx(0.3, abs=0.05)


def test_lst_split_invariance_and_sensors(domain):
    cfg = LSTConfig(seed=4, cloud_fraction=0.5)
    ts = 290.0 + np.arange(domain.n_cells) * 1e-4
    gidx = domain.global_index()
    xx, yy = np.meshgrid(domain.x, domain.y)
    full = synthetic_lst(ts, xx.ravel(), yy.ravel(), gidx, 7, cfg)
    idx = np.arange(domain.n_cells)[::-7]
    part = synthetic_lst(ts[idx], xx.ravel()[idx], yy.ravel()[idx], gidx[idx], 7, cfg)
    np.testing.assert_array_equal(part, full[idx])
    aqua = synthetic_lst(ts, xx.ravel(), yy.ravel(), gidx, 7, cfg, "aqua")
    assert np.mean(np.isnan(aqua) != np.isnan(full)) > 0.2
    assert cloud_mask(xx, yy, 7, LSTConfig(seed=4, cloud_fraction=0.0)).sum() == 0
    assert cloud_mask(xx, yy, 7, LSTConfig(seed=4, cloud_fraction=1.0)).all()
    t = modis_overpass_utc(np.array([0.0, 15.0, -90.0]), np.datetime64("2020-06-01"), "aqua")
    np.testing.assert_array_equal(t, np.array(["2020-06-01T13:30", "2020-06-01T12:30", "2020-06-01T19:30"],
                                              "datetime64[s]"))
    with pytest.raises(ValueError, match="sensor"):
        synthetic_lst(ts, xx.ravel(), yy.ravel(), gidx, 7, cfg, "landsat")
    # where the truth rains at the overpass the cell is under cloud (MODIS LST is clear-sky only); elsewhere unchanged
    rain = np.where(np.arange(domain.n_cells) % 3 == 0, 1e-4, 0.0)
    wet = synthetic_lst(ts, xx.ravel(), yy.ravel(), gidx, 7, cfg, precip=rain)
    assert np.all(np.isnan(wet[rain > 0]))
    np.testing.assert_array_equal(wet[rain == 0], full[rain == 0])
    with pytest.raises(ValueError, match="broadcast"):
        synthetic_lst(ts, xx.ravel()[:5], yy.ravel(), gidx, 7, cfg)


def test_ndvi_noise_and_composites(domain):
    gidx = domain.global_index()
    truth = np.full(gidx.size, 0.5)
    cfg = NDVIConfig(seed=2, noise_std=0.02, composite_days=16)
    a = synthetic_ndvi(truth, gidx, np.datetime64("2020-06-01"), cfg)  # doy 153: period 9
    b = synthetic_ndvi(truth, gidx, np.datetime64("2020-06-09"), cfg)  # doy 161: period 10
    c = synthetic_ndvi(truth, gidx, np.datetime64("2020-06-08"), cfg)  # doy 160: period 9
    assert (a - 0.5).std() == pytest.approx(0.02, rel=0.03)
    np.testing.assert_array_equal(a, c)
    assert not np.allclose(a, b)
    daily = NDVIConfig(seed=2, composite_days=0)
    assert not np.allclose(synthetic_ndvi(truth, gidx, np.datetime64("2020-06-01"), daily),
                           synthetic_ndvi(truth, gidx, np.datetime64("2020-06-02"), daily))
    high = synthetic_ndvi(np.full(gidx.size, 0.999), gidx, np.datetime64("2020-06-01"), cfg)
    assert high.max() <= 1.0


def test_bad_config():
    with pytest.raises(ValueError, match="gap_fraction"):
        SyntheticObsConfig(seed=1, gap_fraction=1.0)
    with pytest.raises(ValueError, match="footprint"):
        SyntheticObsConfig(seed=1, footprint="M07")
    with pytest.raises(ValueError, match="cloud_fraction"):
        LSTConfig(seed=1, cloud_fraction=1.5)
    with pytest.raises(ValueError, match="grid"):
        synthetic_coarse_obs({}, [0], [0], np.datetime64("2020-01-01"), 0, SyntheticObsConfig(seed=1), "M07")
    with pytest.raises(ValueError, match="kind"):
        synthetic_coarse_obs({("tbx", "H", 40.0): np.ones(1)}, [0], [0], np.datetime64("2020-01-01"), 0,
                             SyntheticObsConfig(seed=1))
    with pytest.raises(ValueError, match="outside"):
        synthetic_coarse_obs({("tb", "H", 40.0): np.ones(1)}, [5000], [0], np.datetime64("2020-01-01"), 0,
                             SyntheticObsConfig(seed=1))
