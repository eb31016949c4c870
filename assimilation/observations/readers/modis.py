"""Readers for the 1 km MODIS predictors of the comparison operators, and reprojection to the model grid.

Products (PRODUCTS.md section 7):

* MOD11A1 / MYD11A1 (Wan 2015, doi:10.5067/MODIS/MOD11A1.006): daily LST, HDF4-EOS grid
  ``MODIS_Grid_Daily_1km_LST``, SDS ``LST_Day_1km`` / ``LST_Night_1km`` (uint16, fill 0, valid raw
  7500-65535, scale 0.02 K) and ``QC_Day`` / ``QC_Night`` (uint8 bit fields: [1:0] mandatory QA
  00 good, 01 other quality, 10 not produced (cloud), 11 not produced (other); [3:2] data quality;
  [5:4] emissivity error class; [7:6] LST error class <=1, <=2, <=3, >3 K).
* MOD13A2 (Didan 2015, doi:10.5067/MODIS/MOD13A2.006): 16-day NDVI, grid
  ``MODIS_Grid_16DAY_1km_VI``, SDS ``1 km 16 days NDVI`` (int16, fill -3000, valid -2000..10000,
  NDVI = raw / 10000) and ``1 km 16 days pixel reliability`` (-1 fill, 0 good, 1 marginal, 2 snow/ice,
  3 cloudy).

Scaling: attributes are applied CF style, ``value = raw * scale_factor + add_offset`` (checked on
the real MOD11A1 sample). MOD13 files store ``scale_factor = 10000`` meaning "divide"; a
scale_factor > 1 is therefore applied as ``raw / scale_factor``. Fill values and raw values outside
``valid_range`` become NaN.

MODIS sinusoidal grid (sphere R = 6371007.181 m): ``x = R lon cos(lat)``, ``y = R lat`` (radians);
a tile is T = 2 pi R / 36 = 1111950.52 m wide with 1200 pixels of 926.625 m at 1 km; the tile corners
come from the file's ``StructMetadata.0`` (UpperLeftPointMtrs, LowerRightMtrs). Pixel centre
(i, j): ``x = x_UL + (j + 0.5) p``, ``y = y_UL - (i + 0.5) p``.

Reprojection onto the EASE-Grid 2.0 1 km domain (:func:`to_domain`):

* ``nearest``: the tile pixel containing the EASE cell centre (the tile pixel is 0.93 km, the EASE
  cell 1.0009 km, so this is nearest neighbour up to half a pixel);
* ``area_mean``: the mean of the valid tile values at n x n points evenly spread over the EASE cell
  (``subsamples``, default 3), an approximation of the area-weighted mean that leaves NaN only where
  no point is valid.

Errors: a missing file raises FileNotFoundError; a file that is not HDF4, lacks the grid metadata or
the SDS raises ValueError naming the file (and listing the SDS that exist).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from smda.extras import require
from smda.model.grid import xy_to_latlon

logger = logging.getLogger(__name__)

SPHERE_R = 6371007.181
TILE_M = 2.0 * np.pi * SPHERE_R / 36.0
SINU_X_MIN = -20015109.354
SINU_Y_MAX = 10007554.677

LST_QC_MANDATORY = {0: "good", 1: "other_quality", 2: "not_produced_cloud", 3: "not_produced_other"}


@dataclass(frozen=True)
class SinusoidalGrid:
    """One MODIS sinusoidal tile grid: outer UL corner (m), pixel sizes (m), shape."""

    name: str
    ul_x: float
    ul_y: float
    pixel_x: float
    pixel_y: float
    nrows: int
    ncols: int

    @property
    def tile(self):
        """(h, v) tile indices from the UL corner."""
        return (int(round((self.ul_x - SINU_X_MIN) / TILE_M)), int(round((SINU_Y_MAX - self.ul_y) / TILE_M)))

    def xy(self, row, col):
        """Pixel-centre sinusoidal (x, y) in m."""
        return (self.ul_x + (np.asarray(col) + 0.5) * self.pixel_x, self.ul_y - (np.asarray(row) + 0.5) * self.pixel_y)

    def latlon(self, row, col):
        """Pixel-centre (lat, lon) in degrees."""
        return sinusoidal_to_latlon(*self.xy(row, col))

    def rowcol_of_latlon(self, lat, lon):
        """(row, col) of the pixels containing (lat, lon); -1 where outside the tile."""
        x, y = latlon_to_sinusoidal(lat, lon)
        col = np.floor((x - self.ul_x) / self.pixel_x).astype(np.int64)
        row = np.floor((self.ul_y - y) / self.pixel_y).astype(np.int64)
        inside = (row >= 0) & (row < self.nrows) & (col >= 0) & (col < self.ncols)
        return np.where(inside, row, -1), np.where(inside, col, -1)


def latlon_to_sinusoidal(lat, lon):
    """(lat, lon) degrees -> sinusoidal (x, y) m on the MODIS sphere."""
    phi = np.radians(np.asarray(lat, float))
    lam = np.radians(np.asarray(lon, float))
    return SPHERE_R * lam * np.cos(phi), SPHERE_R * phi


def sinusoidal_to_latlon(x, y):
    """Sinusoidal (x, y) m -> (lat, lon) degrees."""
    phi = np.asarray(y, float) / SPHERE_R
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = np.asarray(x, float) / (SPHERE_R * np.cos(phi))
    return np.degrees(phi), np.degrees(lam)


@dataclass(frozen=True)
class ModisField:
    """One decoded 1 km MODIS field on its tile: values float64 (nrows, ncols) with NaN, optional
    raw QC bits, the tile grid, and metadata (granule id, date, product, units)."""

    name: str
    values: np.ndarray
    grid: SinusoidalGrid
    qc: np.ndarray | None = None
    units: str = ""
    meta: dict = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# HDF4 access
# --------------------------------------------------------------------------------------------
def _open_sd(path):
    require("pyhdf.SD", "modis", "reading MODIS HDF4 files")
    from pyhdf.error import HDF4Error
    from pyhdf.SD import SD, SDC

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"MODIS file not found: {path}")
    try:
        return SD(str(path), SDC.READ)
    except HDF4Error as exc:
        raise ValueError(f"{path}: not a readable HDF4 file ({exc})") from None


def parse_struct_metadata(text: str, path="") -> SinusoidalGrid:
    """Grid geometry from the HDF-EOS ``StructMetadata.0`` text (first sinusoidal grid)."""
    def grab(key):
        m = re.search(rf"\b{key}=([^\n]+)", text)
        if m is None:
            raise ValueError(f"{path}: StructMetadata.0 has no {key}")
        return m.group(1).strip()

    proj = grab("Projection")
    if proj != "GCTP_SNSOID":
        raise ValueError(f"{path}: grid projection {proj}, expected GCTP_SNSOID (MODIS sinusoidal)")
    name = grab("GridName").strip('"')
    ncols, nrows = int(grab("XDim")), int(grab("YDim"))
    ul = [float(v) for v in grab("UpperLeftPointMtrs").strip("()").split(",")]
    lr = [float(v) for v in grab("LowerRightMtrs").strip("()").split(",")]
    if ncols <= 0 or nrows <= 0 or lr[0] <= ul[0] or lr[1] >= ul[1]:
        raise ValueError(f"{path}: inconsistent grid corners {ul} {lr} or size {nrows}x{ncols}")
    return SinusoidalGrid(name, ul[0], ul[1], (lr[0] - ul[0]) / ncols, (ul[1] - lr[1]) / nrows, nrows, ncols)


def _meta(sd, path):
    attrs = sd.attributes()
    if "StructMetadata.0" not in attrs:
        raise ValueError(f"{path}: no StructMetadata.0 attribute; not an HDF-EOS grid file")
    grid = parse_struct_metadata(attrs["StructMetadata.0"], path)
    core = attrs.get("CoreMetadata.0", "")
    meta = {"file": str(path)}
    for key in ("LOCALGRANULEID", "RANGEBEGINNINGDATE", "SHORTNAME"):
        m = re.search(rf"OBJECT\s*=\s*{key}.*?VALUE\s*=\s*\"?([^\"\n]+)\"?", core, re.S)
        if m:
            meta[key.lower()] = m.group(1).strip()
    return grid, meta


def _read_sds(sd, name, path):
    from pyhdf.error import HDF4Error

    names = list(sd.datasets())
    if name not in names:
        raise ValueError(f"{path}: no SDS {name!r}; available: {', '.join(names)}")
    try:
        sds = sd.select(name)
        raw = sds.get()
        attrs = sds.attributes()
    except HDF4Error as exc:
        raise ValueError(f"{path}: cannot read SDS {name!r} ({exc})") from None
    return np.asarray(raw), attrs


def decode(raw, attrs):
    """Raw SDS -> float64 with NaN at fill and outside valid_range; CF style scaling (see module doc)."""
    raw = np.asarray(raw)
    bad = np.zeros(raw.shape, bool)
    if "_FillValue" in attrs:
        bad |= raw == attrs["_FillValue"]
    if "valid_range" in attrs:
        lo, hi = attrs["valid_range"]
        bad |= (raw < lo) | (raw > hi)
    scale = float(attrs.get("scale_factor", 1.0))
    offset = float(attrs.get("add_offset", 0.0))
    if scale > 1.0:  # MOD13 convention: scale_factor 10000 means value = raw / 10000
        values = raw.astype(np.float64) / scale + offset
    else:
        values = raw.astype(np.float64) * scale + offset
    values[bad] = np.nan
    return values


def decode_lst_qc(qc):
    """MOD11 QC bits -> dict of uint8 arrays: mandatory [1:0], data_quality [3:2], emis_error [5:4],
    lst_error [7:6] (class 0: <= 1 K, 1: <= 2 K, 2: <= 3 K, 3: > 3 K)."""
    qc = np.asarray(qc, dtype=np.uint8)
    return {
        "mandatory": qc & 0b11,
        "data_quality": (qc >> 2) & 0b11,
        "emis_error": (qc >> 4) & 0b11,
        "lst_error": (qc >> 6) & 0b11,
    }


GRANULE_NAME = re.compile(r"(M[OY]D)(\w+?)\.A(\d{4})(\d{3})\.")  # e.g. MOD11A1.A2019305.h14v09.061...


def granule_info(path) -> tuple[str, np.datetime64]:
    """(platform "terra" or "aqua", first day of the granule) from the standard file name (``MOD11A1.A2019305...``),
    else from the file's CoreMetadata (SHORTNAME, RANGEBEGINNINGDATE); ValueError naming the file if neither says."""
    m = GRANULE_NAME.search(Path(path).name)
    if m:
        day = np.datetime64(f"{m.group(3)}-01-01") + np.timedelta64(int(m.group(4)) - 1, "D")
        return ("terra" if m.group(1) == "MOD" else "aqua"), day
    sd = _open_sd(path)
    try:
        _, meta = _meta(sd, path)
    finally:
        sd.end()
    if "rangebeginningdate" not in meta:
        raise ValueError(f"{path}: no date in the file name (.AYYYYDDD.) nor RANGEBEGINNINGDATE in CoreMetadata.0")
    return ("aqua" if meta.get("shortname", "").startswith("MYD") else "terra"), np.datetime64(meta["rangebeginningdate"])


