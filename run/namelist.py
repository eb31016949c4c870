"""The smda namelist: YAML case studies loaded into frozen, keyword-only dataclasses.

Every key is declared once here with its default, unit and meaning; ``namelists/README.md`` is
generated from these declarations (``smda info --keys``). Loading reports every problem at once
with the file, line and key path; ``--set a.b=value`` overrides come from the command line.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import yaml

from smda.assimilation.downscaling import METHODS
from smda.assimilation.downscaling.dispatch import SEE_MODELS
from smda.assimilation.filters import FILTERS
from smda.assimilation.filters.increments import finer_than
from smda.assimilation.observations.bias import MATCHERS, PERIODS
from smda.assimilation.observations.readers import READERS, in_saturation_units
from smda.forcing.perturb import PerturbationSettings
from smda.forcing.readers import PRESETS
from smda.forcing.site import FILLABLE, time_zone_info
from smda.model.dielectric import DIELECTRIC_MODELS
from smda.model.emission import TEFF_MODELS
from smda.model.grid import NEST
from smda.model.grid import Domain as GridDomain
from smda.run.schema import INT64_MAX, NamelistError, build, key, located, section, to_plain
from smda.run.validate import ValidationSettings

PREDICTOR_SOURCES = ("synthetic", "modis", "netcdf")

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
UPDATABLE = ("sm_surface", "sm_rootzone", "t_skin", "t_deep")
_PERTURB = PerturbationSettings()  # the defaults of the perturbation keys
_VALIDATE = ValidationSettings()  # the defaults of the validation keys


@section
class Domain:
    bbox: tuple[float, float, float, float] | None = key(
        None, unit="deg", doc="Lat/lon box (lat_min, lat_max, lon_min, lon_max), snapped out to whole 36 km pixels.")
    centre: tuple[float, float] | None = key(None, unit="deg", doc="Domain centre (lat, lon); used with size_km.")
    size_km: tuple[float, float] = key((108.0, 108.0), unit="km", doc="Width and height around centre.", lo=1.0)
    parameters: Path | None = key(
        None, doc="netCDF of static 1 km fields on the domain grid (sand, clay, igbp, elevation, ndvi, land_mask; "
        "optional organic_fraction and porosity/b/psi_sat_m/k_sat_ms overrides), built from rasters by `smda "
        "parameters`; null: the synthetic landscape (see landscape).")
    landscape: str = key("auto", choices=("auto", "synthetic"),
                         doc="Without domain.parameters: auto uses the synthetic landscape in twin experiments only "
                         "(a real case, with forcing or observations that are not synthetic, needs domain.parameters); "
                         "synthetic asks for it explicitly, also in a real case. A parameter file, when given, is used.")
    landscape_seed: int = key(7, doc="Seed of the synthetic landscape.", lo=0, hi=INT64_MAX)

    def check(self):
        if (self.bbox is None) == (self.centre is None):
            return [((), "give exactly one of bbox or centre (with size_km)")]
        if self.bbox is not None:
            la0, la1, lo0, lo1 = self.bbox
            if not (-85 <= la0 < la1 <= 85 and -180 <= lo0 < lo1 <= 180):
                return [(("bbox",), "needs -85 <= lat_min < lat_max <= 85 and -180 <= lon_min < lon_max <= 180")]
        elif not (-85 <= self.centre[0] <= 85 and -180 <= self.centre[1] <= 180):
            return [(("centre",), f"{list(self.centre)}: needs -85 <= lat <= 85 and -180 <= lon <= 180")]
        try:
            make = GridDomain.from_bbox if self.bbox is not None else GridDomain.from_centre
            make(*(self.bbox or (*self.centre, *self.size_km)))
        except ValueError as exc:
            return [(("bbox" if self.bbox is not None else "size_km",), str(exc))]
        return []


_ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2})?)?")
_FIRST_YEAR, _LAST_YEAR = 1900, 2200


def _iso_time(text: str):
    """``numpy.datetime64`` (s) of an ISO 8601 date or date-time, or None if it is not one (or out of range)."""
    if not _ISO_TIME.fullmatch(text.strip()):
        return None
    try:
        t = np.datetime64(text.strip().replace(" ", "T"), "s")
    except ValueError:
        return None
    return t if _FIRST_YEAR <= t.astype("datetime64[Y]").astype(int) + 1970 <= _LAST_YEAR else None


@section
class Time:
    start: str = key("2019-05-01T00:00", unit="UTC", doc="First time of the run (ISO 8601).")
    end: str = key("2019-06-30T00:00", unit="UTC", doc="Last time of the run (ISO 8601).")
    dt_s: float = key(3600.0, unit="s", doc="Model time step.", lo=60.0, hi=10800.0)

    def check(self):
        times = {name: _iso_time(getattr(self, name)) for name in ("start", "end")}
        out = [((name,), f"{getattr(self, name)!r} is not an ISO 8601 time YYYY-MM-DD[THH:MM[:SS]] between "
                f"{_FIRST_YEAR} and {_LAST_YEAR}") for name, t in times.items() if t is None]
        if out:
            return out
        s, e = times["start"], times["end"]
        if e <= s:
            out.append((("end",), f"end {self.end} is not after start {self.start}"))
        elif (e - s) / np.timedelta64(1, "s") < self.dt_s:
            out.append((("dt_s",), "the period is shorter than one time step"))
        if 86400.0 % self.dt_s:
            out.append((("dt_s",), "must divide one day (86400 s) exactly"))
        return out


@section
class Perturbations:
    enabled: bool = key(True, doc="Perturb the ensemble's forcing (SMAP L4 practice).")
    precip_std: float = key(_PERTURB.precip_std, unit="1", lo=0.0, hi=3.0,
                            doc="Std of the multiplicative lognormal precipitation factor (mean 1).")
    sw_std: float = key(_PERTURB.sw_std, unit="1", doc="Std of the multiplicative shortwave factor (mean 1).", lo=0.0, hi=1.0)
    lw_std_Wm2: float = key(_PERTURB.lw_std_wm2, unit="W m-2", doc="Std of the additive longwave perturbation.", lo=0.0,
                            hi=200.0)
    t_air_std_K: float = key(_PERTURB.t_air_std_k, unit="K", doc="Std of the additive air temperature perturbation.",
                             lo=0.0, hi=30.0)
    tau_h: float = key(_PERTURB.precip_tau_h, unit="h", doc="AR(1) time scale.", lo=0.1)
    length_km: float = key(_PERTURB.corr_length_km, unit="km", doc="Spatial correlation length.", lo=1.0)
    scales_km: tuple[float, ...] = key(_PERTURB.scales_km, unit="km", lo=1.0,
                                       doc="Further correlation lengths of multi-scale fields (e.g. [9] for the storms "
                                           "below a reanalysis grid, beside length_km for its synoptic error).")
    scale_fractions: tuple[float, ...] = key(_PERTURB.scale_fractions, unit="1", lo=0.0, hi=1.0,
                                             doc="Share of each field's variance at each of scales_km (sum < 1; "
                                                 "length_km keeps the rest).")
    corr_precip_sw: float = key(_PERTURB.corr_precip_sw, doc="Cross-correlation precipitation - shortwave.", lo=-1.0, hi=1.0)
    corr_precip_lw: float = key(_PERTURB.corr_precip_lw, doc="Cross-correlation precipitation - longwave.", lo=-1.0, hi=1.0)
    corr_sw_lw: float = key(_PERTURB.corr_sw_lw, doc="Cross-correlation shortwave - longwave.", lo=-1.0, hi=1.0)

    def check(self):
        if len(self.scales_km) != len(self.scale_fractions):
            return [(("scale_fractions",), f"{list(self.scale_fractions)}: needs one fraction per scales_km entry "
                     f"{list(self.scales_km)}")]
        if sum(self.scale_fractions) >= 1.0:
            return [(("scale_fractions",), f"{list(self.scale_fractions)}: the sum must be < 1 (length_km keeps the rest)")]
        return []


@section
class Forcing:
    source: str = key("synthetic", doc="Where the forcing comes from.", choices=("synthetic", "gridded", "site"))
    paths: tuple[Path, ...] = key((), doc="Files or glob patterns (gridded or site forcing), relative to the namelist.")
    preset: str = key("era5", doc="Variable names and units of gridded files.",
                      choices=PRESETS.names())
    columns: dict | None = key(None, doc="Site forcing CSV: internal name (time, precip, sw_down, lw_down, t_air, q_air, "
                               "rel_hum, dewpoint, p_surf, wind) -> column title (time defaults to 'time').")
    units: dict | None = key(None, doc="Site forcing CSV: internal name -> units of its column (e.g. precip: mm h-1).")
    time_format: str | None = key(None, doc="Site forcing CSV: strftime format of the time column (e.g. '%d/%m/%Y %H:%M'); "
                                  "null: ISO 8601 or inferred.")
    time_zone: str = key("UTC", doc="Site forcing CSV: zone of time stamps without a UTC offset (UTC, an offset such as "
                         "+01:00, or an IANA name such as Europe/Madrid).")
    missing_values: tuple[float, ...] = key((-9999.0,), doc="Site forcing: values that mark a missing record.")
    max_gap_h: float = key(6.0, unit="h", lo=0.0, doc="Site and gridded forcing: longest gap filled (per cell: states and "
                           "radiation linearly in time, precipitation with 0, recorded in forcing_fill); a longer gap is "
                           "an error naming it.")
    range_check: bool = key(True, doc="Range and unit-plausibility checks of the forcing after unit conversion (an error "
                            "names the file, variable, value, time and the likely unit mistake).")
    fill: tuple[str, ...] = key((), choices=FILLABLE,
                                doc="Site forcing: variables the station lacks, filled by documented generators "
                                "(recorded in the outputs' forcing_fill attribute; see forcing/fills.py).")
    fill_wind_ms: float = key(2.0, unit="m s-1", lo=0.0, hi=30.0, doc="Site forcing: wind speed of the wind fill "
                              "(FAO-56: 2 m s-1 where no wind data exist).")
    dewpoint_depression_K: float = key(0.0, unit="K", lo=0.0, hi=10.0, doc="Site forcing: humidity fill dewpoint = daily "
                                       "minimum temperature minus this (FAO-56: 0 humid, about 2 arid climates).")
    station_elevation_m: float | None = key(None, unit="m", lo=-500.0, hi=9000.0,
                                            doc="Site forcing: station elevation (lapse-rate correction to the cells, "
                                            "pressure fill, check of the station pressure).")
    openloop_coarsen_km: float = key(
        36.0, unit="km", doc="Twin experiments: the ensemble's forcing is the truth's smoothed to this scale.", lo=0.0)
    openloop_precip_bias: float = key(0.8, unit="1", lo=0.0, hi=5.0,
                                      doc="Twin experiments: precipitation factor of the ensemble's forcing.")
    perturbations: Perturbations = dataclasses.field(default_factory=Perturbations)

    def check(self):
        out = []
        if "p_surf" in self.fill and self.station_elevation_m is None:
            out.append((("station_elevation_m",), "the p_surf fill needs the station elevation"))
        try:
            time_zone_info(self.time_zone)
        except ValueError as exc:
            out.append((("time_zone",), str(exc)))
        return out


@section
class Model:
    ensemble_size: int = key(24, unit="1", doc="Number of ensemble members.", lo=1, hi=1024)
    sand: float | None = key(None, unit="1", doc="Override the sand fraction everywhere.", lo=0.0, hi=1.0)
    clay: float | None = key(None, unit="1", doc="Override the clay fraction everywhere.", lo=0.0, hi=1.0)
    initial_sm_fraction: float = key(
        0.5, unit="1", doc="Initial soil moisture as a fraction of the way from wilting point to field capacity.", lo=0.0, hi=1.5)
    sm_perturbation_std: float = key(0.01, unit="m3 m-3", doc="Std of the initial ensemble soil moisture spread.", lo=0.0, hi=0.2)


_SOURCE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,23}")
# Background check threshold: a Gaussian innovation of a consistent system exceeds 4 sigma with probability 6e-5,
# so almost nothing valid is lost, while a +40 K TB outlier (about 8 sigma for 3 K spread and 4 K error) is
# rejected; 3 (DART's customary outlier_threshold) also rejects the large valid innovations after rain events.
BACKGROUND_K = 4.0


@section
class Observations:
    name: str = key("", doc="Name of the source, unique in the case (letters, digits, '_', '-'; at most 24 characters): "
                    "the diagnostics' source column, the log and the rescaling files; empty: the source key.")
    source: str = key("synthetic", doc="Observation product (a reader; synthetic for twin experiments; none: no observations).",
                      choices=READERS.names("none", "synthetic"))
    paths: tuple[Path, ...] = key((), doc="Product files or glob patterns, relative to the namelist.")
    options: dict | None = key(None, doc="Reader options of the product (e.g. tb_variant, passes, max_rfi_prob); "
                               "an unknown option is an error naming the valid ones.")
    kind: str = key("tb", doc="Assimilate brightness temperature or soil moisture.", choices=("tb", "sm"))
    grid: str = key("M36", doc="Footprint grid of synthetic observations (M01 with footprint box: 1 km identity).",
                    choices=("M36", "M25", "M09", "M03", "M01"))
    polarizations: tuple[str, ...] = key(("H", "V"), doc="TB polarizations used (at least one for kind tb).",
                                         choices=("H", "V"))
    angle_deg: float = key(40.0, unit="degree", doc="Incidence angle of synthetic TB (SMAP 40).", lo=0.0, hi=70.0)
    error: float | None = key(None, unit="K or m3 m-3", lo=0.001,
                              doc="Observation error std in the unit of kind; null: error_tb_K or error_sm.")
    error_tb_K: float = key(4.0, unit="K", doc="TB observation error std (SMAP/SMOS 36 km).", lo=0.01)
    error_sm: float = key(0.04, unit="m3 m-3", doc="Soil moisture observation error std.", lo=0.001)
    error_corr_km: float = key(0.0, unit="km", lo=0.0,
                               doc="Spatial correlation length of the errors (0: independent): synthetic observations "
                               "are drawn with it, and superob_grid takes it for the error of a box mean.")
    superob_grid: str = key("none", choices=("none", "M03", "M09", "M36"),
                            doc="Super-observations: average the source's accepted finer box observations of one time "
                            "in the pixels of this EASE-Grid 2.0 grid, error variance that of a mean of errors "
                            "correlated over error_corr_km (none: every observation enters the analysis).")
    correlated_errors: bool = key(False, doc="Give the analysis this source's error correlations over error_corr_km "
                                  "(a non-diagonal R within the source, whitened in each local analysis; letkf and "
                                  "etkf only): neighbouring observations are not counted as independent.")
    error_inflation: float = key(1.0, unit="1", lo=1.0, hi=100.0,
                                 doc="Factor on this source's error variance (a diagonal R inflated for error "
                                 "correlations it leaves out, Stewart et al. 2013); 1: none.")
    footprint: str = key("box", doc="Footprint weights: pixel box of the grid (M01: the 1 km cell) or Gaussian antenna "
                         "pattern.", choices=("box", "gauss"))
    fov_km: float = key(20.0, unit="km", doc="Gaussian field-of-view radius (used with footprint: gauss).", lo=1.0)
    min_inside_fraction: float = key(0.5, unit="1", lo=0.0, hi=1.0,
                                     doc="Reject footprints with less weight inside the domain's land (> 0).")
    orbits: tuple[str, ...] = key(("am",), choices=("am", "pm"),
                                  doc="Synthetic overpasses: 6 am descending and/or 6 pm ascending local solar time.")
    revisit_cycle_days: int = key(8, unit="day", lo=1, hi=366, doc="Synthetic revisit: length of the repeat cycle.")
    revisit_am_days: tuple[int, ...] = key((0, 3, 5), unit="day", lo=0,
                                           doc="Synthetic revisit: days of the cycle with an am overpass (SMAP-like).")
    revisit_pm_days: tuple[int, ...] = key((1, 4, 6), unit="day", lo=0,
                                           doc="Synthetic revisit: days of the cycle with a pm overpass.")
    gap_fraction: float = key(0.1, unit="1", doc="Synthetic fraction of missing pixels.", lo=0.0, hi=0.99)
    dielectric: str = key("mironov", doc="Soil dielectric model (the same for every source).",
                          choices=DIELECTRIC_MODELS.names())
    teff: str = key("choudhury", doc="Effective temperature model (the same for every source).", choices=TEFF_MODELS.names())
    tb_bias_K: float = key(0.0, unit="K", doc="Synthetic TB bias added to the observations.")
    rescaling: str = key("none", choices=MATCHERS.names("none"),
                         doc="Rescale observations to the model climatology (statistics from an open-loop run): "
                         "mean/std or CDF matching, or anomaly assimilation.")
    rescaling_window: str = key("none", choices=tuple(PERIODS),
                                doc="Period of the rescaling statistics (none: one set per pixel).")
    rescaling_stats: Path | None = key(
        None, doc="netCDF of rescaling statistics; every run with observations writes <name>_rescaling_<method>.nc "
        "(<name>_<source name>_rescaling_<method>.nc with several sources), fitted from its obs and open-loop/forecast "
        "equivalents, for use here.")
    halo_km: float = key(50.0, unit="km", doc="Product observations are read this far around the domain.", lo=0.0)
    heavy_rain_mm: float = key(25.0, unit="mm", doc="Screen obs after this much modelled rain in the last 24 h.", lo=0.0)
    background_k: float = key(BACKGROUND_K, unit="1", lo=0.0,
                              doc="Background check: reject abs(O - mean(HX)) > k sqrt(var(HX) + R) (0: off; not applied "
                              "in an open-loop run, whose observations fit the rescaling).")
    adaptive_error: bool = key(False, doc="Estimate this source's error variance from innovation statistics "
                               "(Desroziers et al. 2005: E[d_oa d_ob] = R), smoothed over cycles.")
    adaptive_error_bounds: tuple[float, float] = key((0.5, 2.0), unit="1", lo=0.01, hi=100.0,
                                                     doc="Bounds of the adaptive factor on the error std.")
    adaptive_error_memory: float = key(0.9, unit="1", lo=0.0, hi=0.999,
                                       doc="Weight of the previous cycles' statistics (per cycle) in the adaptive error.")
    loc_radius_km: float | None = key(None, unit="km", lo=1.0,
                                      doc="Gaspari-Cohn localization half-width c of this source's observations (taper 0 "
                                      "beyond 2c), e.g. ~10 km for 3 km soil moisture, ~60 km for 36 km TB; null: "
                                      "assimilation.loc_radius_km.")

    @property
    def label(self) -> str:
        """The source's name: ``name``, or the ``source`` key."""
        return self.name or self.source

    @property
    def error_std(self) -> float:
        """Observation error std in the unit of ``kind``."""
        return self.error if self.error is not None else (self.error_tb_K if self.kind == "tb" else self.error_sm)

    @property
    def error_given(self) -> float | None:
        """The error std set in the namelist (``error``, or ``error_tb_K`` / ``error_sm`` changed from their
        defaults); None leaves it to the reader (its per-observation errors, or the product's documented std)."""
        name = "error_tb_K" if self.kind == "tb" else "error_sm"
        changed = getattr(self, name) != type(self).__dataclass_fields__[name].default
        return self.error if self.error is not None else (getattr(self, name) if changed else None)

    def check(self):
        out = []
        if self.name and not _SOURCE_NAME.fullmatch(self.name):
            out.append((("name",), f"{self.name!r}: a letter, then letters, digits, '_' or '-' (24 at most)"))
        if self.min_inside_fraction <= 0:
            out.append((("min_inside_fraction",), "must be > 0 (a footprint with no weight on the model has no "
                        "model equivalent)"))
        if self.source == "none":
            return out
        if self.kind == "tb" and not self.polarizations:
            out.append((("polarizations",), "kind tb needs at least one polarization (H, V)"))
        if self.source == "synthetic":
            if not self.orbits:
                out.append((("orbits",), "a synthetic source needs at least one orbit (am, pm)"))
            for orbit, days in (("am", self.revisit_am_days), ("pm", self.revisit_pm_days)):
                if orbit in self.orbits and (not days or max(days) >= self.revisit_cycle_days or len(set(days)) != len(days)):
                    out.append(((f"revisit_{orbit}_days",), f"{list(days)}: distinct days in [0, revisit_cycle_days = "
                                f"{self.revisit_cycle_days}), at least one"))
            if self.footprint == "gauss" and self.grid == "M01":
                out.append((("footprint",), "grid M01 observations are 1 km cells: use footprint box"))
            if self.superob_grid != "none" and not (self.footprint == "box" and self.grid in NEST
                                                      and NEST[self.grid] < NEST[self.superob_grid]):
                out.append((("superob_grid",), f"{self.superob_grid}: super-observations average box footprints of "
                            f"a finer nested grid (M01, M03, M09), not {self.footprint} {self.grid}"))
        elif not self.paths:
            out.append((("paths",), f"source {self.source!r} needs product files"))
        if self.correlated_errors and (self.error_corr_km <= 0 or self.superob_grid != "none"):
            out.append((("correlated_errors",), "needs error_corr_km > 0 and superob_grid none (super-observations "
                        "already average the correlated errors)"))
        if self.kind == "sm" and self.source.endswith("_tb"):
            out.append((("kind",), f"{self.source} holds brightness temperature, not sm"))
        if self.rescaling != "none" and self.rescaling_stats is None:
            out.append((("rescaling_stats",), "rescaling needs statistics: run the open loop (assimilation.filter: none) "
                        "first and give its <name>_rescaling_<method>.nc here"))
        lo, hi = self.adaptive_error_bounds
        if lo > 1 or hi < 1:
            out.append((("adaptive_error_bounds",), f"{[lo, hi]}: needs min <= 1 <= max"))
        return out


