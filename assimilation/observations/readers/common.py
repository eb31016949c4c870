"""Shared pieces of the satellite readers: domain and period subsetting, time conversion, safe file access.

Domain. A request gives a lat/lon box ``bbox = (lat_min, lat_max, lon_min, lon_max)`` (degrees) or an
EASE-Grid 2.0 box ``xy_bbox = (x_min, x_max, y_min, y_max)`` (EPSG:6933, m), plus a halo (km). EPSG:6933 is
cylindrical (x depends on longitude only, y on latitude only), so a lat/lon box is exactly an x/y
rectangle; the halo widens it by ``halo_km`` projected EASE-Grid kilometres on every side (ground
distance equals projected distance at 30 deg latitude; north-south it is longer towards the poles).
An observation belongs to the domain when its
centre (x, y) lies inside the widened rectangle. Boxes crossing the antimeridian are not supported.

Period. ``start <= time < end`` (UTC, ``datetime64``); ``None`` leaves that side open.

Times.
- SMAP: ``t = 2000-01-01T12:00:00 UTC + seconds`` in plain calendar arithmetic (no leap seconds); this
  matches ``tb_time_utc`` of the real L2 sample to 1 ms (PRODUCTS.md section 0).
- SMOS / CATDS: ``t = 2000-01-01T00:00:00 UTC + days + seconds (+ microseconds)``.
Times are stored in whole seconds (``datetime64[s]``, rounded to nearest).
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from smda.assimilation.observations.table import ObsTable
from smda.model.grid import latlon_to_xy

log = logging.getLogger(__name__)

SMAP_EPOCH = np.datetime64("2000-01-01T12:00:00", "s")
SMOS_EPOCH = np.datetime64("2000-01-01T00:00:00", "s")
NAT = np.datetime64("NaT", "s")

#: Default observation error std (SCIENCE.md section 4): TB in K, SM in m3/m3.
DEFAULT_ERROR_STD = {"tb": 4.0, "sm": 0.04}
#: Radius (km) of the Gaussian field of view used for 36 km TB (SCIENCE.md section 4); stored in
#: ``fov_km`` for every observation so that operators using antenna weights have a width.
DEFAULT_FOV_KM = 20.0


@dataclass(frozen=True)
class Region:
    """An EPSG:6933 rectangle (m), halo included, and a period [start, end)."""

    x_min: float = -np.inf
    x_max: float = np.inf
    y_min: float = -np.inf
    y_max: float = np.inf
    start: np.datetime64 | None = None
    end: np.datetime64 | None = None

    @classmethod
    def build(cls, bbox=None, xy_bbox=None, halo_km=50.0, start=None, end=None) -> Region:
        """Check the request and build the region (see the module docstring)."""
        if bbox is not None and xy_bbox is not None:
            raise ValueError("give either bbox (lat/lon) or xy_bbox (EASE x/y), not both")
        halo_km = float(halo_km)
        if not np.isfinite(halo_km) or halo_km < 0:
            raise ValueError(f"halo_km must be finite and >= 0, got {halo_km}")
        halo = halo_km * 1000.0
        x0 = x1 = y0 = y1 = None
        if bbox is not None:
            if len(bbox) != 4:
                raise ValueError(f"bbox must be (lat_min, lat_max, lon_min, lon_max), got {bbox!r}")
            lat_min, lat_max, lon_min, lon_max = (float(v) for v in bbox)
            if not (-90 <= lat_min < lat_max <= 90):
                raise ValueError(f"bbox latitudes must satisfy -90 <= lat_min < lat_max <= 90, got {bbox!r}")
            if not (-180 <= lon_min < lon_max <= 180):
                raise ValueError(
                    f"bbox longitudes must satisfy -180 <= lon_min < lon_max <= 180 (no antimeridian "
                    f"crossing), got {bbox!r}")
            xs, ys = latlon_to_xy(np.array([lat_min, lat_max]), np.array([lon_min, lon_max]))
            x0, x1, y0, y1 = xs[0], xs[1], ys[0], ys[1]
        elif xy_bbox is not None:
            if len(xy_bbox) != 4:
                raise ValueError(f"xy_bbox must be (x_min, x_max, y_min, y_max) in m, got {xy_bbox!r}")
            x0, x1, y0, y1 = (float(v) for v in xy_bbox)
            if not (x0 < x1 and y0 < y1):
                raise ValueError(f"xy_bbox must satisfy x_min < x_max and y_min < y_max, got {xy_bbox!r}")
        start = None if start is None else np.datetime64(start, "s")
        end = None if end is None else np.datetime64(end, "s")
        if start is not None and end is not None and not start < end:
            raise ValueError(f"period start {start} must be before end {end}")
        if x0 is None:
            return cls(start=start, end=end)
        return cls(x0 - halo, x1 + halo, y0 - halo, y1 + halo, start, end)

    def contains_xy(self, x, y) -> np.ndarray:
        x = np.asarray(x, float)
        y = np.asarray(y, float)
        return (x >= self.x_min) & (x <= self.x_max) & (y >= self.y_min) & (y <= self.y_max)

    def contains_time(self, t) -> np.ndarray:
        """True where ``start <= t < end``; NaT (no acquisition) is never inside."""
        t = np.asarray(t, "datetime64[s]")
        ok = ~np.isnat(t)
        if self.start is not None:
            ok &= t >= self.start
        if self.end is not None:
            ok &= t < self.end
        return ok

    def grid_slices(self, grid):
        """Row and column slices of a global EASE grid covering the region (whole cells touched)."""
        c0 = 0 if not np.isfinite(self.x_min) else int(np.floor((self.x_min - grid.x0) / grid.cell_m))
        c1 = grid.n_cols - 1 if not np.isfinite(self.x_max) else int(np.floor((self.x_max - grid.x0) / grid.cell_m))
        r0 = 0 if not np.isfinite(self.y_max) else int(np.floor((grid.y0 - self.y_max) / grid.cell_m))
        r1 = grid.n_rows - 1 if not np.isfinite(self.y_min) else int(np.floor((grid.y0 - self.y_min) / grid.cell_m))
        r0, c0 = max(r0, 0), max(c0, 0)
        r1, c1 = min(r1, grid.n_rows - 1), min(c1, grid.n_cols - 1)
        return slice(r0, max(r1 + 1, r0)), slice(c0, max(c1 + 1, c0))


def smap_time(seconds, fill=-9999.0) -> np.ndarray:
    """SMAP J2000 seconds (float64) to UTC ``datetime64[s]``; fill or non-finite gives NaT."""
    s = np.asarray(seconds, np.float64)
    bad = ~np.isfinite(s) | (s == fill) | (s < -1e6)
    whole = np.where(bad, 0, np.rint(s)).astype(np.int64)
    t = SMAP_EPOCH + whole.astype("timedelta64[s]")
    t[bad] = NAT
    return t


def smos_time(days, seconds, microseconds=None, valid=None) -> np.ndarray:
    """SMOS/CATDS days since 2000-01-01 + seconds of day (+ microseconds) to ``datetime64[s]``.

    ``valid`` (bool) marks acquisitions; elsewhere NaT. Seconds == 0 is midnight, not missing.
    """
    d = np.asarray(days, np.int64)
    s = np.asarray(seconds, np.int64)
    ok = np.ones(d.shape, bool) if valid is None else np.asarray(valid, bool)
    ok &= (s >= 0) & (s < 86401)
    total = np.where(ok, d * 86400 + s, 0)
    if microseconds is not None:
        us = np.asarray(microseconds, np.int64)
        ok &= (us >= 0) & (us < 1_000_000)
        total = total + np.where(ok & (us >= 500_000), 1, 0)
    t = SMOS_EPOCH + total.astype("timedelta64[s]")
    t[~ok] = NAT
    return t


def check_paths(paths) -> list[Path]:
    """Paths as a list; FileNotFoundError naming the first missing file."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    out = [Path(p) for p in paths]
    for p in out:
        if not p.is_file():
            raise FileNotFoundError(f"observation file not found: {p}")
    return out


