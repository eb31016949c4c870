"""Input checks and coarse-pixel aggregation shared by the comparison (downscaling) operators.

Every operator takes the same inputs (see :func:`smda.assimilation.downscaling.downscale`): coarse soil
moisture per coarse pixel (m3/m3), an index ``pixel_of_cell`` from each 1 km cell of the domain to
its coarse pixel (-1 outside any pixel or not land), 1 km land surface temperature (K) for one or
more acquisitions with NaN gaps (clouds), 1 km NDVI, optional 1 km elevation (m) and optional coarse
brightness temperatures (K). This module checks them once (ValueError naming the variable and the
allowed range) and flattens the 1 km fields to the row-major cell order of the domain.

The aggregation to coarse pixels is the arithmetic mean over the finite 1 km values of a pixel:
``<x>_LR(p) = sum_{i in p, x_i finite} x_i / n_valid(p)``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from smda.jit import kernel


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Settings every downscaling method has; a method's settings dataclass extends it.

    min_valid_fraction : least fraction of a coarse pixel's land cells with valid predictors (0..1)
    elevation_correction : bring the 1 km LST to the coarse pixel's mean elevation first
    lapse_rate_k_per_km : the lapse rate of that correction (0..12 K/km)
    clip_min : lower bound of the 1 km estimates, m3/m3
    """

    min_valid_fraction: float = 0.5
    elevation_correction: bool = True
    lapse_rate_k_per_km: float = 6.0
    clip_min: float = 0.0

    def __post_init__(self):
        errors = self.problems()
        if errors:
            raise ValueError(f"invalid {type(self).__name__}: " + "; ".join(errors))

    def problems(self) -> list[str]:
        """What is wrong with the settings (empty when valid); subclasses add theirs."""
        errors = []
        if not 0.0 <= self.min_valid_fraction <= 1.0:
            errors.append(f"min_valid_fraction={self.min_valid_fraction}; allowed 0..1")
        if not 0.0 <= self.lapse_rate_k_per_km <= 12.0:
            errors.append(f"lapse_rate_k_per_km={self.lapse_rate_k_per_km}; allowed 0..12 K/km")
        return errors


def make_settings(cls, settings: dict):
    """Build a settings dataclass from keywords; unknown keys are a ValueError listing the valid ones."""
    valid = [f.name for f in fields(cls)]
    unknown = sorted(set(settings) - set(valid))
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys {unknown}; valid: {', '.join(valid)}")
    return cls(**settings)


@dataclass(frozen=True)
class ComparisonInputs:
    """Checked, flattened inputs.

    sm_coarse (n_pix,) m3/m3; pixel (n_cells,) int64; lst (n_acq, n_cells) K; ndvi (n_cells,);
    elevation_m (n_cells,) or None; tb_h, tb_v (n_pix,) K or None; shape (nrows, ncols).
    """

    sm_coarse: np.ndarray
    pixel: np.ndarray
    lst: np.ndarray
    ndvi: np.ndarray
    elevation_m: np.ndarray | None
    tb_h: np.ndarray | None
    tb_v: np.ndarray | None
    shape: tuple

    @property
    def n_pix(self) -> int:
        return self.sm_coarse.shape[0]

    @property
    def n_acq(self) -> int:
        return self.lst.shape[0]

    @property
    def n_cells(self) -> int:
        return self.pixel.shape[0]

    def cells_per_pixel(self) -> np.ndarray:
        """Number of 1 km cells mapped to each coarse pixel (n_pix,)."""
        inside = self.pixel >= 0
        return np.bincount(self.pixel[inside], minlength=self.n_pix).astype(np.int64)

    def unflatten(self, flat: np.ndarray) -> np.ndarray:
        """(n_cells,) -> (nrows, ncols)."""
        return flat.reshape(self.shape)


def _check_range(name, a, lo, hi, unit):
    finite = a[np.isfinite(a)]
    if finite.size and (finite.min() < lo or finite.max() > hi):
        raise ValueError(
            f"{name} out of range: values {finite.min():.6g}..{finite.max():.6g} {unit}, allowed {lo}..{hi} {unit}"
        )
    if np.isinf(a).any():
        raise ValueError(f"{name} contains infinite values; use NaN for gaps")


def _coarse(name, a, n_pix, lo, hi, unit):
    if a is None:
        return None
    a = np.ascontiguousarray(a, dtype=np.float64)
    if a.shape != (n_pix,):
        raise ValueError(f"{name} must have shape (n_pix,) = ({n_pix},), got {a.shape}")
    _check_range(name, a, lo, hi, unit)
    return a