@section
class Assimilation:
    filter: str = key("letkf", doc="Analysis method; none runs the open loop.", choices=FILTERS.names("none"))
    update: tuple[str, ...] = key(("sm_surface", "sm_rootzone"), choices=UPDATABLE,
                                  doc="State variables updated by the analysis.")
    loc_radius_km: float = key(60.0, unit="km", lo=1.0,
                               doc="Gaspari-Cohn localization half-width c: taper 0.21 at c, 0 beyond 2c. A localization "
                               "radius r of DAPPER (loc_rad) or Sakov & Oke (2008), in grid lengths of s km, is c = 1.82 r s: "
                               "r = 4 on the 1 km grid -> 7.28; r = 20 km -> 36.4.")
    taper_cutoff: float = key(0.0, unit="1", lo=0.0, hi=0.5,
                              doc="Localization taper values at or below this count as 0 (the observation is not used; "
                              "DAPPER: 0.001); 0: every observation with a positive taper.")
    inflation: float = key(1.0, unit="1", lo=1.0, hi=2.0,
                           doc="Multiplicative prior inflation of the ensemble anomalies, x' -> a x' (variance factor a^2), "
                           "as DAPPER's infl and Sakov & Oke (2008): DAPPER infl 1.02 -> inflation: 1.02 (variance factor "
                           "1.0404). "
                           "A variance factor rho (Hunt et al. 2007, DART) -> sqrt(rho): 1.04 -> 1.0198. 1: none.")
    adaptive_inflation: bool = key(False, doc="Estimate the inflation each cycle from the innovations (inflation is then "
                                   "a floor).")
    random_rotation: bool = key(False, doc="ETKF/LETKF: random mean-preserving rotation of the analysis members each "
                                "cycle (Sakov & Oke 2008; DAPPER rot=True), the same for every cell; mean and spread "
                                "unchanged.")
    rtps: float = key(0.5, unit="1", doc="Relaxation to prior spread.", lo=0.0, hi=1.0)
    rtpp: float = key(0.0, unit="1", doc="Relaxation to prior perturbations.", lo=0.0, hi=1.0)
    weight_interpolation: bool = key(True, doc="LETKF: analysis weights on a coarse lattice, interpolated to 1 km.")
    analysis_spacing_km: float = key(9.0, unit="km", doc="Spacing of the LETKF weight-interpolation lattice.", lo=1.0)
    increment_grid: str = key("none", choices=("none", "M36", "M09", "M03"),
                              doc="After each analysis, replace every member's increment of each updated variable by "
                              "its mean over the land cells of its pixel of this EASE-Grid 2.0 grid, then clip to the "
                              "variable's bounds: coarse observations move only pixel means (default twin with M36, seeds "
                              "42-44: gain fraction 0.857 -> 0.859 on average, -0.020 to +0.025 by seed). Refused with a "
                              "source finer than the grid, whose information the mean would erase (none: the filter's "
                              "increments).")


