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
z0 = (1-fveg) z0_soil + fveg z0_veg, neutral CHn = k^2 / (ln(z/z0) (ln(z/z0) + kB^-1)) and a simple bulk-Richardson
stability factor from the previous skin temperature: sqrt(1 - 16 Ri) unstable (the Businger-Dyer heat form, Dyer
1974, with Ri for z/L), 1/(1 + 10 Ri) stable; simpler than Louis (1979), and in strong instability above Louis et al.
(1982)'s factor (2.7 against 2.0 at Ri = -0.4, which adds 1.4 K to a dry-wet bare-soil contrast of 9.6 K at
10:30; benchmarks/lst_coupling.py)::

    Ep  = rho_a CH V (qsat(Ts) - q_a)                       potential evaporation
    Eg  = (1-fveg)(1-psn) beta Ep,  beta = hu^2,  hu = 0.5 (1 - cos(pi wg / wfc)) (1 if wg >= wfc)
    Ei  = fveg (1-psn) delta Ep,                            delta = (Wr/Wrmax)^(2/3)
    Etr = fveg (1-psn) (1-delta) Ra/(Ra + Rs) Ep,           Ra = 1/(CH V), Rs = rsmin / (LAI F1 F2)
    F1  = (f + rsmin/rsmax)/(1 + f), f = 0.55 (SW/100)(2/LAI);  F2 = clip((w2 - wwilt)/(wfc - wwilt), 0, 1)
    Es  = psn Ep (sublimation)

Heat and vapour meet a larger resistance than momentum: their roughness length is z0h = z0 exp(-kB^-1) with
kB^-1 = ln(z0/z0h) = 2.3 (z0h = z0 / 10; Garratt 1992, The Atmospheric Boundary Layer, CUP, sec. 4.2; Brutsaert
1982, Evaporation into the Atmosphere, Reidel, ch. 5). With z0h = z0 the skin stays within a few K of the air
at midday, so the skin (MODIS-like LST) hardly responds to surface drying, unlike semi-arid observations where
dry bare soil runs 10-20 K above the air and DISPATCH's SEE-LST link holds (Merlin et al. 2012).

Bare-soil evaporation depends on the SURFACE layer moisture wg, so a drying surface evaporates less and
its skin warms (the link DISPATCH relies on). The soil evaporative efficiency SEE = Eg / Ep is the beta of
Lee & Pielke (1992, doi:10.1175/1520-0450(1992)031<0480:EBSEFN>2.0.CO;2), 0.25 (1 - cos(pi wg / wfc))^2,
which is Merlin et al.'s (2011, doi:10.1175/2010JAMC2418.1) SEE = (0.5 - 0.5 cos(pi SM / SMmax))^P with
P = 2 (the exponent of a few-cm layer under high evaporative demand) and SMmax = wfc: SEE rises from 0 at
the residual moisture through 0.25 at wfc / 2 to 1 at wfc, inside the SEE(SM) envelope of DISPATCH
(Merlin et al. 2012, doi:10.1016/j.rse.2011.10.007). ISBA's original "alpha" form rho_a CH V (hu qsat(Ts) - q_a)
gives no evaporation at all once hu < q_a / qsat(Ts) (below about 0.4 wfc in dry summer air, where semi-arid
soils spend weeks), so the skin did not respond to moisture changes there. Condensation (qsat(Ts) < q_a) is
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