# --------------------------------------------------------------------------------------------
# products
# --------------------------------------------------------------------------------------------
def read_lst(path, acquisition: str = "day", *, good_only: bool = False, max_lst_error_class: int = 3) -> ModisField:
    """LST (K) of a MOD11A1 / MYD11A1 tile with QC applied; NaN where not produced or rejected.

    acquisition: "day" or "night". QC: LST must be produced (mandatory bits 00 or 01; 00 only with
    ``good_only``) and its LST error class <= ``max_lst_error_class`` (0..3; 3 keeps all).
    """
    if acquisition not in ("day", "night"):
        raise ValueError(f"acquisition={acquisition!r}; valid: day, night")
    if max_lst_error_class not in (0, 1, 2, 3):
        raise ValueError(f"max_lst_error_class={max_lst_error_class}; allowed 0..3")
    suffix = "Day" if acquisition == "day" else "Night"
    sd = _open_sd(path)
    try:
        grid, meta = _meta(sd, path)
        raw, attrs = _read_sds(sd, f"LST_{suffix}_1km", path)
        qc, _ = _read_sds(sd, f"QC_{suffix}", path)
        time_raw, time_attrs = _read_sds(sd, f"{suffix}_view_time", path)
    finally:
        sd.end()
    lst = decode(raw, attrs)
    bits = decode_lst_qc(qc)
    reject = bits["mandatory"] >= (1 if good_only else 2)
    reject |= bits["lst_error"] > max_lst_error_class
    lst[reject] = np.nan
    meta = dict(meta, acquisition=acquisition, view_time_h=decode(time_raw, time_attrs))
    return ModisField(f"lst_{acquisition}", lst, grid, qc=qc, units="K", meta=meta)


