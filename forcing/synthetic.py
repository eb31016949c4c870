"""Synthetic weather for twin experiments (a "truth" and a degraded open-loop version).

Every field is a pure function of (seed, time, global EASE-Grid 2.0 position of the cell), so any
subset of cells (an MPI rank's) gets identical values. All randomness comes from
:mod:`smda.model.streams`, keyed by global lattice indices and absolute hour/slot indices.

Components (t the time, x/y EASE-Grid 2.0 coordinates in m, lon = x / (a k0) on the global
cylindrical grid):

* Synoptic anomalies g_wet, g_T, g_wind ~ N(0, 1): value noise on a lattice of ``synoptic_km``
  and ``synoptic_h``, trilinearly interpolated and divided by the exact interpolant std.
* Storms (precipitation): Poisson births on tiles of ``storm_tile_km`` per hour with rate
  ``lambda(x, t) = lambda0 exp(s g_wet - s^2/2) (1 + A cos(2 pi (h_solar - 16)/24))``; each storm has
  a Gaussian footprint ``I(t) exp(-d^2 / 2 r^2)`` with r log-uniform in [r_min, r_max] km, a peak
  intensity exponential with mean ``storm_peak_mm_h``, a life of L hours (integer, uniform in
  [2, L_max]) with intensity profile ``sin^2(pi a / L)`` at age a (its hourly samples sum to
  exactly L/2) and moves with the day's steering wind. lambda0 is set so that the expected rate is
  ``mean_precip_mm_day``: ``mean = lambda0 E[I] E[2 pi r^2] E[L]/2 (1 - e^{-4.5})`` (footprints
  truncated at 3 r).
* Cloud fraction ``cf = clip(0.3 + 0.2 g_wet + R/(R + 0.5 mm/h), 0, 1)``; shortwave
  ``S0 (1 + 0.033 cos(2 pi doy/365)) max(cos Z, 0) 0.75 (1 - 0.75 cf^3.4)`` (Kasten & Czeplak 1980);
  air temperature: seasonal + diurnal (max at 15 h solar, damped by clouds) + synoptic + lapse rate;
  relative humidity with the opposite diurnal cycle, q from RH (Bolton 1980); longwave
  ``(cf + (1 - cf) 1.24 (e/T)^(1/7)) sigma T^4`` (Brutsaert 1975, Crawford & Duchon 1999);
  pressure hydrostatic from elevation; wind lognormal about ``wind_mean_ms``.

The degraded version (open loop): ``coarsen_km > 0`` averages the truth over blocks of that size
anchored to the EASE-Grid 2.0 origin (sampled on a sub-grid, at elevation 0, then lapse-rate
corrected to each cell's elevation), multiplies precipitation by ``precip_bias`` and adds
``t_bias_k`` to air temperature.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from smda.constants import (
    GRAVITY,
    P_STANDARD,
    R_DRY,
    SIGMA,
    clear_sky_emissivity,
    saturation_vapour_pressure,
    specific_humidity,
)
from smda.forcing.regrid import LAPSE_RATE, lapse_adjust
from smda.forcing.solar import clear_sky_irradiance, day_and_hour, declination_and_equation_of_time
from smda.jit import kernel
from smda.model.grid import M01, STANDARD_PARALLEL, WGS84_A, WGS84_F, xy_to_latlon
from smda.model.streams import normal, purpose_id, uniform

_E2 = WGS84_F * (2 - WGS84_F)
_K0 = math.cos(math.radians(STANDARD_PARALLEL)) / math.sqrt(1 - _E2 * math.sin(math.radians(STANDARD_PARALLEL)) ** 2)
_P_EXP = -GRAVITY / (R_DRY * LAPSE_RATE)
NAMES = ("precip", "sw_down", "lw_down", "t_air", "q_air", "p_surf", "wind")
_X0 = M01.x0
_Y0 = M01.y0
_EPOCH = np.datetime64("1970-01-01T00:00:00", "s")


@dataclass(frozen=True, kw_only=True)
class SyntheticSettings:
    """Synthetic weather settings (units in the names; defaults: a mid-latitude growing season)."""

    t_mean_k: float = 284.0
    t_seasonal_amp_k: float = 13.0
    t_diurnal_amp_k: float = 5.0
    t_synoptic_std_k: float = 3.0
    rh_mean: float = 0.68
    rh_diurnal_amp: float = 0.15
    wind_mean_ms: float = 3.5
    mean_precip_mm_day: float = 3.0
    storm_peak_mm_h: float = 6.0
    storm_radius_min_km: float = 2.0
    storm_radius_max_km: float = 25.0
    storm_life_max_h: int = 6
    storm_tile_km: float = 16.0
    storm_speed_ms: float = 6.0
    wet_regime_std: float = 1.0
    convective_diurnal_amp: float = 0.6
    synoptic_km: float = 300.0
    synoptic_h: float = 36.0
    coarsen_km: float = 0.0
    precip_bias: float = 1.0
    t_bias_k: float = 0.0

    def __post_init__(self):
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if not np.isfinite(v):
                raise ValueError(f"synthetic weather setting {f.name} must be finite, got {v}")
        for name in ("mean_precip_mm_day", "t_diurnal_amp_k", "t_synoptic_std_k", "t_seasonal_amp_k",
                     "wet_regime_std", "coarsen_km", "storm_speed_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"synthetic weather setting {name} must be >= 0, got {getattr(self, name)}")
        for name in ("storm_peak_mm_h", "storm_radius_min_km", "storm_tile_km", "synoptic_km", "synoptic_h",
                     "wind_mean_ms", "t_mean_k", "precip_bias"):
            if getattr(self, name) <= 0:
                raise ValueError(f"synthetic weather setting {name} must be > 0, got {getattr(self, name)}")
        if self.storm_radius_max_km < self.storm_radius_min_km:
            raise ValueError("storm_radius_max_km must be >= storm_radius_min_km")
        if not (isinstance(self.storm_life_max_h, int) and self.storm_life_max_h >= 2):
            raise ValueError(f"storm_life_max_h must be an integer >= 2, got {self.storm_life_max_h}")
        if not 0 < self.rh_mean <= 1 or not 0 <= self.rh_diurnal_amp < 1:
            raise ValueError("rh_mean must be in (0, 1] and rh_diurnal_amp in [0, 1)")
        if not 0 <= self.convective_diurnal_amp <= 1:
            raise ValueError("convective_diurnal_amp must be in [0, 1]")

    def storm_rate_per_km2_h(self) -> float:
        """lambda0 (storm births per km2 per hour) giving ``mean_precip_mm_day``."""
        r0, r1 = self.storm_radius_min_km, self.storm_radius_max_km
        er2 = r0 * r0 if r1 == r0 else (r1 * r1 - r0 * r0) / (2.0 * math.log(r1 / r0))
        e_life = 0.5 * (2 + self.storm_life_max_h)
        vol = self.storm_peak_mm_h * 2 * math.pi * er2 * 0.5 * e_life * (1.0 - math.exp(-4.5))
        return self.mean_precip_mm_day / 24.0 / vol


# ----------------------------------------------------------------------------------------------
# kernels


@kernel
def _lattice_noise(seed, pid, ix0, iy0, nxl, nyl, it, out):
    """out[iy, ix, 0/1]: normals at lattice (iy0+iy, ix0+ix) and time slots it, it+1."""
    for j in range(nyl):
        for i in range(nxl):
            key = (iy0 + j + 1000003) * 4000037 + (ix0 + i + 1000003)
            out[j, i, 0] = normal(seed, pid, key, 0, it, 0)
            out[j, i, 1] = normal(seed, pid, key, 0, it + 1, 0)


@kernel
def _interp3(la, lb, lc, ix0, iy0, gx, gy, wt):
    """Trilinear interpolation of three lattice fields at one point, divided by the exact std."""
    jx = int(math.floor(gx))
    jy = int(math.floor(gy))
    ax = gx - jx
    ay = gy - jy
    jx -= ix0
    jy -= iy0
    w00 = (1 - ay) * (1 - ax)
    w01 = (1 - ay) * ax
    w10 = ay * (1 - ax)
    w11 = ay * ax
    inv = 1.0 / math.sqrt(((1 - ax) ** 2 + ax * ax) * ((1 - ay) ** 2 + ay * ay) * ((1 - wt) ** 2 + wt * wt))
    a = 0.0
    b = 0.0
    c = 0.0
    for dt in range(2):
        bt = wt if dt == 1 else 1.0 - wt
        a += bt * (w00 * la[jy, jx, dt] + w01 * la[jy, jx + 1, dt] + w10 * la[jy + 1, jx, dt]
                   + w11 * la[jy + 1, jx + 1, dt])
        b += bt * (w00 * lb[jy, jx, dt] + w01 * lb[jy, jx + 1, dt] + w10 * lb[jy + 1, jx, dt]
                   + w11 * lb[jy + 1, jx + 1, dt])
        c += bt * (w00 * lc[jy, jx, dt] + w01 * lc[jy, jx + 1, dt] + w10 * lc[jy + 1, jx, dt]
                   + w11 * lc[jy + 1, jx + 1, dt])
    return a * inv, b * inv, c * inv


@kernel
def _weather(seed, hours, doy, hour_utc, x, y, lat, elev, p, precip_out, sw, lw, ta, qa, ps, wind):
    """Truth weather at one time for cells (n,). p: float parameter vector (see SyntheticWeather)."""
    n = x.shape[0]
    (t_mean, t_seas, t_diur, t_syn, rh_mean, rh_diur, wind_mean, lam0, peak, rmin, rmax, life_max,
     tile_m, speed, wet_std, conv_amp, syn_m, syn_h) = (p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7],
                                                         p[8], p[9], p[10], int(p[11]), p[12], p[13],
                                                         p[14], p[15], p[16], p[17])
    pid_wet = 0x5EED0001
    pid_t = 0x5EED0002
    pid_w = 0x5EED0003
    pid_storm = 0x5EED0004
    pid_motion = 0x5EED0005
    ak0 = WGS84_A * _K0
    inv_deg15 = 180.0 / math.pi / ak0 / 15.0
    # --- synoptic lattices
    xmin, xmax, ymin, ymax = x.min(), x.max(), y.min(), y.max()
    ix0 = int(math.floor((xmin - _X0) / syn_m))
    iy0 = int(math.floor((_Y0 - ymax) / syn_m))
    nxl = int(math.floor((xmax - _X0) / syn_m)) - ix0 + 2
    nyl = int(math.floor((_Y0 - ymin) / syn_m)) - iy0 + 2
    tpos = hours / syn_h
    it = int(math.floor(tpos))
    wt = tpos - it
    lw_wet = np.empty((nyl, nxl, 2))
    lw_t = np.empty((nyl, nxl, 2))
    lw_w = np.empty((nyl, nxl, 2))
    _lattice_noise(seed, pid_wet, ix0, iy0, nxl, nyl, it, lw_wet)
    _lattice_noise(seed, pid_t, ix0, iy0, nxl, nyl, it, lw_t)
    _lattice_noise(seed, pid_w, ix0, iy0, nxl, nyl, it, lw_w)
    # --- storms alive now: born at hour hb in (hours - life_max, hours]
    nst = 0
    st = np.empty((256, 5))  # storm x, y, cut^2, 1/(2 r^2), amplitude
    h_now = math.floor(hours)
    reach = 3.0 * rmax * 1000.0
    pmax = lam0 * math.exp(4.0 * wet_std - 0.5 * wet_std * wet_std) * (1.0 + conv_amp) * (tile_m / 1000.0) ** 2
    for age_h in range(life_max):
        hb = int(h_now) - age_h
        age = hours - hb + 0.5  # storms start half an hour before their birth hour
        day = hb // 24
        ang = 2 * math.pi * uniform(seed, pid_motion, 0, 0, day, 0)
        spd = speed * (0.5 + uniform(seed, pid_motion, 0, 0, day, 1))
        dx = spd * math.cos(ang) * age * 3600.0
        dy = spd * math.sin(ang) * age * 3600.0
        c0 = int(math.floor((xmin - dx - reach - _X0) / tile_m))
        c1 = int(math.floor((xmax - dx + reach - _X0) / tile_m))
        r0 = int(math.floor((_Y0 - (ymax - dy + reach)) / tile_m))
        r1 = int(math.floor((_Y0 - (ymin - dy - reach)) / tile_m))
        for rr in range(r0, r1 + 1):
            for cc in range(c0, c1 + 1):
                key = (rr + 1000003) * 4000037 + (cc + 1000003)
                u = uniform(seed, pid_storm, key, 0, hb, 0)
                if u >= pmax:
                    continue
                # birth probability of this tile-hour, modulated by wet regime and diurnal cycle
                bx = _X0 + (cc + 0.5) * tile_m
                by = _Y0 - (rr + 0.5) * tile_m
                lon_b = math.degrees(bx / ak0)
                solar_h = (hb % 24) + lon_b / 15.0
                diur = 1.0 + conv_amp * math.cos(2 * math.pi * (solar_h - 16.0) / 24.0)
                # wet regime at the tile centre, birth time (cheap: nearest synoptic lattice value via hash)
                gx = (bx - _X0) / syn_m
                gy = (_Y0 - by) / syn_m
                tb = hb / syn_h
                g = min(max(_point_noise(seed, pid_wet, gx, gy, tb), -4.0), 4.0)
                rate = lam0 * math.exp(wet_std * g - 0.5 * wet_std * wet_std) * diur
                pbirth = rate * (tile_m / 1000.0) ** 2
                if u >= min(pbirth, 1.0):
                    continue
                life = 2 + int(uniform(seed, pid_storm, key, 0, hb, 1) * (life_max - 1))
                if life > life_max:
                    life = life_max
                if age >= life:
                    continue
                sx = _X0 + (cc + uniform(seed, pid_storm, key, 0, hb, 2)) * tile_m + dx
                sy = _Y0 - (rr + uniform(seed, pid_storm, key, 0, hb, 3)) * tile_m + dy
                r = rmin * math.exp(uniform(seed, pid_storm, key, 0, hb, 4) * math.log(rmax / rmin)) * 1000.0
                ipk = -peak * math.log(uniform(seed, pid_storm, key, 0, hb, 5))
                prof = math.sin(math.pi * age / life) ** 2
                amp = ipk * prof / 3600.0  # kg m-2 s-1
                if nst == st.shape[0]:
                    bigger = np.empty((2 * nst, 5))
                    bigger[:nst] = st
                    st = bigger
                st[nst, 0] = sx
                st[nst, 1] = sy
                st[nst, 2] = 9.0 * r * r
                st[nst, 3] = 0.5 / (r * r)
                st[nst, 4] = amp
                nst += 1
    # storms are summed in (age, tile row, tile col) order: the same for any subset of cells
    for i in range(n):
        acc = 0.0
        for j in range(nst):
            ddx = x[i] - st[j, 0]
            ddy = y[i] - st[j, 1]
            d2 = ddx * ddx + ddy * ddy
            if d2 < st[j, 2]:
                acc += st[j, 4] * math.exp(-d2 * st[j, 3])
        precip_out[i] = acc
    # --- per-cell states
    rh_mm_h = 0.5 / 3600.0
    season = math.cos(2 * math.pi * (doy - 200.0) / 365.25)
    decl, eot_h = declination_and_equation_of_time(doy, hour_utc)
    sdec = math.sin(decl)
    cdec = math.cos(decl)
    w = 2 * math.pi / 24.0
    c15, s15 = math.cos(15 * w), math.sin(15 * w)
    c14, s14 = math.cos(14 * w), math.sin(14 * w)
    s0 = clear_sky_irradiance(doy)
    for i in range(n):
        g_wet, g_t, g_w = _interp3(lw_wet, lw_t, lw_w, ix0, iy0, (x[i] - _X0) / syn_m, (_Y0 - y[i]) / syn_m, wt)
        solar_h = hour_utc + x[i] * inv_deg15 + eot_h  # local apparent solar time (h)
        ca = math.cos(w * solar_h)
        sa = math.sin(w * solar_h)
        dcyc = ca * c15 + sa * s15  # cos(w (h - 15))
        wcyc = ca * c14 + sa * s14  # cos(w (h - 14))
        latr = math.radians(lat[i])
        cz = math.sin(latr) * sdec - math.cos(latr) * cdec * ca  # cos(hour angle) = -cos(w h)
        pr = precip_out[i]
        wetf = pr / (pr + rh_mm_h)
        cf = 0.3 + 0.2 * g_wet + wetf
        cf = min(max(cf, 0.0), 1.0)
        sw[i] = s0 * cz * (1.0 - 0.75 * cf**3.4) if cz > 0.0 else 0.0
        hemi = 1.0 if lat[i] >= 0 else -1.0
        t = (t_mean + hemi * t_seas * season + t_diur * (1.0 - 0.5 * cf) * dcyc + t_syn * g_t - 2.0 * wetf)
        rh = rh_mean - rh_diur * dcyc + 0.08 * g_wet + 0.25 * wetf
        rh = min(max(rh, 0.15), 1.0)
        # sea-level values, then the lapse-rate correction to the cell's elevation
        p0 = P_STANDARD - 400.0 * g_wet
        e = rh * saturation_vapour_pressure(t)
        ta[i] = t
        ps[i] = p0
        qa[i] = specific_humidity(e, p0)
        eps_clr = clear_sky_emissivity(e, t)
        wind[i] = wind_mean * math.exp(0.35 * g_w - 0.06125) * (1.0 + 0.2 * wcyc)
        if elev[i] != 0.0:
            t1 = t + LAPSE_RATE * elev[i]
            p1 = p0 * (t1 / t) ** _P_EXP
            e1 = rh * saturation_vapour_pressure(t1)
            ta[i] = t1
            ps[i] = p1
            qa[i] = specific_humidity(e1, p1)
            eps_clr = clear_sky_emissivity(e1, t1)
            t = t1
        lw[i] = (cf + (1.0 - cf) * eps_clr) * SIGMA * t * t * t * t


@kernel
def _point_noise(seed, pid, gx, gy, tb):
    """Trilinear value noise at a point, unit variance (used for storm birth modulation)."""
    jx = int(math.floor(gx))
    jy = int(math.floor(gy))
    it = int(math.floor(tb))
    ax = gx - jx
    ay = gy - jy
    wt = tb - it
    s = 0.0
    for dt in range(2):
        bt = wt if dt == 1 else 1.0 - wt
        for dy in range(2):
            by = ay if dy == 1 else 1.0 - ay
            for dx in range(2):
                bx = ax if dx == 1 else 1.0 - ax
                key = (jy + dy + 1000003) * 4000037 + (jx + dx + 1000003)
                s += bt * by * bx * normal(seed, pid, key, 0, it + dt, 0)
    v = ((1 - ax) ** 2 + ax * ax) * ((1 - ay) ** 2 + ay * ay) * ((1 - wt) ** 2 + wt * wt)
    return s / math.sqrt(v)


# ----------------------------------------------------------------------------------------------


class SyntheticWeather:
    """Seeded synthetic weather; ``fields`` is a pure function of (seed, time, cell position).

    Parameters
    ----------
    settings : SyntheticSettings
    seed : int
    """

    def __init__(self, settings: SyntheticSettings | None = None, *, seed: int):
        settings = SyntheticSettings() if settings is None else settings
        if not isinstance(settings, SyntheticSettings):
            raise ValueError("settings must be a smda.forcing.synthetic.SyntheticSettings")
        self.settings = settings
        self.seed = int(seed) ^ purpose_id("forcing.synthetic")
        self._seed_in = int(seed)
        s = settings
        self._par = np.array([
            s.t_mean_k, s.t_seasonal_amp_k, s.t_diurnal_amp_k, s.t_synoptic_std_k, s.rh_mean, s.rh_diurnal_amp,
            s.wind_mean_ms, s.storm_rate_per_km2_h(), s.storm_peak_mm_h, s.storm_radius_min_km,
            s.storm_radius_max_km, s.storm_life_max_h, s.storm_tile_km * 1000.0, s.storm_speed_ms,
            s.wet_regime_std, s.convective_diurnal_amp, s.synoptic_km * 1000.0, s.synoptic_h], float)
        self._coarse_cache = None

    def degraded(self, *, coarsen_km: float = 36.0, precip_bias: float = 1.0, t_bias_k: float = 0.0):
        """The open-loop weather: this truth smoothed over ``coarsen_km`` blocks and biased (same seed)."""
        st = dataclasses.replace(self.settings, coarsen_km=coarsen_km, precip_bias=precip_bias, t_bias_k=t_bias_k)
        return SyntheticWeather(st, seed=self._seed_in)

    def fields(self, step: int, time, x_m, y_m, lat, lon, elevation_m=None) -> dict:
        """Forcing at ``time`` for cells (n,); returns {name: (n,) float64} in internal units.

        step is checked (>= 0) but the fields depend only on (seed, time, x_m, y_m, lat, elevation):
        storms are keyed by absolute hour, so equal times give equal fields.
        """
        if int(step) < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        x = np.ascontiguousarray(x_m, dtype=np.float64).ravel()
        y = np.ascontiguousarray(y_m, dtype=np.float64).ravel()
        lat = np.ascontiguousarray(lat, dtype=np.float64).ravel()
        n = x.size
        if y.size != n or lat.size != n or np.asarray(lon).size != n or n == 0:
            raise ValueError("x_m, y_m, lat and lon must be non-empty arrays of the same length")
        elev = np.zeros(n) if elevation_m is None else np.ascontiguousarray(elevation_m, dtype=np.float64).ravel()
        if elev.size != n:
            raise ValueError(f"elevation_m has {elev.size} values for {n} cells")
        t = np.datetime64(time, "s")
        if self.settings.coarsen_km > 0:
            out = self._coarse(t, x, y, elev)
        else:
            out = self._truth(t, x, y, lat, elev)
        if self.settings.precip_bias != 1.0:
            out["precip"] *= self.settings.precip_bias
        if self.settings.t_bias_k != 0.0:
            out["t_air"] += self.settings.t_bias_k
        return out

    def _truth(self, t, x, y, lat, elev):
        n = x.size
        out = {k: np.empty(n) for k in NAMES}
        hours = float((t - _EPOCH) / np.timedelta64(1, "s")) / 3600.0
        doy, hour = day_and_hour(t)
        _weather(self.seed, hours, doy, hour, x, y, lat, elev, self._par, out["precip"], out["sw_down"],
                 out["lw_down"], out["t_air"], out["q_air"], out["p_surf"], out["wind"])
        return out

    def _coarse(self, t, x, y, elev):
        key = (x.size, float(x[0]), float(x[-1]), float(y[0]), float(y[-1]), float(x.sum()), float(y.sum()))
        if self._coarse_cache is None or self._coarse_cache[0] != key:
            self._coarse_cache = (key, self._coarse_geometry(x, y))
        _, (inv, sx, sy, slat, nsub2) = self._coarse_cache
        sub = self._truth(t, sx, sy, slat, np.zeros(sx.size))
        nb_ = sx.size // nsub2
        out = {}
        for k, v in sub.items():
            out[k] = v.reshape(nb_, nsub2).mean(axis=1)[inv]
        lapse_adjust(out["t_air"], out["p_surf"], out["q_air"], elev, LAPSE_RATE)
        return out

    def _coarse_geometry(self, x, y):
        cell_n = max(1, int(round(self.settings.coarsen_km * 1000.0 / M01.cell_m)))
        size = cell_n * M01.cell_m
        bc = np.floor((x - _X0) / size).astype(np.int64)
        br = np.floor((_Y0 - y) / size).astype(np.int64)
        blocks, inv = np.unique(np.stack([br, bc], axis=1), axis=0, return_inverse=True)
        k = max(2, min(12, int(math.ceil(self.settings.coarsen_km / 4.0))))
        off = (np.arange(k) + 0.5) / k * size
        ox, oy = np.meshgrid(off, off)
        sx = (_X0 + blocks[:, 1:2] * size + ox.ravel()[None, :]).ravel()
        sy = (_Y0 - blocks[:, 0:1] * size - oy.ravel()[None, :]).ravel()
        slat, _ = xy_to_latlon(sx, sy)
        return inv.ravel(), sx, sy, np.ascontiguousarray(slat), k * k
