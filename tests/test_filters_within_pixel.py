"""Within-pixel increments of footprint-averaged observations (issue: in the twin experiments the EnKF's
and EAKF's within-pixel increments were anti-correlated with the needed correction).

Toy: a line of 1 km cells with a Gaussian-correlated field (length L), coarse pixels of ``pix`` cells, one
observation per pixel = the pixel mean + noise (R). "Within-pixel" is what is left after removing each
pixel's mean (projection W). For the Kalman filter with the true B the expected product of the
within-pixel increment and the within-pixel error, tr(W K H B W), is >= 0: the footprint observation
carries within-pixel information only through the prior correlations, and never with the wrong sign.

Known answers: (1) with an ensemble whose sample covariance is exactly B, every filter's analysis mean
is the Kalman filter's, within pixels too (the EnKF's perturbed observations are centred; without
centring the mean also moves by K mean(eps)); (2) with a random perfect ensemble (members drawn from
B, N = 24, half-width 40 km, a line of 8 pixels of 36 km, L = 8 km, R = 0.25, 200 trials) all filters
give the same positive within-pixel correlation, about 0.145, below the Kalman filter's (about 0.21)
because of the sampling noise of the gain, and centring the perturbations does not change it. Neither
sampling noise nor centring turns the sign: an anti-correlation in a twin experiment comes from the
ensemble's own within-pixel covariances, not from the filter algebra.
"""

import numpy as np
import pytest

from smda.assimilation.filters import make_filter
from smda.model.streams import normal_field


def _toy(pix, n_pix, length_km, r):
    nc = pix * n_pix
    x = np.arange(nc) + 0.5
    d = np.abs(x[:, None] - x[None, :])
    B = np.exp(-0.5 * (d / length_km) ** 2) + 0.01 * np.eye(nc)  # plus a small uncorrelated part
    H = np.kron(np.eye(n_pix), np.full((1, pix), 1.0 / pix))
    K = B @ H.T @ np.linalg.inv(H @ B @ H.T + r * np.eye(n_pix))
    W = np.eye(nc) - np.kron(np.eye(n_pix), np.full((pix, pix), 1.0 / pix))
    xy = np.stack([x * 1000.0, np.zeros(nc)], 1)
    oxy = np.stack([(np.arange(n_pix) + 0.5) * pix * 1000.0, np.zeros(n_pix)], 1)
    return B, H, K, W, xy, oxy


def _analysis_mean(flt, ens, H, y, r, xy, oxy, cycle):
    X = np.ascontiguousarray(ens[:, None, :].copy())
    flt.analyse(X, xy, H @ ens, y, np.full(len(y), r), oxy, obs_ids=np.arange(len(y)), cycle=cycle)
    return X[:, 0].mean(1)


FILTERS = {"etkf": {}, "enkf": {"loc_radius_km": np.inf}, "eakf": {"loc_radius_km": np.inf},
           "letkf": {"loc_radius_km": np.inf, "weight_interpolation": False}}


@pytest.mark.parametrize("name", FILTERS)
def test_exact_covariance_ensemble_gives_kalman_within_pixel_increments(name):
    pix, n_pix, r, n = 6, 2, 0.1, 40
    B, H, K, W, xy, oxy = _toy(pix, n_pix, 3.0, r)
    nc = pix * n_pix
    Z = normal_field(3, "test.pixel.ens", np.arange(nc), n, 0)
    Z -= Z.mean(1, keepdims=True)
    Z = np.linalg.solve(np.linalg.cholesky(Z @ Z.T / (n - 1)), Z)  # sample covariance exactly I
    ens = 0.3 + np.linalg.cholesky(B) @ Z
    truth = 0.3 + np.linalg.cholesky(B) @ normal_field(3, "test.pixel.truth", np.arange(nc), 1, 0)[:, 0]
    y = H @ truth + np.sqrt(r) * normal_field(3, "test.pixel.obs", np.arange(n_pix), 1, 0)[:, 0]
    xb = ens.mean(1)
    inc = _analysis_mean(make_filter(name, **FILTERS[name]), ens, H, y, r, xy, oxy, 1) - xb
    kf = K @ (y - H @ xb)
    assert np.abs(W @ kf).max() > 0.05  # the footprint mean does move the within-pixel structure
    np.testing.assert_allclose(inc, kf, rtol=0, atol=1e-10)
    if name == "enkf":  # without centring the mean also moves by K mean(eps): sampling noise
        got = _analysis_mean(make_filter("enkf", center_perturbations=False), ens, H, y, r, xy, oxy, 1) - xb
        eps = normal_field(0, "assimilation.obs_perturbation", np.arange(n_pix), n, 1) * np.sqrt(r)
        np.testing.assert_allclose(got, kf + K @ eps.mean(1), rtol=0, atol=1e-10)


def within_pixel_correlations(n_members=24, n_trials=200, length_km=8.0, pix=36, n_pix=8, r=0.25, c_km=40.0):
    """Correlation of within-pixel increments with within-pixel errors, pooled over trials, per filter."""
    B, H, K, W, xy, oxy = _toy(pix, n_pix, length_km, r)
    nc = pix * n_pix
    L = np.linalg.cholesky(B)
    kw = {"loc_radius_km": c_km}
    filters = {"enkf": make_filter("enkf", **kw),
               "enkf uncentred": make_filter("enkf", center_perturbations=False, **kw),
               "eakf": make_filter("eakf", **kw), "letkf": make_filter("letkf", weight_interpolation=False, **kw)}
    pairs = {k: ([], []) for k in ["kalman", *filters]}
    for t in range(n_trials):
        truth = L @ normal_field(7, "test.pixel.truth", np.arange(nc), 1, t)[:, 0]
        ens = L @ normal_field(7, "test.pixel.ens", np.arange(nc), n_members, t)
        y = H @ truth + np.sqrt(r) * normal_field(7, "test.pixel.obs", np.arange(n_pix), 1, t)[:, 0]
        xb = ens.mean(1)
        e_w = W @ (truth - xb)
        incs = {"kalman": K @ (y - H @ xb)}
        incs.update({k: _analysis_mean(f, ens, H, y, r, xy, oxy, t + 1) - xb for k, f in filters.items()})
        for k, inc in incs.items():
            pairs[k][0].append(W @ inc)
            pairs[k][1].append(e_w)
    return {k: float(np.corrcoef(np.concatenate(a), np.concatenate(b))[0, 1]) for k, (a, b) in pairs.items()}


def test_within_pixel_correlation_positive_and_equal_across_filters():
    c = within_pixel_correlations()
    assert c["kalman"] == pytest.approx(0.209, abs=0.02)  # tr(W K H B W) / sqrt(...) for this toy
    for k in ("enkf", "enkf uncentred", "eakf", "letkf"):
        assert c[k] == pytest.approx(0.145, abs=0.01), (k, c)
    assert abs(c["enkf"] - c["enkf uncentred"]) < 0.005
