"""DISPATCH downscaling: SCIENCE.md section 5 reference values, hourglass zones, conservation, QC."""

import time

import numpy as np
import pytest

from smda.assimilation import downscaling
from smda.assimilation.downscaling import dispatch
from smda.assimilation.downscaling.inputs import check_inputs
from smda.model.vegetation import vegetation_fraction

NR = NC = 72  # 2 x 2 pixels of 36 km


def _pixels(nr=NR, nc=NC, size=36):
    npc = nc // size
    return ((np.arange(nr)[:, None] // size) * npc + np.arange(nc)[None, :] // size).astype(np.int64)


def _scene(seed=0, nr=NR, nc=NC, n_acq=1):
    rng = np.random.default_rng(seed)
    ndvi = rng.uniform(0.12, 0.85, (nr, nc))
    fv = vegetation_fraction(ndvi)
    wet = rng.uniform(0, 1, (nr, nc))
    lst = np.stack([300.0 + 18.0 * (1 - fv) * (1 - wet) + 3 * fv + rng.normal(0, 0.5, (nr, nc))
                    for _ in range(n_acq)])
    return ndvi, lst


# --- SCIENCE.md section 5 reference values ------------------------------------------------------
def test_reference_soil_temperature_and_see():
    ts = dispatch.soil_temperature(305.0, 0.3, 300.0)
    assert ts == pytest.approx(307.142857, abs=1e-6)
    assert dispatch.soil_evaporative_efficiency(ts, 320.0, 295.0) == pytest.approx(0.514286, abs=1e-6)


def test_reference_linear_and_nonlinear_models():
    smp, slope = dispatch.smp_and_slope(0.20, 0.5, "linear")
    assert smp == pytest.approx(0.40, abs=1e-12) and slope == pytest.approx(0.40, abs=1e-12)
    assert dispatch.downscaling_relation(0.20, 0.6, 0.5, "linear") == pytest.approx(0.2400, abs=1e-12)
    smp, slope = dispatch.smp_and_slope(0.20, 0.5, "nonlinear")
    assert smp == pytest.approx(0.40, abs=1e-12)
    assert slope == pytest.approx(0.25465, abs=1e-5)
    assert dispatch.downscaling_relation(0.20, 0.6, 0.5, "nonlinear") == pytest.approx(0.22546, abs=1e-5)
    # the nonlinear SEE(SM) model passes through (SM_LR, SEE_LR) with SMp
    assert 0.5 - 0.5 * np.cos(np.pi * 0.20 / smp) == pytest.approx(0.5, abs=1e-12)
    with pytest.raises(ValueError, match="linear, nonlinear"):
        dispatch.smp_and_slope(0.2, 0.5, "cubic")


def test_nonlinear_slope_matches_finite_difference():
    sm_lr, see_lr = 0.23, 0.37
    smp, slope = dispatch.smp_and_slope(sm_lr, see_lr, "nonlinear")
    sm_of_see = lambda s: smp / np.pi * np.arccos(1 - 2 * s)  # noqa: E731 - inverse of the SEE(SM) model
    h = 1e-6
    assert slope == pytest.approx((sm_of_see(see_lr + h) - sm_of_see(see_lr - h)) / (2 * h), rel=1e-6)


def test_reference_through_hourglass_zone_a():
    # Tsmax 320, Tsmin 295, Tvmax 305, Tvmin 295: (fv 0.3, LST 305) lies in zone A, Tv = 300
    tv = dispatch.vegetation_temperature(305.0, 0.3, 320.0, 295.0, 305.0, 295.0)
    assert tv == pytest.approx(300.0, abs=1e-12)
    lst = np.array([[305.0]])
    em = np.array([[[320.0, 295.0, 305.0, 295.0]]])
    see = dispatch._see_kernel(lst, np.array([0.3]), np.array([0]), em, 0.9)
    assert see[0, 0] == pytest.approx(0.514286, abs=1e-6)


def test_hourglass_zones_b_c_d():
    tsmax, tsmin, tvmax, tvmin = 320.0, 295.0, 305.0, 295.0
    # zone B (above both diagonals): Tv = ((LST - (1 - fv) Tsmax)/fv + Tvmax)/2
    f, t = 0.5, 314.0
    expected = 0.5 * ((t - (1 - f) * tsmax) / f + tvmax)
    assert dispatch.vegetation_temperature(t, f, tsmax, tsmin, tvmax, tvmin) == pytest.approx(expected)
    # zone C (below both): Tv = ((LST - (1 - fv) Tsmin)/fv + Tvmin)/2
    f, t = 0.5, 296.0
    expected = 0.5 * ((t - (1 - f) * tsmin) / f + tvmin)
    assert dispatch.vegetation_temperature(t, f, tsmax, tsmin, tvmax, tvmin) == pytest.approx(expected)
    # zone D (between the diagonals, vegetation side): undetermined
    assert np.isnan(dispatch.vegetation_temperature(300.5, 0.85, tsmax, tsmin, tvmax, tvmin))


def test_end_members_and_safeguard():
    lst = np.array([[320.0, 296.0, 312.0, 290.0, 300.0]])
    fv = np.array([0.0, 0.1, 0.8, 0.85, 0.5])
    em = dispatch.end_members(lst, fv, np.zeros(5, np.int64), 1)[0, 0]
    np.testing.assert_allclose(em, [320.0, 296.0, 312.0, 290.0])
    # no dense cell: Tvmax from the safeguard Tvmin + (Tsmax - Tsmin)/2
    em = dispatch.end_members(lst[:, [0, 1, 4]], fv[[0, 1, 4]], np.zeros(3, np.int64), 1)[0, 0]
    np.testing.assert_allclose(em, [320.0, 296.0, 296.0 + 12.0, 296.0])
    # no thermal contrast: no end-members
    em = dispatch.end_members(np.array([[300.0, 300.5]]), np.array([0.0, 0.9]), np.zeros(2, np.int64), 1)
    assert np.isnan(em).all()


# --- the full operator --------------------------------------------------------------------------
def test_linear_model_averages_back_to_coarse_value():
    ndvi, lst = _scene(1)
    pix = _pixels()
    sm = np.array([0.12, 0.20, 0.28, 0.35])
    out = downscaling.downscale("dispatch", sm_coarse=sm, pixel_of_cell=pix, lst=lst, ndvi=ndvi)
    assert out.shape == (NR, NC)
    for p in range(4):
        vals = out[pix == p]
        assert np.isfinite(vals).mean() > 0.5
        assert np.nanmean(vals) == pytest.approx(sm[p], abs=1e-12)
        assert np.nanstd(vals) > 0.01  # a real spatial pattern, not a copy of the coarse value
    # within a pixel SM_HR is an increasing affine function of SEE (hotter soil -> drier)
    inp = check_inputs(sm, pix, lst, ndvi)
    _, _, see, _ = dispatch.downscale_fields(inp, dispatch.DispatchSettings())
    for p in range(4):
        ok = np.isfinite(see[0]) & np.isfinite(out.ravel()) & (pix.ravel() == p)
        assert np.corrcoef(see[0][ok], out.ravel()[ok])[0, 1] == pytest.approx(1.0, abs=1e-12)


def test_nonlinear_model_runs_and_differs():
    ndvi, lst = _scene(2)
    pix = _pixels()
    sm = np.full(4, 0.2)
    lin = dispatch.downscale(sm_coarse=sm, pixel_of_cell=pix, lst=lst, ndvi=ndvi)
    non = dispatch.downscale(sm_coarse=sm, pixel_of_cell=pix, lst=lst, ndvi=ndvi, see_model="nonlinear")
    assert np.array_equal(np.isnan(lin), np.isnan(non))
    assert np.nanmax(np.abs(lin - non)) > 1e-3
    assert np.nanmin(non) >= 0.0


def test_cloud_gaps_are_nan_not_zero_and_min_valid_fraction():
    ndvi, lst = _scene(3)
    pix = _pixels()
    lst[0, :10, :10] = np.nan  # small cloud in pixel 0
    lst[0, 36:, 36:][:30, :] = np.nan  # 30/36 of pixel 3 cloudy -> below the 50 % valid fraction
    sm = np.array([0.2, 0.25, 0.3, 0.15])
    out = downscaling.downscale("dispatch", sm_coarse=sm, pixel_of_cell=pix, lst=lst, ndvi=ndvi)
    assert np.isnan(out[:10, :10]).all()
    assert np.isnan(out[pix == 3]).all()
    # zeros occur only where SEE = 0 (the hottest soil, linear model), never in the gaps
    _, _, see, _ = dispatch.downscale_fields(check_inputs(sm, pix, lst, ndvi), dispatch.DispatchSettings())
    assert (see[0][out.ravel() == 0] == 0).all()
    assert np.isfinite(out[pix == 1]).mean() > 0.5
    # a missing coarse value gives no estimate in its pixel only
    sm[1] = np.nan
    out = downscaling.downscale("dispatch", sm_coarse=sm, pixel_of_cell=pix, lst=lst, ndvi=ndvi)
    assert np.isnan(out[pix == 1]).all() and np.isfinite(out[pix == 0]).any()
    # cells outside any pixel stay NaN
    pix2 = pix.copy()
    pix2[:, :5] = -1
    out = downscaling.downscale("dispatch", sm_coarse=np.full(4, 0.2), pixel_of_cell=pix2, lst=lst, ndvi=ndvi)
    assert np.isnan(out[:, :5]).all()


def test_dense_vegetation_threshold():
    ndvi, lst = _scene(4)
    pix = _pixels()
    ndvi[:5, :] = 0.89  # fv 0.987 > fv_max
    out = dispatch.downscale(sm_coarse=np.full(4, 0.2), pixel_of_cell=pix, lst=lst, ndvi=ndvi)
    assert np.isnan(out[:5, :]).all()


def test_several_acquisitions_average_the_valid_estimates():
    ndvi, lst = _scene(5, n_acq=2)
    lst[1] -= 12.0  # a cooler (e.g. Aqua/night) acquisition
    lst[1, 40:, :] = np.nan
    pix = _pixels()
    sm = np.array([0.1, 0.2, 0.3, 0.25])
    both = dispatch.downscale(sm_coarse=sm, pixel_of_cell=pix, lst=lst, ndvi=ndvi)
    a0 = dispatch.downscale(sm_coarse=sm, pixel_of_cell=pix, lst=lst[0], ndvi=ndvi)
    a1 = dispatch.downscale(sm_coarse=sm, pixel_of_cell=pix, lst=lst[1], ndvi=ndvi)
    expected = np.where(np.isfinite(a0) & np.isfinite(a1), 0.5 * (a0 + a1), np.where(np.isfinite(a0), a0, a1))
    np.testing.assert_allclose(both, expected, equal_nan=True, atol=1e-14)
    assert np.isnan(a1[36:, :]).all()  # pixels 2 and 3 lost most cells in acquisition 1


def test_elevation_correction_removes_lapse_rate_pattern():
    rng = np.random.default_rng(6)
    pix = _pixels()
    ndvi = np.full((NR, NC), 0.3)
    ndvi[::7, ::5] = 0.12  # a few bare cells for the wet edge
    elevation = rng.uniform(100.0, 1500.0, (NR, NC))
    base = np.where(ndvi < 0.15, 298.0, 305.0)
    base[3, 3] = base[40, 40] = base[3, 40] = base[40, 3] = 318.0  # hot bare end-member per pixel
    zbar = np.array([elevation[pix == p].mean() for p in range(4)])[pix]
    lst = base - 6.0e-3 * (elevation - zbar)
    sm = np.full(4, 0.2)
    corrected = dispatch.downscale(sm_coarse=sm, pixel_of_cell=pix, lst=lst, ndvi=ndvi, elevation_m=elevation)
    flat = dispatch.downscale(sm_coarse=sm, pixel_of_cell=pix, lst=base, ndvi=ndvi)
    np.testing.assert_allclose(corrected, flat, equal_nan=True, atol=1e-9)
    raw = dispatch.downscale(sm_coarse=sm, pixel_of_cell=pix, lst=lst, ndvi=ndvi, elevation_m=elevation,
                             elevation_correction=False)
    assert np.nanmax(np.abs(raw - flat)) > 1e-3


def test_scene_end_members():
    ndvi, lst = _scene(7)
    pix = _pixels()
    out = dispatch.downscale(sm_coarse=np.full(4, 0.2), pixel_of_cell=pix, lst=lst, ndvi=ndvi, end_members="scene")
    assert np.isfinite(out).mean() > 0.3
    for p in range(4):
        assert np.nanmean(out[pix == p]) == pytest.approx(0.2, abs=1e-12)


# --- bad input ----------------------------------------------------------------------------------
def test_bad_inputs_and_settings():
    ndvi, lst = _scene(8)
    pix = _pixels()
    ok = dict(sm_coarse=np.full(4, 0.2), pixel_of_cell=pix, lst=lst, ndvi=ndvi)
    with pytest.raises(ValueError, match="valid: dispatch, empirical, random_forest"):
        downscaling.downscale("disp", **ok)
    with pytest.raises(ValueError, match="valid: .*see_model"):
        downscaling.downscale("dispatch", **ok, see_modle="linear")
    with pytest.raises(ValueError, match="see_model"):
        downscaling.downscale("dispatch", **ok, see_model="cubic")
    with pytest.raises(ValueError, match="lst out of range"):
        downscaling.downscale("dispatch", **dict(ok, lst=lst - 273.15))
    with pytest.raises(ValueError, match="sm_coarse out of range"):
        downscaling.downscale("dispatch", **dict(ok, sm_coarse=np.full(4, 20.0)))
    with pytest.raises(ValueError, match="ndvi must have shape"):
        downscaling.downscale("dispatch", **dict(ok, ndvi=ndvi[:10]))
    with pytest.raises(ValueError, match="pixel_of_cell values"):
        downscaling.downscale("dispatch", **dict(ok, pixel_of_cell=pix + 1))
    with pytest.raises(ValueError, match="integer"):
        downscaling.downscale("dispatch", **dict(ok, pixel_of_cell=pix.astype(float)))
    with pytest.raises(ValueError, match="tb_h and tb_v"):
        downscaling.downscale("dispatch", **ok, tb_h=np.full(4, 250.0))
    with pytest.raises(ValueError, match="elevation_m must have shape"):
        downscaling.downscale("dispatch", **ok, elevation_m=np.zeros(3))


def test_pixel_of_cell_for_domain():
    from smda.model.grid import Domain

    land = np.ones((72, 108), bool)
    land[0, 0] = False
    d = Domain.from_centre(45.0, 5.0, 100, 72, land=land)
    pix = downscaling.pixel_of_cell_for(d)
    assert pix.shape == d.shape and pix.dtype == np.int64 and pix[0, 0] == -1
    assert np.bincount(pix[pix >= 0]).tolist() == [36 * 36 - 1] + [36 * 36] * 5
    np.testing.assert_array_equal(pix.ravel()[1:], d.pixel_index("M36")[1:])


# --- speed --------------------------------------------------------------------------------------
def test_speed_100km_30_dates():
    nr = nc = 108  # 108 x 108 km = 3 x 3 pixels of 36 km
    ndvi, lst = _scene(9, nr, nc, n_acq=2)
    pix = _pixels(nr, nc)
    rng = np.random.default_rng(10)
    sm = rng.uniform(0.05, 0.4, (30, 9))
    dispatch.downscale(sm_coarse=sm[0], pixel_of_cell=pix, lst=lst, ndvi=ndvi)  # compile / load cache
    t0 = time.perf_counter()
    for k in range(30):
        out = dispatch.downscale(sm_coarse=sm[k], pixel_of_cell=pix, lst=lst, ndvi=ndvi, elevation_m=ndvi * 100)
    elapsed = time.perf_counter() - t0
    assert np.isfinite(out).any()
    assert elapsed < 3.0, f"30 dates took {elapsed:.2f} s"