@section
class Comparison:
    methods: tuple[str, ...] = key(("dispatch", "empirical"), doc="Comparison downscaling operators.", choices=METHODS.names())
    sm_model: str = key("linear", doc="DISPATCH SEE(SM) model.", choices=SEE_MODELS)
    cloud_fraction: float = key(0.3, unit="1", doc="Synthetic LST cloud cover fraction.", lo=0.0, hi=1.0)
    window_days: int = key(30, unit="day", doc="Empirical regression moving window.", lo=1)
    predictors: str = key("synthetic", choices=PREDICTOR_SOURCES,
                          doc="1 km LST/NDVI of the comparison methods (predictors.nc): synthetic (twin: MODIS-like from "
                          "the truth), modis (MOD11A1/MYD11A1 and MOD13A2 HDF4 tiles) or netcdf (CF grids in any CRS).")
    lst_paths: tuple[Path, ...] = key((), doc="LST files (globs allowed) for predictors modis or netcdf.")
    ndvi_paths: tuple[Path, ...] = key((), doc="NDVI files (globs allowed) for predictors modis or netcdf.")
    lst_variable: str = key("lst", doc="predictors netcdf: the LST variable (K or degC, with a time coordinate).")
    ndvi_variable: str = key("ndvi", doc="predictors netcdf: the NDVI variable (with a time coordinate).")
    resampling: str = key("area_mean", choices=("area_mean", "nearest"),
                          doc="predictors modis: mean of the tile values at 3 x 3 points of each 1 km cell, or the "
                          "tile pixel at its centre.")
    lst_max_error_class: int = key(2, lo=0, hi=3, doc="predictors modis: largest MOD11 LST error class kept "
                                   "(0: <= 1 K, 1: <= 2 K, 2: <= 3 K, 3: all produced).")
    ndvi_max_reliability: int = key(1, lo=0, hi=3, doc="predictors modis: largest MOD13 pixel reliability kept "
                                    "(0 good, 1 marginal, 2 snow/ice, 3 cloudy).")
    satellite_from_tb: bool = key(False, doc="Real TB sources whose product files hold a soil-moisture retrieval "
                                  "(SMAP L2/L3, SMOS L2) also write it as their satellite product.")


