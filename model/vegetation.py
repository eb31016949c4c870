"""NDVI -> vegetation fraction, leaf area index and vegetation water content.

Equations
---------
Vegetation fraction (the DISPATCH definition; Merlin et al. 2008, 2012, doi:10.1016/j.rse.2011.05.022)::

    fv = clip((NDVI - NDVIs) / (NDVIv - NDVIs), 0, 1)        NDVIs = 0.15, NDVIv = 0.90

Leaf area index by inverting Beer's law for the fraction of ground covered (Norman et al. 1995,
doi:10.1016/0168-1923(95)02265-Y; Choudhury et al. 1994), with extinction coefficient k = 0.5::

    fv = 1 - exp(-k LAI)   =>   LAI = -ln(1 - fv) / k,  capped at lai_max (default 7 m2 m-2)

Vegetation water content, SMAP ancillary relation (Jackson et al. 1999, doi:10.1016/S0034-4257(99)00036-X;
Chan et al. 2013, SMAP ancillary data report "Vegetation Water Content", JPL D-53061)::

    VWC = (1.9134 NDVI^2 - 0.3215 NDVI) + stem_factor (NDVImax - NDVImin) / (1 - NDVImin)   [kg m-2]

The foliage part is floored at 0 (it is slightly negative for 0 < NDVI < 0.168).

``STEM_FACTOR_IGBP`` gives the stem factor (kg m-2) per IGBP class 1-16 approximately as tabulated in the
SMAP VWC ancillary report (peak stem water of forests and woody classes; 0 for herbaceous, barren,
water, snow and urban classes). Treat it as a default that a namelist can override.

Inputs are arrays of any shape ((n_cells,) or (nrows, ncols)); NaN propagates to the outputs.
"""

import numpy as np

NDVI_SOIL = 0.15
NDVI_VEG = 0.90
BEER_EXTINCTION = 0.5
LAI_MAX = 7.0

# IGBP classes 1..16 (index 0 unused -> NaN): stem factor, kg m-2.
STEM_FACTOR_IGBP = np.array([
    np.nan,
    15.96,  # 1 evergreen needleleaf forest
    19.15,  # 2 evergreen broadleaf forest
    13.38,  # 3 deciduous needleleaf forest
    10.31,  # 4 deciduous broadleaf forest
    12.84,  # 5 mixed forest
    3.00,   # 6 closed shrublands
    1.50,   # 7 open shrublands
    4.00,   # 8 woody savannas
    3.00,   # 9 savannas
    0.00,   # 10 grasslands
    0.00,   # 11 permanent wetlands
    3.00,   # 12 croplands
    0.00,   # 13 urban and built-up
    1.50,   # 14 cropland / natural vegetation mosaic
    0.00,   # 15 snow and ice
    0.00,   # 16 barren or sparsely vegetated
])


def _as_float(a):
    return np.asarray(a, dtype=np.float64)


def vegetation_fraction(ndvi, ndvi_soil=NDVI_SOIL, ndvi_veg=NDVI_VEG):
    """Fractional vegetation cover fv = (NDVI - NDVIs)/(NDVIv - NDVIs), clipped to [0, 1].

    Parameters
    ----------
    ndvi : array_like, any shape
        NDVI (-). NaN propagates.
    ndvi_soil, ndvi_veg : float
        NDVI of bare soil and full cover (-); ndvi_veg must exceed ndvi_soil.

    Returns
    -------
    ndarray, same shape as ``ndvi``, float64 in [0, 1] (or NaN).
    """
    if not ndvi_veg > ndvi_soil:
        raise ValueError(f"vegetation_fraction: ndvi_veg ({ndvi_veg}) must exceed ndvi_soil ({ndvi_soil})")
    x = _as_float(ndvi)
    fv = (x - ndvi_soil) / (ndvi_veg - ndvi_soil)
    return np.clip(fv, 0.0, 1.0)  # np.clip keeps NaN