def check_inputs(sm_coarse, pixel_of_cell, lst, ndvi, elevation_m=None, tb_h=None, tb_v=None) -> ComparisonInputs:
    """Check shapes, dtypes and physical ranges; return flattened float64 copies.

    Raises ValueError naming the variable, its expected shape or the allowed range.
    """
    sm = np.ascontiguousarray(sm_coarse, dtype=np.float64)
    if sm.ndim != 1 or sm.size == 0:
        raise ValueError(f"sm_coarse must be a non-empty 1-D array (n_pix,), got shape {sm.shape}")
    n_pix = sm.shape[0]
    _check_range("sm_coarse", sm, 0.0, 1.0, "m3/m3")

    pix = np.asarray(pixel_of_cell)
    if pix.ndim != 2:
        raise ValueError(f"pixel_of_cell must be 2-D (nrows, ncols), got shape {pix.shape}")
    if not np.issubdtype(pix.dtype, np.integer):
        raise ValueError(f"pixel_of_cell must be an integer array, got dtype {pix.dtype}")
    if pix.size and (pix.min() < -1 or pix.max() >= n_pix):
        raise ValueError(f"pixel_of_cell values must lie in -1..{n_pix - 1} (n_pix = len(sm_coarse))")
    shape = pix.shape
    pixel = np.ascontiguousarray(pix.ravel(), dtype=np.int64)

    t = np.asarray(lst, dtype=np.float64)
    if t.ndim == 2:
        t = t[None]
    if t.ndim != 3 or t.shape[1:] != shape or t.shape[0] < 1:
        raise ValueError(f"lst must have shape (n_acq, {shape[0]}, {shape[1]}) or {shape}, got {np.shape(lst)}")
    _check_range("lst", t, 150.0, 400.0, "K")
    t = np.ascontiguousarray(t.reshape(t.shape[0], -1))

    nd = np.asarray(ndvi, dtype=np.float64)
    if nd.shape != shape:
        raise ValueError(f"ndvi must have shape {shape}, got {nd.shape}")
    _check_range("ndvi", nd, -1.0, 1.0, "(-)")
    nd = np.ascontiguousarray(nd.ravel())

    elev = None
    if elevation_m is not None:
        elev = np.asarray(elevation_m, dtype=np.float64)
        if elev.shape != shape:
            raise ValueError(f"elevation_m must have shape {shape}, got {elev.shape}")
        _check_range("elevation_m", elev, -500.0, 9000.0, "m")
        elev = np.ascontiguousarray(elev.ravel())

    tbh = _coarse("tb_h", tb_h, n_pix, 0.0, 350.0, "K")
    tbv = _coarse("tb_v", tb_v, n_pix, 0.0, 350.0, "K")
    if (tbh is None) != (tbv is None):
        raise ValueError("tb_h and tb_v must be given together (or both None)")
    return ComparisonInputs(sm, pixel, t, nd, elev, tbh, tbv, shape)


@kernel
def pixel_mean(values, pixel, n_pix):
    """Mean of the finite values of each coarse pixel, per row.

    values (n_rows, n_cells), pixel (n_cells,) int (-1 ignored) -> (mean (n_rows, n_pix) NaN where
    no valid cell, count (n_rows, n_pix) int64).
    """
    n_rows, n_cells = values.shape
    total = np.zeros((n_rows, n_pix))
    count = np.zeros((n_rows, n_pix), np.int64)
    for a in range(n_rows):
        for i in range(n_cells):
            p = pixel[i]
            v = values[a, i]
            if p >= 0 and np.isfinite(v):
                total[a, p] += v
                count[a, p] += 1
    mean = np.full((n_rows, n_pix), np.nan)
    for a in range(n_rows):
        for p in range(n_pix):
            if count[a, p] > 0:
                mean[a, p] = total[a, p] / count[a, p]
    return mean, count


def elevation_corrected_lst(lst, elevation_m, pixel, n_pix, lapse_rate_k_per_km=6.0):
    """LST brought to the mean elevation of its coarse pixel with a constant lapse rate.

    LST_c = LST + gamma (z - <z>_LR) / 1000, gamma in K/km (a cell above the pixel mean is warmed).
    lst (n_acq, n_cells) K, elevation_m (n_cells,) m -> (n_acq, n_cells) K. Cells whose elevation
    is NaN (or whose pixel has no elevation) are left uncorrected.
    """
    zbar, _ = pixel_mean(elevation_m[None, :], pixel, n_pix)
    zbar_cell = np.where(pixel >= 0, zbar[0, np.maximum(pixel, 0)], np.nan)
    dz = elevation_m - zbar_cell
    dz = np.where(np.isfinite(dz), dz, 0.0)
    return lst + lapse_rate_k_per_km * dz[None, :] / 1000.0
