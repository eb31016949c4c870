"""Filter analyses on textbook problems: scalar gain, Kalman-filter limits, equivalences, MPI split
independence, bounds, relaxation, registry and bad input."""

import numpy as np
import pytest

from smda.assimilation.filters import FILTERS, make_filter
from smda.assimilation.filters.diagnostics import desroziers, innovation_statistics
from smda.assimilation.filters.enkf import kalman_gain, perturbed_obs
from smda.model.streams import normal_field


def _standardised(n, seed, purpose):
    z = normal_field(seed, purpose, np.array([0]), n, 0)[0]
    return (z - z.mean()) / z.std(ddof=1)


# -- SCIENCE.md scalar check ------------------------------------------------------------------------
SCALAR_SETTINGS = [("etkf", {}), ("enkf", {}), ("letkf", {"loc_radius_km": 50.0}),
                   ("letkf", {"loc_radius_km": 50.0, "weight_interpolation": False})]


def test_scalar_gain_function():
    k = kalman_gain(-200.0 * 0.03**2, (200.0 * 0.03) ** 2, 16.0)
    assert k == pytest.approx(-0.003462, abs=5e-7)
    assert 5.0 * k == pytest.approx(-0.01731, abs=5e-6)


@pytest.mark.parametrize("name,kw", SCALAR_SETTINGS)
def test_scalar_case(name, kw):
    # sigma_b = 0.03 m3/m3, H = -200 K/(m3/m3), R = 16 K^2, innovation +5 K -> dSM = -0.01731
    n = 400
    x = 0.25 + 0.03 * _standardised(n, 1, "test.scalar")
    X = x.reshape(1, 1, n).copy()
    HX = (250.0 - 200.0 * x).reshape(1, n)
    y = np.array([HX.mean() + 5.0])
    flt = make_filter(name, **kw)
    flt.analyse(X, np.array([[9000.0, 18000.0]]), HX, y, np.array([16.0]), np.array([[9000.0, 18000.0]]),
                obs_ids=np.array([7]), cycle=3)
    assert X.mean() - 0.25 == pytest.approx(-0.01731, abs=2e-5)
    if name != "enkf":  # deterministic square root: exact posterior variance (1 - KH) sigma_b^2
        k = -0.18 / 52.0
        assert X.std(ddof=1) == pytest.approx(0.03 * np.sqrt(1 + 200.0 * k), rel=1e-10)


# -- linear-Gaussian problem: convergence to the Kalman filter --------------------------------------
def _linear_problem(n_members, seed=5):
    nx, ny = 6, 3
    idx = np.arange(nx)
    B = 0.5 * np.exp(-np.abs(idx[:, None] - idx[None, :]) / 2.0) + 0.1 * np.eye(nx)
    mu = np.linspace(1.0, 2.0, nx)
    H = np.zeros((ny, nx))
    H[0, 0], H[1, [2, 3]], H[2, 5] = 1.0, [0.5, 0.5], -2.0
    R = np.array([0.2, 0.1, 0.4])
    y = np.array([1.5, 1.0, -3.0])
    Z = normal_field(seed, "test.linear", idx, n_members, 0)
    X = mu[:, None] + np.linalg.cholesky(B) @ Z
    S = H @ B @ H.T + np.diag(R)
    K = B @ H.T @ np.linalg.inv(S)
    return X, H, R, y, mu + K @ (y - H @ mu), (np.eye(nx) - K @ H) @ B


def _analyse_linear(name, X, H, R, y, **kw):
    # the whole state is one cell with nx variables (all at the same place)
    nx, n = X.shape
    Xs = np.ascontiguousarray(X[None, :, :])
    HX = H @ X
    make_filter(name, **kw).analyse(Xs, np.zeros((1, 2)), HX, y, R, np.zeros((len(y), 2)),
                                    obs_ids=np.arange(len(y)), cycle=1)
    return Xs[0]


def test_etkf_is_kalman_filter_of_sample_moments():
    X, H, R, y, _, _ = _linear_problem(30)
    m, P = X.mean(axis=1), np.cov(X)
    K = P @ H.T @ np.linalg.inv(H @ P @ H.T + np.diag(R))
    Xa = _analyse_linear("etkf", X, H, R, y)
    np.testing.assert_allclose(Xa.mean(axis=1), m + K @ (y - H @ m), atol=1e-12)
    np.testing.assert_allclose(np.cov(Xa), (np.eye(6) - K @ H) @ P, atol=1e-12)


