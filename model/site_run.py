"""Single-site runs of the land surface model on a station forcing table (Bondville 1998).

``read_bondville`` is a minimal private parser of the Noah-MP ``bondville.dat`` text table (half-hourly
rows after a ``<Forcing>`` tag: date, wind speed, direction, T (K), RH (%), p (hPa), SW, LW (W m-2),
precipitation (kg m-2 s-1)); the general reader lives in ``smda.forcing.site``. Specific humidity comes from
relative humidity with the Bolton (1980) saturation vapour pressure over water.

``run_site`` drives ``smda.model.lsm.step`` over a forcing table for a few cells (e.g. several soils) and
members, and returns daily state means and accumulated fluxes; it is used by the year-long test and
the figure script.
"""

import numpy as np

from smda.jit import kernel
from smda.model import lsm, soil
from smda.model.state import State, V, water_storage


def specific_humidity(t_k, rh_percent, p_pa):
    """Specific humidity (kg kg-1) from temperature (K), relative humidity (%) and pressure (Pa)."""
    es = 611.2 * np.exp(17.67 * (t_k - 273.15) / (t_k - 29.65))
    e = np.clip(rh_percent, 0.0, 100.0) / 100.0 * es
    return 0.622 * e / (p_pa - 0.378 * e)


def read_bondville(path):
    """Read ``bondville.dat``.

    Returns
    -------
    dict
        ``time`` (datetime64[m], UTC, step end as in the file) and float64 (n_steps,) arrays in the
        project's forcing names and units (precip kg m-2 s-1, sw_down, lw_down W m-2, t_air K, q_air
        kg kg-1, p_surf Pa, wind m s-1); ``dt_s`` the step in seconds.
    """
    with open(path) as fh:
        lines = fh.readlines()
    start = next((k for k, line in enumerate(lines) if "<forcing>" in line.lower()), None)
    if start is None:
        raise ValueError(f"{path}: no <Forcing> tag found")
    rows = [line.split() for line in lines[start + 1:] if line.strip()]
    table = np.array(rows, dtype=np.float64)
    if table.ndim != 2 or table.shape[1] != 13:
        raise ValueError(f"{path}: expected 13 columns after <Forcing>, got {table.shape}")
    y, mo, d, h, mi = (table[:, k].astype(int) for k in range(5))
    time = np.array([f"{a:04d}-{b:02d}-{c:02d}T{e:02d}:{f:02d}" for a, b, c, e, f in zip(y, mo, d, h, mi, strict=True)],
                    dtype="datetime64[m]")
    steps = np.diff(time).astype("timedelta64[s]").astype(float)
    if steps.size == 0 or np.any(steps != steps[0]):
        raise ValueError(f"{path}: time steps are not regular")
    t = table[:, 7]
    p = table[:, 9] * 100.0
    return {
        "time": time,
        "dt_s": float(steps[0]),
        "wind": table[:, 5],
        "t_air": t,
        "q_air": specific_humidity(t, table[:, 8], p),
        "p_surf": p,
        "sw_down": np.maximum(table[:, 10], 0.0),
        "lw_down": table[:, 11],
        "precip": np.maximum(table[:, 12], 0.0),
    }


