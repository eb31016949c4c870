"""Gain budget of a finished coarse-TB twin run (issue 20): what bounds the analysis gain, read from its files.

    python benchmarks/gain_budget.py OUT_DIR [--pixel-km 36] [--goal 0.9]

OUT_DIR is a twin case's output folder (``<name>_skill.csv``, ``<name>_analysis.nc``, ``<name>_obs_diagnostics.csv``,
``restart/``); no model is run. Errors are product - truth; "ub" is the convention of the skill table (each cell's or
pixel's time mean removed, then the mean square over cells or pixels), "raw" keeps the time mean. Printed:

* skill: open loop, analysis, oracle ubRMSE and their pixel / within split; ubRMSE^2 = pixel^2 + within^2 exactly
  (the pixel error is constant over a pixel and the within error sums to zero in it), so the gain fraction of a
  product with pixel error p and within error w is (OL - sqrt(p^2 + w^2)) / (OL - oracle); the pixel error that
  reaches ``--goal`` at the analysis's within error.
* sensitivity: dTB/dSM of each polarization at the pixel scale, the slope of O - F (the assimilated TB minus the
  background mean of HX) on the background pixel-mean soil moisture error (truth - background), and the residual
  std (the TB error not explained by soil moisture: the observation noise plus Teff and within-pixel effects), to
  set beside the specified error; sigma_o, the soil moisture equivalent of one pixel's H and V together:
  1 / sigma_o^2 = sum_p a_p^2 / sigma_p^2.
* ceilings of the pixel-mean analysis error at an analysis time (the products are the analyses at those times,
  so the regrowth between analyses enters through the measured background error sigma_b):
  one pixel's own H and V, sigma_a^2 = sigma_b^2 sigma_o^2 / (sigma_b^2 + sigma_o^2); and perfect pooling of the
  n pixels observed at a time (every pixel's error the same, the most favourable case for a filter that pools
  neighbouring observations, as the LETKF does within its localization): sigma_o^2 -> sigma_o^2 / n; and that
  pooling with each time's background error variance known (the mean square of the pixels' errors at that time: a
  perfectly flow-dependent B, the most generous). Each as the gain fraction it implies, within error unchanged.
* innovations (accepted observations): normalized innovation variance E[d^2] / E[s^2 + R] (s the background HX
  spread), raw and with the time-mean O - F removed, its spread over cycles (chi2 per cycle); Desroziers et al.
  (2005, doi:10.1256/qj.05.108) E[d_oa d_ob] = R and E[d_ab d_ob] = HBH^T against the specified R and the ensemble's
  mean s^2; the background TB error implied by the innovations, sqrt(E[d^2] - R), against the ensemble spread.
* spread / error at the pixel scale from the restart files (full ensembles): pixel-mean ensemble spread against the
  pixel-mean error of the ensemble mean, open loop and analysis run; the correlation of the background pixel-mean
  errors between neighbouring pixels (at one and sqrt 2 pixel spacings) beside the Gaspari-Cohn taper of the run's
  localization half-width at those distances.
* within-pixel increments: with e_a = e_b + i (i the analysis - background increment, all as within-pixel anomalies,
  ub per cell), E[e_a^2] - E[e_b^2] = 2 E[e_b i] + E[i^2]: the information term 2 E[e_b i] (negative when the
  increments correct the within-pixel error) against the added variance E[i^2]; the share of E[i^2] that is a
  fixed pattern (each cell's time mean of i / pixel-mean increment) and what that pattern follows: the ensemble's
  own within-pixel spread (cells whose members differ more take more of the increment) or the distance to the pixel
  centre (the localization taper falling off within the pixel). RTPS, RTPP and the random rotation keep each cell's
  analysis mean, so they cannot change these increments.
"""

import argparse
import glob
import warnings
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import yaml

from smda.assimilation.filters.localization import gaspari_cohn_taper
from smda.run.metrics import coarse_mean


