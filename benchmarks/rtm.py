"""Throughput of the L-band emission kernel: TB evaluations (one cell, one member, H and V at one angle)
per second on one core.

Run: .venv/bin/python benchmarks/rtm.py [n_cells] [n_members]
The kernel is called directly (inputs prepared once, as the observation operator does each cycle) and also
through the checked Python entry point, to show the cost of the checks.
"""

import functools
import sys
import time

import numpy as np
from _timing import median_time

from smda.model.dielectric import DIELECTRIC_MODELS
from smda.model.emission import TEFF_MODELS, brightness_temperature, igbp_parameters, tb_kernel


def _setup(n_cells, n_members):
    idx = np.arange(n_cells * n_members, dtype=np.float64)
    sm = (0.05 + 0.35 * ((idx * 0.618034) % 1.0)).reshape(n_cells, n_members)
    cells = np.arange(n_cells, dtype=np.float64)
    clay = 0.05 + 0.4 * ((cells * 0.37) % 1.0)
    sand = 0.5 * (1 - clay)
    bd = np.full(n_cells, 1.35)
    cls = (np.arange(n_cells) % 12 + 1).astype(np.int64)
    par = igbp_parameters(cls)
    t_s = np.broadcast_to(295.0 + 5 * ((cells * 0.11) % 1.0)[:, None], (n_cells, n_members))
    t_d = np.broadcast_to(np.full((n_cells, 1), 290.0), (n_cells, n_members))
    vwc = np.broadcast_to((3.0 * ((cells * 0.23) % 1.0))[:, None], (n_cells, n_members))
    return sm, t_s, t_d, vwc, clay, sand, bd, par


def _bench_config(n_cells, n_members):
    sm, t_s, t_d, vwc, clay, sand, bd, par = _setup(n_cells, n_members)
    n = n_cells * n_members
    cos_t = np.full((n_cells, 1), np.cos(np.deg2rad(40.0)))
    shp = (n_cells, n_members, 1)
    tb_h, tb_v = np.empty(shp), np.empty(shp)
    z = np.zeros(n_cells)
    two = np.full(n_cells, 2.0)
    print(f"n_cells = {n_cells}, n_members = {n_members} (one angle, H and V)")
    for diel in ("mironov", "dobson"):
        args = (sm, t_s, t_d, t_s, vwc, clay, sand, bd, cos_t, par["h"], par["omega"], par["b"], par["q"], two,
                two, DIELECTRIC_MODELS[diel], TEFF_MODELS["choudhury"], False, z, z, 1.41e9, tb_h, tb_v)
        dt = median_time(functools.partial(tb_kernel, *args), clock=time.process_time)
        print(f"  kernel {diel:8s}            : {n / dt:10.3e} TB evaluations / s / core")
    entry = functools.partial(
        brightness_temperature, sm, t_s, t_d, t_s, vwc, clay, sand, bd, 40.0, h=par["h"], omega=par["omega"],
        b=par["b"], out_h=tb_h.reshape(n_cells, n_members), out_v=tb_v.reshape(n_cells, n_members))
    dt = median_time(entry, clock=time.process_time)
    print(f"  checked entry point mironov   : {n / dt:10.3e} TB evaluations / s / core")


def main():
    n_cells = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    configs = [int(sys.argv[2])] if len(sys.argv) > 2 else [1, 32]
    for n_members in configs:
        _bench_config(n_cells, n_members)


if __name__ == "__main__":
    main()
