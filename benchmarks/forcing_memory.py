"""Forcing benchmarks: streaming memory vs period length, synthetic weather and perturbation throughput.

Prints: peak Python-heap growth while streaming gridded forcing over periods of increasing length
(flat = bounded), the time to make a growing season of hourly synthetic forcing for ~20,000 cells,
and the cost and size of one step's per-member forcing perturbations for 24 members.
"""

import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import xarray as xr

from smda.forcing.perturb import ForcingPerturbations, PerturbationSettings
from smda.forcing.readers import GriddedForcing
from smda.forcing.synthetic import SyntheticWeather
from smda.model.grid import Domain


def make_file(path, n_hours, ny=40, nx=40):
    t = np.datetime64("2019-01-01T00") + np.arange(n_hours) * np.timedelta64(1, "h")
    lat = np.linspace(45.0, 35.0, ny)
    lon = np.linspace(-95.0, -80.0, nx)
    rng = np.random.default_rng(0)
    shape = (n_hours, ny, nx)
    ds = xr.Dataset({
        "T2M": (("time", "lat", "lon"), (280 + rng.normal(0, 5, shape)).astype("f4"), {"units": "K"}),
        "QV2M": (("time", "lat", "lon"), np.full(shape, 0.008, "f4"), {"units": "kg kg-1"}),
        "PS": (("time", "lat", "lon"), np.full(shape, 1e5, "f4"), {"units": "Pa"}),
        "U2M": (("time", "lat", "lon"), np.full(shape, 2.0, "f4"), {"units": "m s-1"}),
        "V2M": (("time", "lat", "lon"), np.full(shape, 1.0, "f4"), {"units": "m s-1"}),
        "SWGDN": (("time", "lat", "lon"), np.full(shape, 200.0, "f4"), {"units": "W m-2"}),
        "LWGAB": (("time", "lat", "lon"), np.full(shape, 300.0, "f4"), {"units": "W m-2"}),
        "PRECTOTCORR": (("time", "lat", "lon"), rng.gamma(0.2, 1e-4, shape).astype("f4"), {"units": "kg m-2 s-1"}),
    }, coords={"time": t, "lat": lat, "lon": lon})
    ds.to_netcdf(path)


def stream_peak(path, n_steps, lat, lon):
    g = GriddedForcing(path, "merra2", chunk_steps=24)
    t0 = g.times[0] + np.timedelta64(1, "h")
    g.fields(t0, lat, lon)
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    for h in range(n_steps):
        g.fields(t0 + np.timedelta64(h, "h"), lat, lon)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    g.close()
    return peak


def main():
    d = Domain.from_centre(40.0, -88.0, 144, 144)
    la, lo = d.latlon()
    lat, lon = la.ravel()[:20000], lo.ravel()[:20000]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "long.nc"
        n_hours = 24 * 120
        make_file(path, n_hours)
        print("gridded forcing streaming (MERRA-2 preset, 40x40 grid, 2,000 cells, 24-step chunks)")
        for n in (24 * 7, 24 * 30, 24 * 119):
            tic = time.perf_counter()
            peak = stream_peak(path, n, lat[:2000], lon[:2000])
            print(f"  period {n:5d} h: peak heap growth {peak / 1e6:7.2f} MB ({time.perf_counter() - tic:.1f} s)")

    xx, yy = np.meshgrid(d.x, d.y)
    x, y = xx.ravel()[:20000], yy.ravel()[:20000]
    w = SyntheticWeather(seed=1)
    t0 = np.datetime64("2019-05-01T00")
    w.fields(0, t0, x, y, lat, lon)
    n_steps = 153 * 24
    tic = time.perf_counter()
    for s in range(n_steps):
        w.fields(s, t0 + np.timedelta64(s, "h"), x, y, lat, lon)
    dt = time.perf_counter() - tic
    print(f"synthetic weather: {n_steps} hourly steps x 20,000 cells in {dt:.1f} s "
          f"({dt / n_steps * 1e3:.2f} ms/step)")

    p = ForcingPerturbations(PerturbationSettings(), seed=1, dt_s=3600.0, x_m=x, y_m=y, n_members=24)
    values = p.perturbation(0).values
    tic = time.perf_counter()
    for s in range(1, 49):
        p.perturbation(s)
    print(f"perturbations: {(time.perf_counter() - tic) / 48 * 1e3:.1f} ms/step for 20,000 cells x 24 members "
          f"({values.shape[1]} perturbed variables, {values.nbytes / values.shape[0] / values.shape[2]:.0f} B per "
          "cell-member)")


if __name__ == "__main__":
    main()
