"""Tests of smda.model.vegetation: NDVI -> fv, LAI, VWC."""

import numpy as np
import pytest

from smda.model import vegetation as veg


def test_fraction_end_members_and_clip():
    ndvi = np.array([-0.2, 0.15, 0.525, 0.90, 0.99, np.nan])
    fv = veg.vegetation_fraction(ndvi)
    np.testing.assert_allclose(fv[:5], [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-12)
    assert np.isnan(fv[5])


def test_fraction_dispatch_reference_shape_2d():
    # fv = 0.3 <=> NDVI = 0.15 + 0.3 * 0.75 = 0.375 (SCIENCE.md section 5 reference uses fv 0.3)
    ndvi = np.full((3, 4), 0.375)
    fv = veg.vegetation_fraction(ndvi)
    assert fv.shape == (3, 4)
    np.testing.assert_allclose(fv, 0.3, atol=1e-12)


def test_fraction_bad_end_members():
    with pytest.raises(ValueError, match="ndvi_veg"):
        veg.vegetation_fraction(np.array([0.3]), ndvi_soil=0.9, ndvi_veg=0.15)


def test_lai_beer_inversion_roundtrip_and_cap():
    ndvi = np.linspace(0.15, 0.85, 15)
    lai = veg.lai_from_ndvi(ndvi)
    fv = veg.vegetation_fraction(ndvi)
    np.testing.assert_allclose(1.0 - np.exp(-0.5 * lai), fv, atol=1e-12)
    assert np.all(np.diff(lai) > 0)
    lai_full = veg.lai_from_ndvi(np.array([0.9, 1.0, np.nan]))
    np.testing.assert_allclose(lai_full[:2], veg.LAI_MAX)
    assert np.isnan(lai_full[2])
    assert veg.lai_from_ndvi(np.array([0.1]))[0] == 0.0


def test_vwc_smap_relation_values():
    # foliage: 1.9134*0.6^2 - 0.3215*0.6 = 0.495924; stem: 10*(0.8-0.2)/(1-0.2) = 7.5
    v = veg.vwc_from_ndvi(np.array([0.6]), 0.8, 0.2, 10.0)
    np.testing.assert_allclose(v, 0.495924 + 7.5, rtol=1e-12)
    # grassland (stem factor 0): foliage only, floored at 0 for small NDVI
    v2 = veg.vwc_from_ndvi(np.array([0.05, 0.5, np.nan]), 0.6, 0.1, 0.0)
    np.testing.assert_allclose(v2[:2], [0.0, 1.9134 * 0.25 - 0.3215 * 0.5], atol=1e-12)
    assert np.isnan(v2[2])


def test_vwc_broadcast_per_cell_and_bad_inputs():
    ndvi = np.array([[0.3, 0.7], [0.5, 0.2]])
    sf = veg.stem_factor_from_igbp(np.array([[1, 10], [12, 16]]))
    v = veg.vwc_from_ndvi(ndvi, 0.8, 0.2, sf)
    assert v.shape == (2, 2) and np.all(v >= 0)
    # evergreen needleleaf forest carries stem water, grassland does not
    np.testing.assert_allclose(v[0, 0] - (1.9134 * 0.09 - 0.3215 * 0.3), 15.96 * 0.6 / 0.8, rtol=1e-12)
    np.testing.assert_allclose(v[0, 1], 1.9134 * 0.49 - 0.3215 * 0.7, rtol=1e-12)
    with pytest.raises(ValueError, match="stem_factor"):
        veg.vwc_from_ndvi(ndvi, 0.8, 0.2, -1.0)
    with pytest.raises(ValueError, match="ndvi_min"):
        veg.vwc_from_ndvi(ndvi, 1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="IGBP"):
        veg.stem_factor_from_igbp(np.array([0, 5]))