@section
class Output:
    dir: Path = key(Path("out"), doc="Output folder, relative to the namelist.")
    restart_every_days: float = key(0.0, unit="day", lo=0.0,
                                    doc="Checkpoint interval; 0: every 7 days for runs longer than 28 days, "
                                        "else only the final checkpoint.")
    figures: bool = key(True, doc="Write PNG figures.")
    daily_means: bool = key(True, doc="Write <name>_daily.nc: daily means of soil moisture and fluxes.")


@section
class Validation:
    insitu: Path | None = key(None, doc="ISMN folder/zip or CSV station file.")
    variable: str = key(_VALIDATE.variable, choices=("sm_surface", "sm_rootzone"),
                        doc="Product variable validated; its sensor layer is depth_m or rootzone_depth_m.")
    depth_m: tuple[float, float] = key(_VALIDATE.depth_m, unit="m", lo=0.0,
                                       doc="Sensor depth range matched to the surface layer (a sensor is used if its "
                                       "layer lies inside).")
    rootzone_depth_m: tuple[float, float] = key(_VALIDATE.rootzone_depth_m, unit="m", lo=0.0,
                                                doc="Sensor depth range matched to the root zone (cosmic-ray probes: "
                                                "their footprint depth, e.g. 0-0.19 m).")
    good_flags: tuple[str, ...] = key(_VALIDATE.good_flags, doc="ISMN quality flags kept (G good; e.g. add U unchecked).")
    frm_classes: tuple[str, ...] | None = key(_VALIDATE.frm_classes, doc="FRM representativeness classes kept (ISMN "
                                              "frm_class, e.g. [representative, very representative]; sensors without "
                                              "one are 'undeducible'); null: every sensor.")
    sensors: str = key(_VALIDATE.sensors, choices=("best", "each", "mean"),
                       doc="Several sensors of a station in the layer: the best one on the validation period, each "
                       "one separately, or their mean.")
    period: tuple[str, str] | None = key(_VALIDATE.period, unit="ISO 8601 UTC",
                                         doc="Validation period (start, end) for the sensor choice; null: the "
                                         "products' time span.")
    time_match: str = key(_VALIDATE.time_match, choices=("nearest", "daily"),
                          doc="Temporal matching: nearest in situ value within window_h of each product time, or "
                          "daily UTC means of both.")
    window_h: float = key(_VALIDATE.window_h, unit="h", doc="Time-matching window.", lo=0.0)
    nearest_valid_km: float = key(_VALIDATE.nearest_valid_km, unit="km", lo=0.0,
                                  doc="A station whose 1 km cell has no estimate of a product (e.g. a masked coarse "
                                  "pixel) takes the nearest cell with estimates within this distance; 0: its cell only.")
    min_samples: int = key(_VALIDATE.min_samples, doc="Minimum collocated samples per station, season and stratum.", lo=3)
    common_pairs: bool = key(_VALIDATE.common_pairs, doc="Rank the products of a station on the times all of them "
                             "have (the same pairs for every product); false: each product on all its own pairs.")
    alpha: float = key(_VALIDATE.alpha, unit="1", lo=1e-6, hi=0.5,
                       doc="1 - confidence level of the intervals (0.05: 95 %).")
    anomaly: str = key(_VALIDATE.anomaly, choices=("moving_average", "climatology"),
                       doc="Anomalies for R_anom, from each full series before matching (QA4SM): minus a centred "
                       "moving average, or minus a day-of-year climatology.")
    anomaly_window_days: float = key(_VALIDATE.anomaly_window_days, unit="day", lo=1.0,
                                     doc="Window of the moving average / of the climatology smoothing.")
    triple: tuple[str, str] | None = key(_VALIDATE.triple, doc="Two products for triple collocation with the in situ "
                                         "data (e.g. [analysis, satellite]); null: none.")
    tc_bootstrap: int = key(_VALIDATE.tc_bootstrap, lo=0, doc="Bootstrap resamples of the triple collocation "
                            "confidence intervals (0: none).")
    tc_min_bootstrap: int = key(_VALIDATE.tc_min_bootstrap, lo=5,
                                doc="Least collocated triplets for bootstrap intervals (pytesmo: 100).")
    cache_dir: Path | None = key(_VALIDATE.cache_dir, doc="ISMN metadata cache folder, reused across calls; null: "
                                 "$SMDA_CACHE_DIR/ismn/<archive>-<hash> (SMDA_CACHE_DIR defaults to ~/.cache/smda).")
    figures: bool = key(_VALIDATE.figures, doc="Write the validation figures (PNG).")

    def check(self):
        try:
            ValidationSettings.coerce(self)
        except ValueError as exc:
            return [((), str(exc))]
        return []