def error_std_for(kind: str, error_std) -> float:
    """The error std to store: the caller's value or the SCIENCE.md default for ``kind``."""
    if error_std is None:
        return DEFAULT_ERROR_STD[kind]
    e = float(error_std)
    if not np.isfinite(e) or e <= 0:
        raise ValueError(f"error_std must be a positive finite number, got {error_std!r}")
    return e


@contextmanager
def _opened(path: Path, product: str, fmt: str, opener):
    """``opener(path)`` as a context; a file it cannot open (corrupt, truncated) gives ValueError naming it."""
    try:
        f = opener(path)
    except OSError as exc:
        raise ValueError(f"{path}: cannot be opened as {fmt} for {product} ({exc})") from exc
    try:
        yield f
    finally:
        f.close()


def hdf5_files(paths, product: str):
    """(path, file) for each existing file of ``paths``, opened read-only as HDF5 and closed after its turn."""
    import h5py

    for path in check_paths(paths):
        with _opened(path, product, "HDF5", lambda p: h5py.File(p, "r")) as f:
            yield path, f


def netcdf_files(paths, product: str):
    """(path, dataset) for each existing file of ``paths``, opened read-only as netCDF with automatic masking
    and scaling OFF (the readers decode themselves), closed after its turn."""
    import netCDF4

    def opener(p):
        ds = netCDF4.Dataset(p, "r")
        ds.set_auto_maskandscale(False)
        return ds

    for path in check_paths(paths):
        with _opened(path, product, "netCDF", opener) as ds:
            yield path, ds

