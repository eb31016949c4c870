"""Land surface model: ISBA force-restore water and energy balance, one time step.

Based on Noilhan & Planton (1989, doi:10.1175/1520-0493(1989)117<0536:ASPOLS>2.0.CO;2) and Noilhan &
Mahfouf (1996, doi:10.1016/0921-8181(95)00043-7); parameters from ``smda.model.soil``; state layout in
``smda.model.state``. Units: SI; water fluxes in kg m-2 s-1 (= mm s-1), energy fluxes in W m-2.

Surface fractions: snow covers psn = swe / (swe + 10 kg m-2); the rest is split into vegetation
(fveg, per-cell input) and bare soil.

Water (per step of length dt; every flux is limited so that no store goes below its bound)::

    snow fraction of precipitation fs = clip((273.15 + 1 - T_air) / 2, 0, 1)
    canopy:  dWr/dt = fveg (1-psn) rain - Ei - drip,   Wrmax = 0.2 fveg LAI,  drip = excess over Wrmax
    snow:    dswe/dt = snowfall - Es - M,              M = 3 mm d-1 K-1 max(0, T_air - 273.15) (degree day)
    soil input Pin = rain (1 - fveg (1-psn)) + drip + M
    infiltration capacity Icap = rho_w Ks (1 + b (1 - wg/wsat)); infiltration-excess runoff = max(0, Pin - Icap)
    d w2/dt = (I - Eg - Etr) / (rho_w d2) - C3/tau max(0, w2 - wfc); water above wsat -> saturation-excess runoff
    d wg/dt = C1/(rho_w d1) (I - Eg) - C2/tau (wg - wgeq)
    C1 = min(1, C1sat (wsat / max(wg, wwilt))^(b/2 + 1));  C2 = C2ref w2 / (wsat - w2 + 0.001)

ISBA's C1 (Noilhan & Mahfouf 1996) is calibrated for a superficial layer of about 1 cm and grows
without bound as the soil dries, so that 1 mm of rain could saturate it and an afternoon of sun dry
it to the residual. Here wg is the 0-5 cm layer that L-band sees, so C1 is capped at 1: the force term
changes wg by no more than the water that crosses its surface (infiltration, evaporation), and the
restore term exchanges with the root zone. Without the cap the 0-5 cm moisture swung between wilting
and saturation every day; with it the layer dries over days, and the skin warms more slowly.
    wgeq = wsat [x - a x^p (1 - x^(8p))],  x = w2 / wsat

The drainage term is integrated exactly over the step (exponential decay of w2 - wfc), the restore
term of wg implicitly, so the scheme is stable for sand at hourly and longer steps. wg lies inside the
0-d2 column whose mean is w2, so the water storage is W = rho_w d2 w2 + swe + Wr and the budget
dW = (P - Eg - Es - Etr - Ei - R - D) dt closes to round-off by construction. wg is kept in
[wres, wsat] (it is not a separate store).

Turbulent exchange, with rho_a = p / (R_d T_a (1 + 0.61 q_a)), V = max(wind, 0.5 m s-1) at z = 10 m,
z0 = (1-fveg) z0_soil + fveg z0_veg, neutral CHn = (k / ln(z/z0))^2 and a simple bulk-Richardson
stability factor (after Louis 1979: sqrt(1 - 16 Ri) unstable, 1/(1 + 10 Ri) stable, from the
previous skin temperature)::

    Ep  = rho_a CH V (qsat(Ts) - q_a)                       potential evaporation
    Eg  = (1-fveg)(1-psn) rho_a CH V (hu qsat(Ts) - q_a),   hu = 0.5 (1 - cos(pi wg / wfc)) (1 if wg >= wfc)
    Ei  = fveg (1-psn) delta Ep,                            delta = (Wr/Wrmax)^(2/3)
    Etr = fveg (1-psn) (1-delta) Ra/(Ra + Rs) Ep,           Ra = 1/(CH V), Rs = rsmin / (LAI F1 F2)
    F1  = (f + rsmin/rsmax)/(1 + f), f = 0.55 (SW/100)(2/LAI);  F2 = clip((w2 - wwilt)/(wfc - wwilt), 0, 1)
    Es  = psn Ep (sublimation)

Bare-soil evaporation depends on the SURFACE layer moisture wg through hu, so a drying surface
evaporates less and its skin warms (the link DISPATCH relies on). Condensation (qsat(Ts) < q_a) is
deposited on each fraction as negative evaporation; transpiration is never negative.

Energy (force-restore)::

    dTs/dt = CT (Rn - H - LE) - (2 pi / tau)(Ts - T2),   dT2/dt = (Ts - T2)/tau,   tau = 86400 s
    Rn = (1 - alb) SW + eps LW - eps sigma Ts^4,  alb = albedo + psn (0.7 - albedo)
    H  = rho_a cp CH V (Ts - T_a),   LE = Lv (Eg + Ei + Etr) + Ls Es
    1/CT = (1-fveg)/CG + fveg/Cv,  CG = CGsat (wsat/w2)^(b / (2 ln 10)),  Cv = 2e-5 K m2 J-1

Ts is advanced by backward Euler with Rn - H - LE linearised about the old Ts (qsat(Ts) too, and the
water fluxes use the same linearised qsat, so latent heat and evaporation agree); T2 then implicitly.
The ground heat diagnostic is the residual G = Rn - H - LE with the new Ts (heat into skin and soil).

Diagnostics: ``frozen`` where t_skin or t_deep < 273.15 K (no soil freezing physics; the flag tells the
observation operator to reject the cell), ``snow`` where swe > 1 kg m-2.
"""

