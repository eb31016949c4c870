"""Land surface model physics: conservation, bounds under extreme forcing, sensitivities, ET formulas."""

import math

import numpy as np
import pytest

from smda.constants import (
    CP_AIR,
    LV,
    SIGMA,
    saturation_vapour_pressure,
    saturation_vapour_pressure_slope,
    specific_humidity,
    specific_humidity_slope,
)
from smda.model import lsm, soil
from smda.model.state import State, water_storage

DT = 1800.0
N_MEM = 3
# neutral bulk coefficient of heat and vapour over bare soil (z0 0.01 m, z 10 m, z0h = z0 / 10: Garratt 1992)
CHN_BARE = 0.4**2 / (math.log(10.0 / 0.01) * (math.log(10.0 / 0.01) + math.log(10.0)))


def _forcing(n_cells, precip=0.0, sw=0.0, lw=300.0, t=290.0, q=0.006, p=1.0e5, wind=3.0):
    shape = (n_cells,)  # base fields: every member has them unless a Perturbation says otherwise
    return {"precip": np.full(shape, precip), "sw_down": np.full(shape, sw), "lw_down": np.full(shape, lw),
            "t_air": np.full(shape, t), "q_air": np.full(shape, q), "p_surf": np.full(shape, p),
            "wind": np.full(shape, wind)}


def _diurnal(forcing, k, sw_max, t_mean, t_amp=5.0):
    """Set a clear-sky-like diurnal cycle for step k (half-hourly)."""
    hour = (k * DT / 3600.0) % 24.0
    s = max(0.0, math.sin(math.pi * (hour - 6.0) / 12.0))
    forcing["sw_down"][...] = sw_max * s
    forcing["t_air"][...] = t_mean + t_amp * math.sin(math.pi * (hour - 9.0) / 12.0)


class Budget:
    """Runs steps and accumulates the water budget terms."""

    def __init__(self, params, state, veg):
        self.params, self.state, self.veg = params, state, veg
        self.fluxes = lsm.Fluxes(state.n_cells, state.n_members)
        self.w0 = water_storage(state, params).copy()
        self.p = np.zeros((state.n_cells, state.n_members))
        self.loss = np.zeros_like(self.p)
        self.sums = {name: np.zeros_like(self.p) for name in lsm.FLUXES}
        self.bounds_ok = True

    def step(self, forcing):
        lsm.step(self.state, forcing, self.params, self.veg, DT, self.fluxes)
        self.p += forcing["precip"][:, None] * DT
        for name in lsm.WATER_LOSSES:
            self.loss += self.fluxes[name] * DT
        for name in lsm.FLUXES:
            self.sums[name] += self.fluxes[name] * DT
        st, p = self.state, self.params
        self.bounds_ok &= bool(
            np.all(st.sm_surface >= p.wres[:, None]) and np.all(st.sm_surface <= p.wsat[:, None])
            and np.all(st.sm_rootzone >= p.wres[:, None]) and np.all(st.sm_rootzone <= p.wsat[:, None])
            and np.all(np.isfinite(st.data)) and np.all(st.swe >= 0) and np.all(st.canopy_water >= 0)
            and np.all(np.isfinite(self.fluxes.data)))

    def residual(self):
        """Budget residual relative to the precipitation plus storage scale."""
        w1 = water_storage(self.state, self.params)
        scale = self.p + self.w0
        return np.max(np.abs((w1 - self.w0) - (self.p - self.loss)) / scale)


def _setup(sand, clay, fveg, lai, sm=0.25, t=288.0, **kw):
    params = soil.soil_parameters(np.asarray(sand, float), np.asarray(clay, float))
    n = params.n_cells
    state = State.initial(n, N_MEM, params, sm=sm, t=t, **kw)
    veg = {"fveg": np.full(n, fveg, dtype=float), "lai": np.full(n, lai, dtype=float)}
    return params, state, veg


SOILS = ([0.92, 0.40, 0.10], [0.03, 0.20, 0.60])


