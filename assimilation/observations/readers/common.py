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

Files. A missing file is a FileNotFoundError naming it; a file that cannot be opened (corrupt HDF5 or
netCDF, not the product) a ValueError naming it. A netCDF-3 file (classic, 64-bit offset or CDF-5) is
checked against the size its header implies before it is opened (:func:`check_netcdf3_size`): an
interrupted download would otherwise be read past its end as zeros. The same granule listed twice
(identical content, under one path or two) is read once, with a warning naming both paths
(:func:`unique_paths`); two different files with the same name are an error naming both.
"""

from __future__ import annotations

import hashlib
import logging
import struct
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


#: Soil moisture units understood by the generic readers: name -> (factor to the unit's base, base), base
#: "m3/m3" (volumetric) or "saturation" (degree of saturation, 0-1, i.e. volumetric / porosity).
SM_UNITS = {
    "m3/m3": (1.0, "m3/m3"), "m3 m-3": (1.0, "m3/m3"), "m3.m-3": (1.0, "m3/m3"), "m^3/m^3": (1.0, "m3/m3"),
    "cm3/cm3": (1.0, "m3/m3"), "cm**3/cm**3": (1.0, "m3/m3"), "1": (1.0, "m3/m3"),
    "percent_volumetric": (0.01, "m3/m3"), "%vol": (0.01, "m3/m3"),
    "percent_saturation": (0.01, "saturation"), "%sat": (0.01, "saturation"), "saturation": (1.0, "saturation"),
}
TB_UNITS = ("K", "kelvin", "Kelvin", "Kelvins")
#: Physical range of soil moisture left in degree of saturation (no porosity given).
SATURATION_RANGE = {"sm": (0.0, 1.0)}


def sm_units(units, where: str) -> tuple[float, str]:
    """(factor, base) of a soil moisture unit name (:data:`SM_UNITS`); ValueError naming ``where`` otherwise.

    A bare "%" or "percent" is refused: it can mean volumetric percent or percent of saturation.
    """
    u = str(units).strip()
    if u not in SM_UNITS:
        raise ValueError(f"{where}: soil moisture units {units!r} not understood; say which with the option 'units' "
                         f"(one of {', '.join(SM_UNITS)}; a bare '%' can be volumetric or of saturation)")
    return SM_UNITS[u]


def to_volumetric(value, error, units, porosity, where: str):
    """Soil moisture in ``units`` to the table's unit: (value, error, ranges).

    Volumetric units are scaled to m3/m3. Degree-of-saturation units (``percent_saturation``,
    ``saturation``) are converted with ``porosity`` (m3/m3, scalar or per observation): theta = s * porosity.
    Without a porosity the values stay in degree of saturation (0-1) with range check 0-1
    (:data:`SATURATION_RANGE`): they are then only meaningful after a rescaling onto the model's
    climatology (CDF matching or anomalies), see :func:`smda.assimilation.observations.readers.in_saturation_units`.
    ``error`` (same units as the value) follows the same conversion; NaN stays NaN.
    """
    factor, base = sm_units(units, where)
    value = np.asarray(value, float) * factor
    error = None if error is None else np.asarray(error, float) * factor
    if base == "m3/m3":
        return value, error, None
    if porosity is None:
        return value, error, SATURATION_RANGE
    phi = np.asarray(porosity, float)
    if np.any(np.isfinite(phi) & ((phi <= 0.05) | (phi > 1.0))):
        raise ValueError(f"{where}: porosity must be in m3/m3 (0.05-1), got {np.nanmin(phi):g}-{np.nanmax(phi):g}")
    return value * phi, None if error is None else error * phi, None


def error_std_for(kind: str, error_std) -> float:
    """The error std to store: the caller's value or the SCIENCE.md default for ``kind``."""
    if error_std is None:
        return DEFAULT_ERROR_STD[kind]
    e = float(error_std)
    if not np.isfinite(e) or e <= 0:
        raise ValueError(f"error_std must be a positive finite number, got {error_std!r}")
    return e


# netCDF-3 header (Unidata "NetCDF Classic Format Specification"): magic "CDF" + version 1 (classic),
# 2 (64-bit offset) or 5 (CDF-5, 64-bit data); tags of the dimension, attribute and variable lists.
_NC_DIMENSION, _NC_VARIABLE, _NC_ATTRIBUTE = 10, 11, 12
_NC_TYPE_SIZE = {1: 1, 2: 1, 3: 2, 4: 4, 5: 4, 6: 8, 7: 1, 8: 2, 9: 4, 10: 8, 11: 8}
_STREAMING = (0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF)  # numrecs of a file being written ("indeterminate")