@pytest.mark.parametrize("name", ["etkf", "enkf", "letkf"])
def test_converges_to_kalman_filter(name):
    kw = {"loc_radius_km": np.inf, "weight_interpolation": False} if name == "letkf" else {}
    errs = []
    sizes = (50, 800)
    for n in sizes:
        X, H, R, y, ma, Pa = _linear_problem(n)
        Xa = _analyse_linear(name, X, H, R, y, **kw)
        errs.append((np.abs(Xa.mean(axis=1) - ma).max(), np.abs(np.cov(Xa) - Pa).max()))
    assert errs[1][0] < errs[0][0] and errs[1][1] < errs[0][1]
    # sampling error bounds at N = 800: 4 standard errors (B_ii <= 0.6)
    assert errs[1][0] < 4 * np.sqrt(0.6 / sizes[1])
    assert errs[1][1] < 4 * 0.6 * np.sqrt(2.0 / sizes[1])


# -- 2-D problem for localization and split tests ---------------------------------------------------
def _plane_problem(n=10, nvar=2):
    gx, gy = np.meshgrid(np.arange(20), np.arange(18), indexing="ij")
    cell_xy = np.stack([gx.ravel(), gy.ravel()], 1) * 1000.0 + np.array([5.0e5, -3.0e5])
    nc = cell_xy.shape[0]
    gid = np.arange(nc)
    base = normal_field(2, "test.plane", gid, n, 0)
    X = np.empty((nc, nvar, n))
    for v in range(nvar):
        X[:, v, :] = 0.2 + 0.05 * (v + 1) * base + 0.01 * normal_field(2, "test.plane", gid, n, 0, draw=v + 1)
    n_obs = 25
    oid = np.arange(n_obs)
    u = normal_field(4, "test.obspos", oid, 2, 0)
    obs_xy = cell_xy.mean(0) + 6000.0 * u
    near = np.argmin(((cell_xy[None, :, :] - obs_xy[:, None, :]) ** 2).sum(-1), axis=1)
    HX = X[near, 0, :] * 1.0
    y = HX.mean(axis=1) + 0.03 * normal_field(4, "test.obsval", oid, 1, 0)[:, 0]
    return X, cell_xy, HX, y, np.full(n_obs, 0.02**2), obs_xy, oid + 1000


def _run(name, X, cell_xy, HX, y, r, oxy, ids, **kw):
    Xa = X.copy()
    diag = make_filter(name, **kw).analyse(Xa, cell_xy, HX, y, r, oxy, obs_ids=ids, cycle=2, **_bounds(kw))
    return Xa, diag


def _bounds(kw):
    return {}


def test_letkf_infinite_radius_equals_etkf():
    p = _plane_problem()
    ref, _ = _run("etkf", *p, inflation=1.1)
    for interp in (True, False):
        got, _ = _run("letkf", *p, inflation=1.1, loc_radius_km=np.inf, weight_interpolation=interp,
                      analysis_spacing_km=7.0)
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-13)


def test_weight_interpolation_vs_exact():
    p = _plane_problem()
    X0 = p[0]
    ex, _ = _run("letkf", *p, loc_radius_km=4.0, weight_interpolation=False)
    it, _ = _run("letkf", *p, loc_radius_km=4.0, analysis_spacing_km=3.0)
    on_lattice = np.all(np.mod(p[1], 3000.0) == 0.0, axis=1)
    assert on_lattice.sum() > 20
    np.testing.assert_allclose(it[on_lattice], ex[on_lattice], rtol=0, atol=1e-13)
    inc_ex = ex - X0
    err = np.abs(it - ex).max() / np.abs(inc_ex).max()
    assert 0 < err < 0.15  # smooth weights: small interpolation error elsewhere
    # constant local observation set and taper (radius far beyond the domain): identical everywhere
    ex2, _ = _run("letkf", *p, loc_radius_km=1e7, weight_interpolation=False)
    it2, _ = _run("letkf", *p, loc_radius_km=1e7, analysis_spacing_km=3.0)
    np.testing.assert_allclose(it2, ex2, rtol=0, atol=1e-12)


SPLIT_SETTINGS = [("enkf", {"loc_radius_km": 3.0, "inflation": 1.05, "seed": 9}),
                  ("enkf", {"inflation": 1.05, "rtps": 0.5}),
                  ("letkf", {"loc_radius_km": 3.0, "analysis_spacing_km": 4.0, "rtpp": 0.3}),
                  ("letkf", {"loc_radius_km": 3.0, "weight_interpolation": False}),
                  ("letkf", {"loc_radius_km": 3.0, "analysis_spacing_km": 4.0, "random_rotation": True,
                             "taper_cutoff": 0.05}),
                  ("letkf", {"loc_radius_km": 3.0, "weight_interpolation": False, "random_rotation": True}),
                  ("eakf", {"loc_radius_km": 3.0, "taper_cutoff": 0.05}),
                  ("etkf", {"rtps": 0.7}),
                  ("etkf", {"random_rotation": True})]