def test_extreme_rain_on_sand_bounds_and_closure():
    params, state, veg = _setup(*SOILS, fveg=0.5, lai=2.0, sm=0.1)
    b = Budget(params, state, veg)
    f = _forcing(3, precip=200.0 / 3600.0, t=295.0, q=0.016)  # 200 mm/h
    for _ in range(48):
        b.step(f)
    assert b.bounds_ok
    assert b.residual() < 1e-13
    # sand and loam columns fill up; the clay's low conductivity turns most of the rain into runoff
    assert np.allclose(state.sm_rootzone[:2], params.wsat[:2, None], rtol=0, atol=0.02)
    runoff = b.sums["surface_runoff"][:, 0]
    assert runoff[2] > 0.8 * b.p[2, 0] and runoff[2] > runoff[1] > runoff[0]
    assert b.sums["drainage"][0, 0] > b.sums["drainage"][2, 0]


def test_month_of_drought_with_strong_sun_bounds_and_drying():
    params, state, veg = _setup(*SOILS, fveg=0.3, lai=1.0, sm=0.3)
    b = Budget(params, state, veg)
    f = _forcing(3, q=0.002, wind=5.0)
    f["sw_down"][...] = 1200.0
    for k in range(30 * 48):
        _diurnal(f, k, 1200.0, 305.0, 8.0)
        b.step(f)
    assert b.bounds_ok
    assert b.residual() < 1e-12
    assert np.all(state.sm_surface < 0.5 * params.wfc[:, None])
    assert np.all(state.t_skin < 360.0)


def test_extreme_cold_snow_and_flags():
    params, state, veg = _setup(*SOILS, fveg=0.2, lai=0.5, sm=0.3, t=270.0)
    b = Budget(params, state, veg)
    f = _forcing(3, precip=2.0 / 3600.0, t=243.15, lw=180.0, q=0.0003)  # -30 C, snowing 2 mm/h
    for _ in range(48):
        b.step(f)
    assert b.bounds_ok and b.residual() < 1e-13
    assert np.all(state.swe > 45.0)  # 48 mm of snowfall minus sublimation
    assert np.all(b.fluxes.frozen) and np.all(b.fluxes.snow)
    assert np.all(state.t_skin < 273.15)
    # warm spell: the snow melts (degree day), flags clear once the snow is gone and soil is warm
    f = _forcing(3, t=288.0, q=0.008, lw=330.0)
    for k in range(15 * 48):
        _diurnal(f, k, 600.0, 288.0)
        b.step(f)
    assert b.bounds_ok and b.residual() < 1e-12
    assert np.all(state.swe == 0.0)
    assert not np.any(b.fluxes.snow)
    assert not np.any(b.fluxes.frozen)


@pytest.mark.parametrize("fveg, min_warming", [(0.0, 1.0), (0.5, 0.3)])
def test_drying_surface_raises_skin_temperature(fveg, min_warming):
    """Same forcing, same root zone: the cell with the drier surface layer is warmer at midday."""
    params, state, veg = _setup([0.4, 0.4], [0.2, 0.2], fveg=fveg, lai=2.0 * fveg, sm=0.25, t=295.0)
    state.sm_surface[0] = 0.35
    state.sm_surface[1] = 0.05
    fl = lsm.Fluxes(2, N_MEM)
    f = _forcing(2, sw=800.0, t=298.0, q=0.008)
    lsm.step(state, f, params, veg, DT, fl)
    assert np.all(state.t_skin[1] > state.t_skin[0] + min_warming)
    assert np.all(fl.latent_heat[1] < fl.latent_heat[0] - 20.0)
    assert np.all(fl.sensible_heat[1] > fl.sensible_heat[0])