@section
class Namelist:
    name: str = key("case", doc="Case name, used in output file names: letters, digits, '.', '_', '-'.")
    seed: int = key(42, doc="Master seed of every random stream.", lo=0, hi=INT64_MAX)
    domain: Domain = dataclasses.field(default_factory=Domain)
    time: Time = dataclasses.field(default_factory=Time)
    model: Model = dataclasses.field(default_factory=Model)
    forcing: Forcing = dataclasses.field(default_factory=Forcing)
    observations: tuple[Observations, ...] = dataclasses.field(
        default=(Observations(),), metadata={"doc": "The observation sources: one mapping, or a list of mappings "
                                             "(several sources enter one analysis)."})
    assimilation: Assimilation = dataclasses.field(default_factory=Assimilation)
    comparison: Comparison = dataclasses.field(default_factory=Comparison)
    output: Output = dataclasses.field(default_factory=Output)
    validation: Validation = dataclasses.field(default_factory=Validation)

    def check(self):
        out = []
        if not NAME_PATTERN.fullmatch(self.name):
            out.append((("name",), f"{self.name!r}: use letters, digits, '.', '_' and '-' only (it names output files)"))
        if self.assimilation.filter != "none":
            if not self.assimilation.update:
                out.append((("assimilation", "update"), f"{self.assimilation.filter!r} needs at least one state variable "
                            f"to update ({', '.join(UPDATABLE)})"))
            if not self.observed:
                msg = f"{self.assimilation.filter!r} needs observations; observations.source is 'none'"
                out.append((("assimilation", "filter"), msg))
            if self.model.ensemble_size < 2:
                out.append((("model", "ensemble_size"), "a filter needs at least 2 members"))
        if self.real and self.domain.parameters is None and self.domain.landscape != "synthetic":
            out.append((("domain", "parameters"), "a real case (forcing or observations not synthetic) needs the static "
                        "1 km fields of its domain: build them with `smda parameters <namelist> --sand ... --clay ... "
                        "--landcover ... --elevation ... --ndvi ... -o params.nc` and set domain.parameters: params.nc, "
                        "or set domain.landscape: synthetic to run on the synthetic landscape"))
        if self.forcing.source != "synthetic" and not self.forcing.paths:
            out.append((("forcing", "paths"), f"source {self.forcing.source!r} needs files"))
        return out + self._check_comparison() + self._check_sources()

    def _check_comparison(self):
        """Real runs need real 1 km predictors for the comparison methods (no truth to simulate them from)."""
        c, out = self.comparison, []
        if c.predictors == "synthetic":
            if c.methods and self.observed and not self.twin:
                out.append((("comparison", "predictors"), f"methods {list(c.methods)} need 1 km LST and NDVI, which a "
                            "real run cannot simulate: set predictors: modis (or netcdf) with lst_paths and ndvi_paths, "
                            "or methods: []"))
            return out
        for k in ("lst_paths", "ndvi_paths"):
            if not getattr(c, k):
                out.append((("comparison", k), f"predictors {c.predictors!r} needs files"))
        return out

    def _check_sources(self):
        """Problems between observation sources: unique names, one RTM, 'none' only alone."""
        out, seen, srcs = [], {}, self.observations
        where = (lambda i, k: ("observations", i, k)) if len(srcs) > 1 else (lambda i, k: ("observations", k))
        for i, o in enumerate(srcs):
            if o.label in seen:
                out.append((where(i, "name"), f"{o.label!r} is also the name of observations[{seen[o.label]}]: give each "
                            "source a unique name"))
            seen.setdefault(o.label, i)
            if o.source == "none" and len(srcs) > 1:
                out.append((where(i, "source"), "'none' means no observations: remove this entry instead"))
            try:
                saturation = in_saturation_units(o.source, o.options)
            except ValueError as exc:
                out.append((where(i, "options"), str(exc)))
                saturation = False
            if saturation and o.rescaling == "none" and self.assimilation.filter != "none":
                out.append((where(i, "rescaling"), "values in degree of saturation (options.units without "
                            "options.porosity) must be rescaled onto the model's climatology: give rescaling (cdf, "
                            "anomaly or meanstd) with the statistics of an open-loop run, or options.porosity"))
            flt = self.assimilation.filter
            if o.correlated_errors and flt != "none" and not FILTERS[flt].correlated_errors:
                out.append((where(i, "correlated_errors"), f"filter {flt!r} takes a diagonal R: use letkf or etkf, or "
                            "correlated_errors: false"))
            inc = self.assimilation.increment_grid
            if inc != "none" and flt != "none" and o.source == "synthetic":
                fp = o.superob_grid if o.superob_grid != "none" else (o.grid if o.footprint == "box" else "gauss")
                if finer_than(fp, o.fov_km, inc):
                    out.append((("assimilation", "increment_grid"), f"{inc}: source {o.label!r} observes {fp} footprints"
                                f"{f' (fov_km {o.fov_km:g})' if fp == 'gauss' else ''}, finer than the {inc} pixels in "
                                "which the increments would be averaged (erasing that source's information): use a "
                                "grid no finer than every source's footprints, or none"))
            for k in ("dielectric", "teff"):
                if getattr(o, k) != getattr(srcs[0], k):
                    out.append((where(i, k), f"every source uses the model's RTM: give {getattr(srcs[0], k)!r} as in "
                                "observations[0]"))
        return out

    @property
    def observed(self) -> bool:
        """The case has observations (a source other than 'none')."""
        return any(o.source != "none" for o in self.observations)

    @property
    def real(self) -> bool:
        """A real case: the forcing or an observation source is not synthetic (none excepted)."""
        return self.forcing.source != "synthetic" or any(o.source not in ("synthetic", "none") for o in self.observations)

    @property
    def twin(self) -> bool:
        """A twin experiment: a synthetic source observes a truth run."""
        return any(o.source == "synthetic" for o in self.observations)

    @property
    def start(self):
        return np.datetime64(self.time.start, "s")

    @property
    def end(self):
        return np.datetime64(self.time.end, "s")


