"""Where a twin's within-pixel LST comes from (issue 20): the truth rerun at the MODIS Terra overpass.

    python benchmarks/lst_coupling.py [NAMELIST] [--set key=value ...] [--dw 0.03]

Reruns the truth of a twin (one member, the same weather, landscape and vegetation as ``smda run``: the skin
temperature equals the synthetic LST minus its sensor noise) with a second member whose 0-5 cm moisture is
raised by ``dw`` at 05 local solar time each day (reset to the truth every day). At the end of the step that
holds the overpass it keeps the skin and air temperature, shortwave, precipitation, surface and root-zone
moisture and vegetation fraction, and prints, over the cells without rain at the overpass (the cells a
clear-sky LST can see), anomalies from their 36 km pixel mean of the day:

* within-pixel std of the skin, the moisture and its drivers; R(skin, SM) without noise and with the
  namelist's 1 K MODIS noise added (static; dynamic: each cell's time mean removed too);
* the two links of the DISPATCH chain: R(skin, beta) (beta = the model's soil evaporative efficiency,
  Lee & Pielke 1992) and R(beta, SM) (texture: beta depends on wg / wfc);
* a linear decomposition of the skin anomaly: R2 of all drivers and the R2 lost when each is dropped;
* dTs/dwg of bare soil at the overpass (the +dw member, per unit bare fraction) by wg / wfc;
* bare soil dry (wres) against wet (wfc) under a June clear-sky day at 10:30 and 13:30 local time.

Runs serially in about a minute for the default twin.
"""

import argparse
import math
import warnings

import numpy as np

from smda.model import lsm, soil
from smda.model.state import State
from smda.run.experiment import build
from smda.run.namelist import load
from smda.run.sources import LST_LOCAL_HOUR

PIXEL = 36


def truth_at_overpass(nl, dw):
    """Per day (n_days, n_cells) fields at the end of the overpass step, and the static fields."""
    exp = build(nl)
    dt = nl.time.dt_s
    n_steps = int((nl.end - nl.start) / np.timedelta64(int(dt), "s"))
    lon = float(np.mean(exp.lon))
    hour_lst = (LST_LOCAL_HOUR - lon / 15.0) % 24
    hour_pert = (5.0 - lon / 15.0) % 24
    weather = exp.truth_weather()
    elev = exp.static["elevation_m"]
    t0 = weather.fields(0, nl.start, exp.x, exp.y, exp.lat, exp.lon, elev)["t_air"]
    par = exp.soil
    sm0 = par["wwilt"] + nl.model.initial_sm_fraction * (par["wfc"] - par["wwilt"])
    st = State.initial(exp.n, 2, par, sm=np.repeat(sm0[:, None], 2, axis=1), t=t0)
    fl = lsm.Fluxes(exp.n, 2)
    keys = ("ts", "ts_p", "wg", "wg_p", "w2", "ta", "sw", "pr", "fveg")
    rec = {k: [] for k in keys}
    day_veg = None
    for k in range(n_steps):
        t = nl.start + np.timedelta64(int(k * dt), "s")
        day = t.astype("datetime64[D]")
        if day != day_veg:
            doy = float((day - day.astype("datetime64[Y]")) / np.timedelta64(1, "D")) + 1
            veg, day_veg = exp.vegetation_on(doy), day
        hour = (k * dt / 3600.0) % 24
        if abs(hour - hour_pert) <= dt / 7200:
            st.data[:, :, 1] = st.data[:, :, 0]
            st.sm_surface[:, 1] = np.minimum(st.sm_surface[:, 0] + dw, par["wsat"])
        w = weather.fields(k, t, exp.x, exp.y, exp.lat, exp.lon, elev)
        lsm.step(st, {name: np.asarray(w[name], float) for name in lsm.FORCING}, par, veg, dt, fl)
        if abs((hour + dt / 3600.0) % 24 - hour_lst) <= dt / 7200:
            for key, v in (("ts", st.t_skin[:, 0]), ("ts_p", st.t_skin[:, 1]), ("wg", st.sm_surface[:, 0]),
                           ("wg_p", st.sm_surface[:, 1]), ("w2", st.sm_rootzone[:, 0]), ("ta", w["t_air"]),
                           ("sw", w["sw_down"]), ("pr", w["precip"]), ("fveg", veg["fveg"])):
                rec[key].append(np.array(v, float))
    out = {k: np.array(v) for k, v in rec.items()}
    static = {"elev": elev, "sand": exp.static["sand"], "clay": exp.static["clay"], "wfc": par["wfc"]}
    return exp, out, static


def _grid(exp, a):
    g = np.full((a.shape[0], exp.domain.nrows * exp.domain.ncols), np.nan)
    g[:, exp.cells] = a
    return g.reshape(a.shape[0], exp.domain.nrows, exp.domain.ncols)