def _netcdf3_required_size(path, f) -> int:
    """Bytes a netCDF-3 file must have according to its header (data of the last variable included).

    Non-record variables end at ``begin + product(shape) * type size``; record variables at
    ``begin + (numrecs - 1) * recsize + one record``, ``recsize`` the sum of the padded record sizes
    (unpadded when there is a single record variable). Raises ValueError naming the file when the header
    itself is cut or malformed.
    """
    def read(n):
        b = f.read(n)
        if len(b) != n:
            raise ValueError(f"{path}: netCDF-3 header is cut off (file truncated, an interrupted download?)")
        return b

    magic = read(4)
    version = magic[3]
    big = version == 5
    off64 = version in (2, 5)

    def uint():
        return struct.unpack(">Q", read(8))[0] if big else struct.unpack(">I", read(4))[0]

    def name():
        n = uint()
        read(n + (-n % 4))

    def tagged_list(expected):
        tag, n = struct.unpack(">I", read(4))[0], uint()
        if tag not in (0, expected) or (tag == 0 and n != 0):
            raise ValueError(f"{path}: malformed netCDF-3 header (tag {tag})")
        return n

    def attributes():
        for _ in range(tagged_list(_NC_ATTRIBUTE)):
            name()
            nc_type = struct.unpack(">I", read(4))[0]
            n = uint() * _NC_TYPE_SIZE.get(nc_type, 1)
            read(n + (-n % 4))

    numrecs = uint()
    dims = []
    for _ in range(tagged_list(_NC_DIMENSION)):
        name()
        dims.append(uint())
    attributes()
    fixed_end, rec_vars = 0, []
    for _ in range(tagged_list(_NC_VARIABLE)):
        name()
        dimids = [uint() for _ in range(uint())]
        attributes()
        nc_type = struct.unpack(">I", read(4))[0]
        uint()  # vsize (may overflow for > 4 GiB variables; recomputed from the shape)
        begin = struct.unpack(">Q", read(8))[0] if off64 else struct.unpack(">I", read(4))[0]
        if any(d >= len(dims) for d in dimids) or nc_type not in _NC_TYPE_SIZE:
            raise ValueError(f"{path}: malformed netCDF-3 header (variable dimensions or type)")
        shape = [dims[d] for d in dimids]
        is_record = bool(shape) and shape[0] == 0
        size = int(np.prod([s for s in shape[is_record:]], dtype=np.int64)) * _NC_TYPE_SIZE[nc_type]
        if is_record:
            rec_vars.append((begin, size))
        else:
            fixed_end = max(fixed_end, begin + size)
    end = fixed_end
    if rec_vars and numrecs != 0 and numrecs not in _STREAMING:
        recsize = rec_vars[0][1] if len(rec_vars) == 1 else sum(s + (-s % 4) for _, s in rec_vars)
        end = max(end, max(b + (numrecs - 1) * recsize + s for b, s in rec_vars))
    return end


def check_netcdf3_size(path) -> None:
    """ValueError naming ``path`` when a netCDF-3 file is shorter than its header implies (truncated).

    Files that are not netCDF-3 (e.g. netCDF-4/HDF5) are left to their library.
    """
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(4)
        if len(head) < 4 or head[:3] != b"CDF" or head[3] not in (1, 2, 5):
            return
        f.seek(0)
        need = _netcdf3_required_size(path, f)
    have = path.stat().st_size
    if have < need:
        raise ValueError(f"{path}: netCDF-3 file is truncated: {have} bytes where its header needs {need} "
                         f"(an interrupted download?); download it again")


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def unique_paths(paths, product: str) -> list[Path]:
    """``paths`` without repeated granules, in their first order (see the module docstring).

    Files are compared by content (SHA-256) only where sizes or names coincide, so a long list of distinct
    granules costs one ``stat`` each.
    """
    paths = check_paths(paths)
    size = {p: p.stat().st_size for p in paths}
    by_size, by_name = {}, {}
    for p in paths:
        by_size.setdefault(size[p], []).append(p)
        by_name.setdefault(p.name, []).append(p)
    suspects = {p for group in (*by_size.values(), *by_name.values()) if len(group) > 1 for p in group}
    digest = {p: _digest(p) for p in suspects}
    kept, seen = [], {}
    for p in paths:
        key = digest.get(p, p)
        if key in seen:
            log.warning("%s: granule listed twice, read once: %s and %s", product, seen[key], p)
            continue
        twins = [q for q in by_name[p.name] if q in seen.values() and digest.get(q) != digest.get(p)]
        if twins:
            raise ValueError(f"{product}: two different files have the same granule name: {twins[0]} and {p} "
                             f"(a reprocessed version? keep one)")
        seen[key] = p
        kept.append(p)
    return kept


@contextmanager
def _opened(path: Path, product: str, fmt: str, opener):
    """``opener(path)`` as a context; a file it cannot open (corrupt, truncated) gives ValueError naming it."""
    try:
        f = opener(path)
    except (OSError, RuntimeError) as exc:
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


def netcdf_files(paths, product: str, masked: bool = False):
    """(path, dataset) for each existing file of ``paths``, opened read-only as netCDF (a truncated netCDF-3 file
    refused), closed after its turn; automatic masking and scaling only if ``masked`` (the product readers
    decode themselves)."""
    import netCDF4

    def opener(p):
        check_netcdf3_size(p)
        ds = netCDF4.Dataset(p, "r")
        ds.set_auto_maskandscale(masked)
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
               masks, lat=None, lon=None, fov_km=DEFAULT_FOV_KM, ranges=None) -> ObsTable:
    """Build an :class:`ObsTable` and apply QC masks (fill, physical range and the product's masks).

    ``ranges`` overrides :data:`smda.assimilation.observations.qc.PHYSICAL_RANGE` per kind (e.g. soil moisture
    in degree of saturation, 0-1). Geolocation: for gridded products (``grid`` given) x/y are the EASE cell
    centres of (row, col) and lat/lon follow from them; for swaths (``grid`` None) x/y come from ``lat``/``lon`` (EPSG:6933).
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
    masks = merge_masks(masks, {"out_of_range": range_mask(table.kind, value, ranges)})
    return apply_masks(table, masks)