def _line_map(node, path=(), out=None, duplicates=None):
    """Map key paths to 1-based YAML line numbers; a key repeated in one mapping goes to ``duplicates``."""
    out = {} if out is None else out
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            p = path + (str(k.value),)
            if p in out and duplicates is not None:
                duplicates.append(f"line {k.start_mark.line + 1}: {'.'.join(p)}: duplicate key (first on line {out[p]})")
            out[p] = k.start_mark.line + 1
            _line_map(v, p, out, duplicates)
    elif isinstance(node, yaml.SequenceNode) and any(isinstance(v, yaml.MappingNode) for v in node.value):
        for i, v in enumerate(node.value):  # a list of sections: observations[i].key
            out[path + (i,)] = v.start_mark.line + 1
            _line_map(v, path + (i,), out, duplicates)
    return out


def missing_inputs(obj, path=()):
    """(key path, message) of every input file of the namelist that does not exist (output.dir excepted)."""
    out = []
    for f in dataclasses.fields(obj):
        value, p = getattr(obj, f.name), path + (f.name,)
        items = value if isinstance(value, tuple) else (value,)
        for i, v in enumerate(items):  # a section, or a list of sections
            if dataclasses.is_dataclass(v):
                out += missing_inputs(v, p + ((i,) if len(items) > 1 else ()))
        paths = [v for v in items if isinstance(v, Path)]
        for v in paths if p != ("output", "dir") else ():
            wild = any(c in v.name for c in "*?[")
            if not (any(v.parent.glob(v.name)) if wild else v.exists()):
                hint = ("; an open-loop run of this case (--set assimilation.filter=none) writes it in its output.dir "
                        "(<name>_rescaling_<method>.nc)") if p[-1] == "rescaling_stats" else ""
                out.append((p, (f"no file matches {v}" if wild else f"file not found: {v}") + hint))
    return out