def _anomaly(a):
    t, ny, nx = a.shape
    b = a.reshape(t, ny // PIXEL, PIXEL, nx // PIXEL, PIXEL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a pixel raining everywhere that day
        return (b - np.nanmean(b, axis=(2, 4), keepdims=True)).reshape(t, ny, nx)


def _r(x, y):
    ok = np.isfinite(x) & np.isfinite(y)
    return float(np.corrcoef(x[ok], y[ok])[0, 1])


def _dyn(a):
    return a - np.nanmean(a, axis=0)


def dry_wet_bare(wind=3.0):
    """Skin temperature (K) of bare loam held dry (wres) and wet (wfc) at 10:30 and 13:30 solar time, June clear sky."""
    dt = 1800.0
    par = soil.soil_parameters(np.array([0.45, 0.45]), np.array([0.20, 0.20]))
    wg = np.array([par.wres[0] + 0.005, par.wfc[0]])
    st = State.initial(2, 1, par, sm=0.2, t=295.0)
    veg = {"fveg": np.zeros(2), "lai": np.zeros(2)}
    fl = lsm.Fluxes(2, 1)
    f = {k: np.zeros(2) for k in lsm.FORCING}
    f["p_surf"][:], f["wind"][:], f["q_air"][:], f["lw_down"][:] = 92000.0, wind, 0.007, 330.0
    out = {}
    for k in range(5 * 48):
        h = (k * dt / 3600.0) % 24
        f["sw_down"][:] = 950.0 * max(0.0, math.sin(math.pi * (h - 5.5) / 15.0)) ** 1.3  # 05:30-20:30 day
        f["t_air"][:] = 296.0 + 8.0 * math.sin(math.pi * (h - 9.0) / 12.0)
        st.sm_surface[:, 0], st.sm_rootzone[:, 0] = wg, 0.2
        lsm.step(st, f, par, veg, dt, fl)
        if k >= 4 * 48 and h + 0.5 in (10.5, 13.5):
            out[h + 0.5] = (float(st.t_skin[0, 0]), float(st.t_skin[1, 0]), float(f["t_air"][0]))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("namelist", nargs="?", default="namelists/osse_default.yaml")
    ap.add_argument("--set", action="append", default=[], dest="overrides")
    ap.add_argument("--dw", type=float, default=0.03, help="moisture added at 05 local time (m3 m-3)")
    args = ap.parse_args(argv)
    nl = load(args.namelist, args.overrides)
    exp, d, s = truth_at_overpass(nl, args.dw)
    g = {k: _grid(exp, v) for k, v in d.items()}
    for k, v in s.items():
        g[k] = _grid(exp, np.repeat(v[None], d["ts"].shape[0], axis=0))
    x = np.clip(g["wg"] / g["wfc"], 0.0, 1.0)
    g["beta"] = (0.5 * (1.0 - np.cos(np.pi * x))) ** 2
    seen = g["pr"] == 0.0
    a = {k: _anomaly(np.where(seen, v, np.nan)) for k, v in g.items()}
    noise = np.random.default_rng(nl.seed).normal(0.0, 1.0, a["ts"].shape)
    print(f"{nl.name}: {int(seen.sum())} rain-free cell-days at the overpass ({seen.mean():.3f} of all)")
    print("within-pixel std: " + ", ".join(f"{k} {np.nanstd(a[k]):.3g}" for k in ("ts", "wg", "w2", "fveg", "ta", "sw")))
    for label, ts in (("noise-free", a["ts"]), ("1 K noise", a["ts"] + noise)):
        print(f"R(skin, SM) {label}: static {_r(ts, a['wg']):+.3f}, dynamic {_r(_dyn(ts), _dyn(a['wg'])):+.3f}")
    print(f"R(skin, beta) static {_r(a['ts'], a['beta']):+.3f} dynamic {_r(_dyn(a['ts']), _dyn(a['beta'])):+.3f}; "
          f"R(beta, SM) static {_r(a['beta'], a['wg']):+.3f} dynamic {_r(_dyn(a['beta']), _dyn(a['wg'])):+.3f}")
    names = ("wg", "w2", "fveg", "ta", "sw", "elev", "sand", "clay")
    X = np.stack([a[k].ravel() for k in names], axis=1)
    y = a["ts"].ravel()
    ok = np.all(np.isfinite(X), axis=1) & np.isfinite(y)
    X, y = (X[ok] - X[ok].mean(0)) / X[ok].std(0), y[ok] - y[ok].mean()

    def r2(cols):
        b, *_ = np.linalg.lstsq(X[:, cols], y, rcond=None)
        return 1.0 - np.var(y - X[:, cols] @ b) / np.var(y)

    full = r2(list(range(len(names))))
    lost = {n: full - r2([j for j in range(len(names)) if j != i]) for i, n in enumerate(names)}
    print(f"skin anomaly variance {np.var(y):.2f} K2, R2 of all drivers {full:.3f}; lost without: "
          + ", ".join(f"{n} {v:.3f}" for n, v in lost.items()))
    dwg = g["wg_p"] - g["wg"]
    with np.errstate(divide="ignore", invalid="ignore"):
        sens = np.where(seen & (dwg > 0.005), (g["ts_p"] - g["ts"]) / dwg / (1.0 - g["fveg"]), np.nan)
    rel = g["wg"] / g["wfc"]
    bins = (0.0, 0.3, 0.45, 0.6, 0.75, 0.9, 1.0, np.inf)
    parts = []
    for lo, hi in zip(bins[:-1], bins[1:], strict=True):
        m = (rel >= lo) & (rel < hi) & np.isfinite(sens)
        if m.any():
            parts.append(f"[{lo:.2f}, {hi:.2f}) {np.median(sens[m]):.0f} ({m.sum() / np.isfinite(sens).sum():.2f})")
    print("bare-soil dTs/dwg at the overpass (K per m3 m-3) by wg/wfc (share): " + "; ".join(parts))
    for wind in (3.0, 1.5):
        dw = dry_wet_bare(wind)
        print(f"bare loam dry - wet skin, June clear sky, wind {wind} m/s: "
              + ", ".join(f"{h:.1f} h {v[0] - v[1]:.1f} K (dry skin - air {v[0] - v[2]:.1f} K)" for h, v in dw.items()))


if __name__ == "__main__":
    main()
