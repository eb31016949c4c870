"""Experiment assembly: everything static that one MPI rank needs to run a case.

Built once from the namelist: the domain and its decomposition, this rank's cells (pixel-major land
cells, see :mod:`smda.run.decomp`) with their coordinates, the static parameters (read or synthetic), the
soil parameters of the land surface model, the tau-omega parameters of the radiative transfer, the
weather source and the ensemble perturbations. No numerics here: the time loop is in
:mod:`smda.run.driver`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from smda.forcing.perturb import ForcingPerturbations, PerturbationSettings
from smda.forcing.readers import GriddedForcing
from smda.forcing.site import SiteForcing, read_station_table
from smda.forcing.synthetic import SyntheticSettings, SyntheticWeather
from smda.model import emission, vegetation
from smda.model.grid import Domain
from smda.model.parameters import HYDRAULIC, ndvi_on, read_parameters, synthetic_landscape
from smda.model.soil import SoilParameters, soil_parameters
from smda.run.decomp import Decomposition, decompose
from smda.run.namelist import Namelist
from smda.run.setup import make_domain

log = logging.getLogger(__name__)

PARTICLE_DENSITY = 2.66  # g cm-3, mineral particle density (bulk density = (1 - porosity) * 2.66)


@dataclass
class Experiment:
    """Static description of the case on this rank (arrays are per local cell, (n,))."""

    nl: Namelist
    comm: object
    domain: Domain
    dec: Decomposition
    cells: np.ndarray          # local domain indices, pixel-major
    gidx: np.ndarray           # global M01 indices (keys of random streams)
    x: np.ndarray
    y: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    static: dict               # sand, clay, elevation_m, ndvi_min, ndvi_max, green_up_doy, igbp
    soil: SoilParameters
    tau_omega: dict            # h, omega, b, q per cell
    bulk_density: np.ndarray   # g cm-3

    @property
    def rank(self) -> int:
        return 0 if self.comm is None else self.comm.rank

    @property
    def size(self) -> int:
        return 1 if self.comm is None else self.comm.size

    @property
    def n(self) -> int:
        return self.cells.size

    @property
    def n_members(self) -> int:
        return self.nl.model.ensemble_size

    @property
    def twin(self) -> bool:
        """A twin experiment: a truth run gives the synthetic observations."""
        return self.nl.twin

    def vegetation_on(self, doy: float) -> dict:
        """Vegetation of day-of-year ``doy``: ndvi, fveg, lai (m2 m-2), vwc (kg m-2), per cell."""
        ndvi = ndvi_on(doy, self.static)
        stem = vegetation.stem_factor_from_igbp(self.static["igbp"])
        return {
            "ndvi": ndvi,
            "fveg": vegetation.vegetation_fraction(ndvi),
            "lai": vegetation.lai_from_ndvi(ndvi),
            "vwc": vegetation.vwc_from_ndvi(ndvi, self.static["ndvi_max"], self.static["ndvi_min"], stem),
        }

    def truth_weather(self):
        """The forcing of the truth run, or of the ensemble in a real case: ``fields(step, time, x, y, lat, lon, z)``."""
        f = self.nl.forcing
        if f.source == "synthetic":
            return SyntheticWeather(SyntheticSettings(), seed=self.nl.seed)
        paths = expand_paths(f.paths, "forcing.paths")
        if f.source == "site":
            lat, lon = (float(np.mean(v)) for v in self.domain.latlon())
            table = read_station_table(
                paths, columns=f.columns, units=f.units, time_format=f.time_format, time_zone=f.time_zone,
                missing_values=f.missing_values, fill=f.fill, lat=lat, lon=lon, elevation_m=f.station_elevation_m,
                max_gap_h=f.max_gap_h, check=f.range_check, fill_wind_ms=f.fill_wind_ms,
                dewpoint_depression_k=f.dewpoint_depression_K)
            return _Located(SiteForcing(table, station_elevation_m=f.station_elevation_m),
                            elevation=f.station_elevation_m is not None)  # lapse-rate correction needs it
        return _Located(GriddedForcing(paths, f.preset, check=f.range_check, max_gap_h=f.max_gap_h))

    def ensemble_weather(self):
        """The ensemble's forcing: in twin experiments the truth's degraded (coarsened, biased); else the truth's."""
        f = self.nl.forcing
        truth = self.truth_weather()
        if not self.twin:
            return truth
        if f.source == "synthetic":
            return truth.degraded(coarsen_km=f.openloop_coarsen_km, precip_bias=f.openloop_precip_bias)
        return _Located(truth.source, precip_factor=f.openloop_precip_bias, elevation=truth.elevation)

    def perturbations(self) -> ForcingPerturbations | None:
        p = self.nl.forcing.perturbations
        if not p.enabled:
            return None
        settings = PerturbationSettings(
            precip_std=p.precip_std, sw_std=p.sw_std, lw_std_wm2=p.lw_std_Wm2, t_air_std_k=p.t_air_std_K,
            precip_tau_h=p.tau_h, sw_tau_h=p.tau_h, lw_tau_h=p.tau_h, t_air_tau_h=p.tau_h,
            corr_length_km=p.length_km, corr_precip_sw=p.corr_precip_sw, corr_precip_lw=p.corr_precip_lw,
            corr_sw_lw=p.corr_sw_lw, scales_km=p.scales_km, scale_fractions=p.scale_fractions)
        return ForcingPerturbations(settings, seed=self.nl.seed, dt_s=self.nl.time.dt_s, x_m=self.x, y_m=self.y,
                                    n_members=self.n_members)