def run_site(met, sand, clay, fveg, lai, n_members=1, sm0=0.30, t0=None, daily=True, **overrides):
    """Run the model over a site forcing table for several cells (soils) with identical weather.

    Parameters
    ----------
    met : dict from ``read_bondville`` (n_steps,) arrays and ``dt_s``
    sand, clay : (n_cells,) fractions
    fveg, lai : (n_cells,) or (n_steps, n_cells) vegetation fraction and LAI (a seasonal cycle)
    n_members : int
    sm0, t0 : initial soil moisture (m3 m-3) and temperature (K; default: first air temperature)
    daily : bool
        Return daily means of the state (True) or every step (False).
    **overrides : passed to ``smda.model.soil.soil_parameters``

    Returns
    -------
    dict
        ``state`` name -> (n_out, n_cells, n_members) means; ``flux_sum`` name -> (n_cells, n_members)
        time integrals (kg m-2 for water, J m-2 for energy); ``cum`` name -> (n_out, n_cells, n_members)
        cumulative water fluxes and precipitation (kg m-2); ``storage0``, ``storage1`` (kg m-2);
        ``precip_sum`` (kg m-2); ``params``; ``time`` of the outputs.
    """
    sand = np.atleast_1d(np.asarray(sand, dtype=np.float64))
    clay = np.atleast_1d(np.asarray(clay, dtype=np.float64))
    n_cells = sand.size
    params = soil.soil_parameters(sand, clay, **overrides)
    dt = met["dt_s"]
    n_steps = met["precip"].size
    t0 = met["t_air"][0] if t0 is None else t0
    state = State.initial(n_cells, n_members, params, sm=sm0, t=t0)
    fluxes = lsm.Fluxes(n_cells, n_members)
    fveg = np.asarray(fveg, dtype=np.float64)
    lai = np.asarray(lai, dtype=np.float64)
    if fveg.ndim == 2:
        fveg = np.broadcast_to(fveg, (fveg.shape[0], n_cells))
    if lai.ndim == 2:
        lai = np.broadcast_to(lai, (lai.shape[0], n_cells))
    per_step = 86400 // int(dt) if daily else 1
    n_out = n_steps // per_step
    if fveg.ndim == 1:
        fveg = np.broadcast_to(fveg, (n_steps, n_cells))
    if lai.ndim == 1:
        lai = np.broadcast_to(lai, (n_steps, n_cells))
    fveg = np.ascontiguousarray(fveg)
    lai = np.ascontiguousarray(lai)
    if fveg.shape != (n_steps, n_cells) or lai.shape != (n_steps, n_cells):
        raise ValueError(f"fveg and lai must be ({n_cells},) or ({n_steps}, {n_cells}), got {fveg.shape}, {lai.shape}")
    met_table = np.ascontiguousarray(np.stack([np.asarray(met[name], dtype=np.float64) for name in lsm.FORCING]))
    out_names = ("sm_surface", "sm_rootzone", "t_skin", "t_deep", "swe")
    cum_names = lsm.WATER_LOSSES + ("precip",)
    loss_idx = np.array([lsm.F[name] for name in lsm.WATER_LOSSES])
    out = np.zeros((n_out, n_cells, len(V), n_members))
    cum = np.zeros((n_out, len(cum_names), n_cells, n_members))
    total = np.zeros_like(fluxes.data)
    precip_sum = np.zeros((n_cells, n_members))
    scratch = np.empty((len(lsm.FORCING), n_cells, n_members))
    storage0 = water_storage(state, params).copy()
    _run_series(state.data, met_table, params.packed, fveg, lai, dt, per_step, n_out, scratch,
                fluxes.data, fluxes.flags, total, precip_sum, out, cum, loss_idx)
    return {"state": {name: out[:, :, V[name], :] for name in out_names},
            "flux_sum": {name: total[m] for m, name in enumerate(lsm.FLUXES)},
            "cum": {name: cum[:, m] for m, name in enumerate(cum_names)},
            "storage0": storage0, "storage1": water_storage(state, params), "precip_sum": precip_sum,
            "params": params, "time": met["time"][per_step - 1::per_step][:n_out]}


@kernel
def _run_series(x, met, par, fveg, lai, dt, per_step, n_out, scratch, flux, flags, total, precip_sum, out,
                cum, loss_idx):
    """Time loop of ``run_site``: the same weather (met (n_forcing, n_steps)) for every cell and member."""
    n_cells, n_vars, n_mem = x.shape
    for o in range(n_out):
        for s in range(per_step):
            k = o * per_step + s
            for f in range(met.shape[0]):
                scratch[f, :, :] = met[f, k]
            lsm._step_kernel(x, scratch[0], scratch[1], scratch[2], scratch[3], scratch[4], scratch[5],
                             scratch[6], par, fveg[k], lai[k], dt, flux, flags)
            for i in range(n_cells):
                for j in range(n_mem):
                    precip_sum[i, j] += scratch[0, i, j] * dt
                    for f in range(flux.shape[0]):
                        total[f, i, j] += flux[f, i, j] * dt
                    for v in range(n_vars):
                        out[o, i, v, j] += x[i, v, j] / per_step
        for m in range(loss_idx.size):
            cum[o, m] = total[loss_idx[m]]
        cum[o, loss_idx.size] = precip_sum


def crop_phenology(time, fveg_max=0.85, lai_max=4.0):
    """Simple crop cycle for a Bondville-like site: green-up in May, peak in July, harvest in October.

    A smooth bump in day of year (not an NDVI relation; for site tests where no NDVI is available).

    Returns
    -------
    fveg, lai : (n_steps, 1) arrays
    """
    doy = (time - time.astype("datetime64[Y]")).astype("timedelta64[m]").astype(float) / 1440.0
    g = np.clip(np.sin(np.pi * (doy - 120.0) / 170.0), 0.0, None) ** 1.5
    g = np.where((doy > 120.0) & (doy < 290.0), g, 0.0)
    return (0.05 + (fveg_max - 0.05) * g)[:, None], (0.1 + (lai_max - 0.1) * g)[:, None]