import math

import numpy as np

from smda.constants import (
    CP_AIR,
    GRAVITY,
    KARMAN,
    LS,
    LV,
    R_DRY,
    RHO_WATER,
    SIGMA,
    T_FREEZE,
    saturation_vapour_pressure,
    saturation_vapour_pressure_slope,
    specific_humidity,
    specific_humidity_slope,
)
from smda.jit import inline, kernel
from smda.model.soil import P, SoilParameters
from smda.model.state import State, V
from smda.variables import VARIABLES

# model constants (physical constants: smda.constants)
TAU_S = 86400.0             # force-restore period
CV_VEG = 2.0e-5             # K m2 J-1, vegetation thermal coefficient (Noilhan & Planton 1989)
Z_REF_M = 10.0              # reference height of wind and air temperature
WIND_MIN = 0.5              # m s-1
W_CRN = 10.0                # kg m-2, snow cover half-saturation
SNOW_ALBEDO = 0.7
DDF = 3.0 / 86400.0         # kg m-2 s-1 K-1 (3 mm/day/K)
WRMAX_PER_LAI = 0.2         # kg m-2
RSMAX = 5000.0              # s m-1
RGL = 100.0                 # W m-2 (crops)
SNOW_FLAG_KG_M2 = 1.0

# flux rows of Fluxes.data (the kernel writes them by index); units and long names in smda.variables
FLUXES = ("soil_evaporation", "transpiration", "interception_loss", "surface_runoff", "drainage",
          "sensible_heat", "latent_heat", "ground_heat", "net_radiation", "snowmelt")
F = {name: i for i, name in enumerate(FLUXES)}
FLAGS = ("frozen", "snow")
FORCING = ("precip", "sw_down", "lw_down", "t_air", "q_air", "p_surf", "wind")

# row indices of the packed parameter table (compile-time constants for numba)
_P_A = P["a"]
_P_ALBEDO = P["albedo"]
_P_B = P["b"]
_P_C1SAT = P["c1sat"]
_P_C2REF = P["c2ref"]
_P_C3 = P["c3"]
_P_CGSAT = P["cgsat"]
_P_D1_M = P["d1_m"]
_P_D2_M = P["d2_m"]
_P_EMISSIVITY = P["emissivity"]
_P_KS_M_S = P["ks_m_s"]
_P_P = P["p"]
_P_RSMIN_S_M = P["rsmin_s_m"]
_P_WFC = P["wfc"]
_P_WRES = P["wres"]
_P_WSAT = P["wsat"]
_P_WWILT = P["wwilt"]
_P_Z0_SOIL_M = P["z0_soil_m"]
_P_Z0_VEG_M = P["z0_veg_m"]



