"""Super-observations: a dense fine source averaged in coarser EASE-Grid 2.0 pixels, with the error variance of
a mean of spatially correlated errors.

The filters take a diagonal R. Fine retrievals (3 km SMAP/Sentinel-1 soil moisture) share their ancillary data
and coarse inputs over tens of km, so neighbouring errors are correlated and a diagonal R gives a cluster of them
the weight of independent observations. A super-observation (Lorenc 1981, doi:10.1175/1520-0493(1981)109<0701:
AGTDMO>2.0.CO;2) replaces the ``n`` accepted observations of one source, one time and one variable inside a pixel
of a coarser nested grid (M03, M09 or M36) by their mean, whose error variance is

    var(mean) = 1/n^2 sum_i sum_j sigma_i sigma_j rho(p_i - p_j),

not sigma^2 / n: with rho = 1 everywhere (fully correlated) it stays sigma^2, with rho = delta_ij it is sigma^2 / n
(Liu & Rabier 2003, doi:10.1256/qj.02.31, on thinning and averaging correlated observations; Desroziers et al.
2005, doi:10.1256/qj.05.108, to check the result from innovations).

The correlation model is the one of the synthetic generator (:mod:`.synthetic`, ``error_corr_km`` = L): there
the errors are a lattice field, unit normals at the nodes of a global square lattice of spacing L blended with
normalised smoothstep weights. That field's correlation is the product of two one-dimensional factors; averaged
over the position of the lattice (a real product's errors have no lattice), it is the stationary, separable

    rho(dx, dy) = r(|dx| / L) r(|dy| / L),

r(0) = 1, r(0.5) = 0.68, r(1) = 0.21, r = 0 beyond 2 (the field never shares a node farther away), tabulated
once by quadrature (:func:`lattice_correlation`). Correlation between neighbouring super-observations remains
and is still ignored by the diagonal R (it is smaller: their centres are a pixel apart).

The super-observation is a box observation of the coarser pixel (location: the pixel centre; footprint: the pixel,
whose model equivalent the footprint operator computes exactly). Where some pixels of the box were missing (gaps,
QC) its value is the mean of those present, a representativeness difference the error variance does not hold.
Rows that are not accepted, or not boxes of a nested grid finer than the super-observation grid (Gaussian
footprints, the 25 km grid), pass unchanged. The result depends on the table only, not on its order: run on the
observation table that every rank holds, it is the same on every rank.
"""

from __future__ import annotations

import numpy as np

from smda.assimilation.observations.table import ObsTable
from smda.jit import kernel
from smda.model.grid import GRIDS, NEST

TABLE_STEP = 1.0 / 256  # spacing of the tabulated r, in units of the correlation length
TABLE_MAX = 2.0  # r = 0 beyond two lattice spacings
_QUADRATURE = 4096  # lattice offsets (midpoint rule) averaged for each tabulated distance


def _lattice_weights(u):
    """Lower node and normalised smoothstep weights (lower, upper) of positions u (lattice units), as
    :func:`smda.assimilation.observations.synthetic._lattice_field` blends them along one axis."""
    node = np.floor(u)
    f = u - node
    s = f * f * (3.0 - 2.0 * f)
    norm = np.sqrt((1.0 - s) ** 2 + s ** 2)
    return node, (1.0 - s) / norm, s / norm


def lattice_correlation(s) -> np.ndarray:
    """r(s): correlation along one axis of the lattice error field between two points ``s`` correlation lengths
    apart, averaged over the lattice offset (module docstring); ``s`` any shape, >= 0."""
    s = np.abs(np.asarray(s, float))
    u = (np.arange(_QUADRATURE) + 0.5) / _QUADRATURE
    i, a0, a1 = _lattice_weights(u)
    out = np.empty(s.size)
    for k, d in enumerate(s.ravel()):
        j, b0, b1 = _lattice_weights(u + d)
        shared = np.where(j == i, a0 * b0 + a1 * b1, 0.0) + np.where(j == i + 1, a1 * b0, 0.0)
        out[k] = shared.mean()
    return out.reshape(s.shape)


CORRELATION_TABLE = lattice_correlation(np.arange(0.0, TABLE_MAX + TABLE_STEP / 2, TABLE_STEP))


@kernel
def tabulated_correlation(s, table, step):
    """Linear interpolation of the tabulated r at s >= 0 (0 beyond the table)."""
    q = s / step
    k = int(q)
    if k >= table.shape[0] - 1:
        return 0.0
    w = q - k
    return (1.0 - w) * table[k] + w * table[k + 1]


