"""Observation rescaling: mean/std and CDF matching, ties, short records, tails, netCDF round trip."""

import numpy as np
import pytest
from scipy import stats

from smda.assimilation.observations import bias
from smda.assimilation.observations.bias import AnomalyMatcher, CDFMatcher, MeanStdMatcher


def _samples(n, seed=0):
    rng = np.random.default_rng(seed)
    ref = 0.05 + 0.35 * rng.beta(2.0, 5.0, n)  # model SM: skewed, narrow
    src = rng.gamma(4.0, 0.04, n)  # observations: wetter, wider, different shape
    return ref, src


def test_cdf_matching_maps_onto_reference_quantiles():
    ref, src = _samples(4000)
    g = np.zeros(ref.size, np.int64)
    doy = np.full(ref.size, 150)
    m = CDFMatcher(window="none").fit(ref, src, g, doy)
    out = m.apply(src, g, doy)
    prob = np.linspace(0.02, 0.98, 25)
    np.testing.assert_allclose(np.quantile(out, prob), np.quantile(ref, prob), atol=2e-3)
    # mapping is monotone and reproduces the reference distribution (KS test)
    o = np.argsort(src)
    assert np.all(np.diff(out[o]) >= 0)
    assert stats.ks_2samp(out, ref).pvalue > 0.2
    # independent new source sample also lands on the reference distribution
    ref2, src2 = _samples(4000, seed=5)
    out2 = m.apply(src2, g, doy)
    np.testing.assert_allclose(np.quantile(out2, prob), np.quantile(ref2, prob), atol=0.01)


def test_mean_std_matching_moments_and_equivalence_for_gaussians():
    rng = np.random.default_rng(2)
    ref = 280 + 8 * rng.standard_normal(3000)
    src = 265 + 12 * rng.standard_normal(3000)
    g = np.zeros(3000, np.int64)
    doy = np.full(3000, 10)
    ms = MeanStdMatcher(window="none").fit(ref, src, g, doy)
    out = ms.apply(src, g, doy)
    assert out.mean() == pytest.approx(ref.mean(), abs=1e-9)
    assert out.std(ddof=1) == pytest.approx(ref.std(ddof=1), rel=1e-9)
    # for Gaussians CDF matching agrees with mean/std matching in the bulk
    cdf = CDFMatcher(window="none").fit(ref, src, g, doy)
    y = np.linspace(245, 285, 9)
    np.testing.assert_allclose(cdf.apply(y, g[:9], doy[:9]), ms.apply(y, g[:9], doy[:9]), atol=1.0)


def test_ties_in_source():
    rng = np.random.default_rng(3)
    ref, src = _samples(2000)
    src[:700] = 0.0  # 35 % of observations at the retrieval floor
    src[700:800] = 0.6  # and a saturated value
    g = np.zeros(src.size, np.int64)
    m = CDFMatcher(window="none").fit(ref, src, g, np.ones(src.size, int))
    assert m.method[0, 0] == 2
    knots = m.src_q[0, 0, : m.n_knots[0, 0]]
    assert np.all(np.diff(knots) > 0)  # strictly increasing after collapsing ties
    out = m.apply(src, g, np.ones(src.size, int))
    assert np.all(np.isfinite(out))
    zero_val = out[:700]
    assert np.ptp(zero_val) == 0.0  # a tied value maps to one value ...
    # ... the centre of the reference's lowest 35 %: mean of its quantiles at the probabilities
    # where the source quantile is 0 (sorted position p (n - 1) <= 699)
    prob = np.linspace(0, 1, 101)
    expect = np.quantile(ref, prob[prob * (src.size - 1) <= 699]).mean()
    assert zero_val[0] == pytest.approx(expect, rel=1e-12)
    o = np.argsort(src, kind="stable")
    assert np.all(np.diff(out[o]) >= -1e-15)
    y = rng.uniform(-0.05, 0.7, 500)
    assert np.all(np.diff(m.apply(np.sort(y), g[:500], np.ones(500, int))) >= -1e-15)


def test_short_record_falls_back_to_mean_std():
    ref, src = _samples(40)
    g = np.zeros(40, np.int64)
    doy = np.full(40, 200)
    m = CDFMatcher(window="none", min_samples=60).fit(ref, src, g, doy)
    assert m.method[0, 0] == 1
    ms = MeanStdMatcher(window="none").fit(ref, src, g, doy)
    np.testing.assert_allclose(m.apply(src, g, doy), ms.apply(src, g, doy), rtol=1e-14)
    # below the mean/std minimum there are no statistics
    m5 = CDFMatcher(window="none").fit(ref[:5], src[:5], g[:5], doy[:5])
    assert m5.method[0, 0] == 0
    assert np.all(np.isnan(m5.apply(src[:5], g[:5], doy[:5])))
    np.testing.assert_array_equal(m5.apply(src[:5], g[:5], doy[:5], missing="keep"), src[:5])