class Fluxes:
    """Preallocated per-step diagnostics.

    ``data`` (n_fluxes, n_cells, n_members) float64 in ``FLUXES`` order (units in ``smda.variables``),
    ``flags`` (2, n_cells, n_members) uint8 in ``FLAGS`` order; attribute access gives
    (n_cells, n_members) views (``fluxes.latent_heat``, ``fluxes.frozen`` as bool).
    """

    def __init__(self, n_cells, n_members):
        self.data = np.zeros((len(FLUXES), int(n_cells), int(n_members)))
        self.flags = np.zeros((len(FLAGS), int(n_cells), int(n_members)), dtype=np.uint8)

    @classmethod
    def empty(cls, n_cells, n_members):
        return cls(n_cells, n_members)

    def __getattr__(self, name):
        if name in F:
            return self.data[F[name]]
        if name in FLAGS:
            return self.flags[FLAGS.index(name)].view(bool)
        raise AttributeError(name)

    def __getitem__(self, name):
        if name in F or name in FLAGS:
            return getattr(self, name)
        raise KeyError(f"unknown flux {name!r}; valid: {', '.join(FLUXES + FLAGS)}")


@inline
def _qsat(t, p):
    """Saturation specific humidity (kg kg-1) and its T-derivative, Bolton (1980) over water."""
    es = saturation_vapour_pressure(t)
    des = saturation_vapour_pressure_slope(t, es)
    if es > 0.5 * p:
        es = 0.5 * p
        des = 0.0
    return specific_humidity(es, p), specific_humidity_slope(es, p) * des


@inline
def _withdraw(rate, store, dt):
    """A loss ``rate`` (kg m-2 s-1) from ``store`` (kg m-2) over ``dt`` s, capped at what the store holds:
    (rate taken, store left)."""
    if rate * dt >= store:
        return store / dt, 0.0
    return rate, store - rate * dt


