"""Domain decomposition: whole pixels, balanced land, pixel-major order, every cell exactly once."""

import numpy as np
import pytest

from smda.model.grid import Domain
from smda.run.decomp import decompose


def test_every_land_cell_once_and_balanced():
    rng = np.random.default_rng(0)
    land = rng.random((36 * 4, 36 * 5)) > 0.3
    land[:36, :72] = False  # two pixels of sea
    domain = Domain(0, 0, *land.shape, land)
    for n in (1, 2, 3, 7):
        dec = decompose(domain, n)
        cells = [dec.cells(r) for r in range(n)]
        allc = np.concatenate(cells)
        assert allc.size == land.sum() and np.unique(allc).size == allc.size
        assert np.all(land.ravel()[allc])
        sizes = np.array([c.size for c in cells])
        assert sizes.min() > 0
        assert sizes.max() - sizes.min() <= 2 * 36 * 36  # within two pixels of land
        # whole pixels: each pixel's cells belong to one rank, contiguous and row-major inside
        pix = dec.pixel
        for r in range(n):
            for p, a, b in dec.pixel_slices(r):
                np.testing.assert_array_equal(cells[r][a:b], np.flatnonzero((pix == p) & land.ravel()))


def test_one_rank_order_is_concatenation_of_ranks():
    domain = Domain(0, 0, 72, 108, np.ones((72, 108), bool))
    one = decompose(domain, 1).cells(0)
    two = decompose(domain, 2)
    np.testing.assert_array_equal(one, np.concatenate([two.cells(0), two.cells(1)]))


def test_too_many_ranks():
    with pytest.raises(ValueError, match="at most 6 ranks"):
        decompose(Domain(0, 0, 72, 108, np.ones((72, 108), bool)), 7)
