"""Counter-based random streams: reproducible, split-independent, well distributed."""

import numpy as np
from scipy import stats

from smda.model.streams import normal_field, purpose_id, uniform_field


def test_same_key_same_numbers_and_split_independence():
    cells = np.arange(1000, 3000, dtype=np.int64) * 7919
    a = normal_field(3, "test", cells, 8, step=11)
    b = np.vstack([normal_field(3, "test", cells[:700], 8, 11), normal_field(3, "test", cells[700:], 8, 11)])
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, normal_field(3, "test", cells, 8, step=12))
    assert not np.array_equal(a, normal_field(4, "test", cells, 8, step=11))
    assert not np.array_equal(a, normal_field(3, "other", cells, 8, step=11))
    assert purpose_id("test") == purpose_id("test") != purpose_id("tesT")


def test_distributions():
    cells = np.arange(200_000, dtype=np.int64)
    u = uniform_field(1, "u", cells, 2, 0).ravel()
    assert 0.0 < u.min() and u.max() < 1.0
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    z = normal_field(1, "z", cells, 2, 0).ravel()
    assert stats.kstest(z, "norm").pvalue > 1e-3
    # neighbouring keys are uncorrelated
    assert abs(np.corrcoef(z[:-1], z[1:])[0, 1]) < 0.01
