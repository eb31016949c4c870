"""Empirical downscaling: linear regression (BEC L4 style) and random forest."""

import numpy as np
import pytest

from smda.assimilation import downscaling
from smda.assimilation.downscaling import regression

NR = NC = 108  # 3 x 3 pixels of 36 km
B_TRUE = np.array([1.2, -0.003, 0.25, -0.0011, 0.0009])  # b0, LST, NDVI, TBH, TBV


def _pixels(nr=NR, nc=NC, size=36):
    return ((np.arange(nr)[:, None] // size) * (nc // size) + np.arange(nc)[None, :] // size).astype(np.int64)


def _time(rng, pix, coef=B_TRUE, tb=True):
    """1 km LST/NDVI, coarse TB, and coarse SM generated exactly from the linear model."""
    n_pix = pix.max() + 1
    # coarse predictors must vary between pixels and times: per-pixel offsets plus 1 km texture
    lst = (295.0 + rng.uniform(0, 25, n_pix)[pix] + rng.uniform(-4, 4, pix.shape))[None]
    ndvi = rng.uniform(0.2, 0.7, n_pix)[pix] + rng.uniform(-0.1, 0.1, pix.shape)
    tbh = rng.uniform(200, 260, n_pix) if tb else None
    tbv = rng.uniform(230, 280, n_pix) if tb else None
    lst_c = np.array([lst[0][pix == p].mean() for p in range(n_pix)])
    ndvi_c = np.array([ndvi[pix == p].mean() for p in range(n_pix)])
    sm = coef[0] + coef[1] * lst_c + coef[2] * ndvi_c
    if tb:
        sm = sm + coef[3] * tbh + coef[4] * tbv
    return dict(sm_coarse=sm, pixel_of_cell=pix, lst=lst, ndvi=ndvi, tb_h=tbh, tb_v=tbv)


def _truth_1km(d, coef=B_TRUE, tb=True):
    out = coef[0] + coef[1] * d["lst"][0] + coef[2] * d["ndvi"]
    if tb:
        out = out + coef[3] * d["tb_h"][d["pixel_of_cell"]] + coef[4] * d["tb_v"][d["pixel_of_cell"]]
    return out


def test_fit_recovers_known_coefficients():
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.uniform(290, 320, 200), rng.uniform(0.1, 0.8, 200),
                         rng.uniform(200, 260, 200), rng.uniform(230, 280, 200)])
    y = B_TRUE[0] + x @ B_TRUE[1:]
    pix = rng.integers(0, 6, 200)
    coef = regression.fit_linear_window(x, y, pix, np.ones((6, 6)), min_samples=10)
    np.testing.assert_allclose(coef, np.broadcast_to(B_TRUE, (6, 5)), rtol=1e-7, atol=1e-9)
    # too few rows in a window: NaN, not an exception
    coef = regression.fit_linear_window(x[:4], y[:4], pix[:4], np.eye(6), min_samples=10)
    assert np.isnan(coef).all()