def _ub(e, axis=0):
    """Mean over the other axes of the variance over ``axis`` (the skill table's ub convention)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(np.sqrt(np.nanmean(np.nanvar(e, axis=axis))))


def _rms(e):
    """Root mean square over every finite value (raw: time means kept)."""
    return float(np.sqrt(np.nanmean(np.square(e))))


def _blocks(a, k):
    """(t, ny, nx) -> (t, ny/k, nx/k) NaN-aware block means."""
    t, ny, nx = a.shape
    return coarse_mean(a, k)[:, ::k, ::k].reshape(t, ny // k, nx // k)


def gain_fraction(ol, oracle, pixel, within):
    """(OL - product) / (OL - oracle) of ubRMSE for a product with these pixel and within-pixel errors."""
    return (ol - np.hypot(pixel, within)) / (ol - oracle)


def skill(out: Path, name: str, goal: float):
    s = pd.read_csv(out / f"{name}_skill.csv", index_col=0)
    ol, an, orc = s.loc["openloop"], s.loc["analysis"], s.loc["oracle_pixel_mean"]
    target = ol.ubRMSE - goal * (ol.ubRMSE - orc.ubRMSE)  # the ubRMSE that reaches the goal
    need, need_orc = target ** 2 - an.ubRMSE_within ** 2, max(target ** 2 - orc.ubRMSE_within ** 2, 0.0)
    print(f"{name}: ubRMSE (pixel, within): open loop {ol.ubRMSE:.4f} ({ol.ubRMSE_pixel:.4f}, {ol.ubRMSE_within:.4f}), "
          f"analysis {an.ubRMSE:.4f} ({an.ubRMSE_pixel:.4f}, {an.ubRMSE_within:.4f}), oracle {orc.ubRMSE:.4f}; "
          f"gain fraction {an.gain_fraction:.3f}")
    print(f"{name}: gain fraction {goal} needs a pixel error <= "
          + (f"{np.sqrt(need):.4f}" if need > 0 else "below 0 (unreachable)") + f" at the analysis within error "
          f"{an.ubRMSE_within:.4f} (<= {np.sqrt(need_orc):.4f}"
          f" at the oracle's {orc.ubRMSE_within:.4f})")
    return ol, an, orc


def load(out: Path, name: str, k: int):
    """Surface soil moisture at the analysis times, and the accepted observations with their time index and pixel."""
    with netCDF4.Dataset(out / f"{name}_analysis.nc") as d:
        d.set_auto_mask(False)
        time = np.datetime64("2000-01-01T00:00:00", "s") + np.asarray(d["time"][:]).astype("timedelta64[s]")
        x, y = np.asarray(d["x"][:], float), np.asarray(d["y"][:], float)
        f = {v: np.asarray(d[f"sm_surface_{v}"][:], float) for v in ("truth", "openloop_mean", "background_mean",
                                                                      "background_spread", "analysis_mean")}
    obs = pd.read_csv(out / f"{name}_obs_diagnostics.csv", parse_dates=["time"])
    obs = obs[obs.qc_reason == "accepted"].copy()
    ti = np.searchsorted(time, obs.time.values.astype("datetime64[s]"))
    if (ti >= time.size).any() or (time[np.minimum(ti, time.size - 1)] != obs.time.values.astype("datetime64[s]")).any():
        raise ValueError(f"{out}: observation times missing from {name}_analysis.nc")
    obs["ti"] = ti
    obs["py"] = np.abs(obs.y.values[:, None] - y[None]).argmin(1) // k
    obs["px"] = np.abs(obs.x.values[:, None] - x[None]).argmin(1) // k
    return f, obs


def sensitivity(name, f, obs, k):
    """Slope of O - F on the background pixel-mean SM error, per polarization (K per m3/m3), residual std (K)."""
    eb = _blocks(f["truth"] - f["background_mean"], k)
    obs["eb"] = eb[obs.ti, obs.py, obs.px]
    obs["d_ob"] = obs.value - obs.hx_forecast_mean
    res = {}
    for pol, s in obs.groupby("pol"):
        a, b = np.polyfit(s.eb, s.d_ob, 1)
        r = s.d_ob - a * s.eb - b
        res[pol] = (a, float(r.std()), float(np.sqrt((s.error_std ** 2).mean())))
        print(f"{name}: {pol}: dTB/dSM {a:.0f} K per m3/m3 (O - F on the pixel SM error, n {len(s)}, R "
              f"{np.corrcoef(s.eb, s.d_ob)[0, 1]:.2f}); residual std {r.std():.2f} K, specified error "
              f"{res[pol][2]:.2f} K")
    sigma_o = 1.0 / np.sqrt(sum(a * a / e ** 2 for a, _, e in res.values()))
    print(f"{name}: sigma_o, one pixel's H and V together (specified errors): {sigma_o:.4f} m3/m3")
    return sigma_o


def ceilings(name, f, obs, k, sigma_o, ol, an, orc):
    """Pixel-mean errors of the runs (pixels weighted alike) and the observation-limited ceilings."""
    e = {v: _blocks(f[f"{v}_mean"] - f["truth"], k) for v in ("openloop", "background", "analysis")}
    sb_ub, sb_raw = _ub(e["background"]), _rms(e["background"])
    seen = obs[["ti", "py", "px"]].drop_duplicates()
    n_t = seen.groupby("ti").size()
    n = n_t.mean()
    print(f"{name}: pixel-mean error ub (raw): open loop {_ub(e['openloop']):.4f} ({_rms(e['openloop']):.4f}), "
          f"background {sb_ub:.4f} ({sb_raw:.4f}), analysis {_ub(e['analysis']):.4f} ({_rms(e['analysis']):.4f}); "
          f"{n:.1f} pixels observed per analysis time")
    for label, so in (("own pixel", sigma_o), (f"perfect pooling of {n:.1f} pixels", sigma_o / np.sqrt(n))):
        sa = [sb * so / np.hypot(sb, so) for sb in (sb_ub, sb_raw)]
        gf = [gain_fraction(ol.ubRMSE, orc.ubRMSE, s, an.ubRMSE_within) for s in sa]
        gf_orc = gain_fraction(ol.ubRMSE, orc.ubRMSE, sa[0], orc.ubRMSE_within)
        print(f"{name}: ceiling, {label}: sigma_a {sa[0]:.4f} (sigma_b ub) / {sa[1]:.4f} (raw) -> gain fraction "
              f"{gf[0]:.3f} / {gf[1]:.3f} (analysis within error), {gf_orc:.3f}"
              f" (oracle's)")
    # cycling: the error regrows by q between analyses (sigma_b^2 = sigma_a^2 + q, q measured); a better analysis
    # also gives a better background: the fixed point of the pooled ceiling
    q = sb_raw ** 2 - _rms(e["analysis"]) ** 2
    so2, sa2 = sigma_o ** 2 / n, 0.0
    for _ in range(200):
        sa2 = (sa2 + q) * so2 / (sa2 + q + so2)
    print(f"{name}: regrowth between analyses sqrt(q) {np.sqrt(q):.4f}; cycled perfect pooling: sigma_b "
          f"{np.sqrt(sa2 + q):.4f}, sigma_a {np.sqrt(sa2):.4f} -> gain fraction "
          f"{gain_fraction(ol.ubRMSE, orc.ubRMSE, np.sqrt(sa2), an.ubRMSE_within):.3f}")
    # the most generous: perfect pooling with each time's own background error variance known (flow-dependent B)
    eb = e["background"][seen.ti, seen.py, seen.px]
    s2 = pd.Series(eb ** 2).groupby(seen.ti.values).mean().loc[n_t.index].values
    so2 = sigma_o ** 2 / n_t.values
    sa = float(np.sqrt(np.mean(s2 * so2 / (s2 + so2))))
    print(f"{name}: ceiling, perfect pooling with each time's background error variance: sigma_a {sa:.4f} -> gain "
          f"fraction {gain_fraction(ol.ubRMSE, orc.ubRMSE, sa, an.ubRMSE_within):.3f} (analysis within error), "
          f"{gain_fraction(ol.ubRMSE, orc.ubRMSE, sa, orc.ubRMSE_within):.3f} (oracle's)")
    return e


def innovations(name, obs):
    obs["d_oa"] = obs.value - obs.hx_analysis_mean
    obs["d_ab"] = obs.hx_analysis_mean - obs.hx_forecast_mean
    for pol, s in obs.groupby("pol"):
        r2, s2 = (s.error_std ** 2).mean(), (s.hx_forecast_spread ** 2).mean()
        dob, doa, dab = s.d_ob.values, s.d_oa.values, s.d_ab.values
        chi2 = (s.d_ob ** 2 / (s.hx_forecast_spread ** 2 + s.error_std ** 2)).groupby(s.time).mean()
        print(f"{name}: {pol}: O - F mean {dob.mean():.2f} K, rms {_rms(dob):.2f} K; NIV raw "
              f"{np.mean(dob ** 2) / (s2 + r2):.2f}, centred {dob.var() / (s2 + r2):.2f}; chi2 per cycle median "
              f"{chi2.median():.2f} (10-90 % "
              f"{chi2.quantile(0.1):.2f}-{chi2.quantile(0.9):.2f}, {chi2.size} cycles)")
        print(f"{name}: {pol}: Desroziers R raw {np.mean(doa * dob):.1f} centred {np.cov(doa, dob)[0, 1]:.1f} K^2 "
              f"(specified {r2:.1f}); HBH raw {np.mean(dab * dob):.1f} centred {np.cov(dab, dob)[0, 1]:.1f} K^2 (ensemble "
              f"{s2:.1f}); background TB error sqrt(E[d^2] - R) raw {np.sqrt(max(np.mean(dob ** 2) - r2, 0)):.2f} centred "
              f"{np.sqrt(max(dob.var() - r2, 0)):.2f} K vs spread {np.sqrt(s2):.2f} K")


def restarts(out: Path, name: str, k: int, land: np.ndarray, e_b: np.ndarray):
    """Pixel-mean spread / error of the full ensembles in the checkpoints; error correlation between pixels."""
    paths = sorted(glob.glob(str(out / "restart" / f"{name}_*.nc")))
    nl = {}
    sums = {}
    for p in paths:
        with netCDF4.Dataset(p) as r:
            nl = yaml.safe_load(r.getncattr("namelist"))
            states = {v[6:]: np.asarray(r[v][:, 0, :], float) for v in r.variables if v.startswith("state_")}
        if states["truth"].shape[0] != land.sum():
            raise ValueError(f"{p}: {states['truth'].shape[0]} cells, the analysis file has {land.sum()} land cells")
        for run in ("openloop", "analysis"):
            full = np.full((states[run].shape[1], *land.shape), np.nan)
            full[:, land] = states[run].T
            tr = np.full((1, *land.shape), np.nan)
            tr[:, land] = states["truth"][:, 0]
            pix = _blocks(full, k)  # (member, py, px)
            acc = sums.setdefault(run, np.zeros(2))
            acc += (np.nanmean(pix.var(0, ddof=1)), np.nanmean((pix.mean(0) - _blocks(tr, k)[0]) ** 2))
    for run, (s2, e2) in sums.items():
        print(f"{name}: {run}: pixel-mean ensemble spread {np.sqrt(s2 / len(paths)):.4f}, error of the mean "
              f"{np.sqrt(e2 / len(paths)):.4f} (raw), ratio {np.sqrt(s2 / e2):.2f} ({len(paths)} checkpoints)")
    c = nl.get("assimilation", {}).get("loc_radius_km", np.nan)
    t, ny, nx = e_b.shape
    flat = e_b.reshape(t, -1)
    ok = np.isfinite(flat).all(0)
    corr = np.corrcoef(flat[:, ok].T)
    yy, xx = np.divmod(np.flatnonzero(ok), nx)
    dist = np.hypot(yy[:, None] - yy[None], xx[:, None] - xx[None])
    for lag in (1.0, np.sqrt(2.0)):
        sel = np.isclose(dist, lag)
        if sel.any():
            taper = float(gaspari_cohn_taper(lag * k, c))
            print(f"{name}: background pixel-error correlation at {lag * k:.0f} km: {corr[sel].mean():.2f} "
                  f"({corr[sel].min():.2f}-{corr[sel].max():.2f}); taper GC(d / {c:g} km) {taper:.2f}")


def within(name, f, k, ol, an, orc):
    """Within-pixel increments: information term against added variance, and their fixed pattern."""
    wa = {v: f[v] - coarse_mean(f[v], k) for v in ("truth", "background_mean", "analysis_mean", "openloop_mean")}
    eb = wa["background_mean"] - wa["truth"]
    inc = wa["analysis_mean"] - wa["background_mean"]
    eb, inc = eb - np.nanmean(eb, 0), inc - np.nanmean(inc, 0)
    info, var = 2 * np.nanmean(eb * inc), np.nanmean(inc * inc)
    print(f"{name}: within-pixel error ub: open loop {_ub(wa['openloop_mean'] - wa['truth']):.5f}, background "
          f"{_ub(wa['background_mean'] - wa['truth']):.5f}, analysis {_ub(wa['analysis_mean'] - wa['truth']):.5f}")
    print(f"{name}: within-pixel increments: rms {np.sqrt(var):.5f}; E[e_a^2] - E[e_b^2] = 2 E[e_b i] {info:.3e} + "
          f"E[i^2] {var:.3e} = {info + var:.3e} (m3/m3)^2; correlation of i with -e_b "
          f"{-np.nanmean(eb * inc) / np.sqrt(np.nanmean(eb * eb) * var):.3f}")
    print(f"{name}: the analysis's pixel error with the open loop's within error: gain fraction "
          f"{gain_fraction(ol.ubRMSE, orc.ubRMSE, an.ubRMSE_pixel, ol.ubRMSE_within):.3f}")
    full = f["analysis_mean"] - f["background_mean"]
    pix = coarse_mean(full, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(np.abs(pix) > 1e-3, full / pix, np.nan)
    pattern = np.nanmean(ratio, 0)
    spatial = pattern - coarse_mean(pattern[None], k)[0]
    fixed = np.nanmean((spatial[None] * pix) ** 2)
    spread = np.nanmean(f["background_spread"], 0)
    spread = spread - coarse_mean(spread[None], k)[0]
    ny, nx = spatial.shape
    yy, xx = np.mgrid[:ny, :nx]
    centre = np.hypot(yy % k - (k - 1) / 2, xx % k - (k - 1) / 2)
    ok = np.isfinite(spatial) & np.isfinite(spread)
    print(f"{name}: fixed within-pixel pattern of increment / pixel increment: rms {np.sqrt(np.nanmean(spatial ** 2)):.3f}, "
          f"its share of E[i^2] {fixed / np.nanmean((full - pix) ** 2):.2f}; its correlation with the within-pixel "
          f"anomaly of the background spread {np.corrcoef(spatial[ok], spread[ok])[0, 1]:.2f}, with the distance to "
          f"the pixel centre {np.corrcoef(spatial[ok], centre[ok])[0, 1]:.2f}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--pixel-km", type=int, default=36)
    ap.add_argument("--goal", type=float, default=0.9)
    args = ap.parse_args(argv)
    found = glob.glob(str(args.out / "*_skill.csv"))
    if not found:
        ap.error(f"{args.out}: no <name>_skill.csv (not a finished twin run)")
    name = Path(found[0]).name[: -len("_skill.csv")]
    k = args.pixel_km
    ol, an, orc = skill(args.out, name, args.goal)
    f, obs = load(args.out, name, k)
    sigma_o = sensitivity(name, f, obs, k)
    e = ceilings(name, f, obs, k, sigma_o, ol, an, orc)
    innovations(name, obs)
    restarts(args.out, name, k, np.isfinite(f["truth"][0]), -e["background"])
    within(name, f, k, ol, an, orc)


if __name__ == "__main__":
    main()