def test_dry_down_warms_midday_skin():
    """A rain-free sunny fortnight on bare soil: midday skin minus air temperature grows as the soil dries.

    The 0-5 cm layer is mass-conserving (C1 <= 1, see smda.model.lsm), so it dries over weeks rather than
    hours and the warming is gradual: every day warmer than the last once the layer is below field
    capacity, by more than 1.5 K over the fortnight, with the surface layer drier than the root zone.

    Why 1.5 K and not the 4 K this test asked before the cap: bare soil evaporates beta Ep with the Lee &
    Pielke (1992) beta = ((1 - cos(pi wg / wfc)) / 2)^2 below field capacity (smda.model.lsm), so the skin
    warms only as far as beta falls. ISBA's uncapped C1 is calibrated for a layer of about 1 cm (Noilhan &
    Mahfouf 1996): it dried this 5 cm layer below 0.15 m3 m-3 in the fortnight and the skin warmed by more
    than 4 K. With C1 <= 1 the force term removes no more than the evaporated water while the restore term
    refills the layer from the root zone, so after 14 days wg is 0.16 m3 m-3 (wg / wfc = 0.64, beta = 0.5):
    midday LE is 350 W m-2 (360-386 before), sensible heat has grown from 5 to 36 W m-2, and the midday
    skin-air difference has grown by 2.1 K.
    """
    params, state, veg = _setup([0.4], [0.2], fveg=0.0, lai=0.0, sm=0.40, t=295.0)
    fl = lsm.Fluxes(1, N_MEM)
    f = _forcing(1, q=0.008)
    excess = []
    for k in range(14 * 48):
        _diurnal(f, k, 850.0, 297.0)
        lsm.step(state, f, params, veg, DT, fl)
        if (k * DT / 3600.0) % 24.0 == 12.0:
            excess.append(float(state.t_skin[0, 0] - f["t_air"][0]))
    assert excess[-1] > excess[0] + 1.5 and np.all(np.diff(excess[3:]) > 0)
    assert state.sm_surface[0, 0] < 0.17 < state.sm_rootzone[0, 0]


def test_clay_holds_more_water_than_sand_after_drainage():
    params, state, veg = _setup([0.92, 0.10], [0.03, 0.60], fveg=0.0, lai=0.0, sm=0.6, t=280.0)
    state.sm_surface[...] = state.sm_rootzone  # saturated column (clipped to wsat)
    b = Budget(params, state, veg)
    f = _forcing(2, t=280.0, q=0.0060, lw=340.0)  # dark, humid (RH 97 %): little evaporation
    for _ in range(60 * 48):
        b.step(f)
    assert b.residual() < 1e-12
    assert np.all(state.sm_rootzone[1] > state.sm_rootzone[0] + 0.2)
    # each drains towards (and not below) its field capacity
    assert np.all(np.abs(state.sm_rootzone - params.wfc[:, None]) < 0.03)
    assert np.all(b.fluxes.drainage >= 0)


def test_one_year_synthetic_closure_and_restart_equivalence():
    """A year of synthetic weather: closure to round-off; a restart through to_dict equals the uninterrupted run."""
    params, state, veg = _setup(*SOILS, fveg=0.6, lai=3.0, sm=0.3)
    b = Budget(params, state, veg)
    f = _forcing(3)
    n_steps = 365 * 48
    saved = None
    for k in range(n_steps):
        day = k // 48
        _diurnal(f, k, 300.0 + 500.0 * math.sin(math.pi * day / 365.0), 268.0 + 30.0 * math.sin(math.pi * day / 365.0))
        f["precip"][...] = 4.0 / 3600.0 if (k % 240) < 12 else 0.0  # 24 mm every 5 days
        f["precip"][1] *= 2.0
        f["q_air"][...] = 0.7 * 0.622 * 611.2 * math.exp(17.67 * (f["t_air"][0] - 273.15)
                                                          / (f["t_air"][0] - 29.65)) / 1e5
        b.step(f)
        if k == n_steps - 49:
            saved = (state.to_dict(), {key: v.copy() for key, v in f.items()})
    assert b.bounds_ok
    assert b.residual() < 1e-10
    # restart the last day from the saved state and compare bitwise (forcing of the last day rebuilt)
    st2 = State.from_dict(saved[0])
    fl2 = lsm.Fluxes(3, N_MEM)
    f2 = _forcing(3)
    for k in range(n_steps - 48, n_steps):
        day = k // 48
        _diurnal(f2, k, 300.0 + 500.0 * math.sin(math.pi * day / 365.0), 268.0 + 30.0 * math.sin(math.pi * day / 365.0))
        f2["precip"][...] = 4.0 / 3600.0 if (k % 240) < 12 else 0.0
        f2["precip"][1] *= 2.0
        f2["q_air"][...] = 0.7 * 0.622 * 611.2 * math.exp(17.67 * (f2["t_air"][0] - 273.15)
                                                           / (f2["t_air"][0] - 29.65)) / 1e5
        lsm.step(st2, f2, params, veg, DT, fl2)
    assert np.array_equal(st2.data, state.data)