def read_ndvi(path, *, max_reliability: int = 1) -> ModisField:
    """NDVI of a MOD13A2 / MYD13A2 tile; NaN at fill and where pixel reliability > ``max_reliability``
    (0 good, 1 marginal, 2 snow/ice, 3 cloudy)."""
    if max_reliability not in (0, 1, 2, 3):
        raise ValueError(f"max_reliability={max_reliability}; allowed 0..3")
    sd = _open_sd(path)
    try:
        grid, meta = _meta(sd, path)
        raw, attrs = _read_sds(sd, "1 km 16 days NDVI", path)
        rel, _ = _read_sds(sd, "1 km 16 days pixel reliability", path)
    finally:
        sd.end()
    ndvi = decode(raw, attrs)
    ndvi[(rel < 0) | (rel > max_reliability)] = np.nan
    return ModisField("ndvi", ndvi, grid, qc=rel, units="1", meta=meta)


# --------------------------------------------------------------------------------------------
# reprojection
# --------------------------------------------------------------------------------------------
def to_domain(fields, domain, method: str = "nearest", subsamples: int = 3) -> np.ndarray:
    """Reproject one or more MODIS tiles of the same variable onto a Domain's 1 km EASE cells.

    fields: ModisField or list of them (adjacent tiles). Returns (nrows, ncols) float64, NaN where no
    tile covers the cell or no valid value (see the module docstring for the two methods).
    """
    if isinstance(fields, ModisField):
        fields = [fields]
    if method not in ("nearest", "area_mean"):
        raise ValueError(f"method={method!r}; valid: nearest, area_mean")
    n = 1 if method == "nearest" else int(subsamples)
    if n < 1:
        raise ValueError(f"subsamples={subsamples}; must be >= 1")
    cell = abs(domain.x[1] - domain.x[0]) if domain.ncols > 1 else 1000.89502334956
    off = ((np.arange(n) + 0.5) / n - 0.5) * cell
    xx = domain.x[None, :, None, None] + off[None, None, None, :]
    yy = domain.y[:, None, None, None] - off[None, None, :, None]
    xx, yy = np.broadcast_arrays(xx, yy)
    lat, lon = xy_to_latlon(xx.ravel(), yy.ravel())
    samples = np.full(lat.shape, np.nan)
    for f in fields:  # loop over tiles (a few), vectorised over cells
        row, col = f.grid.rowcol_of_latlon(lat, lon)
        inside = row >= 0
        samples[inside] = f.values[row[inside], col[inside]]
    samples = samples.reshape(domain.nrows, domain.ncols, n * n)
    valid = np.isfinite(samples)
    count = valid.sum(axis=2)
    total = np.where(valid, samples, 0.0).sum(axis=2)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)