@pytest.mark.parametrize("name,kw", SPLIT_SETTINGS)
def test_result_independent_of_domain_split(name, kw):
    X, cell_xy, HX, y, r, oxy, ids = _plane_problem()
    full, _ = _run(name, X, cell_xy, HX, y, r, oxy, ids, **kw)
    assert np.abs(full - X).max() > 1e-4  # the analysis did something
    parts = [np.arange(0, 100), np.arange(100, 250), np.arange(250, X.shape[0])]
    for sel in parts:
        got, _ = _run(name, np.ascontiguousarray(X[sel]), cell_xy[sel], HX, y, r, oxy, ids, **kw)
        np.testing.assert_array_equal(got, full[sel])


def test_perturbed_obs_keyed_by_global_id_and_centred():
    r = np.array([1.0, 4.0, 9.0])
    e1 = perturbed_obs(3, np.array([10, 11, 12]), 50, 4, r)
    e2 = perturbed_obs(3, np.array([12, 10]), 50, 4, r[[2, 0]])
    np.testing.assert_array_equal(e1[[2, 0]], e2)
    np.testing.assert_allclose(e1.mean(axis=1), 0.0, atol=1e-14)
    e3 = perturbed_obs(3, np.array([10, 11, 12]), 50, 5, r)
    assert not np.allclose(e1, e3)


def test_bounds_clip_and_report():
    p = _plane_problem()
    free, _ = _run("etkf", *p)
    lower, upper = np.array([0.19, 0.0]), np.array([0.25, 0.3])
    Xa = p[0].copy()
    diag = make_filter("etkf").analyse(Xa, p[1], p[2], p[3], p[4], p[5], obs_ids=p[6], cycle=0,
                                       lower=lower, upper=upper)
    np.testing.assert_allclose(Xa, np.clip(free, lower[None, :, None], upper[None, :, None]))
    below = np.maximum(lower[None, :, None] - free, 0).sum(axis=(0, 2))
    above = np.maximum(free - upper[None, :, None], 0).sum(axis=(0, 2))
    np.testing.assert_allclose(diag.clipped_below, below)
    np.testing.assert_allclose(diag.clipped_above, above)
    assert diag.clipped_below[0] > 0 and diag.clipped_above[0] > 0
    # per-cell bounds
    lo_cells = np.tile(lower, (p[0].shape[0], 1))
    lo_cells[0, 0] = -1.0
    Xb = p[0].copy()
    make_filter("etkf").analyse(Xb, p[1], p[2], p[3], p[4], p[5], obs_ids=p[6], cycle=0,
                                lower=lo_cells, upper=upper)
    np.testing.assert_allclose(Xb[0, 0], np.minimum(free[0, 0], upper[0]))


@pytest.mark.parametrize("name", ["enkf", "etkf", "letkf"])
def test_rtpp_and_rtps_limits(name):
    p = _plane_problem()
    X0 = p[0]
    plain, _ = _run(name, *p)
    relaxed, _ = _run(name, *p, rtpp=1.0)
    np.testing.assert_allclose(relaxed.mean(-1), plain.mean(-1), atol=1e-12)
    np.testing.assert_allclose(relaxed - relaxed.mean(-1, keepdims=True), X0 - X0.mean(-1, keepdims=True),
                               atol=1e-12)
    rtps, _ = _run(name, *p, rtps=1.0)
    np.testing.assert_allclose(rtps.std(-1), X0.std(-1), rtol=1e-10)
    np.testing.assert_allclose(rtps.mean(-1), plain.mean(-1), atol=1e-12)


@pytest.mark.parametrize("name", ["enkf", "letkf"])
def test_cells_without_local_obs_unchanged(name):
    X, cell_xy, HX, y, r, oxy, ids = _plane_problem()
    far = cell_xy + 1e6
    got, _ = _run(name, X, far, HX, y, r, oxy, ids, loc_radius_km=5.0, inflation=1.2)
    np.testing.assert_allclose(got, X, rtol=0, atol=1e-15)


def test_inflation_enlarges_analysis_spread():
    p = _plane_problem()
    a, _ = _run("etkf", *p)
    b, _ = _run("etkf", *p, inflation=1.5)
    assert np.all(b.std(-1) > a.std(-1))


