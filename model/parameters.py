"""Static 1 km parameters: read from netCDF on the domain grid, or a synthetic landscape.

Fields per land cell (n_cells,): ``sand`` and ``clay`` (mass fractions), ``elevation_m`` (m),
``ndvi_min`` and ``ndvi_max`` (the NDVI climatology's bounds), ``green_up_doy`` (day of year of
the NDVI peak) and ``igbp`` (IGBP land-cover class 1-17). A file may also hold the optional
``organic_fraction`` (Lawrence & Slater 2008 organic fraction, 0-1, :func:`smda.model.soil.organic_mixing`)
and per-cell hydraulic overrides ``porosity`` (m3 m-3), ``b`` (-), ``psi_sat_m`` (m) and ``k_sat_ms``
(m s-1), NaN where the pedotransfer value holds (:data:`HYDRAULIC` maps them to the soil parameters).
``smda parameters`` (:mod:`smda.run.parameters`) builds such a file from rasters.

The synthetic landscape of twin experiments is multi-scale value noise: standard normals on square
lattices anchored to the EASE-Grid 2.0 origin (spacings 30, 8 and 2 km), keyed by the global lattice
point, interpolated with smoothstep weights and summed with decreasing weights. Every field is a pure
function of (seed, x, y), so any subset of cells, on any rank, gets the same values; and texture,
vegetation and relief vary inside each 36 km pixel, which is what downscaling must recover.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from smda.model.grid import _X0, _Y0
from smda.model.streams import normal_field

FIELDS = ("sand", "clay", "elevation_m", "ndvi_min", "ndvi_max", "green_up_doy", "igbp")
# optional per-cell hydraulic overrides of a parameter file -> the soil parameter they replace (smda.model.soil)
HYDRAULIC = {"porosity": "wsat", "b": "b", "psi_sat_m": "psi_s_m", "k_sat_ms": "ks_m_s"}
OPTIONAL = ("organic_fraction", *HYDRAULIC)
_SCALES_KM = (30.0, 8.0, 2.0)
_WEIGHTS = (0.75, 0.55, 0.35)
# mean variance of smoothstep-interpolated unit white noise, ((1-s)^2 + s^2) averaged over the cell, squared (2-D)
_t = (np.arange(100000) + 0.5) / 100000
_s = _t * _t * (3 - 2 * _t)
_INTERP_STD = float(np.mean((1 - _s) ** 2 + _s ** 2))
del _t, _s


def value_noise(x_m, y_m, *, seed: int, purpose: str, scales_km=_SCALES_KM, weights=_WEIGHTS) -> np.ndarray:
    """Unit-variance multi-scale noise at points (x_m, y_m) (EASE-Grid 2.0 metres)."""
    x_m, y_m = np.asarray(x_m, float), np.asarray(y_m, float)
    total = np.zeros_like(x_m)
    norm = 0.0
    for k, (scale, w) in enumerate(zip(scales_km, weights, strict=True)):
        L = scale * 1000.0
        fx, fy = (x_m - _X0) / L, (_Y0 - y_m) / L
        i, j = np.floor(fx).astype(np.int64), np.floor(fy).astype(np.int64)
        tx, ty = fx - i, fy - j
        tx, ty = tx * tx * (3 - 2 * tx), ty * ty * (3 - 2 * ty)
        ncol = int(40075016.0 / L) + 2  # lattice columns around the globe
        corners = [(j + dj) * ncol + (i + di) for dj in (0, 1) for di in (0, 1)]
        vals = [normal_field(seed, f"{purpose}.{k}", c, 1, 0)[:, 0] for c in corners]
        v = (vals[0] * (1 - tx) + vals[1] * tx) * (1 - ty) + (vals[2] * (1 - tx) + vals[3] * tx) * ty
        total += w * v / _INTERP_STD  # interpolating white noise loses variance: back to unit variance
        norm += w * w
    return total / np.sqrt(norm)


def synthetic_landscape(x_m, y_m, *, seed: int) -> dict[str, np.ndarray]:
    """A heterogeneous agricultural plateau (Duero-basin-like) at the given cells."""
    z = {name: value_noise(x_m, y_m, seed=seed, purpose=f"landscape.{name}") for name in ("tex", "cla", "elv", "veg")}
    sand = np.clip(0.45 + 0.17 * z["tex"], 0.08, 0.85)
    clay = np.clip(0.20 - 0.06 * z["tex"] + 0.05 * z["cla"], 0.04, 0.50)
    clay = np.minimum(clay, 0.95 - sand)
    ndvi_max = np.clip(0.55 + 0.17 * z["veg"], 0.22, 0.88)
    ndvi_min = np.clip(0.16 + 0.04 * z["veg"], 0.10, 0.30)
    igbp = np.select([ndvi_max > 0.78, ndvi_max > 0.55, ndvi_max > 0.35], [4, 12, 10], 7).astype(np.int64)
    return {
        "sand": sand, "clay": clay,
        "elevation_m": 820.0 + 90.0 * z["elv"],
        "ndvi_min": ndvi_min, "ndvi_max": ndvi_max,
        "green_up_doy": 140.0 + 15.0 * z["veg"],
        "igbp": igbp,
    }


def ndvi_on(doy: float, p: dict[str, np.ndarray]) -> np.ndarray:
    """NDVI climatology on day of year ``doy``: a Gaussian-shaped season peaking at green_up_doy (60-day width)."""
    phase = np.exp(-0.5 * ((doy - p["green_up_doy"]) / 60.0) ** 2)
    return p["ndvi_min"] + (p["ndvi_max"] - p["ndvi_min"]) * phase


def read_parameters(path: Path, cells: np.ndarray, shape) -> dict[str, np.ndarray]:
    """Read the static fields at ``cells`` (row-major domain indices) from a netCDF file on the domain grid.

    The optional fields (:data:`OPTIONAL`) are returned when the file has them; NaN is allowed in the
    hydraulic overrides only (the pedotransfer value holds there)."""
    import xarray as xr

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"parameter file not found: {path}")
    out = {}
    with xr.open_dataset(path) as ds:
        missing = [f for f in FIELDS if f not in ds]
        if missing:
            raise ValueError(f"{path}: missing variables {missing}; expected {list(FIELDS)} on (y, x)")
        for f in FIELDS + tuple(f for f in OPTIONAL if f in ds):
            a = np.asarray(ds[f].values)
            if a.shape != tuple(shape):
                raise ValueError(f"{path}: {f} has shape {a.shape}, domain is {tuple(shape)}")
            v = a.ravel()[cells]
            if f not in HYDRAULIC and not np.all(np.isfinite(v)):
                raise ValueError(f"{path}: {f} has missing values on land cells")
            out[f] = v.astype(np.int64) if f == "igbp" else v.astype(float)
    return out