@kernel
def _step_kernel(x, precip, sw_down, lw_down, t_air, q_air, p_surf, wind, par, fveg, lai, dt, flux, flags):
    n_cells = x.shape[0]
    n_mem = x.shape[2]
    omega = 2.0 * math.pi / TAU_S
    decay_t2 = dt / TAU_S
    for i in range(n_cells):
        wsat = par[_P_WSAT, i]
        wwilt = par[_P_WWILT, i]
        wfc = par[_P_WFC, i]
        wres = par[_P_WRES, i]
        b = par[_P_B, i]
        c1sat = par[_P_C1SAT, i]
        c2ref = par[_P_C2REF, i]
        c3 = par[_P_C3, i]
        a_eq = par[_P_A, i]
        p_eq = par[_P_P, i]
        cgsat = par[_P_CGSAT, i]
        ks = par[_P_KS_M_S, i]
        d1 = par[_P_D1_M, i]
        d2 = par[_P_D2_M, i]
        alb0 = par[_P_ALBEDO, i]
        emis = par[_P_EMISSIVITY, i]
        rsmin = par[_P_RSMIN_S_M, i]
        veg = fveg[i]
        lai_i = max(lai[i], 0.01)
        z0 = (1.0 - veg) * par[_P_Z0_SOIL_M, i] + veg * par[_P_Z0_VEG_M, i]
        lg = math.log(Z_REF_M / z0)
        chn = KARMAN * KARMAN / (lg * lg)
        wrmax = WRMAX_PER_LAI * veg * lai[i]
        rhod2 = RHO_WATER * d2
        drain_frac = 1.0 - math.exp(-c3 * dt / TAU_S)
        c1exp = 0.5 * b + 1.0
        cgexp = b / (2.0 * math.log(10.0))
        log_wsat = math.log(wsat)
        for j in range(n_mem):
            wg = x[i, 0, j]
            w2 = x[i, 1, j]
            ts = x[i, 2, j]
            t2 = x[i, 3, j]
            swe = x[i, 4, j]
            wr = x[i, 5, j]
            pr = precip[i, j]
            sw = sw_down[i, j]
            ta = t_air[i, j]
            qa = q_air[i, j]
            ps = p_surf[i, j]
            # ---- precipitation phase
            fs = (T_FREEZE + 1.0 - ta) * 0.5
            fs = min(max(fs, 0.0), 1.0)
            snowfall = fs * pr
            rain = pr - snowfall
            # ---- surface fractions and exchange coefficient
            psn = swe / (swe + W_CRN)
            fbare = (1.0 - veg) * (1.0 - psn)
            fvs = veg * (1.0 - psn)
            v = max(wind[i, j], WIND_MIN)
            rib = GRAVITY * Z_REF_M * (ta - ts) / (ta * v * v)
            if rib < 0.0:
                fstab = math.sqrt(1.0 - 16.0 * max(rib, -0.5))
            else:
                fstab = 1.0 / (1.0 + 10.0 * min(rib, 2.0))
            chv = chn * fstab * v
            rho_a = ps / (R_DRY * ta * (1.0 + 0.61 * qa))
            rchv = rho_a * chv
            # ---- moisture factors (start-of-step state)
            if wg < wfc:
                hu = 0.5 * (1.0 - math.cos(math.pi * wg / wfc))
            else:
                hu = 1.0
            if wrmax > 0.0 and wr > 0.0:
                delta = (min(wr, wrmax) / wrmax) ** (2.0 / 3.0)
            else:
                delta = 0.0
            f2 = (w2 - wwilt) / (wfc - wwilt)
            f2 = min(max(f2, 0.0), 1.0)
            if f2 > 0.0 and veg > 0.0:
                ff = 0.55 * sw / RGL * 2.0 / lai_i
                f1 = (ff + rsmin / RSMAX) / (1.0 + ff)
                rs = min(rsmin / (lai_i * f1 * f2), RSMAX)
                ra = 1.0 / chv
                tr_fac = (1.0 - delta) * ra / (ra + rs)
            else:
                tr_fac = 0.0
            # ---- energy balance: backward Euler, linearised
            q0, dq0 = _qsat(ts, ps)
            alb = alb0 + psn * (SNOW_ALBEDO - alb0)
            ts3 = ts * ts * ts
            rn0 = (1.0 - alb) * sw + emis * lw_down[i, j] - emis * SIGMA * ts3 * ts
            h0 = rho_a * CP_AIR * chv * (ts - ta)
            ep0 = rchv * (q0 - qa)
            if ep0 < 0.0:
                eg0 = fbare * ep0
            else:
                eg0 = fbare * rchv * max(hu * q0 - qa, 0.0)
            le0 = LV * (eg0 + fvs * (delta + tr_fac) * ep0) + LS * psn * ep0
            dle = rchv * dq0 * (LV * (fbare * hu + fvs * (delta + tr_fac)) + LS * psn)
            kcoef = 4.0 * emis * SIGMA * ts3 + rho_a * CP_AIR * chv + dle
            lw2 = log_wsat - math.log(max(w2, wres))  # ln(wsat / w2)
            cg = cgsat * math.exp(cgexp * lw2)
            ct = 1.0 / ((1.0 - veg) / cg + veg / CV_VEG)
            ts1 = ts + dt * (ct * (rn0 - h0 - le0) - omega * (ts - t2)) / (1.0 + dt * (ct * kcoef + omega))
            t21 = (t2 + decay_t2 * ts1) / (1.0 + decay_t2)
            # ---- water fluxes at the new skin temperature
            q1 = q0 + dq0 * (ts1 - ts)  # the linearisation used by the energy balance
            ep = rchv * (q1 - qa)
            # snow: snowfall, sublimation / deposition, degree-day melt
            swe1 = swe + snowfall * dt
            es = psn * ep
            es, swe1 = _withdraw(es, swe1, dt)
            melt = DDF * max(ta - T_FREEZE, 0.0)
            melt, swe1 = _withdraw(melt, swe1, dt)
            # canopy: interception, evaporation of intercepted water or dew, drip
            rain_c = fvs * rain
            wr1 = wr + rain_c * dt
            if ep >= 0.0:
                ei = fvs * delta * ep
            else:
                ei = fvs * ep
            ei, wr1 = _withdraw(ei, wr1, dt)
            drip = 0.0
            if wr1 > wrmax:
                drip = (wr1 - wrmax) / dt
                wr1 = wrmax
            # soil input, infiltration excess
            pin = (rain - rain_c) + drip + melt
            icap = RHO_WATER * ks * (1.0 + b * (1.0 - wg / wsat))
            r_inf = max(pin - icap, 0.0)
            infil = pin - r_inf
            # transpiration (root zone, stops at wilting point)
            etr = 0.0
            if ep > 0.0 and tr_fac > 0.0:
                etr = fvs * tr_fac * ep
                etr_max = (w2 - wwilt) * rhod2 / dt
                if etr > etr_max:
                    etr = max(etr_max, 0.0)
            # bare-soil evaporation (surface-moisture limited through hu)
            if ep < 0.0:
                eg = fbare * ep
            else:
                eg = fbare * rchv * max(hu * q1 - qa, 0.0)
            eg_max = (w2 - wres) * rhod2 / dt + infil - etr
            if eg >= eg_max:
                eg = eg_max
                w21 = wres
            else:
                w21 = w2 + (infil - eg - etr) * dt / rhod2
            r_sat = 0.0
            if w21 > wsat:
                r_sat = (w21 - wsat) * rhod2 / dt
                w21 = wsat
            drain = 0.0
            if w21 > wfc:
                dw = (w21 - wfc) * drain_frac
                drain = dw * rhod2 / dt
                w21 -= dw
            # surface layer: force term explicit, restore term implicit
            c1 = c1sat * math.exp(c1exp * (log_wsat - math.log(max(wg, wwilt))))
            c1 = min(c1, 1.0)
            c2 = c2ref * w21 / (wsat - w21 + 0.001)
            xr = w21 / wsat
            xp = math.exp(p_eq * (math.log(w21) - log_wsat))
            xp8 = xp * xp
            xp8 = xp8 * xp8
            xp8 = xp8 * xp8
            wgeq = wsat * (xr - a_eq * xp * (1.0 - xp8))
            wgeq = max(wgeq, wres)
            k2 = dt * c2 / TAU_S
            wg1 = (wg + dt * c1 / (RHO_WATER * d1) * (infil - eg) + k2 * wgeq) / (1.0 + k2)
            wg1 = min(max(wg1, wres), wsat)
            # ---- store state
            x[i, 0, j] = wg1
            x[i, 1, j] = w21
            x[i, 2, j] = ts1
            x[i, 3, j] = t21
            x[i, 4, j] = swe1
            x[i, 5, j] = wr1
            # ---- diagnostics with the new skin temperature
            rn = (1.0 - alb) * sw + emis * lw_down[i, j] - emis * SIGMA * ts1 * ts1 * ts1 * ts1
            hflux = rho_a * CP_AIR * chv * (ts1 - ta)
            le = LV * (eg + ei + etr) + LS * es
            flux[0, i, j] = eg + es
            flux[1, i, j] = etr
            flux[2, i, j] = ei
            flux[3, i, j] = r_inf + r_sat
            flux[4, i, j] = drain
            flux[5, i, j] = hflux
            flux[6, i, j] = le
            flux[7, i, j] = rn - hflux - le
            flux[8, i, j] = rn
            flux[9, i, j] = melt
            flags[0, i, j] = 1 if (ts1 < T_FREEZE or t21 < T_FREEZE) else 0
            flags[1, i, j] = 1 if swe1 > SNOW_FLAG_KG_M2 else 0