def read_array(path, container, name: str, sel=(), group_label: str = ""):
    """Read ``container[name][sel]`` as a numpy array; missing dataset or read failure names both."""
    where = f"{group_label}/{name}" if group_label else name
    try:
        var = container[name]
    except (KeyError, IndexError):
        raise ValueError(f"{path}: dataset {where!r} is missing (wrong product or version?)") from None
    try:
        return np.asarray(var[sel])
    except Exception as exc:  # h5py/netCDF4 raise OSError, RuntimeError or IndexError on damaged data
        raise ValueError(f"{path}: dataset {where!r} cannot be read ({type(exc).__name__}: {exc})") from exc


def require(path, container, names, label: str, product: str):
    """ValueError naming every dataset of ``names`` missing from ``container``."""
    missing = [n for n in names if n not in container]
    if missing:
        raise ValueError(
            f"{path}: not a {product} file: {label} lacks {', '.join(repr(m) for m in missing)}")


def unpack(raw, fill, scale=1.0, offset=0.0) -> tuple[np.ndarray, np.ndarray]:
    """Packed integers or floats to float64 values and a fill mask (value NaN where fill or non-finite)."""
    raw = np.asarray(raw)
    is_fill = np.zeros(raw.shape, bool) if fill is None else (raw == fill)
    val = raw.astype(np.float64) * float(scale) + float(offset)
    is_fill |= ~np.isfinite(val)
    val[is_fill] = np.nan
    return val, is_fill


def make_table(*, time, row, col, grid, kind, pol, angle_deg, value, error_std, flags, footprint, source,
               masks, lat=None, lon=None, fov_km=DEFAULT_FOV_KM) -> ObsTable:
    """Build an :class:`ObsTable` and apply QC masks (fill, physical range and the product's masks).

    Geolocation: for gridded products (``grid`` given) x/y are the EASE cell centres of (row, col) and
    lat/lon follow from them; for swaths (``grid`` None) x/y come from ``lat``/``lon`` (EPSG:6933).
    """
    from smda.assimilation.observations.qc import apply_masks, merge_masks, range_mask
    from smda.model.grid import xy_to_latlon

    row = np.asarray(row, np.int64)
    col = np.asarray(col, np.int64)
    if grid is not None:
        x, y = grid.xy(row, col)
        lat, lon = xy_to_latlon(x, y)
    else:
        x, y = latlon_to_xy(np.asarray(lat, float), np.asarray(lon, float))
    value = np.asarray(value, np.float64)
    table = ObsTable(time=time, x=x, y=y, lat=lat, lon=lon, kind=kind, pol=pol, angle_deg=angle_deg,
                     value=value, error_std=error_std, flags=flags, footprint=footprint, row=row, col=col,
                     fov_km=fov_km, source=source, qc=0)
    masks = merge_masks(masks, {"out_of_range": range_mask(table.kind, value)})
    return apply_masks(table, masks)