def _apply_override(data, text, lines):
    if "=" not in text:
        raise NamelistError([f"--set {text!r}: expected KEY.PATH=VALUE"], "(command line)")
    path, value = text.split("=", 1)
    raw = []
    for k in path.strip().split("."):  # "observations[1].error": item 1 of a list of sections
        m = re.fullmatch(r"(.+)\[(\d+)\]", k)
        raw += [m[1], int(m[2])] if m else [k]
    keys, node = [], data
    for j, k in enumerate(raw):
        if isinstance(node, list) and not isinstance(k, int):
            if len(node) != 1:
                raise NamelistError([f"--set {path}: {keys[-1]} is a list of {len(node)}: use {keys[-1]}[i]"], "(command line)")
            keys.append(0)  # a list of one section: "observations.error" is its key
            node = node[0]
        bad = isinstance(k, int) != isinstance(node, list) or isinstance(k, int) and k >= len(node)
        if bad or not isinstance(node, (dict, list)):
            raise NamelistError([f"--set {path}: {keys[-1] if keys else k} has no entry {k}"], "(command line)")
        keys.append(k)
        if j < len(raw) - 1:
            node = node[k] if isinstance(node, list) else node.setdefault(k, {})
    try:
        node[keys[-1]] = yaml.safe_load(value) if value.strip() else None
    except (yaml.YAMLError, ValueError) as exc:  # e.g. a date that does not exist: "2019-13-45"
        raise NamelistError([f"--set: {path.strip()}: cannot read {value!r}: {exc}"], "(command line)") from None
    lines[tuple(keys)] = "--set"


