"""Statistics of the SMAP-L4 style forcing perturbations against theory (SCIENCE.md section 4)."""

import math

import numpy as np
import pytest

from smda.forcing.perturb import (
    ForcingPerturbations,
    PerturbationSettings,
    ar1_coefficients,
    lognormal_parameters,
    truncated_lognormal_mu,
)
from smda.model.grid import M01

N_MEM = 300
N_STEP = 24
DT = 3 * 3600.0


def test_reference_numbers():
    phi, s = ar1_coefficients(3 * 3600, 24 * 3600)
    assert phi == pytest.approx(0.882497, abs=1e-6)
    assert s == pytest.approx(0.470318, abs=1e-6)
    sig, mu = lognormal_parameters(0.5)
    assert sig == pytest.approx(0.472381, abs=1e-6)
    assert mu == pytest.approx(-0.111572, abs=1e-6)
    # truncation shifts mu up slightly; without truncation it is the plain value
    assert truncated_lognormal_mu(sig, 50.0) == pytest.approx(mu, abs=1e-12)
    assert truncated_lognormal_mu(sig, 3.0) > mu


def _line_cells(n=30, spacing_m=5000.0):
    x = M01.x0 + 7_000_000.0 + np.arange(n) * spacing_m
    return x, np.full(n, 3.0e6)


@pytest.fixture(scope="module")
def sample():
    x, y = _line_cells()
    p = ForcingPerturbations(PerturbationSettings(), seed=11, dt_s=DT, x_m=x, y_m=y, n_members=N_MEM)
    z = np.array([p.standard_fields(s).copy() for s in range(N_STEP)])  # (t, n, m, v)
    q = ForcingPerturbations(PerturbationSettings(), seed=11, dt_s=DT, x_m=x, y_m=y, n_members=N_MEM)
    pert = {k: [] for k in ("precip", "sw_down", "lw_down")}
    for s in range(N_STEP):
        values = q.perturbation(s)
        for k in pert:  # factors of precip and sw_down, offsets of lw_down (W m-2)
            pert[k].append(values.members(k, np.ones(x.size) if k != "lw_down" else np.zeros(x.size)))
    return z, {k: np.array(v) for k, v in pert.items()}


def _se_corr(rho, n_eff):
    return (1 - rho**2) / math.sqrt(n_eff)


def test_unit_normal_fields(sample):
    z, _ = sample
    # members are independent; the time/space samples are correlated, so use members as n_eff
    m = z.mean(axis=(0, 1))  # per member means, then their spread
    assert np.all(np.abs(z.mean(axis=(0, 1, 2))) < 5 * z.mean(axis=(0, 1)).std(axis=0) / math.sqrt(N_MEM))
    assert m.shape == (N_MEM, 3)
    assert np.allclose(z.std(axis=(0, 1, 2)), 1.0, atol=0.05)


def test_multiplicative_mean_and_std(sample):
    _, pert = sample
    for k, s in (("precip", 0.5), ("sw_down", 0.3)):
        f = pert[k]
        per_member = f.mean(axis=(0, 1))
        se = per_member.std() / math.sqrt(N_MEM)
        assert abs(f.mean() - 1.0) < 5 * se + 1e-3, k
        assert f.std() == pytest.approx(s, rel=0.06), k
        assert f.min() > 0
        # truncation at 3 sigma
        sig, _ = lognormal_parameters(s)
        assert np.log(f).max() - np.log(f).min() <= 6 * sig + 1e-9
    assert pert["lw_down"].std() == pytest.approx(20.0, rel=0.05)


def test_lag1_autocorrelation(sample):
    z, _ = sample
    phi = math.exp(-DT / (24 * 3600))
    for k in range(3):
        r = np.corrcoef(z[:-1, :, :, k].ravel(), z[1:, :, :, k].ravel())[0, 1]
        assert r == pytest.approx(phi, abs=5 * _se_corr(phi, N_MEM * 2))


def test_cross_correlations(sample):
    z, _ = sample
    for (i, j), c in (((0, 1), -0.8), ((0, 2), 0.5), ((1, 2), -0.5)):
        r = np.corrcoef(z[..., i].ravel(), z[..., j].ravel())[0, 1]
        assert r == pytest.approx(c, abs=5 * _se_corr(c, N_MEM * 2)), (i, j)


def test_spatial_correlation_at_length(sample):
    z, _ = sample
    L = 55.0
    for lag_km, tol in ((55.0, 0.03), (25.0, 0.02), (100.0, 0.04)):
        lag = int(lag_km / 5)
        r = np.corrcoef(z[:, :-lag, :, 0].ravel(), z[:, lag:, :, 0].ravel())[0, 1]
        assert r == pytest.approx(math.exp(-0.5 * (lag_km / L) ** 2), abs=tol), lag_km


def test_split_invariance_and_restart():
    x, y = _line_cells(40, 3000.0)
    s = PerturbationSettings(t_air_std_k=1.0)
    whole = ForcingPerturbations(s, seed=5, dt_s=3600, x_m=x, y_m=y, n_members=4)
    a = ForcingPerturbations(s, seed=5, dt_s=3600, x_m=x[:17], y_m=y[:17], n_members=4)
    b = ForcingPerturbations(s, seed=5, dt_s=3600, x_m=x[17:], y_m=y[17:], n_members=4)
    for step in range(6):
        zw = whole.standard_fields(step)
        np.testing.assert_array_equal(zw[:17], a.standard_fields(step))
        np.testing.assert_array_equal(zw[17:], b.standard_fields(step))
    # restart: export state at step 5, restore into a fresh object, continue
    st = whole.get_state()
    fresh = ForcingPerturbations(s, seed=5, dt_s=3600, x_m=x[17:], y_m=y[17:], n_members=4)
    fresh.set_state(st)  # the whole-domain state covers the sub-domain's lattice points
    for step in range(6, 9):
        np.testing.assert_array_equal(whole.standard_fields(step)[17:], fresh.standard_fields(step))
    with pytest.raises(ValueError, match="consecutive"):
        fresh.standard_fields(20)


