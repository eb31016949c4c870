"""Gridded CF netCDF forcing readers with name/unit presets, streamed in time chunks.

Presets name the source variables (first match wins) and how fluxes are labelled in time:

* ``era5``: t2m, d2m (dewpoint -> q with sp), sp, u10/v10 -> wind, ssrd/strd (J m-2 accumulated over
  the hour ending at the time stamp) or msdwswrf/msdwlwrf (W m-2), tp (m per hour) or mtpr;
* ``era5_land``: the same names, but accumulations run from 00 UTC and are de-accumulated
  (``F_k = A_k - A_(k-1)``, except at 01 UTC where ``F_k = A_k``);
* ``gldas2`` (Noah 3-hourly): Tair_f_inst, Qair_f_inst, Psurf_f_inst, Wind_f_inst, SWdown_f_tavg,
  LWdown_f_tavg, Rainf_f_tavg (interval ends at the stamp);
* ``merra2``: T2M, QV2M, PS, U2M/V2M (or U10M/V10M), SWGDN, LWGAB, PRECTOTCORR (or PRECTOT), stamps at
  interval centres;
* ``generic``: nothing predefined; ``mapping`` gives ``{internal: source}`` (``wind`` may be a pair
  (u, v); humidity may be given as ``q_air``, ``dewpoint`` or ``rel_hum``), plus optional
  ``"flux_label"`` and ``"accumulation"`` entries.

Every used variable's ``units`` attribute is checked (:mod:`smda.forcing.units`); unknown or wrong units
raise ValueError naming the file and variable, and every record read is range-checked after conversion
(:mod:`smda.forcing.checks`: the error names the file, variable, value, time and the likely unit mistake).
Files are concatenated in time; a time stamp in several files (overlapping downloads) is read from the
first file given, with a warning.

Gaps follow the station-forcing rule (:mod:`smda.forcing.site`, :func:`smda.forcing.fills.gap_fill`):
missing values (NaN, _FillValue) at a grid cell over up to ``max_gap_h`` (``forcing.max_gap_h``) are
interpolated linearly in time per cell (precipitation set to 0), and time steps missing from the files
(holes in the regular time axis of the files' step) are such gaps at every cell; a longer gap is an error
naming the files, variable, period and number of cells. Each chunk is read with ``max_gap_h`` of records
either side, so a gap across a chunk boundary is seen whole while memory stays bounded by
``chunk_steps + 2 max_gap_h / step`` records (at the cost of re-reading those records). The counts of
filled values per variable over the records read are in :attr:`GriddedForcing.fill_record`.

Data are read lazily (xarray backends, no dask), ``chunk_steps`` records at a time over the spatial window
the cells need, so memory does not grow with the period. Regridding and elevation correction:
:mod:`smda.forcing.regrid`; time interpolation: :mod:`smda.forcing.timeinterp`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import xarray as xr

from smda.forcing import checks
from smda.forcing import fills as F
from smda.forcing import units as U
from smda.forcing.regrid import LAPSE_RATE, BilinearWeights, lapse_adjust
from smda.forcing.site import MAX_GAP_H
from smda.forcing.timeinterp import distribute_shortwave, flux_interval, state_bracket
from smda.registry import Registry

log = logging.getLogger(__name__)

_ERA5 = {
    "t_air": ["t2m"], "dewpoint": ["d2m"], "q_air": [], "rel_hum": [], "p_surf": ["sp"],
    "wind": [("u10", "v10"), "si10"], "sw_down": ["ssrd", "msdwswrf"], "lw_down": ["strd", "msdwlwrf"],
    "precip": ["tp", "mtpr"],
}
PRESETS = Registry("forcing preset", {
    "era5": {"vars": _ERA5, "flux_label": "end", "accumulation": "interval"},
    "era5_land": {"vars": _ERA5, "flux_label": "end", "accumulation": "since_00utc"},
    "gldas2": {"vars": {"t_air": ["Tair_f_inst"], "q_air": ["Qair_f_inst"], "p_surf": ["Psurf_f_inst"],
                        "wind": ["Wind_f_inst"], "sw_down": ["SWdown_f_tavg"], "lw_down": ["LWdown_f_tavg"],
                        "precip": ["Rainf_f_tavg"]},
               "flux_label": "end", "accumulation": "interval"},
    "merra2": {"vars": {"t_air": ["T2M"], "q_air": ["QV2M"], "p_surf": ["PS"],
                        "wind": [("U2M", "V2M"), ("U10M", "V10M")], "sw_down": ["SWGDN"], "lw_down": ["LWGAB"],
                        "precip": ["PRECTOTCORR", "PRECTOT"]},
               "flux_label": "centre", "accumulation": "interval"},
    "generic": {"vars": {}, "flux_label": "end", "accumulation": "interval"},
})
_LAT_NAMES = ("latitude", "lat", "y")
_LON_NAMES = ("longitude", "lon", "x")


def _coord(ds, names, what, where):
    for n in names:
        if n in ds.variables:
            return n
    raise ValueError(f"{where}: no {what} coordinate (looked for {', '.join(names)})")


class GriddedForcing:
    """Gridded forcing from one or more CF netCDF files (concatenated along time).

    Parameters
    ----------
    paths : path or list of paths
    preset : one of :data:`PRESETS`
    mapping : optional {internal name: source name (or (u, v) for wind)}; overrides the preset
    required : internal names that must be present (default: all seven); others are optional
    chunk_steps : records read at a time
    forcing_elevation_m : (ny, nx) elevation of the forcing grid (m) for the lapse-rate correction
    sw_zenith : distribute shortwave inside its interval by the solar zenith angle
    check : range and unit-plausibility checks of every record read (:mod:`smda.forcing.checks`)
    max_gap_h : longest gap (h) filled per grid cell (see module doc)
    """

    def __init__(self, paths, preset: str, *, mapping: dict | None = None, required=None, chunk_steps: int = 24,
                 forcing_elevation_m=None, sw_zenith: bool = True, check: bool = True,
                 max_gap_h: float = MAX_GAP_H):
        spec = PRESETS[preset]
        paths = [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]
        if not paths:
            raise ValueError("no forcing files given")
        for p in paths:
            if not p.is_file():
                raise ValueError(f"forcing file {p} does not exist")
        if int(chunk_steps) < 2:
            raise ValueError(f"chunk_steps must be >= 2, got {chunk_steps}")
        self.preset = preset
        mapping = dict(mapping or {})
        self.flux_label = mapping.pop("flux_label", spec["flux_label"])
        self.accumulation = mapping.pop("accumulation", spec["accumulation"])
        if self.accumulation not in ("interval", "since_00utc"):
            raise ValueError(f"accumulation must be 'interval' or 'since_00utc', got {self.accumulation!r}")
        cands = {k: list(v) for k, v in spec["vars"].items()}
        for k, v in mapping.items():
            if k not in U.ALLOWED:
                raise ValueError(f"forcing mapping key {k!r} unknown; valid: {', '.join(U.ALLOWED)}")
            cands[k] = [tuple(v) if isinstance(v, list | tuple) else v]
        required = U.NAMES if required is None else tuple(required)
        for r in required:
            if r not in U.NAMES:
                raise ValueError(f"required forcing variable {r!r} unknown; valid: {', '.join(U.NAMES)}")
        self.chunk_steps = int(chunk_steps)
        self.sw_zenith = bool(sw_zenith)
        self.check = bool(check)
        if not float(max_gap_h) >= 0.0:
            raise ValueError(f"forcing.max_gap_h must be >= 0, got {max_gap_h}")
        self.max_gap_h = float(max_gap_h)
        self._zf = None if forcing_elevation_m is None else np.asarray(forcing_elevation_m, float)

        # open lazily, index times across files
        self._ds = [xr.open_dataset(p, decode_times=True, mask_and_scale=True, cache=False) for p in paths]
        self._paths = paths
        ds0 = self._ds[0]
        where0 = f"file {paths[0]}"
        self._lat_name = _coord(ds0, _LAT_NAMES, "latitude", where0)
        self._lon_name = _coord(ds0, _LON_NAMES, "longitude", where0)
        self.lat = np.asarray(ds0[self._lat_name].values, float)
        self.lon = np.asarray(ds0[self._lon_name].values, float)
        times, fidx, lidx = [], [], []
        for i, ds in enumerate(self._ds):
            if "time" not in ds.variables:
                raise ValueError(f"file {paths[i]}: no time coordinate")
            t = ds["time"].values.astype("datetime64[s]")
            times.append(t)
            fidx.append(np.full(t.size, i))
            lidx.append(np.arange(t.size))
        t = np.concatenate(times)
        order = np.argsort(t, kind="stable")
        t, fi, li = t[order], np.concatenate(fidx)[order], np.concatenate(lidx)[order]
        keep = np.r_[True, t[1:] != t[:-1]]
        if not keep.all():
            log.warning("forcing: %d time stamps appear in several files (overlap); the record of the first file "
                        "given is used (%s)", int((~keep).sum()), ", ".join(str(paths[i]) for i in np.unique(fi[~keep])))
        t, fi, li = t[keep], fi[keep], li[keep]
        self.dt_s = float(np.median(np.diff(t)) / np.timedelta64(1, "s")) if t.size > 1 else 3600.0
        # the regular time axis of the files' step; a time step no file holds has file index -1 (a gap)
        step = np.timedelta64(int(round(self.dt_s)), "s")
        off = (t - t[0]) % step != np.timedelta64(0, "s")
        if off.any():
            k = int(np.argmax(off))
            raise ValueError(f"file {paths[fi[k]]}: time {t[k]} is not on the {self.dt_s:g} s step of the forcing")
        pos = ((t - t[0]) // step).astype(np.int64)
        self.times = t[0] + np.arange(int(pos[-1]) + 1) * step
        self._fidx = np.full(self.times.size, -1)
        self._lidx = np.zeros(self.times.size, np.int64)
        self._fidx[pos], self._lidx[pos] = fi, li
        if self.times.size > t.size:
            log.warning("forcing: %d time steps of %g s missing from the files are treated as gaps",
                        self.times.size - t.size, self.dt_s)
        self._halo = int(np.floor(self.max_gap_h * 3600.0 / self.dt_s + 1e-9))  # records read either side of a chunk
        self._filled = {}  # {name: (filled values per record (nt,), longest filled run per record in records (nt,))}

        # choose and check variables
        self.sources = {}
        for name, options in cands.items():
            for opt in options:
                srcs = opt if isinstance(opt, tuple) else (opt,)
                if all(s in ds0.variables for s in srcs):
                    for s in srcs:
                        self._check_units(name, s)
                    self.sources[name] = srcs
                    break
        hum = next((h for h in ("q_air", "dewpoint", "rel_hum") if h in self.sources), None)
        self._humidity = hum
        self.variables = tuple(n for n in U.NAMES if n in self.sources or (n == "q_air" and hum))
        if hum in ("dewpoint", "rel_hum") and "p_surf" not in self.sources:
            raise ValueError(f"file {paths[0]}: humidity given as {hum} needs surface pressure")
        missing = [r for r in required if r not in self.variables]
        if missing:
            raise ValueError(f"file {paths[0]} (preset {preset}): missing forcing variables {missing}; "
                             f"looked for {[cands.get(m, []) for m in missing]}")
        self._chunk = None  # (i0, i1, {name: (nt, ny_sub, nx_sub)})
        self._geom = None

    def _check_units(self, name, src):
        for i, ds in enumerate(self._ds):
            if src not in ds.variables:
                raise ValueError(f"file {self._paths[i]}: variable {src!r} missing (present in the first file)")
            u = ds[src].attrs.get("units")
            allowed = U.ALLOWED[name]
            where = f"file {self._paths[i]}, variable {src!r}"
            if u is None:
                raise ValueError(f"{where}: no units attribute")
            try:
                _, _, dims = U.parse_units(u)
            except ValueError as err:
                raise ValueError(f"{where}: unknown units {u!r} ({err})") from None
            if dims not in allowed:
                raise ValueError(f"{where}: units {u!r} are wrong for {name}")

    def close(self):
        for ds in self._ds:
            ds.close()

    # --- reading ---------------------------------------------------------------------------
    def _read(self, src, i0, i1, ys, xs):
        """Raw values of ``src`` for global records [i0, i1) over the window (ys, xs) -> (nt, ny, nx); NaN where no
        file holds the record."""
        f = self._fidx[i0:i1]
        loc = self._lidx[i0:i1]
        out = np.full((f.size, ys.stop - ys.start, xs.stop - xs.start), np.nan)
        for fi in np.unique(f[f >= 0]):  # each file's records go to their places in time (files in any order)
            ds = self._ds[fi]
            rows = np.flatnonzero(f == fi)
            li = loc[rows]
            da = ds[src].isel(time=slice(int(li.min()), int(li.max()) + 1))
            dims = [d for d in da.dims if d != "time"]
            da = da.isel({dims[-2]: ys, dims[-1]: xs})
            out[rows] = np.asarray(da.values, dtype=np.float64)[li - li.min()]
        first = int(f[np.argmax(f >= 0)]) if (f >= 0).any() else 0
        return out, self._ds[first][src].attrs.get("units"), self._paths[first]

    def _load_chunk(self, i0):
        i1 = min(i0 + self.chunk_steps, self.times.size)
        a, b = max(0, i0 - self._halo), min(self.times.size, i1 + self._halo)  # with the records either side
        ys, xs = self._geom["ys"], self._geom["xs"]
        data = {}
        interval = self.dt_s
        lead = 1 if (self.accumulation == "since_00utc" and a > 0) else 0
        for name, srcs in self.sources.items():
            vals = []
            for s in srcs:
                raw, u, path = self._read(s, a - lead if name in U.FLUXES else a, b, ys, xs)
                if name in U.FLUXES and self.accumulation == "since_00utc":
                    raw = self._deaccumulate(raw, a, lead)
                vals.append(U.convert(raw, u, U.ALLOWED[name], where=f"file {path}, variable {s!r}",
                                      interval_s=interval))
            if name == "wind" and len(vals) == 2:
                data[name] = np.hypot(vals[0], vals[1])
            else:
                data[name] = vals[0]
            if self.check:
                checks.check_range(name, data[name], self.times[a:b], label=u, interval_s=interval,
                                   where=lambda k, srcs=srcs: f"file {self._paths[self._fidx[a + k]]}, variable "
                                   f"{'/'.join(srcs)!r}")
            data[name] = self._fill_gaps(name, srcs, data[name], a, i0, i1)
        if self._humidity == "dewpoint":
            data["q_air"] = U.q_from_dewpoint(data.pop("dewpoint"), data["p_surf"])
        elif self._humidity == "rel_hum":
            data["q_air"] = U.q_from_rh(data.pop("rel_hum"), data["t_air"], data["p_surf"])
        self._chunk = (i0, i1, {k: v[i0 - a:i1 - a] for k, v in data.items()})
        log.debug("forcing chunk %d..%d loaded (records %d..%d read)", i0, i1, a, b)

    def _fill_gaps(self, name, srcs, v, a, i0, i1):
        """``v`` (records a.. of the padded window) with gaps up to max_gap_h filled; a longer gap touching the
        chunk [i0, i1) is an error naming the files, variable, period and number of cells."""
        if np.isfinite(v).all():
            return v
        filled, missing, too_long, first, last = F.gap_fill(self.times[a:a + v.shape[0]], v, self.dt_s, self.max_gap_h,
                                                            zero=name == "precip")
        rows = slice(i0 - a, i1 - a)
        if too_long[rows].any():
            r, c = np.unravel_index(int(np.argmax(too_long[rows])), too_long[rows].shape)
            s, e = int(first[rows][r, c]), int(last[rows][r, c])  # window indices of the run
            cells = int(too_long[s:e + 1].any(axis=0).sum())
            s, e = self._whole_run(srcs, int(c), a + s, a + e)
            fi = self._fidx[max(s - 1, 0):e + 2]
            files = ", ".join(str(self._paths[i]) for i in np.unique(fi[fi >= 0])) or ", ".join(map(str, self._paths))
            raise ValueError(f"file {files}: variable {'/'.join(srcs)!r} ({name}) is missing at {cells} of "
                             f"{too_long.shape[1]} forcing grid cells from {self.times[s]} to {self.times[e]} "
                             f"({(e - s + 1) * self.dt_s / 3600.0:g} h), longer than forcing.max_gap_h = "
                             f"{self.max_gap_h:g} h")
        done = missing[rows]
        if done.any():
            count, longest = self._filled.setdefault(name, (np.zeros(self.times.size, np.int64),
                                                            np.zeros(self.times.size, np.int64)))
            if not count.any():
                log.warning("forcing %s (%s): gaps filled (%s)", "/".join(srcs), name, self._fill_method(name))
            count[i0:i1] = done.sum(axis=1)
            longest[i0:i1] = np.where(done, last[rows] - first[rows] + 1, 0).max(axis=1)
        return filled

    def _whole_run(self, srcs, cell, s, e):
        """First and last record of the run of missing values through [s, e] at window cell ``cell``, from that
        cell's whole series (read only on this error path: one value per record)."""
        ys, xs = self._geom["ys"], self._geom["xs"]
        yy, xx = divmod(cell, xs.stop - xs.start)
        y, x = slice(ys.start + yy, ys.start + yy + 1), slice(xs.start + xx, xs.start + xx + 1)
        ok = np.all([np.isfinite(self._read(src, 0, self.times.size, y, x)[0][:, 0, 0]) for src in srcs], axis=0)
        before, after = np.flatnonzero(ok[:s]), np.flatnonzero(ok[e + 1:])
        return (int(before[-1]) + 1 if before.size else 0), (e + int(after[0]) if after.size else self.times.size - 1)

    @staticmethod
    def _fill_method(name):
        return "set to 0 (no rain assumed)" if name == "precip" else "interpolated linearly in time"

    @property
    def fill_record(self) -> dict:
        """{source variable: how many values were filled, over the records read so far} (outputs' forcing_fill)."""
        out = {}
        for name, (count, longest) in self._filled.items():
            steps = np.flatnonzero(count)
            out[name] = (f"{int(count.sum())} values at {steps.size} time steps of the forcing grid cells (longest "
                         f"{longest.max() * self.dt_s / 3600.0:g} h, first at {self.times[steps[0]]}) "
                         f"{self._fill_method(name)}")
        return out

    def _deaccumulate(self, raw, i0, lead):
        t = self.times[i0 - lead:i0 - lead + raw.shape[0]]
        hours = (t - t.astype("datetime64[D]")) // np.timedelta64(1, "h")
        out = raw.copy()
        out[1:] = raw[1:] - raw[:-1]
        first_of_day = hours == 1
        out[first_of_day] = raw[first_of_day]
        if lead:
            return out[1:]
        return out

    def _record(self, k):
        if self._chunk is None or not (self._chunk[0] <= k < self._chunk[1]):
            self._load_chunk(max(0, min(k, self.times.size - self.chunk_steps)))
        i0, _, data = self._chunk
        return {n: v[k - i0] for n, v in data.items()}

    def _set_geometry(self, lat, lon, elevation_m):
        key = (lat.size, float(lat.sum()), float(lon.sum()), None if elevation_m is None else float(elevation_m.sum()))
        if self._geom is not None and self._geom["key"] == key:
            return
        w = BilinearWeights(self.lat, self.lon, lat, lon, where=f"file {self._paths[0]}")
        ylo = int(min(w.iy0.min(), w.iy1.min()))
        yhi = int(max(w.iy0.max(), w.iy1.max()))
        if np.all(w.ix1 >= w.ix0):
            xlo, xhi = int(w.ix0.min()), int(w.ix1.max())
        else:
            xlo, xhi = 0, w.nx - 1
        sub = BilinearWeights(self.lat[ylo:yhi + 1], self.lon[xlo:xhi + 1], lat, lon, where=f"file {self._paths[0]}") \
            if (yhi - ylo + 1, xhi - xlo + 1) != (w.ny, w.nx) else w
        dz = None
        if elevation_m is not None:
            if self._zf is None:
                raise ValueError("elevation_m given but the forcing grid elevation (forcing_elevation_m) is not")
            if self._zf.shape != (w.ny, w.nx):
                raise ValueError(f"forcing_elevation_m shape {self._zf.shape} != forcing grid {(w.ny, w.nx)}")
            dz = np.asarray(elevation_m, float).ravel() - w.bilinear(self._zf)
        self._geom = {"key": key, "w": sub, "ys": slice(ylo, yhi + 1), "xs": slice(xlo, xhi + 1), "dz": dz}
        self._chunk = None

    def fields(self, time, lat, lon, elevation_m=None) -> dict:
        """Forcing at ``time`` for cells at (lat, lon) (n,), in internal names and units, each (n,)."""
        lat = np.asarray(lat, float).ravel()
        lon = np.asarray(lon, float).ravel()
        if elevation_m is not None:
            elevation_m = np.asarray(elevation_m, float).ravel()
        if elevation_m is not None and elevation_m.size != lat.size:
            raise ValueError(f"elevation_m has {np.asarray(elevation_m).size} values for {lat.size} cells")
        self._set_geometry(lat, lon, elevation_m)
        w = self._geom["w"]
        out = {}
        k, wt = state_bracket(self.times, time)
        r0 = self._record(k)
        r1 = self._record(k + 1) if wt > 0 else r0
        for n in ("t_air", "q_air", "p_surf", "wind"):
            if n in r0:
                a = w.bilinear(r0[n])
                out[n] = a if wt == 0 else (1 - wt) * a + wt * w.bilinear(r1[n])
        fluxes = [n for n in U.FLUXES if n in self.sources]
        if fluxes:
            kf, ts, te = flux_interval(self.times, time, self.flux_label, self.dt_s)
            rf = self._record(kf)
            for n in fluxes:
                out[n] = w.conservative(rf[n]) if n == "precip" else w.bilinear(rf[n])
            if "sw_down" in out and self.sw_zenith:
                out["sw_down"] = distribute_shortwave(out["sw_down"], ts, te, time, lat, lon)
        if self._geom["dz"] is not None and "t_air" in out:
            empty = np.empty(0)
            lapse_adjust(out["t_air"], out.get("p_surf", empty), out.get("q_air", empty), self._geom["dz"],
                         LAPSE_RATE)
        return out