def check_forcing(forcing, n_cells, n_members):
    """Check names, shapes and bounds (``smda.variables``) of one step's forcing; raise ValueError listing problems."""
    errors = []
    for name in FORCING:
        if name not in forcing:
            errors.append(f"missing forcing {name!r}")
            continue
        a = np.asarray(forcing[name])
        if a.shape not in ((n_cells, n_members), (n_cells,)):
            errors.append(f"forcing {name!r} has shape {a.shape}, expected ({n_cells}, {n_members}) or ({n_cells},)")
            continue
        lo, hi = VARIABLES[name].lower, VARIABLES[name].upper
        if not np.all(np.isfinite(a)) or np.any(a < lo) or np.any(a > hi):
            errors.append(f"forcing {name!r} outside [{lo}, {hi}] or not finite")
    if errors:
        raise ValueError("; ".join(errors))


def _as_2d(a, n_cells, n_members, name):
    a = np.asarray(a)
    if a.dtype != np.float64:
        raise ValueError(f"forcing {name!r} must be float64, got {a.dtype}")
    if a.shape == (n_cells, n_members):
        return a
    if a.shape == (n_cells,):
        return np.broadcast_to(a[:, None], (n_cells, n_members))
    raise ValueError(f"forcing {name!r} has shape {a.shape}, expected ({n_cells}, {n_members}) or ({n_cells},)")


