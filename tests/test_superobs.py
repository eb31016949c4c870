"""Super-observations of a dense fine source: the error variance of a mean of correlated errors (known limits and
the synthetic generator's own errors), the box mean and its geometry, edge cases, order independence, namelist."""

import dataclasses

import numpy as np
import pytest

from smda.assimilation.observations.superobs import lattice_correlation, mean_error_variance, superobs
from smda.assimilation.observations.synthetic import SyntheticObsConfig, synthetic_coarse_obs
from smda.assimilation.observations.table import QC_CODES, ObsTable
from smda.model.grid import GRIDS
from smda.run.namelist import NamelistError, load
from smda.run.sources import as_assimilated

M03, M09 = GRIDS["M03"], GRIDS["M09"]
T0 = np.datetime64("2019-05-03T06:00", "s")


def _fine(rows, cols, value, error=0.05, qc=0, flags=0, time=T0, footprint="M03"):
    rows, cols = np.asarray(rows), np.asarray(cols)
    g = GRIDS[footprint]
    x, y = g.xy(rows, cols)
    lat, lon = g.latlon(rows, cols)
    return ObsTable(time=time, x=x, y=y, lat=lat, lon=lon, kind="sm", pol="", angle_deg=0.0, value=value,
                    error_std=error, flags=flags, footprint=footprint, row=rows, col=cols, fov_km=0.0, source="s1", qc=qc)


def _box(r9=500, c9=800):
    """The 9 M03 pixels of M09 pixel (r9, c9)."""
    rr, cc = np.meshgrid(np.arange(3 * r9, 3 * r9 + 3), np.arange(3 * c9, 3 * c9 + 3), indexing="ij")
    return rr.ravel(), cc.ravel()


def test_correlation_limits_and_shape():
    r = lattice_correlation([0.0, 0.5, 1.0, 2.0, 3.0])
    assert r[0] == pytest.approx(1.0, abs=1e-6) and r[3] == r[4] == 0.0
    assert 0.6 < r[1] < 0.75 and 0.15 < r[2] < 0.3  # falls over one lattice spacing, never negative
    s = np.linspace(0, 2, 41)
    assert np.all(np.diff(lattice_correlation(s)) <= 1e-12)


def test_mean_of_uncorrelated_errors_has_variance_sigma2_over_n_and_correlated_stays_sigma2():
    rows, cols = _box()
    x, y = M03.xy(rows, cols)
    sd = np.full(9, 0.05)
    groups = np.zeros(9, np.int64)
    assert mean_error_variance(x, y, sd, groups, 0.0)[0] == pytest.approx(0.05 ** 2 / 9, rel=1e-12)
    unequal = np.linspace(0.02, 0.06, 9)  # independent: sum sigma_i^2 / n^2
    assert mean_error_variance(x, y, unequal, groups, 0.0)[0] == pytest.approx(np.sum(unequal ** 2) / 81, rel=1e-12)
    assert mean_error_variance(x, y, sd, groups, 1e6)[0] == pytest.approx(0.05 ** 2, rel=1e-4)  # fully correlated
    between = mean_error_variance(x, y, sd, groups, 10.0)[0]
    assert 0.05 ** 2 / 9 < between < 0.05 ** 2
    two = mean_error_variance(x, y, sd, np.r_[np.zeros(4, np.int64), np.ones(5, np.int64)], 0.0)  # groups apart
    np.testing.assert_allclose(two, [0.05 ** 2 / 4, 0.05 ** 2 / 5])


