"""Validation metrics: SCIENCE.md section 7 reference values, analytic confidence intervals,
anomalies, triple collocation and the twin-experiment skill table."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from smda.model.streams import normal_field
from smda.run import metrics as m

X = np.array([.10, .15, .20, .25, .30, .22, .18, .12, .28, .16])
Y = np.array([.13, .16, .24, .26, .33, .27, .19, .16, .30, .21])


def _normals(n, purpose, cols=1):
    return normal_field(7, purpose, np.arange(n), cols, 0)


def test_reference_values_science_md():
    out = m.all_metrics(X, Y)
    assert out["n"] == 10
    assert out["bias"] == pytest.approx(-0.029000, abs=1e-6)
    assert out["rmsd"] == pytest.approx(0.032711, abs=1e-6)
    assert out["ubrmsd"] == pytest.approx(0.015133, abs=1e-6)
    assert out["r"] == pytest.approx(0.971122, abs=1e-6)
    assert out["rho"] == pytest.approx(0.972649, abs=1e-6)
    # the single-metric functions agree with the bundle
    assert m.bias(X, Y) == out["bias"] and m.rmsd(X, Y) == out["rmsd"]
    assert m.ubrmsd(X, Y) == out["ubrmsd"]
    assert m.pearson_r(X, Y) == out["r"] and m.spearman_r(X, Y) == out["rho"]
    # identity RMSD^2 = bias^2 + ubRMSD^2
    assert out["rmsd"] ** 2 == pytest.approx(out["bias"] ** 2 + out["ubrmsd"] ** 2, rel=1e-12)


def test_confidence_intervals_analytic():
    n, a = 10, 0.05
    out = m.all_metrics(X, Y, alpha=a)
    d = X - Y
    half = stats.t.ppf(0.975, 9) * d.std(ddof=1) / np.sqrt(n)
    assert (out["bias_lo"], out["bias_hi"]) == pytest.approx((d.mean() - half, d.mean() + half), abs=1e-12)
    # the t interval is the one scipy gives for a one-sample mean
    lo, hi = stats.t.interval(0.95, 9, loc=d.mean(), scale=stats.sem(d))
    assert (out["bias_lo"], out["bias_hi"]) == pytest.approx((lo, hi), abs=1e-12)
    r = stats.pearsonr(X, Y)[0]
    z = stats.norm.ppf(0.975) / np.sqrt(n - 3)
    assert (out["r_lo"], out["r_hi"]) == pytest.approx((np.tanh(np.arctanh(r) - z), np.tanh(np.arctanh(r) + z)))
    # scipy's own Fisher interval for Pearson R agrees
    ci = stats.pearsonr(X, Y).confidence_interval(0.95)
    assert (out["r_lo"], out["r_hi"]) == pytest.approx((ci.low, ci.high), abs=1e-10)
    ub2 = out["ubrmsd"] ** 2
    lo = np.sqrt(n * ub2 / stats.chi2.ppf(0.975, n - 1))
    hi = np.sqrt(n * ub2 / stats.chi2.ppf(0.025, n - 1))
    assert (out["ubrmsd_lo"], out["ubrmsd_hi"]) == pytest.approx((lo, hi), abs=1e-12)
    assert out["ubrmsd_lo"] < out["ubrmsd"] < out["ubrmsd_hi"]
    assert out["rmsd_lo"] < out["rmsd"] < out["rmsd_hi"]
    zs = stats.norm.ppf(0.975) * np.sqrt(1.06 / (n - 3))
    rho = out["rho"]
    assert out["rho_lo"] == pytest.approx(np.tanh(np.arctanh(rho) - zs))
    # a wider level gives a wider interval
    wide = m.all_metrics(X, Y, alpha=0.01)
    assert wide["r_lo"] < out["r_lo"] and wide["ubrmsd_hi"] > out["ubrmsd_hi"]


def test_interval_coverage_of_the_bias():
    """About 95 % of t intervals cover the true bias (1000 draws from the random streams)."""
    e = normal_field(3, "test_ci", np.arange(1000), 20, 0)  # 1000 samples of n = 20
    covered = 0
    for row in e:
        lo, hi = m.bias_ci(0.02 + 0.03 * row, np.zeros(20))
        covered += lo <= 0.02 <= hi
    assert 0.93 <= covered / 1000 <= 0.97


def test_nan_pairs_dropped_and_degenerate_cases():
    x = np.r_[X, np.nan, 0.3]
    y = np.r_[Y, 0.2, np.nan]
    assert m.all_metrics(x, y)["n"] == 10
    assert m.all_metrics(x, y)["r"] == pytest.approx(0.971122, abs=1e-6)
    empty = m.all_metrics([np.nan], [1.0])
    assert empty["n"] == 0 and np.isnan(empty["bias"])
    assert np.isnan(m.pearson_r(np.ones(5), np.arange(5.0)))
    assert np.isnan(m.fisher_z_ci(0.5, 3)[0])
    with pytest.raises(ValueError, match="same number"):
        m.all_metrics([1, 2, 3], [1, 2])


def test_moving_average_anomaly():
    t = pd.date_range("2020-01-01", periods=400, freq="D", tz="UTC")
    slow = 0.2 + 0.1 * np.sin(2 * np.pi * np.arange(400) / 365.0)
    fast = 0.02 * (-1.0) ** np.arange(400)
    a = m.moving_average_anomaly(pd.Series(slow + fast, t), 35)
    # the seasonal cycle is removed, the day-to-day signal kept (away from the ends)
    inner = a.iloc[40:-40].to_numpy()
    assert np.corrcoef(inner, fast[40:-40])[0, 1] > 0.99
    # residual: the sine's moving mean is damped by sinc(35/365) = 0.985 (1.5e-3) plus the odd
    # number of alternating samples in the window (0.02 / 35 = 6e-4)
    assert np.abs(inner - fast[40:-40]).max() < 0.1 * (1 - np.sinc(35 / 365)) + 0.02 / 35 + 1e-4
    # a constant series has zero anomaly; NaN stays NaN
    s = pd.Series(np.full(50, 0.3), t[:50])
    s.iloc[5] = np.nan
    an = m.moving_average_anomaly(s)
    assert np.isnan(an.iloc[5]) and np.nanmax(np.abs(an)) < 1e-12
    with pytest.raises(ValueError, match="DatetimeIndex"):
        m.moving_average_anomaly(pd.Series([1.0, 2.0]))


def test_triple_collocation_recovers_error_std():
    n = 20000
    z = _normals(n, "tc", 4)
    truth = 0.25 + 0.05 * z[:, 0]
    errs = (0.02, 0.03, 0.04)
    x = truth + errs[0] * z[:, 1]
    y = 0.1 + 0.8 * truth + errs[1] * z[:, 2]   # a rescaled product: error in its own units
    w = truth + errs[2] * z[:, 3]
    tc = m.triple_collocation(x, y, w)
    assert tc["n"] == n
    assert tc["err_std_own"] == pytest.approx(errs, rel=0.05)
    # scaled into the units of x (the reference): y's error divided by its gain 0.8
    assert tc["err_std"] == pytest.approx([errs[0], errs[1] / 0.8, errs[2]], rel=0.05)
    r_true = [0.05 / np.hypot(0.05, errs[0]), 0.04 / np.hypot(0.04, errs[1]), 0.05 / np.hypot(0.05, errs[2])]
    assert tc["r_truth"] == pytest.approx(r_true, abs=0.01)


def _twin(nt=30, nr=72, nc=72):
    cells = np.arange(nr * nc)
    big = np.stack([normal_field(11, "twin_big", cells, 1, k)[:, 0] for k in range(nt)]).reshape(nt, nr, nc)
    small = np.stack([normal_field(11, "twin_small", cells, 1, k)[:, 0] for k in range(nt)]).reshape(nt, nr, nc)
    truth = 0.25 + 0.03 * m.coarse_mean(big, 36) + 0.02 * small
    return truth, small


def test_skill_table_separates_downscaling_from_coarse():
    truth, small = _twin()
    coarse = m.coarse_mean(truth, 36)
    noisy = truth + 0.01 * normal_field(5, "twin_noise", np.arange(truth.size), 1, 0)[:, 0].reshape(truth.shape)
    biased = truth + 0.05
    hole = truth.copy()
    hole[:, :36, :36] = np.nan
    df = m.skill_table({"truth": truth, "satellite": coarse, "analysis": noisy, "biased": biased,
                        "partial": hole}, truth)
    assert list(df.columns) == ["ubRMSE", "ubRMSE_pixel", "ubRMSE_within", "within_share", "RMSE", "bias", "R", "R_within",
                                "R_within_dyn", "n"]
    assert df.loc["truth", "RMSE"] == 0 and df.loc["truth", "R"] == pytest.approx(1.0)
    assert df.loc["truth", "R_within"] == pytest.approx(1.0)
    # the coarse product: a good coarse estimate, no within-pixel skill
    assert np.isnan(df.loc["satellite", "R_within"])
    assert df.loc["satellite", "ubRMSE"] == pytest.approx(0.02, rel=0.1)
    # the noisy 1 km product keeps high within-pixel skill: var 0.02^2 vs noise 0.01^2
    assert df.loc["analysis", "R_within"] == pytest.approx(2 / np.sqrt(5), abs=0.02)
    assert df.loc["analysis", "ubRMSE"] == pytest.approx(0.01, rel=0.05)
    # a constant bias: bias and RMSE 0.05, ubRMSE 0, R 1
    assert df.loc["biased", "bias"] == pytest.approx(0.05)
    assert df.loc["biased", "RMSE"] == pytest.approx(0.05)
    assert df.loc["biased", "ubRMSE"] == pytest.approx(0.0, abs=1e-12)
    assert df.loc["partial", "n"] == truth.size * 3 // 4
    with pytest.raises(ValueError, match="shape"):
        m.skill_table({"a": truth[:, :36]}, truth)
    with pytest.raises(ValueError, match="coarse"):
        m.skill_table({"a": truth}, truth, coarse=50)


def test_skill_table_pixel_within_split_oracle_and_gain_fraction():
    """Open loop = truth + a pixel-mean error (std 0.03, constant in each 36 km pixel) + a within-pixel error
    (std 0.02); the analysis halves the pixel-mean error. Known answers: ubRMSE parts 0.03 and 0.02, the oracle
    keeps only the within error, the gain fraction is (OL - A) / (OL - oracle)."""
    truth, _ = _twin(nt=40)
    nt = truth.shape[0]
    cells = np.arange(truth[0].size)
    big = np.stack([normal_field(21, "ol_pix", cells, 1, k)[:, 0] for k in range(nt)]).reshape(truth.shape)
    small = np.stack([normal_field(21, "ol_cell", cells, 1, k)[:, 0] for k in range(nt)]).reshape(truth.shape)
    pix = m.coarse_mean(big, 36)
    pix = pix / pix.std()                       # unit-variance pixel-mean error, constant within each pixel
    within = small - m.coarse_mean(small, 36)   # zero pixel mean
    within = within / within.std()
    ol = truth + 0.03 * pix + 0.02 * within
    an = truth + 0.015 * pix + 0.02 * within
    df = m.skill_table({"openloop": ol, "analysis": an}, truth)
    assert m.ORACLE in df.index
    o, a, best = df.loc["openloop"], df.loc["analysis"], df.loc[m.ORACLE]
    # the split: each part's ubRMSE (each cell's time mean removed, sample std over 40 times) near its std
    assert o["ubRMSE_pixel"] == pytest.approx(0.03, rel=0.1) and o["ubRMSE_within"] == pytest.approx(0.02, rel=0.1)
    assert o["ubRMSE"] ** 2 == pytest.approx(o["ubRMSE_pixel"] ** 2 + o["ubRMSE_within"] ** 2, rel=0.05)
    assert o["within_share"] == pytest.approx(o["ubRMSE_within"] ** 2 / (o["ubRMSE_pixel"] ** 2 + o["ubRMSE_within"] ** 2))
    # the oracle has no pixel-mean error and the open loop's within-pixel error
    assert best["ubRMSE_pixel"] == pytest.approx(0.0, abs=1e-12)
    assert best["ubRMSE_within"] == pytest.approx(o["ubRMSE_within"], rel=1e-9)
    assert best["ubRMSE"] == pytest.approx(o["ubRMSE_within"], rel=1e-9)
    # gain fraction: 0 for the open loop, 1 for the oracle, the ratio for the analysis
    assert o["gain_fraction"] == pytest.approx(0.0) and best["gain_fraction"] == pytest.approx(1.0)
    assert a["gain_fraction"] == pytest.approx((o["ubRMSE"] - a["ubRMSE"]) / (o["ubRMSE"] - best["ubRMSE"]))
    assert 0.3 < a["gain_fraction"] < 0.7
    # the same within-pixel error: the same dynamic within-pixel R; both below the static-pattern R_within
    assert a["R_within_dyn"] == pytest.approx(o["R_within_dyn"], rel=1e-9)


def test_dynamic_within_pixel_r_ignores_the_static_pattern():
    """A product with the truth's static within-pixel pattern but independent day-to-day within-pixel changes:
    R_within is high (the pattern is shared), R_within_dyn is about 0."""
    nt, n = 60, 72
    cells = np.arange(n * n)
    static = normal_field(4, "static", cells, 1, 0)[:, 0].reshape(n, n)
    dyn_t = np.stack([normal_field(4, "dyn_t", cells, 1, k)[:, 0] for k in range(nt)]).reshape(nt, n, n)
    dyn_p = np.stack([normal_field(4, "dyn_p", cells, 1, k)[:, 0] for k in range(nt)]).reshape(nt, n, n)
    truth = 0.25 + 0.05 * static + 0.01 * dyn_t
    prod = 0.25 + 0.05 * static + 0.01 * dyn_p
    row = m.skill_table({"p": prod}, truth).loc["p"]
    assert row["R_within"] > 0.9
    assert abs(row["R_within_dyn"]) < 0.03


def _with_covariance(c, n=400, seed=5):
    """Three series whose sample covariance (ddof 1) is exactly ``c``."""
    z = np.random.default_rng(seed).standard_normal((3, n))
    z -= z.mean(axis=1, keepdims=True)
    z = np.linalg.solve(np.linalg.cholesky(np.cov(z)), z)           # sample covariance = identity
    return np.linalg.cholesky(c) @ z + np.array([[0.2], [0.3], [0.1]])


def test_triple_collocation_matches_pytesmo_definitions_on_a_constructed_covariance():
    """x = T + e_x, y = a T + e_y, z = c T + e_z with signal variance s2: the covariance is known, and so are
    pytesmo's tcol_metrics outputs: beta_y = 1/a, beta_z = 1/c, scaled error std sqrt(var e_i) beta_i,
    SNR_i = 10 log10(signal_i / var e_i)."""
    s2, a, c = 0.05**2, 0.6, 1.8
    ev = np.array([0.02, 0.015, 0.05]) ** 2
    gain = np.array([1.0, a, c])
    cov = s2 * np.outer(gain, gain) + np.diag(ev)
    x, y, z = _with_covariance(cov)
    np.testing.assert_allclose(np.cov(np.vstack((x, y, z))), cov, rtol=1e-12, atol=1e-15)
    tc = m.triple_collocation(x, y, z, ref=0)
    beta = 1.0 / gain
    np.testing.assert_allclose(tc["beta"], beta, atol=1e-6)
    np.testing.assert_allclose(tc["err_std_own"], np.sqrt(ev), atol=1e-6)
    np.testing.assert_allclose(tc["err_std"], np.sqrt(ev) * beta, atol=1e-6)
    np.testing.assert_allclose(tc["snr_db"], 10 * np.log10(s2 * gain**2 / ev), atol=1e-6)
    np.testing.assert_allclose(tc["r_truth"], np.sqrt(s2 * gain**2 / (s2 * gain**2 + ev)), atol=1e-6)
    # pytesmo's formulas written out on the covariance: SNR from |C_ii C_jk / (C_ij C_ik) - 1|, beta from C_ref,k / C_i,k
    for i in range(3):
        j, k = [q for q in range(3) if q != i]
        snr = -10 * np.log10(abs(abs(cov[i, i] * cov[j, k] / (cov[i, j] * cov[i, k])) - 1))
        assert tc["snr_db"][i] == pytest.approx(snr, abs=1e-6)
    assert tc["beta"][1] == pytest.approx(cov[0, 2] / cov[1, 2], abs=1e-6)
    assert tc["beta"][2] == pytest.approx(cov[0, 1] / cov[2, 1], abs=1e-6)
    # another reference: the scaling factors follow it
    tc1 = m.triple_collocation(x, y, z, ref=1)
    np.testing.assert_allclose(tc1["beta"], gain[1] / gain, atol=1e-6)
    np.testing.assert_allclose(tc1["err_std"], np.sqrt(ev) * gain[1] / gain, atol=1e-6)


def test_triple_collocation_bootstrap_intervals():
    n = 600
    zs = _normals(n, "tcb", 4)
    truth = 0.05 * zs[:, 0]
    x, y, z = truth + 0.02 * zs[:, 1], 2 * truth + 0.03 * zs[:, 2], 0.5 * truth + 0.01 * zs[:, 3]
    tc = m.triple_collocation(x, y, z, n_boot=500, seed=1)
    for k in ("snr_db", "err_std", "beta", "r_truth"):
        assert np.all(tc[f"{k}_lo"] <= tc[k] + 1e-12) and np.all(tc[k] <= tc[f"{k}_hi"] + 1e-12), k
    assert tc["beta_lo"][0] == tc["beta_hi"][0] == 1.0
    assert tc["err_std_lo"] == pytest.approx(tc["err_std"], rel=0.25)      # n = 600: a few % wide
    # the same seed gives the same intervals; too few triplets give none
    assert np.array_equal(tc["snr_db_lo"], m.triple_collocation(x, y, z, n_boot=500, seed=1)["snr_db_lo"])
    few = m.triple_collocation(x[:50], y[:50], z[:50], n_boot=100)
    assert np.isnan(few["snr_db_lo"]).all() and np.isfinite(few["snr_db"]).all()


def test_anomalies_match_an_independent_computation():
    """Moving-average anomaly: mean of all values within +- 17.5 days, both ends included (hourly series, so
    the window ends fall on samples); climatology: day-of-year means of the 5-day moving average, smoothed
    over +- 17.5 days of year wrapped around the year."""
    t = pd.date_range("2017-01-01", "2019-12-31 23:00", freq="6h", tz="UTC")
    k = np.arange(t.size)
    v = 0.25 + 0.08 * np.sin(2 * np.pi * k / (4 * 365.25)) + 0.02 * np.sin(k / 7.0) + 0.01 * np.cos(k / 3.1)
    s = pd.Series(v, t).drop(t[500:700])          # a gap
    a = m.moving_average_anomaly(s, 35)
    ts = ((s.index - s.index[0]) / pd.Timedelta(days=1)).to_numpy()
    ref = np.array([x - s.to_numpy()[np.abs(ts - ti) <= 17.5].mean() for ti, x in zip(ts, s.to_numpy(), strict=True)])
    np.testing.assert_allclose(a.to_numpy(), ref, atol=1e-12)
    # climatology
    sm5 = np.array([s.to_numpy()[np.abs(ts - ti) <= 2.5].mean() for ti in ts])
    doy = np.array([pd.Timestamp(2000, d.month, d.day).day_of_year for d in s.index])   # 2000: a leap year
    days = np.unique(doy)
    mean_doy = np.array([sm5[doy == d].mean() for d in days])
    clim = np.array([mean_doy[np.minimum(np.abs(days - d), 366 - np.abs(days - d)) <= 17.5].mean() for d in range(1, 367)])
    ca = m.climatology_anomaly(s, 35)
    np.testing.assert_allclose(ca.to_numpy(), s.to_numpy() - clim[doy - 1], atol=1e-12)