def test_gross_error_rejection_and_diagnostics():
    X, cell_xy, HX, y, r, oxy, ids = _plane_problem()
    y = y.copy()
    y[3] += 10.0
    Xa = X.copy()
    diag = make_filter("letkf", loc_radius_km=3.0, gross_error_sigma=5.0).analyse(
        Xa, cell_xy, HX, y, r, oxy, obs_ids=ids, cycle=1)
    assert diag.n_obs == 25 and diag.n_rejected == 1 and not diag.used[3]
    assert diag.omf == innovation_statistics(y, HX, r, mask=diag.used)
    assert diag.as_dict()["n_used"] == 24


def test_chi2_and_desroziers_consistency():
    # independent scalar problems: sigma_b^2 = 1, R = 0.5; optimal analysis K = 1/1.5
    n_obs, n = 40000, 20
    ids = np.arange(n_obs)
    truth = normal_field(1, "test.truth", ids, 1, 0)[:, 0]
    HXb = truth[:, None] + normal_field(1, "test.bg", ids, 1, 0) + normal_field(1, "test.ens", ids, n, 0)
    HXb -= HXb.mean(axis=1, keepdims=True) - (truth + normal_field(1, "test.bg", ids, 1, 0)[:, 0])[:, None]
    HXb = HXb.mean(1, keepdims=True) + (HXb - HXb.mean(1, keepdims=True)) / HXb.std(1, ddof=1, keepdims=True)
    y = truth + np.sqrt(0.5) * normal_field(1, "test.oe", ids, 1, 0)[:, 0]
    st = innovation_statistics(y, HXb, np.full(n_obs, 0.5))
    assert st["chi2"] == pytest.approx(1.0, abs=0.03)
    HXa = HXb + (y - HXb.mean(1))[:, None] / 1.5
    de = desroziers(y, HXb, HXa)
    assert de["r_var"] == pytest.approx(0.5, rel=0.05)
    assert de["hbh_var"] == pytest.approx(1.0, rel=0.05)
    assert de["ens_hbh_var"] == pytest.approx(1.0, rel=1e-10)


# -- registry and input checking --------------------------------------------------------------------
def test_registry_errors_list_valid_names():
    with pytest.raises(ValueError, match="enkf, etkf, letkf"):
        make_filter("kalman")
    with pytest.raises(ValueError, match="analysis_spacing_km"):
        make_filter("letkf", radius=3)
    assert set(FILTERS) == {"enkf", "etkf", "letkf", "eakf"}
    with pytest.raises(TypeError):
        FILTERS["letkf"](50.0)  # keyword-only
    with pytest.raises(Exception, match="frozen|cannot assign"):
        make_filter("etkf").inflation = 2.0


@pytest.mark.parametrize("name,kw", [("letkf", {"loc_radius_km": 0.0}), ("enkf", {"inflation": 0.5}),
                                     ("letkf", {"analysis_spacing_km": -1.0}), ("etkf", {"rtps": 2.0}),
                                     ("etkf", {"period_km": 0.0}), ("enkf", {"seed": -1}),
                                     ("etkf", {"gross_error_sigma": 0.0})])
def test_bad_settings(name, kw):
    with pytest.raises(ValueError, match=list(kw)[0]):
        make_filter(name, **kw)


def test_bad_inputs():
    X, cell_xy, HX, y, r, oxy, ids = _plane_problem()
    flt = make_filter("letkf")

    def call(**over):
        a = dict(X=X.copy(), cell_xy_m=cell_xy, HX=HX, y=y, obs_err_var=r, obs_xy_m=oxy)
        k = dict(obs_ids=ids, cycle=1)
        for key, val in over.items():
            (a if key in a else k)[key] = val
        flt.analyse(a.pop("X"), *a.values(), **k)

    cases = [({"X": X.astype(np.float32)}, "X must"), ({"X": X[:, :, ::2]}, "X must"),
             ({"HX": HX[:, :5]}, "HX"), ({"y": y[:-1]}, "y must"), ({"obs_err_var": -r}, "obs_err_var"),
             ({"obs_ids": np.zeros_like(ids)}, "unique"), ({"cell_xy_m": cell_xy[:, :1]}, "cell_xy_m"),
             ({"y": np.where(ids == 1000, np.nan, y)}, "non-finite"), ({"cycle": -1}, "cycle"),
             ({"lower": np.zeros(3)}, "lower"), ({"lower": 1.0, "upper": 0.0}, "lower bound"),
             ({"obs_ids": ids.astype(float)}, "obs_ids")]
    for over, msg in cases:
        with pytest.raises(ValueError, match=msg):
            call(**over)
