"""Science diagnostics of a finished twin run (issue 20): within-pixel LST-SM coupling, depth of the analysis.

    python benchmarks/twin_science.py OUT_DIR [--pixel-km 36] [--see-end-members pixel|scene]

OUT_DIR is a twin case's output folder (``<name>_daily.nc``, ``<name>_analysis.nc``, ``predictors.nc``,
``restart/``). Printed, one line each:

* LST-SM within-pixel correlation: synthetic MODIS LST (clear-sky days, ``predictors.nc``) against the truth
  daily-mean 0-5 cm soil moisture, both as anomalies from their 36 km pixel mean of that day (``static``), and
  with each cell's time mean of that anomaly removed as well (``dynamic``, the part a method must follow in
  time), and the correlation in time at each cell (median over cells, the quantity of site studies).
  Merlin et al. (2012, doi:10.1016/j.rse.2011.10.007) and Djamai et al. (2015,
  doi:10.1016/j.rse.2015.02.012) report SEE-SM R of 0.7-0.85 in semi-arid summers (LST-SM R is negative).
  The soil moisture is the day's mean: the moisture at the 10:30 overpass would give a slightly stronger
  coupling (default twin, from a truth rerun: static -0.372, dynamic -0.390 against -0.342, -0.348).
* SEE-SM: the same three correlations for DISPATCH's own variable, the soil evaporative efficiency of the
  same LST, NDVI and elevation by the method's code (:func:`smda.assimilation.downscaling.dispatch.downscale_fields`
  with its default settings, as in the run: LST unmixed from the vegetation by the hourglass, SEE =
  (Tsmax - Ts) / (Tsmax - Tsmin) with the 36 km pixel's end-members), the quantity the published R refer to.
  ``--see-end-members scene`` takes the end-members of the whole domain instead.
* root zone: ubRMSE of the 0-1 m moisture (open loop, analysis) against the truth at the analysis times, and
  the rms of the analysis increments (analysis - background mean) of the surface and root zone.
* ensemble coupling: the correlation over members of the surface and root-zone moisture, median over the land
  cells, in the weekly restart files (analysis ensemble), and the ratio of the root-zone to the surface background
  spread: the root-zone increment is about correlation x spread ratio x the surface increment.
"""

import argparse
import glob
import warnings
from pathlib import Path

import netCDF4
import numpy as np

from smda.assimilation.downscaling.dispatch import DispatchSettings, downscale_fields
from smda.assimilation.downscaling.inputs import check_inputs