def load(path, overrides=(), check_inputs: bool = False) -> Namelist:
    """Load, validate and resolve a namelist file, with ``--set`` style ``overrides`` ("a.b=value");
    ``check_inputs`` also requires every input file it names to exist."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise NamelistError([f"file not found: {path}"], str(path)) from None
    except OSError as exc:
        raise NamelistError([f"cannot read {path}: {exc}"], str(path)) from None
    try:
        data = yaml.safe_load(text)
        duplicates = []
        lines = _line_map(yaml.compose(text), duplicates=duplicates)
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: a date that does not exist, e.g. 2019-02-30
        raise NamelistError([f"not valid YAML: {exc}"], str(path)) from None
    if duplicates:
        raise NamelistError(duplicates, str(path))
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise NamelistError(["the top level must be a mapping of sections"], str(path))
    for item in overrides:
        _apply_override(data, item, lines)
    nl = build(Namelist, data, lines=lines, base_dir=path.resolve().parent, source=str(path))
    missing = missing_inputs(nl) if check_inputs else []
    if missing:
        raise NamelistError([located(lines, p, msg) for p, msg in missing], str(path))
    return nl


def dump(nl: Namelist) -> str:
    """The resolved namelist (every default filled in) as YAML text."""
    return yaml.safe_dump(to_plain(nl), sort_keys=False, default_flow_style=None)


__all__ = ["NAME_PATTERN", "Namelist", "NamelistError", "load", "dump", "missing_inputs"]