class _Located:
    """Adapts a reader's ``fields(time, lat, lon, elevation_m)`` to the driver's call (and an optional rain factor)."""

    def __init__(self, source, precip_factor: float = 1.0, elevation: bool = True):
        self.source, self.precip_factor, self.elevation = source, precip_factor, elevation

    @property
    def fill_record(self) -> dict:
        """Variables filled by generators or in gaps (site and gridded forcing), {name: method}."""
        return dict(getattr(self.source, "fill_record", {}))

    def fields(self, step, time, x_m, y_m, lat, lon, elevation_m=None):
        out = self.source.fields(time, lat, lon, elevation_m if self.elevation else None)
        if self.precip_factor != 1.0:
            out["precip"] = out["precip"] * self.precip_factor
        return out


def expand_paths(patterns, key: str) -> list[Path]:
    """Files matching the patterns (absolute after namelist resolution), sorted; an error names the key."""
    files = []
    for pat in patterns:
        p = Path(pat)
        hits = sorted(p.parent.glob(p.name)) if any(c in p.name for c in "*?[") else ([p] if p.exists() else [])
        if not hits:
            raise FileNotFoundError(f"{key}: no file matches {pat}")
        files += hits
    return files


def build(nl: Namelist, comm=None) -> Experiment:
    """Assemble the experiment for this rank of ``comm`` (None: serial)."""
    domain = make_domain(nl)
    size = 1 if comm is None else comm.size
    rank = 0 if comm is None else comm.rank
    dec = decompose(domain, size)
    cells = dec.cells(rank)
    r, c = np.divmod(cells, domain.ncols)
    x, y = domain.x[c], domain.y[r]
    lat2, lon2 = domain.latlon()
    lat, lon = lat2.ravel()[cells], lon2.ravel()[cells]
    if nl.domain.parameters is not None:
        static = read_parameters(nl.domain.parameters, cells, domain.shape)
    else:
        static = synthetic_landscape(x, y, seed=nl.domain.landscape_seed)
    if nl.model.sand is not None:
        static["sand"] = np.full(cells.size, nl.model.sand)
    if nl.model.clay is not None:
        static["clay"] = np.full(cells.size, nl.model.clay)
    bad = static["sand"] + static["clay"] > 1.0
    if np.any(bad):
        raise ValueError(f"sand + clay > 1 in {int(bad.sum())} cells (check model.sand/model.clay or the parameter file)")
    hydraulic = {name: static[f] for f, name in HYDRAULIC.items() if f in static}
    soil = soil_parameters(static["sand"], static["clay"], static.get("organic_fraction"), **hydraulic)
    tau_omega = emission.igbp_parameters(static["igbp"], q_from_h=False)
    bulk = (1.0 - soil["wsat"]) * PARTICLE_DENSITY
    gidx = domain.global_index()[cells]
    log.debug("rank %d: %d cells", rank, cells.size)
    return Experiment(nl, comm, domain, dec, cells, gidx, x, y, lat, lon, static, soil, tau_omega, bulk)