def test_tails_linear_and_clamp():
    ref, src = _samples(3000, seed=4)
    src[0] = 2.0  # one wild outlier at the end of the record
    g = np.zeros(src.size, np.int64)
    doy = np.full(src.size, 1)
    lin = CDFMatcher(window="none", tails="linear").fit(ref, src, g, doy)
    clamp = CDFMatcher(window="none", tails="clamp").fit(ref, src, g, doy)
    smax = src.max()
    y = np.array([-0.2, -0.1, smax + 0.1, smax + 1.0])
    gy = np.zeros(4, np.int64)
    dy = np.ones(4, int)
    np.testing.assert_allclose(clamp.apply(y, gy, dy), [ref.min(), ref.min(), ref.max(), ref.max()])
    yl = lin.apply(y, gy, dy)
    assert np.all(np.isfinite(yl))
    assert yl[0] < yl[1] < ref.min() and ref.max() < yl[2] < yl[3]
    # the extrapolation slopes are those of the outer 5 % of probability, not of the last gap
    assert 0 < lin.slope_hi[0, 0] < 1.0 and 0 < lin.slope_lo[0, 0] < 5.0
    assert (yl[3] - yl[2]) == pytest.approx(0.9 * lin.slope_hi[0, 0], rel=1e-12)


def test_groups_and_pentad_windows():
    rng = np.random.default_rng(6)
    years, groups = 6, np.array([101, 7])
    doy = np.tile(np.arange(1, 366), years * 2)
    g = np.repeat(groups, 365 * years)
    season = np.sin(2 * np.pi * (doy - 100) / 365)
    ref = 0.25 + 0.08 * season + 0.02 * rng.standard_normal(doy.size)
    src = 0.30 + 0.15 * season + 0.05 * rng.standard_normal(doy.size) + 0.05 * (g == 7)
    m = CDFMatcher(window="pentad", half_window_days=15).fit(ref, src, g, doy)
    assert m.method.shape == (2, 73) and np.all(m.method == 2)
    assert np.all(m.n_ref == 31 * years)  # a 31-day window per pentad
    out = m.apply(src, g, doy)
    for key in groups:
        for p in (10, 40):
            sel = (g == key) & (bias.period_of_doy(doy, "pentad") == p)
            assert out[sel].mean() == pytest.approx(ref[sel].mean(), abs=0.01)
    # a group never fitted has no statistics
    assert np.isnan(m.apply(np.array([0.3]), np.array([5]), np.array([100]))[0])
    # calendar periods
    np.testing.assert_array_equal(bias.period_of_doy([1, 59, 60, 152, 244, 335, 365, 366], "season"),
                                  [0, 0, 1, 2, 3, 0, 0, 0])
    np.testing.assert_array_equal(bias.period_of_doy([1, 5, 6, 365, 366], "pentad"), [0, 0, 1, 72, 72])
    assert bias.day_of_year(np.array(["2020-12-31"], "datetime64[D]"))[0] == 366


def test_anomaly_assimilation_exchanges_the_climatologies_only():
    """y' = mu_ref + (y - mu_src) per (group, period): the anomaly keeps its amplitude (mean/std matching scales it)."""
    rng = np.random.default_rng(5)
    n = 730
    doy = np.tile(np.arange(1, 366), 2)
    season = 0.08 * np.sin(2 * np.pi * doy / 365.0)
    ref = 0.20 + season + rng.normal(0.0, 0.02, n)           # the model: drier, weaker anomalies
    src = 0.30 + 1.5 * season + rng.normal(0.0, 0.05, n)     # the observations: wetter, larger anomalies
    g = np.zeros(n, np.int64)
    m = AnomalyMatcher(window="month").fit(ref, src, g, doy)
    out = m.apply(src, g, doy)
    month = bias.period_of_doy(doy, "month")
    for p in range(12):
        sel = month == p
        # known answer: the model's monthly mean plus the observation's departure from its own monthly mean
        np.testing.assert_allclose(out[sel], ref[sel].mean() + src[sel] - src[sel].mean(), atol=1e-12)
    anomaly = out - m.apply(np.full(n, 0.0), g, doy) - (src - 0.0)
    np.testing.assert_allclose(anomaly, 0.0, atol=1e-12)       # a shift only: slope 1 in the observation
    assert np.std(out - MeanStdMatcher(window="month").fit(ref, src, g, doy).apply(src, g, doy)) > 0.01
    assert bias.MATCHERS["anomaly"] is AnomalyMatcher
    # a group without statistics gives NaN
    assert np.isnan(m.apply(np.array([0.3]), np.array([7]), np.array([100])))[0]


@pytest.mark.parametrize("cls", [MeanStdMatcher, CDFMatcher, AnomalyMatcher])
def test_netcdf_round_trip(tmp_path, cls):
    ref, src = _samples(1500, seed=8)
    g = np.repeat([3, 9, 12], 500).astype(np.int64)
    doy = np.tile(np.arange(1, 501), 3) % 365 + 1
    m = cls(window="season").fit(ref, src, g, doy)
    path = tmp_path / "stats.nc"
    m.to_netcdf(path)
    m2 = bias.load(path)
    assert type(m2) is cls and m2.window == "season" and m2.half_window_days is None
    np.testing.assert_array_equal(m2.apply(src, g, doy), m.apply(src, g, doy))


def test_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="window"):
        CDFMatcher(window="weekly")
    with pytest.raises(ValueError, match="tails"):
        CDFMatcher(tails="extrapolate")
    with pytest.raises(ValueError, match="not been fitted"):
        MeanStdMatcher().apply([1.0], [1], [1])
    with pytest.raises(ValueError, match="doy"):
        MeanStdMatcher().fit([1.0], [1.0], [1], [400])
    with pytest.raises(ValueError, match="groups"):
        MeanStdMatcher().fit([1.0, 2.0], [1.0, 2.0], [0.5, 1.5], [1, 2])
    with pytest.raises(ValueError, match="shape"):
        MeanStdMatcher().fit([1.0, 2.0], [1.0], [1, 1], [1, 2])