def test_spatial_window_recovers_local_coefficients():
    rng = np.random.default_rng(1)
    pix = _pixels()
    hist = regression.CoarseHistory(window_days=100)
    coef_b = np.array([1.4, -0.0035, 0.1, -0.0011, 0.0009])
    local = np.where(np.arange(9) < 4, 0, 1)  # pixels 0-3 follow B_TRUE, 4-8 coef_b
    for t in range(12):
        d = _time(rng, pix)
        sm_b = _time_values(d, coef_b)
        d["sm_coarse"] = np.where(local == 0, d["sm_coarse"], sm_b)
        hist.add(float(t), **d)
    samples = hist.samples
    window = regression.window_matrix(regression.pixel_centroids_km(pix.ravel(), pix.shape, 9), 10.0)
    assert np.array_equal(window, np.eye(9))  # 10 km: each pixel alone
    x, y, rp = regression._training_rows(samples, 0, True)
    coef = regression.fit_linear_window(x, y, rp, window, 10)
    np.testing.assert_allclose(coef[local == 0], np.broadcast_to(B_TRUE, (4, 5)), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(coef[local == 1], np.broadcast_to(coef_b, (5, 5)), rtol=1e-6, atol=1e-8)
    # a window of 40 km (neighbours at 36 km) mixes the two regimes
    window = regression.window_matrix(regression.pixel_centroids_km(pix.ravel(), pix.shape, 9), 40.0)
    assert window.sum(axis=1).tolist() == [3, 4, 3, 4, 5, 4, 3, 4, 3]


def _time_values(d, coef):
    pix = d["pixel_of_cell"]
    n_pix = pix.max() + 1
    lst_c = np.array([np.nanmean(d["lst"][0][pix == p]) for p in range(n_pix)])
    ndvi_c = np.array([d["ndvi"][pix == p].mean() for p in range(n_pix)])
    return coef[0] + coef[1] * lst_c + coef[2] * ndvi_c + coef[3] * d["tb_h"] + coef[4] * d["tb_v"]


def test_linear_operator_reproduces_the_1km_relation():
    rng = np.random.default_rng(2)
    pix = _pixels()
    hist = regression.CoarseHistory(window_days=10)
    for t in range(5):
        hist.add(float(t), **_time(rng, pix))
    d = _time(rng, pix)
    d["lst"][0, :8, :8] = np.nan  # cloud: the coarse LST is the mean of the clear cells
    d["sm_coarse"] = _time_values(d, B_TRUE)
    out = downscaling.downscale("empirical", **d, history=hist, elevation_m=None)
    truth = _truth_1km(d)
    ok = np.isfinite(out)
    assert ok.mean() > 0.99 and np.isnan(out[:8, :8]).all()
    np.testing.assert_allclose(out[ok], truth[ok], atol=1e-8)


def test_linear_operator_without_tb():
    rng = np.random.default_rng(3)
    pix = _pixels()
    coef = np.array([0.9, -0.0025, 0.3, 0.0, 0.0])
    hist = regression.CoarseHistory()
    for t in range(3):
        hist.add(float(t), **_time(rng, pix, coef, tb=False))
    d = _time(rng, pix, coef, tb=False)
    out = regression.downscale_linear(**d, history=hist)
    np.testing.assert_allclose(out, _truth_1km(d, coef, tb=False), atol=1e-8)
    # with a single time and 9 pixels the 5-coefficient model has too few samples -> NaN everywhere
    d = _time(rng, pix)
    assert np.isnan(regression.downscale_linear(**d)).all()


def test_preserve_mean_and_history_window():
    rng = np.random.default_rng(4)
    pix = _pixels()
    hist = regression.CoarseHistory(window_days=2.5)
    for t in range(6):
        d = _time(rng, pix)
        d["sm_coarse"] = d["sm_coarse"] + rng.normal(0, 0.01, 9)  # model error
        hist.add(float(t), **d)
    assert hist.times == [3.0, 4.0, 5.0]
    out = regression.downscale_linear(**d, history=hist, preserve_mean=True, min_samples=5)
    for p in range(9):
        assert np.nanmean(out[pix == p]) == pytest.approx(d["sm_coarse"][p], abs=1e-12)
    with pytest.raises(ValueError, match="history"):
        regression.downscale_linear(**d, history=[1, 2])
    bad = regression.CoarseHistory()
    bad.add(0.0, **_time(rng, _pixels(72, 72)))
    with pytest.raises(ValueError, match="n_pix"):
        regression.downscale_linear(**d, history=bad)


def test_random_forest_is_deterministic_and_skilful():
    rng = np.random.default_rng(5)
    pix = _pixels()
    hist = regression.CoarseHistory(window_days=30)
    for t in range(20):
        hist.add(float(t), **_time(rng, pix))
    d = _time(rng, pix)
    d["lst"][0, 50:60, 50:60] = np.nan
    a = downscaling.downscale("random_forest", **d, history=hist)
    b = downscaling.downscale("random_forest", **d, history=hist)
    np.testing.assert_array_equal(a, b)
    assert np.isnan(a[50:60, 50:60]).all() and np.isfinite(a).mean() > 0.95
    truth = _truth_1km(d)
    ok = np.isfinite(a)
    assert np.corrcoef(a[ok], truth[ok])[0, 1] > 0.8
    c = downscaling.downscale("random_forest", **d, history=hist, random_state=7)
    assert not np.array_equal(a, c, equal_nan=True)
    with pytest.raises(ValueError, match="n_estimators"):
        downscaling.downscale("random_forest", **d, n_estimators=0)


def test_bad_settings():
    rng = np.random.default_rng(6)
    d = _time(rng, _pixels())
    with pytest.raises(ValueError, match="window_km"):
        regression.downscale_linear(**d, window_km=-1.0)
    with pytest.raises(ValueError, match="valid: .*window_km"):
        regression.downscale_linear(**d, window=3)
    with pytest.raises(ValueError, match="window_days"):
        regression.CoarseHistory(window_days=0)
    assert downscaling.METHODS["empirical"].settings is regression.RegressionSettings
