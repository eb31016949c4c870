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
    assert tc["err_std"] == pytest.approx(errs, rel=0.05)
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
    assert list(df.columns) == ["ubRMSE", "RMSE", "bias", "R", "R_within", "n"]
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