def lai_from_ndvi(ndvi, ndvi_soil=NDVI_SOIL, ndvi_veg=NDVI_VEG, extinction=BEER_EXTINCTION, lai_max=LAI_MAX):
    """Leaf area index (m2 m-2) by Beer's-law inversion of the vegetation fraction.

    LAI = -ln(1 - fv) / extinction, capped at ``lai_max`` (reached as fv -> 1).

    Parameters
    ----------
    ndvi : array_like, any shape
        NDVI (-). NaN propagates.
    ndvi_soil, ndvi_veg : float
        End members of :func:`vegetation_fraction`.
    extinction : float
        Beer's-law extinction coefficient (> 0), default 0.5 (spherical leaf angles).
    lai_max : float
        Upper cap (m2 m-2, > 0).

    Returns
    -------
    ndarray, same shape as ``ndvi``, in [0, lai_max] (or NaN).
    """
    if not extinction > 0:
        raise ValueError(f"lai_from_ndvi: extinction must be > 0, got {extinction}")
    if not lai_max > 0:
        raise ValueError(f"lai_from_ndvi: lai_max must be > 0, got {lai_max}")
    fv = vegetation_fraction(ndvi, ndvi_soil, ndvi_veg)
    # fv at which the cap is reached; keeps log finite at fv = 1.
    fv_cap = 1.0 - np.exp(-extinction * lai_max)
    with np.errstate(invalid="ignore"):
        f = np.minimum(fv, fv_cap)
    lai = -np.log1p(-f) / extinction
    return np.minimum(lai, lai_max)


def vwc_from_ndvi(ndvi, ndvi_max, ndvi_min, stem_factor):
    """Vegetation water content (kg m-2) from NDVI, SMAP ancillary relation.

    VWC = max(0, 1.9134 NDVI^2 - 0.3215 NDVI) + stem_factor (NDVImax - NDVImin) / (1 - NDVImin)

    Parameters
    ----------
    ndvi : array_like, any shape
        Current NDVI (-). NaN propagates.
    ndvi_max, ndvi_min : array_like, broadcastable to ``ndvi``
        Annual (climatological) maximum and minimum NDVI of the cell (-); ndvi_min < 1.
    stem_factor : array_like, broadcastable to ``ndvi``
        Peak stem water content (kg m-2, >= 0), e.g. ``STEM_FACTOR_IGBP[igbp_class]``.

    Returns
    -------
    ndarray of the broadcast shape, >= 0 (or NaN).
    """
    x = _as_float(ndvi)
    nmax = _as_float(ndvi_max)
    nmin = _as_float(ndvi_min)
    sf = _as_float(stem_factor)
    if np.any(nmin >= 1.0):
        raise ValueError("vwc_from_ndvi: ndvi_min must be < 1")
    if np.any(sf < 0.0):
        raise ValueError("vwc_from_ndvi: stem_factor must be >= 0 (kg m-2)")
    if np.any(nmax < nmin):
        raise ValueError("vwc_from_ndvi: ndvi_max must be >= ndvi_min")
    foliage = 1.9134 * x * x - 0.3215 * x
    foliage = np.where(foliage < 0.0, 0.0, foliage)  # NaN stays NaN
    stem = sf * (nmax - nmin) / (1.0 - nmin)
    return foliage + stem


def stem_factor_from_igbp(igbp_class):
    """Stem factor (kg m-2) per cell from IGBP class codes 1-16 (array of ints, any shape).

    Codes outside 1-16 (e.g. 0 water, 255 fill) raise ValueError.
    """
    c = np.asarray(igbp_class)
    if not np.issubdtype(c.dtype, np.integer):
        raise ValueError("stem_factor_from_igbp: igbp_class must be an integer array")
    if np.any((c < 1) | (c > 16)):
        bad = np.unique(c[(c < 1) | (c > 16)])[:10]
        raise ValueError(f"stem_factor_from_igbp: IGBP class must be in 1..16, found {bad.tolist()}")
    return STEM_FACTOR_IGBP[c]