Ensemble forcing: one base field per cell for every variable, and per-member factors (precipitation,
shortwave) or offsets (longwave, air temperature) of the perturbed ones (:class:`Perturbation`), applied in
the kernel; the kernel keeps the ensemble means of fluxes and state, and every member's fluxes only on
request (:class:`Fluxes`). Per step it moves about 130 B per cell and member (state read and written 96,
three perturbations 24, flags 2, per-cell terms divided by the members), not 240.
"""

import math

import numpy as np

from smda.constants import (
    CP_AIR,
    EPSILON,
    GRAVITY,
    KARMAN,
    LS,
    LV,
    R_DRY,
    RHO_WATER,
    SIGMA,
    T_FREEZE,
)
from smda.jit import inline, kernel
from smda.model.soil import P, SoilParameters
from smda.model.state import VARIABLES as STATE_VARIABLES
from smda.model.state import State, V
from smda.variables import VARIABLES

# model constants (physical constants: smda.constants)
TAU_S = 86400.0             # force-restore period
CV_VEG = 2.0e-5             # K m2 J-1, vegetation thermal coefficient (Noilhan & Planton 1989)
Z_REF_M = 10.0              # reference height of wind and air temperature
WIND_MIN = 0.5              # m s-1
KB_INV = math.log(10.0)     # 1, ln(z0m / z0h) = 2.3: heat and vapour roughness z0 / 10 (Garratt 1992, Brutsaert 1982)
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
# forcing that may differ between members (:class:`Perturbation`): multiplied by a factor, or offset
PERTURBABLE = ("precip", "sw_down", "lw_down", "t_air")
MULTIPLIED = ("precip", "sw_down")

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



class Perturbation:
    """Per-member forcing of an ensemble step, on top of the per-cell base fields given to :func:`step`.

    ``names``: forcing variables of :data:`PERTURBABLE`; ``values``: (n_cells, len(names), n_members) float64,
    C-contiguous: factors for the variables of :data:`MULTIPLIED` (member value = base x factor), offsets in
    the variable's unit for the others (member value = base + offset). Forcing not named is the same for
    every member. :meth:`smda.forcing.perturb.ForcingPerturbations.perturbation` makes one per step.
    """

    def __init__(self, names, values):
        names = tuple(names)
        bad = [k for k in names if k not in PERTURBABLE]
        if bad or len(set(names)) != len(names):
            raise ValueError(f"perturbed forcing {list(names)}: names must be distinct, from {', '.join(PERTURBABLE)}")
        if (not isinstance(values, np.ndarray) or values.dtype != np.float64 or values.ndim != 3
                or values.shape[1] != len(names) or not values.flags.c_contiguous):
            raise ValueError(f"perturbation values must be C-contiguous float64 (n_cells, {len(names)}, n_members), "
                             f"got {getattr(values, 'shape', None)} {getattr(values, 'dtype', None)}")
        self.names, self.values = names, values
        self.slots = np.array([names.index(k) if k in names else -1 for k in PERTURBABLE], np.int64)

    def members(self, name, base):
        """The (n_cells, n_members) member values of forcing ``name`` from its base field ``base`` (n_cells,)."""
        base = np.asarray(base, dtype=np.float64)[:, None]
        if name not in self.names:
            return np.repeat(base, self.values.shape[2], axis=1)
        v = self.values[:, self.names.index(name), :]
        return base * v if name in MULTIPLIED else base + v

    def ensemble_mean(self, name, base):
        """Ensemble mean (n_cells,) of forcing ``name`` from its base field (n_cells,), e.g. the precipitation."""
        base = np.asarray(base, dtype=np.float64)
        if name not in self.names:
            return base.copy()
        m = self.values[:, self.names.index(name), :].mean(axis=1)
        return base * m if name in MULTIPLIED else base + m


class Fluxes:
    """Preallocated per-step diagnostics of a run.

    ``mean`` (n_fluxes, n_cells) float64: the ensemble mean of each flux in ``FLUXES`` order (units in
    ``smda.variables``), always written; ``data`` (n_fluxes, n_cells, n_members): every member's fluxes, only
    with ``per_member=True`` (80 B per cell and member that an ensemble run does not need);
    ``flags`` (2, n_cells, n_members) uint8 in ``FLAGS`` order; ``state_mean`` (n_vars, n_cells): the ensemble
    mean of every state variable at the end of the step (``smda.model.state.VARIABLES`` order). Attribute
    access gives (n_cells, n_members) views (``fluxes.latent_heat`` with per_member, ``fluxes.snow`` as bool).
    """

    def __init__(self, n_cells, n_members, per_member=True):
        n_cells, n_members = int(n_cells), int(n_members)
        self.per_member = bool(per_member)
        self.mean = np.zeros((len(FLUXES), n_cells))
        self.data = np.zeros((len(FLUXES), n_cells, n_members) if per_member else (len(FLUXES), 0, 0))
        self.flags = np.zeros((len(FLAGS), n_cells, n_members), dtype=np.uint8)
        self.state_mean = np.zeros((len(STATE_VARIABLES), n_cells))

    @property
    def shape(self):
        """(n_cells, n_members)."""
        return self.flags.shape[1:]

    def __getattr__(self, name):
        if name in F:
            if not self.per_member:
                raise AttributeError(f"fluxes are kept as ensemble means only (per_member=False): use "
                                     f"fluxes.mean[F[{name!r}]]")
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
    """Saturation specific humidity (kg kg-1) and its T-derivative: the formulas of ``smda.constants``
    (Bolton 1980 over water) with one reciprocal for each shared denominator."""
    rt = 1.0 / (t - 29.65)
    es = 611.2 * math.exp(17.67 * (t - T_FREEZE) * rt)
    des = es * 17.67 * 243.5 * rt * rt
    if es > 0.5 * p:
        es = 0.5 * p
        des = 0.0
    rd = 1.0 / (p - (1.0 - EPSILON) * es)
    return EPSILON * es * rd, EPSILON * p * rd * rd * des


@inline
def _withdraw(rate, store, dt):
    """A loss ``rate`` (kg m-2 s-1) from ``store`` (kg m-2) over ``dt`` s, capped at what the store holds:
    (rate taken, store left)."""
    if store == 0.0 and rate >= 0.0:  # an empty store (no snow, a dry canopy): nothing to take
        return 0.0, 0.0
    if rate * dt >= store:
        return store / dt, 0.0
    return rate, store - rate * dt


@kernel
def _step_kernel(x, precip, sw_down, lw_down, t_air, q_air, p_surf, wind, pert, slots, par, fveg, lai, dt,
                 per_member, flux, mean, flags, state_mean):
    """One step of every cell and member (module docstring). Forcing: per-cell base fields (n,) and the
    per-member factors / offsets ``pert`` (n, k, N) of the variables whose ``slots`` (PERTURBABLE order) are
    >= 0. Everything that depends on the cell alone is computed once per cell, divisions by per-cell
    constants are multiplications by their reciprocals, and the C1 power law is evaluated only where it is
    below its cap of 1. Writes the ensemble means ``mean`` (n_fluxes, n) and ``state_mean`` (n_vars, n) and,
    with ``per_member``, ``flux`` (n_fluxes, n, N)."""
    n_cells = x.shape[0]
    n_mem = x.shape[2]
    omega = 2.0 * math.pi / TAU_S
    decay_t2 = dt / TAU_S
    t2_den = 1.0 / (1.0 + decay_t2)
    inv_dt = 1.0 / dt
    s_pr, s_sw, s_lw, s_ta = slots[0], slots[1], slots[2], slots[3]
    force = np.empty(n_mem)
    for i in range(n_cells):
        wsat = par[_P_WSAT, i]
        wwilt = par[_P_WWILT, i]
        wfc = par[_P_WFC, i]
        wres = par[_P_WRES, i]
        b = par[_P_B, i]
        c1sat = par[_P_C1SAT, i]
        c2ref = par[_P_C2REF, i]
        a_eq = par[_P_A, i]
        p_eq = par[_P_P, i]
        cgsat = par[_P_CGSAT, i]
        alb0 = par[_P_ALBEDO, i]
        emis = par[_P_EMISSIVITY, i]
        veg = fveg[i]
        # per-cell constants
        lai_i = max(lai[i], 0.01)
        z0 = (1.0 - veg) * par[_P_Z0_SOIL_M, i] + veg * par[_P_Z0_VEG_M, i]
        lg = math.log(Z_REF_M / z0)
        chn = KARMAN * KARMAN / (lg * (lg + KB_INV))  # ln(z / z0h) = ln(z / z0) + kB^-1
        wrmax = WRMAX_PER_LAI * veg * lai[i]
        inv_wrmax = 1.0 / wrmax if wrmax > 0.0 else 0.0
        rhod2 = RHO_WATER * par[_P_D2_M, i]
        rhod2_dt = rhod2 * inv_dt
        dt_rhod2 = dt / rhod2
        dt_rhod1 = dt / (RHO_WATER * par[_P_D1_M, i])
        drain_frac = 1.0 - math.exp(-par[_P_C3, i] * dt / TAU_S)
        c1exp = 0.5 * b + 1.0
        wg_c1 = wsat * c1sat ** (1.0 / c1exp)  # C1 = c1sat (wsat/wg)^c1exp >= 1 (capped) for wg <= wg_c1
        cgexp = b / (2.0 * math.log(10.0))
        log_wsat = math.log(wsat)
        inv_wsat = 1.0 / wsat
        pi_wfc = math.pi / wfc
        inv_wf = 1.0 / (wfc - wwilt)
        icap0 = RHO_WATER * par[_P_KS_M_S, i]
        esig = emis * SIGMA
        veg_cv = veg / CV_VEG
        ff_c = 0.55 / RGL * 2.0 / lai_i  # f = ff_c SW of the F1 factor
        rs_lai = par[_P_RSMIN_S_M, i] / lai_i
        rs_ratio = par[_P_RSMIN_S_M, i] / RSMAX
        # per-cell forcing (members differ only in the perturbed variables)
        pr0 = precip[i]
        sw0 = sw_down[i]
        lw0 = lw_down[i]
        ta0 = t_air[i]
        qa = q_air[i]
        ps = p_surf[i]
        v = max(wind[i], WIND_MIN)
        chnv = chn * v
        rib_c = GRAVITY * Z_REF_M / (v * v)
        rho_c = ps / (R_DRY * (1.0 + 0.61 * qa))  # rho_a = rho_c / T_air
        inv_ta0 = 1.0 / ta0
        s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = s8 = s9 = 0.0
        m0 = m1 = m2 = m3 = m4 = m5 = 0.0
        for j in range(n_mem):
            wg = x[i, 0, j]
            w2 = x[i, 1, j]
            ts = x[i, 2, j]
            t2 = x[i, 3, j]
            swe = x[i, 4, j]
            wr = x[i, 5, j]
            pr = pr0
            sw = sw0
            lw = lw0
            ta = ta0
            inv_ta = inv_ta0
            if s_pr >= 0:
                pr = pr0 * pert[i, s_pr, j]
            if s_sw >= 0:
                sw = sw0 * pert[i, s_sw, j]
            if s_lw >= 0:
                lw = lw0 + pert[i, s_lw, j]
            if s_ta >= 0:
                ta = ta0 + pert[i, s_ta, j]
                inv_ta = 1.0 / ta
            # ---- precipitation phase
            fs = (T_FREEZE + 1.0 - ta) * 0.5
            fs = min(max(fs, 0.0), 1.0)
            snowfall = fs * pr
            rain = pr - snowfall
            # ---- surface fractions and exchange coefficient
            psn = 0.0
            if swe > 0.0:
                psn = swe / (swe + W_CRN)
            fbare = (1.0 - veg) * (1.0 - psn)
            fvs = veg * (1.0 - psn)
            rib = rib_c * (ta - ts) * inv_ta
            if rib < 0.0:
                fstab = math.sqrt(1.0 - 16.0 * max(rib, -0.5))
            else:
                fstab = 1.0 / (1.0 + 10.0 * min(rib, 2.0))
            chv = chnv * fstab
            rho_a = rho_c * inv_ta
            rchv = rho_a * chv
            hcoef = rho_a * CP_AIR * chv
            # ---- moisture factors (start-of-step state)
            beta = 1.0  # soil evaporative efficiency, Lee & Pielke (1992): (0.5 (1 - cos(pi wg / wfc)))^2
            if wg < wfc:
                beta = 0.5 * (1.0 - math.cos(wg * pi_wfc))
                beta *= beta
            delta = 0.0
            if wr > 0.0 and wrmax > 0.0:
                xw = wr * inv_wrmax
                delta = 1.0 if xw >= 1.0 else xw ** (2.0 / 3.0)
            f2 = (w2 - wwilt) * inv_wf
            f2 = min(max(f2, 0.0), 1.0)
            tr_fac = 0.0
            if f2 > 0.0 and veg > 0.0:
                # (1 - delta) Ra / (Ra + Rs) with Ra = 1 / (CH V), Rs = min(rsmin / (LAI F1 F2), RSMAX) = rs_n / rs_d
                ff = ff_c * sw
                rs_n = rs_lai * (1.0 + ff)
                rs_d = (ff + rs_ratio) * f2
                if rs_n >= RSMAX * rs_d:
                    tr_fac = (1.0 - delta) / (1.0 + RSMAX * chv)
                else:
                    tr_fac = (1.0 - delta) * rs_d / (rs_d + rs_n * chv)
            # ---- energy balance: backward Euler, linearised
            q0, dq0 = _qsat(ts, ps)
            alb = alb0 + psn * (SNOW_ALBEDO - alb0)
            ts3 = ts * ts * ts
            rabs = (1.0 - alb) * sw + emis * lw
            rn0 = rabs - esig * ts3 * ts
            h0 = hcoef * (ts - ta)
            ep0 = rchv * (q0 - qa)
            if ep0 < 0.0:
                eg0 = fbare * ep0
            else:
                eg0 = fbare * beta * ep0
            le0 = LV * (eg0 + fvs * (delta + tr_fac) * ep0) + LS * psn * ep0
            dle = rchv * dq0 * (LV * (fbare * beta + fvs * (delta + tr_fac)) + LS * psn)
            kcoef = 4.0 * esig * ts3 + hcoef + dle
            cg = cgsat * math.exp(cgexp * (log_wsat - math.log(max(w2, wres))))  # CGsat (wsat / w2)^cgexp
            # CT = cg / ct_d = 1 / ((1 - fveg) / CG + fveg / Cv); the backward Euler step multiplied through by ct_d
            ct_d = (1.0 - veg) + veg_cv * cg
            ts1 = ts + dt * (cg * (rn0 - h0 - le0) - omega * ct_d * (ts - t2)) / (ct_d + dt * (cg * kcoef + omega * ct_d))
            t21 = (t2 + decay_t2 * ts1) * t2_den
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
            icap = icap0 * (1.0 + b * (1.0 - wg * inv_wsat))
            r_inf = max(pin - icap, 0.0)
            infil = pin - r_inf
            # transpiration (root zone, stops at wilting point)
            etr = 0.0
            if ep > 0.0 and tr_fac > 0.0:
                etr = fvs * tr_fac * ep
                etr_max = (w2 - wwilt) * rhod2_dt
                if etr > etr_max:
                    etr = max(etr_max, 0.0)
            # bare-soil evaporation (surface-moisture limited through beta)
            if ep < 0.0:
                eg = fbare * ep
            else:
                eg = fbare * beta * ep
            eg_max = (w2 - wres) * rhod2_dt + infil - etr
            if eg >= eg_max:
                eg = eg_max
                w21 = wres
            else:
                w21 = w2 + (infil - eg - etr) * dt_rhod2
            r_sat = 0.0
            if w21 > wsat:
                r_sat = (w21 - wsat) * rhod2_dt
                w21 = wsat
            drain = 0.0
            if w21 > wfc:
                dw = (w21 - wfc) * drain_frac
                drain = dw * rhod2_dt
                w21 -= dw
            force[j] = infil - eg  # water into the surface layer (kg m-2 s-1), for the second pass
            # ---- store state (the surface layer in the second pass)
            x[i, 1, j] = w21
            x[i, 2, j] = ts1
            x[i, 3, j] = t21
            x[i, 4, j] = swe1
            x[i, 5, j] = wr1
            m1 += w21
            m2 += ts1
            m3 += t21
            m4 += swe1
            m5 += wr1
            # ---- diagnostics with the new skin temperature
            rn = rabs - esig * ts1 * ts1 * ts1 * ts1
            hflux = hcoef * (ts1 - ta)
            le = LV * (eg + ei + etr) + LS * es
            f0 = eg + es
            f3 = r_inf + r_sat
            f7 = rn - hflux - le
            if per_member:
                flux[0, i, j] = f0
                flux[1, i, j] = etr
                flux[2, i, j] = ei
                flux[3, i, j] = f3
                flux[4, i, j] = drain
                flux[5, i, j] = hflux
                flux[6, i, j] = le
                flux[7, i, j] = f7
                flux[8, i, j] = rn
                flux[9, i, j] = melt
            s0 += f0
            s1 += etr
            s2 += ei
            s3 += f3
            s4 += drain
            s5 += hflux
            s6 += le
            s7 += f7
            s8 += rn
            s9 += melt
            flags[0, i, j] = 1 if (ts1 < T_FREEZE or t21 < T_FREEZE) else 0
            flags[1, i, j] = 1 if swe1 > SNOW_FLAG_KG_M2 else 0
        # second pass, the surface layer (force term explicit, restore term implicit); a separate loop so that
        # the power laws of consecutive members overlap instead of ending each member's long dependency chain
        for j in range(n_mem):
            wg = x[i, 0, j]
            w21 = x[i, 1, j]
            wgm = max(wg, wwilt)
            c1 = 1.0
            if wgm > wg_c1:
                c1 = min(c1sat * math.exp(c1exp * (log_wsat - math.log(wgm))), 1.0)
            c2_d = wsat - w21 + 0.001  # C2 = c2ref w2 / c2_d
            xr = w21 * inv_wsat
            xp = math.exp(p_eq * (math.log(w21) - log_wsat))
            xp8 = xp * xp
            xp8 = xp8 * xp8
            xp8 = xp8 * xp8
            wgeq = wsat * (xr - a_eq * xp * (1.0 - xp8))
            wgeq = max(wgeq, wres)
            k2 = decay_t2 * c2ref * w21  # dt C2 / tau, multiplied through by c2_d
            wg1 = (c2_d * (wg + c1 * dt_rhod1 * force[j]) + k2 * wgeq) / (c2_d + k2)
            wg1 = min(max(wg1, wres), wsat)
            x[i, 0, j] = wg1
            m0 += wg1
        state_mean[0, i] = m0 / n_mem
        state_mean[1, i] = m1 / n_mem
        state_mean[2, i] = m2 / n_mem
        state_mean[3, i] = m3 / n_mem
        state_mean[4, i] = m4 / n_mem
        state_mean[5, i] = m5 / n_mem
        mean[0, i] = s0 / n_mem
        mean[1, i] = s1 / n_mem
        mean[2, i] = s2 / n_mem
        mean[3, i] = s3 / n_mem
        mean[4, i] = s4 / n_mem
        mean[5, i] = s5 / n_mem
        mean[6, i] = s6 / n_mem
        mean[7, i] = s7 / n_mem
        mean[8, i] = s8 / n_mem
        mean[9, i] = s9 / n_mem


def check_forcing(forcing, n_cells):
    """Check names, shapes (n_cells,) and bounds (``smda.variables``) of one step's base forcing; raise
    ValueError listing problems."""
    errors = []
    for name in FORCING:
        if name not in forcing:
            errors.append(f"missing forcing {name!r}")
            continue
        a = np.asarray(forcing[name])
        if a.shape != (n_cells,):
            errors.append(f"forcing {name!r} has shape {a.shape}, expected ({n_cells},)")
            continue
        lo, hi = VARIABLES[name].lower, VARIABLES[name].upper
        if not np.all(np.isfinite(a)) or np.any(a < lo) or np.any(a > hi):
            errors.append(f"forcing {name!r} outside [{lo}, {hi}] or not finite")
    if errors:
        raise ValueError("; ".join(errors))


_NO_PERTURBATION = np.zeros((0, 0, 0))
_NO_SLOTS = np.full(len(PERTURBABLE), -1, np.int64)


def step(state, forcing, params, veg, dt_s, fluxes, perturbation=None, check=False):
    """Advance the land surface state by one step, in place.

    Parameters
    ----------
    state : smda.model.state.State
        (n_cells, n_vars, n_members) block, updated in place.
    forcing : dict of str -> float64 ndarray (n_cells,)
        Base fields of every member: ``precip`` kg m-2 s-1 (total), ``sw_down``, ``lw_down`` W m-2,
        ``t_air`` K, ``q_air`` kg kg-1, ``p_surf`` Pa, ``wind`` m s-1; step means.
    params : smda.model.soil.SoilParameters with n_cells cells
    veg : dict with ``fveg`` (vegetation fraction, 0-1) and ``lai`` (m2 m-2), each (n_cells,)
    dt_s : float
        Step length in seconds (0 < dt_s <= 86400).
    fluxes : Fluxes
        Preallocated (``Fluxes(n_cells, n_members)``), overwritten with this step's fluxes (step means;
        every member's with ``per_member``) and flags.
    perturbation : Perturbation, optional
        Per-member factors or offsets of the perturbed forcing (n_cells, k, n_members); none: every member
        has the base forcing.
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
    if fluxes.shape != (n_cells, n_members):
        raise ValueError(f"fluxes shape {fluxes.shape} != state shape {(n_cells, n_members)}")
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
    f = []
    for k in FORCING:
        a = np.asarray(forcing[k])
        if a.dtype != np.float64:
            raise ValueError(f"forcing {k!r} must be float64, got {a.dtype}")
        if a.shape != (n_cells,):
            raise ValueError(f"forcing {k!r} has shape {a.shape}, expected ({n_cells},) (members differ through "
                             "a Perturbation)")
        f.append(np.ascontiguousarray(a))
    if perturbation is None:
        pert, slots = _NO_PERTURBATION, _NO_SLOTS
    elif not isinstance(perturbation, Perturbation):
        raise ValueError("perturbation must be a smda.model.lsm.Perturbation")
    elif perturbation.values.shape[::2] != (n_cells, n_members):
        raise ValueError(f"perturbation values have shape {perturbation.values.shape}, expected "
                         f"({n_cells}, {len(perturbation.names)}, {n_members})")
    else:
        pert, slots = perturbation.values, perturbation.slots
    if check:
        check_forcing(forcing, n_cells)
        fv, la = np.asarray(veg["fveg"]), np.asarray(veg["lai"])
        if np.any(~(fv >= 0) | ~(fv <= 1)) or np.any(~(la >= 0) | ~(la <= 15)):
            raise ValueError("veg fveg must be in [0, 1] and lai in [0, 15]")
    _step_kernel(state.data, f[0], f[1], f[2], f[3], f[4], f[5], f[6], pert, slots, params.packed,
                 np.asarray(veg["fveg"], dtype=np.float64), np.asarray(veg["lai"], dtype=np.float64),
                 float(dt_s), fluxes.per_member, fluxes.data, fluxes.mean, fluxes.flags, fluxes.state_mean)


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
