"""EASE-Grid 2.0 definitions, nesting, domain snapping and the non-nested 25 km overlap."""

import numpy as np
import pytest

from smda.model.grid import GRIDS, M01, Domain, grid, latlon_to_xy, xy_to_latlon


@pytest.mark.parametrize(
    "name, lat0",
    [("M01", 84.99996), ("M03", 84.91190), ("M09", 84.65642), ("M25", 83.51714), ("M36", 83.63198)],
)
def test_row0_centre_latitude_matches_nsidc(name, lat0):
    lat, _ = GRIDS[name].latlon(0, 0)
    assert lat == pytest.approx(lat0, abs=1e-5)


def test_m36_first_column_and_grid_edges():
    g = GRIDS["M36"]
    _, lon = g.latlon(0, 0)
    assert lon == pytest.approx(-179.81328, abs=1e-5)
    # outer edges at +-85.0445664 deg, and the grid is symmetric about the equator
    lat_top, _ = xy_to_latlon(0.0, g.y0)
    assert lat_top == pytest.approx(85.0445664, abs=1e-6)
    assert g.y0 - g.n_rows * g.cell_m == pytest.approx(-g.y0, abs=1e-6)
    assert g.x0 + g.n_cols * g.cell_m == pytest.approx(-g.x0, abs=1e-6)


def test_projection_constants():
    # a * k0 with k0 = cos30/sqrt(1 - e^2 sin^2 30) (PRODUCTS.md section 8)
    x, _ = latlon_to_xy(0.0, 1.0)
    assert x * 180 / np.pi == pytest.approx(5528256.6393, abs=1e-3)


def test_exact_nesting():
    s1 = M01.cell_m
    for name, n in (("M03", 3), ("M09", 9), ("M36", 36)):
        assert GRIDS[name].cell_m == pytest.approx(n * s1, rel=1e-13)
        assert GRIDS[name].n_cols * n == M01.n_cols
        assert GRIDS[name].n_rows * n == M01.n_rows
    assert GRIDS["M25"].cell_m / s1 == pytest.approx(25.0029, abs=1e-4)


def test_known_points_roundtrip():
    # Salamanca area and a southern-hemisphere point: lat/lon -> row/col -> centre within half a cell
    for lat, lon in [(41.234, -5.472), (-33.9, 151.2), (0.0, 0.0)]:
        for g in GRIDS.values():
            r, c = g.rowcol_of_latlon(lat, lon)
            x, y = latlon_to_xy(lat, lon)
            xc, yc = g.xy(r, c)
            assert abs(x - xc) <= g.cell_m / 2 and abs(y - yc) <= g.cell_m / 2
    # the equator is the boundary between two rows at the grid centre
    r, c = GRIDS["M36"].rowcol_of_latlon(1e-6, 1e-6)
    assert (int(r), int(c)) == (202, 482)


def test_smap_sample_rows_and_columns(sample_data):
    h5py = pytest.importorskip("h5py")
    f = sample_data / "smap" / "SMAP_L2_SM_P_02801_A_20150811T013002_R18290_001.h5"
    with h5py.File(f) as h:
        g = h["Soil_Moisture_Retrieval_Data"]
        lat, lon = g["latitude"][:], g["longitude"][:]
        row, col = g["EASE_row_index"][:], g["EASE_column_index"][:]
    r, c = GRIDS["M36"].rowcol_of_latlon(lat, lon)
    np.testing.assert_array_equal(r, row)
    np.testing.assert_array_equal(c, col)
    clat, clon = GRIDS["M36"].latlon(row, col)
    np.testing.assert_allclose(clat, lat, atol=1e-4)
    np.testing.assert_allclose(clon, lon, atol=1e-4)


def test_domain_snaps_to_whole_36km_pixels():
    d = Domain.from_bbox(41.0, 41.6, -5.8, -5.0)
    assert d.row0 % 36 == 0 and d.col0 % 36 == 0 and d.nrows % 36 == 0 and d.ncols % 36 == 0
    lat, lon = d.latlon()
    assert lat.min() < 41.0 and lat.max() > 41.6 and lon.min() < -5.8 and lon.max() > -5.0
    # the snapped box is minimal: removing a pixel row/column would uncover the box
    assert lat[35:-36].min() > 41.0 - 0.33 and lon[:, 36:].min() > -5.8 - 0.43
    c = Domain.from_centre(41.3, -5.4, 100, 70)
    assert c.ncols == 36 * 3 and c.nrows == 36 * 2
    with pytest.raises(ValueError, match="whole 36 km"):
        Domain(1, 0, 36, 36, np.ones((36, 36), bool))
    with pytest.raises(KeyError, match="valid: M01"):
        grid("M50")


def test_parents_nest():
    d = Domain.from_centre(41.3, -5.4, 72, 72)
    for name, n in (("M03", 3), ("M09", 9), ("M36", 36)):
        pr, pc = d.parent(name)
        counts = np.unique(pr * 100000 + pc, return_counts=True)[1]
        assert np.all(counts == n * n)
    pr, pc = d.parent("M36")
    gr, gc = np.divmod(d.global_index(), M01.n_cols)
    np.testing.assert_array_equal(pr, gr // 36)
    np.testing.assert_array_equal(pc, gc // 36)
    cells = np.array([0, 5, d.n_cells - 1])
    np.testing.assert_array_equal(np.stack(d.parent("M09", cells)), np.stack(d.parent("M09"))[:, cells])
    # local pixel numbers: row-major over the domain's 2 x 2 pixels, each 36 x 36 cells
    pix = d.pixel_index("M36").reshape(d.shape)
    assert d.coarse_shape("M36") == (2, 2)
    np.testing.assert_array_equal(pix[::36, ::36], [[0, 1], [2, 3]])
    np.testing.assert_array_equal(np.bincount(pix.ravel()), [36 * 36] * 4)
    np.testing.assert_array_equal(pix[35, 35:37], [0, 1])
    with pytest.raises(KeyError, match="overlap"):
        d.parent("M25")


def test_m25_fractional_overlap():
    d = Domain.from_centre(41.3, -5.4, 108, 108)
    cell, row, col, frac = d.overlap("M25")
    # every 1 km cell is fully covered
    np.testing.assert_allclose(np.bincount(cell, frac, minlength=d.n_cells), 1.0, atol=1e-12)
    # an interior 25 km pixel holds (25025.26/1000.895)^2 km-cells of area
    area = {}
    for r, c, f in zip(row, col, frac, strict=False):
        area[(r, c)] = area.get((r, c), 0.0) + f
    r_mid, c_mid = np.median(row).astype(int), np.median(col).astype(int)
    assert area[(r_mid, c_mid)] == pytest.approx((25025.26 / M01.cell_m) ** 2, rel=1e-9)
    # nested grids give whole cells
    _, _, _, f36 = d.overlap("M36")
    assert np.all(f36 == 1.0)