def test_variance_matches_the_generators_correlated_errors():
    """Box means (M09) of the synthetic generator's 3 km errors correlated over 10 km: the predicted variance of a
    mean is the empirical one (over 400 boxes and 30 independent fields; lattice offsets vary from box to box),
    about 5 times sigma^2 / 9."""
    rr, cc = np.meshgrid(np.arange(1500, 1560), np.arange(2400, 2460), indexing="ij")
    rows, cols = rr.ravel(), cc.ravel()
    cfg = SyntheticObsConfig(seed=5, footprint="M03", sm_error_std=0.05, gap_fraction=0.0, error_corr_km=10.0)
    truth = {("sm", "", 0.0): np.zeros(rows.size)}
    groups = np.unique(np.stack([rows // 3, cols // 3], 1), axis=0, return_inverse=True)[1].ravel()
    means = [np.bincount(groups, synthetic_coarse_obs(truth, rows, cols, T0, k, cfg, grid_name="M03").value) / 9
             for k in range(30)]
    x, y = M03.xy(rows, cols)
    predicted = mean_error_variance(x, y, np.full(rows.size, 0.05), groups, 10.0)
    assert np.mean(np.square(means)) == pytest.approx(predicted.mean(), rel=0.06)
    assert predicted.mean() > 4 * 0.05 ** 2 / 9


def test_superob_is_the_box_mean_at_the_pixel_with_the_mean_time_and_flags():
    rows, cols = _box()
    value = np.linspace(0.1, 0.3, 9)
    time = T0 + np.arange(9).astype("timedelta64[s]") * 60
    flags = np.zeros(9, np.uint32)
    flags[2], flags[7] = 1, 4
    t = superobs(_fine(rows, cols, value, time=time, flags=flags), "M09", corr_km=0.0)
    assert len(t) == 1
    assert t.value[0] == pytest.approx(value.mean()) and t.error_std[0] == pytest.approx(0.05 / 3)
    assert (t.footprint[0], t.row[0], t.col[0], t.fov_km[0], t.qc[0]) == ("M09", 500, 800, 0.0, 0)
    np.testing.assert_allclose((t.x[0], t.y[0]), M09.xy(500, 800))
    assert t.time[0] == T0 + np.timedelta64(240, "s") and t.flags[0] == 5 and t.source[0] == "s1"


def test_edge_cases_no_accepted_observation_one_observation_and_passing_rows():
    rows, cols = _box()
    rejected = _fine(rows, cols, np.full(9, 0.2), qc=QC_CODES["rfi"])
    out = superobs(rejected, "M09", 10.0)
    assert len(out) == 9 and np.array_equal(out.qc, rejected.qc)  # nothing accepted: unchanged
    assert len(superobs(ObsTable.empty(), "M09", 10.0)) == 0
    one = superobs(_fine(rows[:1], cols[:1], [0.23]), "M09", 10.0)  # a box with one observation: its value and error
    assert (len(one), one.value[0], one.error_std[0], one.footprint[0]) == (1, 0.23, 0.05, "M09")
    # rejected rows, and boxes of the same or a coarser grid, pass unchanged and come first
    mixed = ObsTable.concat([_fine(rows, cols, np.full(9, 0.2), qc=np.r_[QC_CODES["rfi"], np.zeros(8, int)]),
                             _fine([500], [800], [0.3], footprint="M09")])
    out = superobs(mixed, "M09", 10.0)
    assert list(out.footprint) == ["M03", "M09", "M09"] and out.qc[0] == QC_CODES["rfi"] and out.value[1] == 0.3
    with pytest.raises(ValueError, match="M01"):
        superobs(mixed, "M01")


def test_result_does_not_depend_on_the_order_of_the_table():
    """The observation table is replicated on every rank, so the super-observations are too; they do not even
    depend on its order (pixels sorted)."""
    rng = np.random.default_rng(1)
    r1, c1 = _box(500, 800)
    r2, c2 = _box(501, 800)
    rows, cols = np.r_[r1, r2[:5]], np.r_[c1, c2[:5]]
    t = _fine(rows, cols, rng.uniform(0.1, 0.4, rows.size), error=rng.uniform(0.03, 0.06, rows.size))
    a = superobs(t, "M09", 10.0)
    b = superobs(t.select(rng.permutation(len(t))), "M09", 10.0)
    for f in dataclasses.fields(ObsTable):
        va, vb = getattr(a, f.name), getattr(b, f.name)
        if va.dtype.kind == "f":
            np.testing.assert_allclose(va, vb, rtol=1e-13)
        else:
            np.testing.assert_array_equal(va, vb)
    assert list(a.row) == [500, 501] and a.error_std[1] > a.error_std[0]  # 5 members: a larger error than 9


def test_namelist_keys_inflation_and_checks(tmp_path):
    body = ("name: s\ndomain:\n  centre: [41.35, -5.40]\n  landscape: synthetic\ntime:\n  start: 2019-05-02T00:00\n"
            "  end: 2019-05-03T00:00\nobservations:\n  - name: tb\n  - name: s1\n    kind: sm\n    grid: {grid}\n"
            "    error: 0.05\n    error_corr_km: 10\n    superob_grid: M09\n    error_inflation: 2\n")
    path = tmp_path / "a.yaml"
    path.write_text(body.format(grid="M03"))
    o = load(path).observations[1]
    assert (o.superob_grid, o.error_inflation) == ("M09", 2.0)
    rows, cols = _box()
    t = as_assimilated(_fine(rows, cols, np.full(9, 0.2)), o)
    assert len(t) == 1 and t.footprint[0] == "M09"
    x, y = M03.xy(rows, cols)
    expected = 2.0 * mean_error_variance(x, y, np.full(9, 0.05), np.zeros(9, np.int64), 10.0)[0]
    assert t.error_std[0] ** 2 == pytest.approx(expected, rel=1e-12)
    path.write_text(body.format(grid="M36"))
    with pytest.raises(NamelistError, match="superob_grid"):
        load(path)