def test_cells_and_members_are_independent():
    """Results do not depend on which cells share an array (domain split) or on member order."""
    rng = np.random.default_rng(3)
    params, state, veg = _setup(*SOILS, fveg=0.4, lai=2.0, sm=0.2)
    state.sm_rootzone[...] = rng.uniform(0.1, 0.35, state.sm_rootzone.shape)
    f = _forcing(3, precip=1e-3, sw=500.0)
    offsets = np.ascontiguousarray(rng.uniform(-10, 10, (3, 1, N_MEM)))  # t_air of every member
    full = state.copy()
    fl = lsm.Fluxes(3, N_MEM)
    lsm.step(full, f, params, veg, DT, fl, lsm.Perturbation(("t_air",), offsets))
    for c in range(3):
        part = State(state.data[c:c + 1].copy())
        fp = lsm.Fluxes(1, N_MEM)
        lsm.step(part, {k: v[c:c + 1] for k, v in f.items()}, params.subset([c]), {k: v[c:c + 1] for k, v in veg.items()},
                 DT, fp, lsm.Perturbation(("t_air",), offsets[c:c + 1].copy()))
        assert np.array_equal(part.data[0], full.data[c])
        assert np.array_equal(fp.data[:, 0], fl.data[:, c])
    rev = State(np.ascontiguousarray(state.data[:, :, ::-1]))
    lsm.step(rev, f, params, veg, DT, fl, lsm.Perturbation(("t_air",), np.ascontiguousarray(offsets[:, :, ::-1])))
    assert np.array_equal(rev.data[:, :, ::-1], full.data)