def step(state, forcing, params, veg, dt_s, fluxes, check=False):
    """Advance the land surface state by one step, in place.

    Parameters
    ----------
    state : smda.model.state.State
        (n_cells, n_vars, n_members) block, updated in place.
    forcing : dict of str -> float64 ndarray (n_cells, n_members) or (n_cells,)
        ``precip`` kg m-2 s-1 (total), ``sw_down``, ``lw_down`` W m-2, ``t_air`` K, ``q_air`` kg kg-1,
        ``p_surf`` Pa, ``wind`` m s-1; step means.
    params : smda.model.soil.SoilParameters with n_cells cells
    veg : dict with ``fveg`` (vegetation fraction, 0-1) and ``lai`` (m2 m-2), each (n_cells,)
    dt_s : float
        Step length in seconds (0 < dt_s <= 86400).
    fluxes : Fluxes
        Preallocated (``Fluxes(n_cells, n_members)``), overwritten with this step's fluxes (step means)
        and flags.
    check : bool
        Also check forcing values (ranges, finiteness); costs a pass over the forcing.
    """
    if not isinstance(state, State):
        raise ValueError("state must be a smda.model.state.State")
    if not isinstance(params, SoilParameters):
        raise ValueError("params must be a smda.model.soil.SoilParameters")
    if not isinstance(fluxes, Fluxes):
        raise ValueError("fluxes must be a smda.model.lsm.Fluxes")
    n_cells, n_members = state.n_cells, state.n_members
    if params.n_cells != n_cells:
        raise ValueError(f"params has {params.n_cells} cells, state has {n_cells}")
    if fluxes.data.shape[1:] != (n_cells, n_members):
        raise ValueError(f"fluxes shape {fluxes.data.shape[1:]} != state shape {(n_cells, n_members)}")
    if not (0.0 < float(dt_s) <= 86400.0):
        raise ValueError(f"dt_s must be in (0, 86400] s, got {dt_s}")
    for key in ("fveg", "lai"):
        if key not in veg:
            raise ValueError(f"veg misses {key!r} (need 'fveg' and 'lai', (n_cells,) arrays)")
        if np.shape(veg[key]) != (n_cells,):
            raise ValueError(f"veg[{key!r}] must have shape ({n_cells},), got {np.shape(veg[key])}")
    missing = [k for k in FORCING if k not in forcing]
    if missing:
        raise ValueError(f"forcing misses {missing}; required: {', '.join(FORCING)}")
    if check:
        check_forcing(forcing, n_cells, n_members)
        fv, la = np.asarray(veg["fveg"]), np.asarray(veg["lai"])
        if np.any(~(fv >= 0) | ~(fv <= 1)) or np.any(~(la >= 0) | ~(la <= 15)):
            raise ValueError("veg fveg must be in [0, 1] and lai in [0, 15]")
    f = [_as_2d(forcing[k], n_cells, n_members, k) for k in FORCING]
    _step_kernel(state.data, f[0], f[1], f[2], f[3], f[4], f[5], f[6], params.packed,
                 np.asarray(veg["fveg"], dtype=np.float64), np.asarray(veg["lai"], dtype=np.float64),
                 float(dt_s), fluxes.data, fluxes.flags)


# water-budget terms (FLUXES names) leaving the land per unit area, used by conservation checks
WATER_LOSSES = ("soil_evaporation", "transpiration", "interception_loss", "surface_runoff", "drainage")
assert all(k in F for k in WATER_LOSSES)
assert V["sm_surface"] == 0 and V["sm_rootzone"] == 1 and V["t_skin"] == 2 and V["t_deep"] == 3 \
    and V["swe"] == 4 and V["canopy_water"] == 5


def priestley_taylor(t_k, available_energy_w_m2, p_pa, theta=None, theta_wp=None, theta_fc=None, alpha=1.26):
    """Priestley & Taylor (1972, doi:10.1175/1520-0493(1972)100<0081:OTAOSH>2.3.CO;2) evaporation.

    A reference formula for comparisons and checks, not used by ``step``::

        E = beta alpha Delta/(Delta + gamma) (Rn - G)/lambda,  beta = clip((theta - wp)/(fc - wp), 0, 1)

    with FAO-56 Delta = 4098 es/(T + 237.3)^2 (es = 0.6108 exp(17.27 T/(T + 237.3)) kPa, T in C),
    gamma = 0.665e-3 p (kPa) and lambda = 2.45 MJ kg-1.

    Returns
    -------
    le_w_m2, e_kg_m2_s : latent heat flux (W m-2) and evaporation (kg m-2 s-1), array-like as inputs.
    """
    t_c = np.asarray(t_k, dtype=np.float64) - T_FREEZE
    es = 0.6108 * np.exp(17.27 * t_c / (t_c + 237.3))
    delta = 4098.0 * es / (t_c + 237.3) ** 2
    gamma = 0.665e-3 * np.asarray(p_pa, dtype=np.float64) / 1000.0
    beta = 1.0
    if theta is not None:
        beta = np.clip((np.asarray(theta) - theta_wp) / (np.asarray(theta_fc) - theta_wp), 0.0, 1.0)
    le = beta * alpha * delta / (delta + gamma) * np.asarray(available_energy_w_m2, dtype=np.float64)
    return le, le / 2.45e6