def test_member_forcing_and_bad_input():
    """The per-member forcing reuses one buffer; it is what lsm.step applies: base x factor, base + offset."""
    x, y = _line_cells(10)
    p = ForcingPerturbations(PerturbationSettings(), seed=1, dt_s=3600, x_m=x, y_m=y, n_members=3)
    a = p.perturbation(0)
    assert a.names == ("precip", "sw_down", "lw_down")  # t_air std 0: not perturbed
    assert a.values.shape == (10, 3, 3) and np.all(a.values[:, :2] > 0)
    first = a.values.copy()
    b = p.perturbation(1)
    assert b.values is a.values and not np.array_equal(first, b.values)
    z = p.standard_fields(1)  # the same step: the clipped unit fields behind the values
    np.testing.assert_allclose(np.log(b.values[:, 0, :]), p._a[0] + p._b[0] * np.clip(z[..., 0], -3, 3), rtol=1e-12)
    np.testing.assert_allclose(b.values[:, 2, :], 20.0 * np.clip(z[..., 2], -3, 3), rtol=1e-12)
    base = np.full(10, 300.0)
    np.testing.assert_array_equal(b.members("lw_down", base), base[:, None] + b.values[:, 2, :])
    np.testing.assert_array_equal(b.members("t_air", base), np.full((10, 3), 300.0))
    np.testing.assert_allclose(b.ensemble_mean("precip", base), (base[:, None] * b.values[:, 0, :]).mean(axis=1),
                               rtol=1e-14)
    with pytest.raises(ValueError, match="consecutive"):
        p.perturbation(5)
    with pytest.raises(ValueError, match="positive-definite"):
        PerturbationSettings(corr_precip_sw=-0.99, corr_precip_lw=0.99, corr_sw_lw=0.9)
    with pytest.raises(ValueError, match="precip_std"):
        PerturbationSettings(precip_std=-1)
    with pytest.raises(TypeError):
        PerturbationSettings(0.5)  # keyword-only


def test_multiscale_fields_sum_gaussian_correlations():
    """Two scales (55 km with 60 % of the variance, 6 km with 40 %): unit variance, correlation
    0.6 exp(-d^2 / 2 55^2) + 0.4 exp(-d^2 / 2 6^2) (far from either single scale at 3-12 km), the cross-correlations
    of every scale kept, and the single-scale fields unchanged by the option's existence (scale 0 draws as before)."""
    x, y = _line_cells(60, 1000.0)
    s = PerturbationSettings(scales_km=(6.0,), scale_fractions=(0.4,))
    p = ForcingPerturbations(s, seed=11, dt_s=DT, x_m=x, y_m=y, n_members=N_MEM)
    z = np.array([p.standard_fields(k) for k in range(8)])  # (t, n, m, v)
    assert np.allclose(z.std(axis=(0, 1, 2)), 1.0, atol=0.05)
    for lag_km in (3, 6, 12, 30):
        r = np.corrcoef(z[:, :-lag_km, :, 0].ravel(), z[:, lag_km:, :, 0].ravel())[0, 1]
        expect = 0.6 * math.exp(-0.5 * (lag_km / 55.0) ** 2) + 0.4 * math.exp(-0.5 * (lag_km / 6.0) ** 2)
        assert r == pytest.approx(expect, abs=0.04), lag_km
    r = np.corrcoef(z[..., 0].ravel(), z[..., 1].ravel())[0, 1]
    assert r == pytest.approx(-0.8, abs=0.03)
    one = ForcingPerturbations(PerturbationSettings(), seed=11, dt_s=DT, x_m=x, y_m=y, n_members=3)
    for k in range(8):
        one.advance(k)
    st1, st2 = one.get_state(), p.get_state()
    n1 = st1["lattice_index"].size
    np.testing.assert_array_equal(st2["lattice_index"][:n1], st1["lattice_index"])
    np.testing.assert_array_equal(st2["values"][:n1, :3], st1["values"])


def test_multiscale_split_invariance_and_restart():
    x, y = _line_cells(40, 2000.0)
    s = PerturbationSettings(scales_km=(9.0, 20.0), scale_fractions=(0.3, 0.2))
    whole = ForcingPerturbations(s, seed=5, dt_s=3600, x_m=x, y_m=y, n_members=4)
    part = ForcingPerturbations(s, seed=5, dt_s=3600, x_m=x[23:], y_m=y[23:], n_members=4)
    for step in range(5):
        np.testing.assert_array_equal(whole.perturbation(step).values[23:], part.perturbation(step).values)
    fresh = ForcingPerturbations(s, seed=5, dt_s=3600, x_m=x[23:], y_m=y[23:], n_members=4)
    fresh.set_state(whole.get_state())
    for step in range(5, 8):
        np.testing.assert_array_equal(whole.perturbation(step).values[23:], fresh.perturbation(step).values)
    single = ForcingPerturbations(PerturbationSettings(), seed=5, dt_s=3600, x_m=x, y_m=y, n_members=4)
    single.standard_fields(0)
    with pytest.raises(ValueError, match="other perturbation scales"):
        fresh.set_state(single.get_state())
    with pytest.raises(ValueError, match="scale_fractions"):
        PerturbationSettings(scales_km=(9.0,), scale_fractions=(0.6, 0.5))
    with pytest.raises(ValueError, match="sum < 1"):
        PerturbationSettings(scales_km=(9.0, 5.0), scale_fractions=(0.6, 0.5))
