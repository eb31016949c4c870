"""Lorenz-96 test model (Lorenz 1996; Lorenz and Emanuel 1998) for filter tests.

dx_i/dt = (x_{i+1} - x_{i-2}) x_{i-1} - x_i + F, i cyclic, integrated with classical RK4.
Twin set-up of Sakov and Oke (2008, doi:10.1111/j.1600-0870.2007.00299.x): 40 variables, F = 8,
dt = 0.05, every variable observed every step with unit error variance.
"""

import numba as nb
import numpy as np

from smda.model.streams import normal_field


@nb.njit(cache=True)
def _tendency(x, forcing, out):
    n = x.shape[0]
    for i in range(n):
        for m in range(x.shape[1]):
            out[i, m] = (x[(i + 1) % n, m] - x[(i - 2) % n, m]) * x[(i - 1) % n, m] - x[i, m] + forcing


@nb.njit(cache=True)
def rk4_steps(x, dt, n_steps, forcing=8.0):
    """Advance x (n_vars, n_members) in place by n_steps RK4 steps of length dt."""
    k1 = np.empty_like(x)
    k2 = np.empty_like(x)
    k3 = np.empty_like(x)
    k4 = np.empty_like(x)
    tmp = np.empty_like(x)
    for _ in range(n_steps):
        _tendency(x, forcing, k1)
        tmp[:] = x + 0.5 * dt * k1
        _tendency(tmp, forcing, k2)
        tmp[:] = x + 0.5 * dt * k2
        _tendency(tmp, forcing, k3)
        tmp[:] = x + dt * k3
        _tendency(tmp, forcing, k4)
        x += dt / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def twin_rmse(flt, n_members, n_cycles, n_spinup, seed=1, n_vars=40, dt=0.05):
    """Analysis RMSE of a Lorenz-96 twin, averaged over cycles after ``n_spinup``.

    Cells are grid points on a ring at x = i km (use ``period_km = n_vars`` for localization).
    """
    truth = np.full((n_vars, 1), 8.0)
    truth[0, 0] += 0.01
    rk4_steps(truth, dt, 2000)
    cells = np.arange(n_vars)
    ens = truth + normal_field(seed, "test.l96.init", cells, n_members, 0)
    xy = np.stack([cells * 1000.0, np.zeros(n_vars)], 1)
    r = np.ones(n_vars)
    ids = cells.astype(np.int64)
    err = []
    for k in range(1, n_cycles + 1):
        rk4_steps(truth, dt, 1)
        rk4_steps(ens, dt, 1)
        y = truth[:, 0] + normal_field(seed, "test.l96.obs", cells, 1, k)[:, 0]
        X = np.ascontiguousarray(ens[:, None, :])
        flt.analyse(X, xy, X[:, 0, :].copy(), y, r, xy, obs_ids=ids, cycle=k)
        ens = np.ascontiguousarray(X[:, 0, :])
        if k > n_spinup:
            err.append(np.sqrt(np.mean((ens.mean(axis=1) - truth[:, 0]) ** 2)))
    return float(np.mean(err))