@kernel
def _mean_error_variance(start, x, y, sd, inv_length, table, step, out):
    """Variance of the mean of each group's errors (rows start[g]:start[g + 1]), sigma_i = sd[i], correlation
    r(|dx|/L) r(|dy|/L) (inv_length = 1/L in 1/m; 0: independent errors)."""
    for g in range(start.shape[0] - 1):
        a, b = start[g], start[g + 1]
        n = b - a
        acc = 0.0
        for i in range(a, b):
            acc += sd[i] * sd[i]
            if inv_length > 0.0:
                for j in range(i + 1, b):
                    rho = (tabulated_correlation(abs(x[i] - x[j]) * inv_length, table, step)
                           * tabulated_correlation(abs(y[i] - y[j]) * inv_length, table, step))
                    acc += 2.0 * sd[i] * sd[j] * rho
        out[g] = acc / (n * n)


def mean_error_variance(x, y, error_std, groups, corr_km: float) -> np.ndarray:
    """Error variance of the mean of the errors in each group (module docstring).

    x, y : (n,) positions (EPSG:6933 m); error_std : (n,) error std of each; groups : (n,) int group of each
    row, 0..G-1; corr_km : correlation length L (km; 0: independent errors). Returns (G,) variances (NaN for an
    empty group)."""
    groups = np.asarray(groups, np.int64)
    if corr_km < 0 or not np.isfinite(corr_km):
        raise ValueError(f"error correlation length must be finite and >= 0 km, got {corr_km}")
    n_groups = int(groups.max()) + 1 if groups.size else 0
    order = np.argsort(groups, kind="stable")
    start = np.concatenate(([0], np.cumsum(np.bincount(groups, minlength=n_groups)))).astype(np.int64)
    out = np.empty(n_groups)
    inv = 1.0 / (corr_km * 1000.0) if corr_km > 0 else 0.0
    _mean_error_variance(start, np.ascontiguousarray(np.asarray(x, float)[order]),
                         np.ascontiguousarray(np.asarray(y, float)[order]),
                         np.ascontiguousarray(np.asarray(error_std, float)[order]), inv, CORRELATION_TABLE,
                         TABLE_STEP, out)
    return out


def superobs(table: ObsTable, grid: str, corr_km: float = 0.0) -> ObsTable:
    """The table with its accepted fine box observations replaced by super-observations in the pixels of ``grid``
    (one per pixel, source, kind, polarization and angle; module docstring); the other rows first, unchanged.

    The super-observation's time is its members' mean, its flags their bitwise or, its error std the square root
    of :func:`mean_error_variance` with correlation length ``corr_km``.
    """
    if grid not in NEST or grid == "M01":
        raise ValueError(f"super-observation grid {grid!r}; valid: {', '.join(g for g in NEST if g != 'M01')}")
    g, big = GRIDS[grid], NEST[grid]
    fine = np.array([NEST.get(f, 0) for f in table.footprint], np.int64) if len(table) else np.zeros(0, np.int64)
    member = table.accepted & (fine > 0) & (fine < big)
    keep, m = table.select(~member), table.select(member)
    if len(m) == 0:
        return table
    ratio = big // fine[member]
    row, col = m.row // ratio, m.col // ratio
    _, source = np.unique(m.source, return_inverse=True)
    pol = np.searchsorted(np.array(["", "H", "V"]), m.pol)
    angle = np.nan_to_num(np.round(m.angle_deg * 10), nan=-1).astype(np.int64)
    keys = np.stack([row, col, source.ravel(), (m.kind == "tb").astype(np.int64), pol, angle], axis=1)
    uniq, group = np.unique(keys, axis=0, return_inverse=True)
    group = group.ravel()
    count = np.bincount(group)
    t0 = m.time.min()
    dt = (m.time - t0).astype(np.int64)
    time = t0 + np.round(np.bincount(group, dt) / count).astype(np.int64).astype("timedelta64[s]")
    flags = np.zeros(len(uniq), np.uint32)
    np.bitwise_or.at(flags, group, m.flags)
    first = np.full(len(uniq), len(m))
    np.minimum.at(first, group, np.arange(len(m)))  # a member of each group: its source, kind, pol and angle
    x, y = g.xy(uniq[:, 0], uniq[:, 1])
    lat, lon = g.latlon(uniq[:, 0], uniq[:, 1])
    var = mean_error_variance(m.x, m.y, m.error_std, group, corr_km)
    sup = ObsTable(time=time, x=x, y=y, lat=lat, lon=lon, kind=m.kind[first], pol=m.pol[first],
                   angle_deg=m.angle_deg[first], value=np.bincount(group, m.value) / count, error_std=np.sqrt(var),
                   flags=flags, footprint=grid, row=uniq[:, 0], col=uniq[:, 1], fov_km=0.0, source=m.source[first], qc=0)
    return ObsTable.concat([keep, sup])