def test_perturbed_members_equal_single_runs_with_their_forcing():
    """A member of a perturbed ensemble step is the one-member step with its own forcing (base x factor for
    precipitation and shortwave, base + offset for longwave and air temperature), bit for bit; the ensemble
    means of fluxes and state are the means over members, whether or not the members' fluxes are kept."""
    rng = np.random.default_rng(7)
    params, state, veg = _setup(*SOILS, fveg=0.5, lai=2.5, sm=0.25, swe=5.0, canopy_water=0.1)
    state.sm_surface[...] = rng.uniform(0.05, 0.4, state.sm_surface.shape)
    f = _forcing(3, precip=2e-4, sw=400.0, lw=320.0, t=274.0)
    values = np.ascontiguousarray(np.stack([rng.lognormal(0, 0.5, (3, N_MEM)), rng.lognormal(0, 0.3, (3, N_MEM)),
                                            rng.normal(0, 20, (3, N_MEM)), rng.normal(0, 2, (3, N_MEM))], axis=1))
    pert = lsm.Perturbation(lsm.PERTURBABLE, values)
    ens, fl = state.copy(), lsm.Fluxes(3, N_MEM)
    lsm.step(ens, f, params, veg, DT, fl, pert)
    for m in range(N_MEM):
        one, f1 = State(np.ascontiguousarray(state.data[:, :, m:m + 1])), lsm.Fluxes(3, 1)
        fm = dict(f, **{k: pert.members(k, f[k])[:, m].copy() for k in lsm.PERTURBABLE})
        lsm.step(one, fm, params, veg, DT, f1)
        assert np.array_equal(one.data[:, :, 0], ens.data[:, :, m])
        assert np.array_equal(f1.data[:, :, 0], fl.data[:, :, m]) and np.array_equal(f1.flags[:, :, 0], fl.flags[:, :, m])
    np.testing.assert_allclose(fl.mean, fl.data.mean(axis=2), rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(fl.state_mean, ens.data.mean(axis=2).T, rtol=1e-14)
    lean, fm = state.copy(), lsm.Fluxes(3, N_MEM, per_member=False)
    lsm.step(lean, f, params, veg, DT, fm, pert)
    assert np.array_equal(lean.data, ens.data) and np.array_equal(fm.mean, fl.mean) and fm.data.size == 0
    with pytest.raises(AttributeError, match="ensemble means only"):
        fm.latent_heat  # noqa: B018


def test_bare_soil_evaporation_matches_bulk_formula():
    """Wet bare soil, neutral stratification (T_air = T_skin): E = rho_a CH V (qsat(Ts) - q_a) with the
    linearised qsat of the energy balance, and LE = Lv E."""
    params, state, veg = _setup([0.4], [0.2], fveg=0.0, lai=0.0, sm=0.40, t=298.15)
    fl = lsm.Fluxes(1, N_MEM)
    f = _forcing(1, sw=600.0, t=298.15, q=0.010, p=1.0e5, wind=4.0)
    ts0 = 298.15
    lsm.step(state, f, params, veg, DT, fl)
    ts1 = state.t_skin[0, 0]
    es = 611.2 * math.exp(17.67 * (ts0 - 273.15) / (ts0 - 29.65))
    q0 = 0.622 * es / (1e5 - 0.378 * es)
    dq0 = 0.622 * 1e5 / (1e5 - 0.378 * es) ** 2 * es * 17.67 * 243.5 / (ts0 - 29.65) ** 2
    rho = 1e5 / (287.05 * 298.15 * (1 + 0.61 * 0.010))
    ch = CHN_BARE
    e_expected = rho * ch * 4.0 * (q0 + dq0 * (ts1 - ts0) - 0.010)
    assert fl.soil_evaporation[0, 0] == pytest.approx(e_expected, rel=1e-12)
    assert fl.latent_heat[0, 0] == pytest.approx(LV * e_expected, rel=1e-12)
    assert fl.sensible_heat[0, 0] == pytest.approx(rho * CP_AIR * ch * 4.0 * (ts1 - 298.15), rel=1e-12)
    assert fl.transpiration[0, 0] == 0.0 and fl.interception_loss[0, 0] == 0.0


@pytest.mark.parametrize("rel_hum", [0.2, 0.6])
def test_soil_evaporative_efficiency_follows_published_curve(rel_hum):
    """SEE = Eg / Ep of bare soil against 0-5 cm moisture (one 1 s step, so the skin temperature is the same in
    every cell): the Lee & Pielke (1992) beta (0.5 - 0.5 cos(pi wg / wfc))^2, whatever the air humidity, inside
    the published SEE(SM) envelope: 0 at the residual moisture, 1 from field capacity, and at wfc / 2 between
    Merlin et al.'s (2011) (0.5 - 0.5 cos(pi SM / SMmax))^P with P = 3 (0.125) and DISPATCH's linear SM / SMp
    (0.5, Merlin et al. 2012). The former "alpha" form gave SEE = 0 below hu = q_a / qsat(Ts) (0.35 wfc here)."""
    n = 41
    params, state, veg = _setup(np.full(n, 0.4), np.full(n, 0.2), fveg=0.0, lai=0.0, sm=0.25, t=303.0)
    wfc, wres = params.wfc[0], params.wres[0]
    wg = np.linspace(wres, 1.2 * wfc, n)
    state.sm_surface[...] = wg[:, None]
    es = 611.2 * math.exp(17.67 * 30.0 / (303.0 - 29.65))
    f = _forcing(n, sw=0.0, lw=400.0, t=303.0, q=0.622 * rel_hum * es / (1e5 - 0.378 * rel_hum * es), wind=3.0)
    fl = lsm.Fluxes(n, N_MEM)
    lsm.step(state, f, params, veg, 1.0, fl)
    see = fl.soil_evaporation[:, 0] / fl.soil_evaporation[-1, 0]
    expected = np.where(wg < wfc, (0.5 - 0.5 * np.cos(np.pi * wg / wfc)) ** 2, 1.0)
    np.testing.assert_allclose(see, expected, rtol=1e-3, atol=1e-6)
    assert see[0] < 0.01 and np.all(np.diff(see) >= 0) and np.all(see[wg >= wfc] == pytest.approx(1.0, abs=1e-6))
    half = float(np.interp(0.5 * wfc, wg, see))
    assert 0.125 < half < 0.5
    assert np.all(fl.soil_evaporation[wg >= 0.3 * wfc, 0] > 0.0)


def test_energy_balance_backward_euler():
    """Over bare dry soil (no evaporation, hu ~ 0) the new skin temperature solves the linearised backward
    Euler force-restore equation."""
    params, state, veg = _setup([0.4], [0.2], fveg=0.0, lai=0.0, sm=0.2, t=290.0)
    state.sm_surface[...] = params.wres[0]
    state.t_deep[...] = 285.0
    fl = lsm.Fluxes(1, N_MEM)
    f = _forcing(1, sw=700.0, lw=320.0, t=290.0, q=0.020, wind=2.0)  # q_air > qsat(Ts): dew branch off below
    f["q_air"][...] = 0.0  # dry air; hu(wres) tiny
    lsm.step(state, f, params, veg, DT, fl)
    ts1, ts0, t2 = state.t_skin[0, 0], 290.0, 285.0
    emis, alb = params.emissivity[0], params.albedo[0]
    rho = 1e5 / (287.05 * 290.0)
    chv = CHN_BARE * 2.0
    cg = params.cgsat[0] * (params.wsat[0] / 0.2) ** (params.b[0] / (2 * math.log(10)))
    f0 = (1 - alb) * 700 + emis * 320 - emis * SIGMA * ts0**4 - rho * CP_AIR * chv * (ts0 - 290.0)
    k = 4 * emis * SIGMA * ts0**3 + rho * CP_AIR * chv
    omega = 2 * math.pi / 86400
    le_small = fl.latent_heat[0, 0]
    assert abs(le_small) < 5.0
    lhs = (ts1 - ts0) / DT
    rhs = cg * (f0 - k * (ts1 - ts0) - le_small) - omega * (ts1 - t2)
    assert lhs == pytest.approx(rhs, rel=2e-2)


def test_qsat_is_the_shared_formula():
    """The kernel's saturation humidity and its slope (reciprocals of the shared denominators) equal the
    smda.constants formulas to round-off, including the cap at half the pressure."""
    for t in (230.0, 273.15, 300.0, 330.0, 380.0):
        for p in (5.0e4, 1.0e5):
            es = min(saturation_vapour_pressure(t), 0.5 * p)
            des = saturation_vapour_pressure_slope(t, es) if es < 0.5 * p else 0.0
            q, dq = lsm._qsat(t, p)
            assert q == pytest.approx(specific_humidity(es, p), rel=1e-14)
            assert dq == pytest.approx(specific_humidity_slope(es, p) * des, rel=1e-14, abs=0.0)


def test_priestley_taylor_reference():
    le, e = lsm.priestley_taylor(298.15, 400.0, 101300.0)
    assert float(le) == pytest.approx(371.40, abs=0.01)
    assert float(e) * 3600.0 == pytest.approx(0.54573, rel=1e-5)
    le, _ = lsm.priestley_taylor(298.15, 400.0, 101300.0, theta=0.2, theta_wp=0.1, theta_fc=0.3)
    assert float(le) == pytest.approx(0.5 * 371.40, abs=0.01)


def test_step_bad_input():
    params, state, veg = _setup([0.4], [0.2], fveg=0.1, lai=1.0)
    fl = lsm.Fluxes(1, N_MEM)
    f = _forcing(1)
    with pytest.raises(ValueError, match="misses"):
        lsm.step(state, {k: v for k, v in f.items() if k != "wind"}, params, veg, DT, fl)
    with pytest.raises(ValueError, match="dt_s"):
        lsm.step(state, f, params, veg, 0.0, fl)
    with pytest.raises(ValueError, match="fveg"):
        lsm.step(state, f, params, {"lai": veg["lai"]}, DT, fl)
    with pytest.raises(ValueError, match="shape"):
        lsm.step(state, f, params, veg, DT, lsm.Fluxes(2, N_MEM))
    bad = dict(f, t_air=np.full((1, N_MEM), 400.0))
    with pytest.raises(ValueError, match="t_air"):
        lsm.step(state, bad, params, veg, DT, fl, check=True)
    with pytest.raises(ValueError, match="float64"):
        lsm.step(state, dict(f, wind=np.ones(1, dtype=np.float32)), params, veg, DT, fl)
    with pytest.raises(ValueError, match="Perturbation"):  # members differ only through a Perturbation
        lsm.step(state, dict(f, t_air=np.full((1, N_MEM), 290.0)), params, veg, DT, fl)
    with pytest.raises(ValueError, match="names"):
        lsm.Perturbation(("q_air",), np.ones((1, 1, N_MEM)))
    with pytest.raises(ValueError, match="perturbation values"):
        lsm.step(state, f, params, veg, DT, fl, lsm.Perturbation(("precip",), np.ones((1, 1, N_MEM + 1))))
    lsm.step(state, f, params, veg, DT, fl, check=True)
    assert np.all(np.isfinite(state.data))