def _pixel_anomaly(a, k):
    """a (t, ny, nx) minus its k x k block means (NaN-aware)."""
    t, ny, nx = a.shape
    b = a.reshape(t, ny // k, k, nx // k, k)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        m = np.nanmean(b, axis=(2, 4), keepdims=True)
    return (b - m).reshape(t, ny, nx)


def _corr(x, y):
    ok = np.isfinite(x) & np.isfinite(y)
    return float(np.corrcoef(x[ok], y[ok])[0, 1]), int(ok.sum())


def _coupling(x, sm, k):
    """Within-pixel R of x and sm (t, ny, nx): static, dynamic ((R, n) each) and the median R in time at a cell."""
    sm = np.where(np.isfinite(x), sm, np.nan)
    xa, sa = _pixel_anomaly(x, k), _pixel_anomaly(sm, k)
    r_static = _corr(xa, sa)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        r_dyn = _corr(xa - np.nanmean(xa, axis=0), sa - np.nanmean(sa, axis=0))
        xt, st = x - np.nanmean(x, axis=0), sm - np.nanmean(sm, axis=0)
        r_cell = np.nansum(xt * st, 0) / np.sqrt(np.nansum(xt * xt, 0) * np.nansum(st * st, 0))
    return r_static, r_dyn, float(np.nanmedian(r_cell))


def see_fields(lst, ndvi, elevation, land, k, end_members="pixel"):
    """DISPATCH's soil evaporative efficiency (t, ny, nx) of each day's LST, NDVI (t, ny, nx) and elevation (ny, nx),
    with the end-members of each k x k pixel of the ``land`` cells (or of the whole domain)."""
    t, ny, nx = lst.shape
    r, c = np.divmod(np.arange(ny * nx), nx)
    pixel = np.where(land.ravel(), (r // k) * (nx // k) + c // k, -1).reshape(ny, nx)
    n_pix = (ny // k) * (nx // k)
    settings = DispatchSettings(end_members=end_members)
    see = np.full(lst.shape, np.nan)
    for i in range(t):
        inp = check_inputs(np.zeros(n_pix), pixel, lst[i], ndvi[i], elevation)
        see[i] = inp.unflatten(downscale_fields(inp, settings)[2][0])
    return see


def lst_sm_coupling(out: Path, name: str, k: int, end_members="pixel"):
    """LST-SM and SEE-SM couplings (module docstring): two (static, dynamic, in time) triples."""
    with netCDF4.Dataset(out / "predictors.nc") as p, netCDF4.Dataset(out / f"{name}_daily.nc") as d:
        lst = np.asarray(p["lst"][:], float)
        ndvi = np.asarray(p["ndvi"][:], float)
        elevation = np.asarray(p["elevation"][:], float)
        sm = np.asarray(d["sm_surface_truth"][:], float)
    n = min(lst.shape[0], sm.shape[0])
    lst, ndvi, sm = lst[:n], ndvi[:n], sm[:n]
    see = see_fields(lst, ndvi, elevation, np.isfinite(sm).any(axis=0), k, end_members)
    return _coupling(lst, sm, k), _coupling(see, sm, k)


def depth(out: Path, name: str):
    with netCDF4.Dataset(out / f"{name}_analysis.nc") as a:
        a.set_auto_mask(False)
        g = {v: np.asarray(a[v][:], float) for v in a.variables if v.startswith("sm_")}

    def ub(x, t):
        e = x - t
        e = e - np.nanmean(e, axis=0)
        return float(np.sqrt(np.nanmean(e * e)))

    res = {f"ubRMSE_rootzone_{m}": ub(g[f"sm_rootzone_{m}_mean"], g["sm_rootzone_truth"]) for m in ("openloop", "analysis")}
    res.update({f"ubRMSE_surface_{m}": ub(g[f"sm_surface_{m}_mean"], g["sm_surface_truth"]) for m in ("openloop", "analysis")})
    for layer in ("surface", "rootzone"):
        inc = g[f"sm_{layer}_analysis_mean"] - g[f"sm_{layer}_background_mean"]
        res[f"increment_rms_{layer}"] = float(np.sqrt(np.nanmean(inc * inc)))
    with np.errstate(invalid="ignore", divide="ignore"):
        res["spread_ratio_rootzone_surface_median"] = float(np.nanmedian(g["sm_rootzone_background_spread"]
                                                                         / g["sm_surface_background_spread"]))
    rs = []
    for f in sorted(glob.glob(str(out / "restart" / f"{name}_*.nc"))):
        with netCDF4.Dataset(f) as r:
            x = np.asarray(r["state_analysis"][:], float)  # (cell, var, member)
        s, z = x[:, 0, :], x[:, 1, :]
        s, z = s - s.mean(1, keepdims=True), z - z.mean(1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            c = (s * z).sum(1) / np.sqrt((s * s).sum(1) * (z * z).sum(1))
        rs.append(np.nanmedian(c))
    res["ens_corr_surface_rootzone_median"] = float(np.median(rs)) if rs else float("nan")
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--pixel-km", type=int, default=36)
    ap.add_argument("--see-end-members", choices=("pixel", "scene"), default="pixel")
    args = ap.parse_args(argv)
    name = Path(glob.glob(str(args.out / "*_daily.nc"))[0]).name[: -len("_daily.nc")]
    couplings = lst_sm_coupling(args.out, name, args.pixel_km, args.see_end_members)
    for label, ((rs, ns), (rd, nd), rt) in zip(("LST-SM", "SEE-SM"), couplings, strict=True):
        print(f"{name}: {label} within-pixel R static {rs:.3f} (n {ns}), dynamic {rd:.3f} (n {nd}); "
              f"in time at a cell (median over cells) {rt:.3f}")
    for key, v in depth(args.out, name).items():
        print(f"{name}: {key} {v:.4f}")


if __name__ == "__main__":
    main()
