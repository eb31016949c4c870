"""The smda namelist: YAML case studies loaded into frozen, keyword-only dataclasses.

Every key is declared once here with its default, unit and meaning; ``namelists/README.md`` is
generated from these declarations (``smda info --keys``). Loading reports every problem at once
with the file, line and key path; ``--set a.b=value`` overrides come from the command line.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import yaml

from smda.assimilation.downscaling import METHODS
from smda.assimilation.downscaling.dispatch import SEE_MODELS
from smda.assimilation.filters import FILTERS
from smda.assimilation.observations.bias import MATCHERS, PERIODS
from smda.assimilation.observations.readers import READERS
from smda.forcing.perturb import PerturbationSettings
from smda.forcing.readers import PRESETS
from smda.forcing.site import FILLABLE
from smda.model.dielectric import DIELECTRIC_MODELS
from smda.model.emission import TEFF_MODELS
from smda.run.schema import NamelistError, build, key, section, to_plain
from smda.run.validate import ValidationSettings

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
        None, doc="netCDF of static 1 km fields on the domain grid (sand, clay, igbp, elevation, ndvi, land_mask); "
        "null generates a heterogeneous synthetic landscape (twin experiments).")
    landscape_seed: int = key(7, doc="Seed of the synthetic landscape.", lo=0)


@section
class Time:
    start: str = key("2019-05-01T00:00", unit="UTC", doc="First time of the run (ISO 8601).")
    end: str = key("2019-06-30T00:00", unit="UTC", doc="Last time of the run (ISO 8601).")
    dt_s: float = key(3600.0, unit="s", doc="Model time step.", lo=60.0, hi=10800.0)

    def check(self):
        try:
            s, e = np.datetime64(self.start, "s"), np.datetime64(self.end, "s")
        except ValueError as exc:
            return [(("start",), f"not an ISO 8601 time: {exc}")]
        out = []
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
    lw_std_Wm2: float = key(_PERTURB.lw_std_wm2, unit="W m-2", doc="Std of the additive longwave perturbation.", lo=0.0)
    t_air_std_K: float = key(_PERTURB.t_air_std_k, unit="K", doc="Std of the additive air temperature perturbation.", lo=0.0)
    tau_h: float = key(_PERTURB.precip_tau_h, unit="h", doc="AR(1) time scale.", lo=0.1)
    length_km: float = key(_PERTURB.corr_length_km, unit="km", doc="Spatial correlation length.", lo=1.0)
    corr_precip_sw: float = key(_PERTURB.corr_precip_sw, doc="Cross-correlation precipitation - shortwave.", lo=-1.0, hi=1.0)
    corr_precip_lw: float = key(_PERTURB.corr_precip_lw, doc="Cross-correlation precipitation - longwave.", lo=-1.0, hi=1.0)
    corr_sw_lw: float = key(_PERTURB.corr_sw_lw, doc="Cross-correlation shortwave - longwave.", lo=-1.0, hi=1.0)


@section
class Forcing:
    source: str = key("synthetic", doc="Where the forcing comes from.", choices=("synthetic", "gridded", "site"))
    paths: tuple[Path, ...] = key((), doc="Files or glob patterns (gridded or site forcing), relative to the namelist.")
    preset: str = key("era5", doc="Variable names and units of gridded files.",
                      choices=PRESETS.names())
    columns: dict | None = key(None, doc="Site forcing CSV: internal name (precip, sw_down, lw_down, t_air, q_air, "
                               "rel_hum, dewpoint, p_surf, wind) -> column title.")
    units: dict | None = key(None, doc="Site forcing CSV: internal name -> units of its column (e.g. precip: mm h-1).")
    fill: tuple[str, ...] = key((), choices=FILLABLE,
                                doc="Site forcing: variables the station lacks, filled by documented generators "
                                "(recorded in the outputs' forcing_fill attribute).")
    station_elevation_m: float | None = key(None, unit="m", doc="Site forcing: station elevation (lapse-rate correction).")
    openloop_coarsen_km: float = key(
        36.0, unit="km", doc="Twin experiments: the ensemble's forcing is the truth's smoothed to this scale.", lo=0.0)
    openloop_precip_bias: float = key(0.8, unit="1", lo=0.0,
                                      doc="Twin experiments: precipitation factor of the ensemble's forcing.")
    perturbations: Perturbations = dataclasses.field(default_factory=Perturbations)


@section
class Model:
    ensemble_size: int = key(24, unit="1", doc="Number of ensemble members.", lo=1, hi=1024)
    sand: float | None = key(None, unit="1", doc="Override the sand fraction everywhere.", lo=0.0, hi=1.0)
    clay: float | None = key(None, unit="1", doc="Override the clay fraction everywhere.", lo=0.0, hi=1.0)
    initial_sm_fraction: float = key(
        0.5, unit="1", doc="Initial soil moisture as a fraction of the way from wilting point to field capacity.", lo=0.0, hi=1.5)
    sm_perturbation_std: float = key(0.01, unit="m3 m-3", doc="Std of the initial ensemble soil moisture spread.", lo=0.0, hi=0.2)


@section
class Observations:
    source: str = key("synthetic", doc="Observation product (synthetic for twin experiments).",
                      choices=READERS.names("none", "synthetic"))
    paths: tuple[Path, ...] = key((), doc="Product files or glob patterns, relative to the namelist.")
    kind: str = key("tb", doc="Assimilate brightness temperature or soil moisture.", choices=("tb", "sm"))
    grid: str = key("M36", doc="Footprint grid of synthetic observations.", choices=("M36", "M09", "M25"))
    polarizations: tuple[str, ...] = key(("H", "V"), doc="TB polarizations used.", choices=("H", "V"))
    angle_deg: float = key(40.0, unit="degree", doc="Incidence angle of synthetic TB (SMAP 40).", lo=0.0, hi=70.0)
    error_tb_K: float = key(4.0, unit="K", doc="TB observation error std (SMAP/SMOS 36 km).", lo=0.01)
    error_sm: float = key(0.04, unit="m3 m-3", doc="Soil moisture observation error std.", lo=0.001)
    footprint: str = key("box", doc="Footprint weights: pixel box or Gaussian antenna pattern.", choices=("box", "gauss"))
    fov_km: float = key(20.0, unit="km", doc="Gaussian field-of-view radius (used with footprint: gauss).", lo=1.0)
    min_inside_fraction: float = key(0.5, unit="1", lo=0.0, hi=1.0,
                                     doc="Reject footprints with less weight inside the domain's land.")
    orbits: tuple[str, ...] = key(("am",), choices=("am", "pm"),
                                  doc="Synthetic overpasses: SMAP-like 6 am descending and/or 6 pm ascending, every 2-3 days.")
    gap_fraction: float = key(0.1, unit="1", doc="Synthetic fraction of missing pixels.", lo=0.0, hi=1.0)
    dielectric: str = key("mironov", doc="Soil dielectric model.", choices=DIELECTRIC_MODELS.names())
    teff: str = key("choudhury", doc="Effective temperature model.", choices=TEFF_MODELS.names())
    tb_bias_K: float = key(0.0, unit="K", doc="Synthetic TB bias added to the observations.")
    rescaling: str = key("none", choices=MATCHERS.names("none"),
                         doc="Rescale observations to the model climatology (statistics from an open-loop run).")
    rescaling_window: str = key("none", choices=tuple(PERIODS),
                                doc="Period of the rescaling statistics (none: one set per pixel).")
    rescaling_stats: Path | None = key(
        None, doc="netCDF of rescaling statistics; every run with observations writes <name>_rescaling.nc "
        "(fitted from its obs and open-loop/forecast equivalents) for use here.")
    halo_km: float = key(50.0, unit="km", doc="Product observations are read this far around the domain.", lo=0.0)
    heavy_rain_mm: float = key(25.0, unit="mm", doc="Screen obs after this much modelled rain in the last 24 h.", lo=0.0)


@section
class Assimilation:
    filter: str = key("letkf", doc="Analysis method; none runs the open loop.", choices=FILTERS.names("none"))
    update: tuple[str, ...] = key(("sm_surface", "sm_rootzone"), choices=UPDATABLE,
                                  doc="State variables updated by the analysis.")
    loc_radius_km: float = key(60.0, unit="km", doc="Gaspari-Cohn localization half-width c (taper is 0 beyond 2c).", lo=1.0)
    inflation: float = key(1.0, unit="1", doc="Multiplicative prior inflation.", lo=1.0, hi=3.0)
    adaptive_inflation: bool = key(False, doc="Estimate the inflation each cycle from the innovations (then a floor).")
    rtps: float = key(0.5, unit="1", doc="Relaxation to prior spread.", lo=0.0, hi=1.0)
    rtpp: float = key(0.0, unit="1", doc="Relaxation to prior perturbations.", lo=0.0, hi=1.0)
    weight_interpolation: bool = key(True, doc="LETKF: analysis weights on a coarse lattice, interpolated to 1 km.")
    analysis_spacing_km: float = key(9.0, unit="km", doc="Spacing of the LETKF weight-interpolation lattice.", lo=1.0)


@section
class Comparison:
    methods: tuple[str, ...] = key(("dispatch", "empirical"), doc="Comparison downscaling operators.", choices=METHODS.names())
    sm_model: str = key("linear", doc="DISPATCH SEE(SM) model.", choices=SEE_MODELS)
    cloud_fraction: float = key(0.3, unit="1", doc="Synthetic LST cloud cover fraction.", lo=0.0, hi=1.0)
    window_days: int = key(30, unit="day", doc="Empirical regression moving window.", lo=1)


@section
class Output:
    dir: Path = key(Path("out"), doc="Output folder, relative to the namelist.")
    restart_every_days: float = key(0.0, unit="day", lo=0.0,
                                    doc="Checkpoint interval; 0: every 7 days for runs longer than 28 days, "
                                        "else only the final checkpoint.")
    figures: bool = key(True, doc="Write PNG figures.")
    daily_means: bool = key(True, doc="Write daily-mean fluxes.")


@section
class Validation:
    insitu: Path | None = key(None, doc="ISMN folder/zip or CSV station file.")
    depth_m: tuple[float, float] = key(_VALIDATE.depth_m, unit="m", lo=0.0,
                                       doc="Sensor depth range matched to the surface layer.")
    window_h: float = key(_VALIDATE.window_h, unit="h", doc="Time-matching window.", lo=0.0)
    min_samples: int = key(_VALIDATE.min_samples, doc="Minimum collocated samples per station.", lo=3)


@section
class Namelist:
    name: str = key("case", doc="Case name, used in output file names.")
    seed: int = key(42, doc="Master seed of every random stream.", lo=0)
    domain: Domain = dataclasses.field(default_factory=Domain)
    time: Time = dataclasses.field(default_factory=Time)
    model: Model = dataclasses.field(default_factory=Model)
    forcing: Forcing = dataclasses.field(default_factory=Forcing)
    observations: Observations = dataclasses.field(default_factory=Observations)
    assimilation: Assimilation = dataclasses.field(default_factory=Assimilation)
    comparison: Comparison = dataclasses.field(default_factory=Comparison)
    output: Output = dataclasses.field(default_factory=Output)
    validation: Validation = dataclasses.field(default_factory=Validation)

    def check(self):
        out = []
        if (self.domain.bbox is None) == (self.domain.centre is None):
            out.append((("domain",), "give exactly one of bbox or centre (with size_km)"))
        if self.domain.bbox is not None:
            la0, la1, lo0, lo1 = self.domain.bbox
            if not (-85 <= la0 < la1 <= 85 and -180 <= lo0 < lo1 <= 180):
                out.append((("domain", "bbox"), "needs -85 <= lat_min < lat_max <= 85 and -180 <= lon_min < lon_max <= 180"))
        if self.assimilation.filter != "none":
            if self.observations.source == "none":
                msg = f"{self.assimilation.filter!r} needs observations; observations.source is 'none'"
                out.append((("assimilation", "filter"), msg))
            if self.model.ensemble_size < 2:
                out.append((("model", "ensemble_size"), "a filter needs at least 2 members"))
        if self.observations.source != "synthetic" and self.observations.source != "none" and not self.observations.paths:
            out.append((("observations", "paths"), f"source {self.observations.source!r} needs product files"))
        if self.forcing.source != "synthetic" and not self.forcing.paths:
            out.append((("forcing", "paths"), f"source {self.forcing.source!r} needs files"))
        if self.forcing.source == "site" and len(self.forcing.paths) != 1:
            out.append((("forcing", "paths"), "site forcing takes exactly one station table"))
        if self.observations.rescaling != "none" and self.observations.rescaling_stats is None:
            out.append((("observations", "rescaling_stats"), "rescaling needs statistics: run the open loop "
                        "(assimilation.filter: none) first and give its <name>_rescaling.nc here"))
        if self.observations.kind == "sm" and self.observations.source.endswith("_tb"):
            out.append((("observations", "kind"), f"{self.observations.source} holds brightness temperature, not sm"))
        return out

    @property
    def start(self):
        return np.datetime64(self.time.start, "s")

    @property
    def end(self):
        return np.datetime64(self.time.end, "s")


def _line_map(node, path=(), out=None):
    """Map key paths to 1-based YAML line numbers."""
    out = {} if out is None else out
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            p = path + (str(k.value),)
            out[p] = k.start_mark.line + 1
            _line_map(v, p, out)
    return out


def _apply_override(data, text, lines):
    if "=" not in text:
        raise NamelistError([f"--set {text!r}: expected KEY.PATH=VALUE"], "(command line)")
    path, value = text.split("=", 1)
    keys = path.strip().split(".")
    node = data
    for k in keys[:-1]:
        node = node.setdefault(k, {})
        if not isinstance(node, dict):
            raise NamelistError([f"--set {path}: {k} is not a section"], "(command line)")
    node[keys[-1]] = yaml.safe_load(value) if value.strip() else None
    lines[tuple(keys)] = "--set"


def load(path, overrides=()) -> Namelist:
    """Load, validate and resolve a namelist file, with ``--set`` style ``overrides`` ("a.b=value")."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise NamelistError([f"file not found: {path}"], str(path)) from None
    except OSError as exc:
        raise NamelistError([f"cannot read {path}: {exc}"], str(path)) from None
    try:
        data = yaml.safe_load(text)
        lines = _line_map(yaml.compose(text))
    except yaml.YAMLError as exc:
        raise NamelistError([f"not valid YAML: {exc}"], str(path)) from None
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise NamelistError(["the top level must be a mapping of sections"], str(path))
    for item in overrides:
        _apply_override(data, item, lines)
    return build(Namelist, data, lines=lines, base_dir=path.resolve().parent, source=str(path))


def dump(nl: Namelist) -> str:
    """The resolved namelist (every default filled in) as YAML text."""
    return yaml.safe_dump(to_plain(nl), sort_keys=False, default_flow_style=None)


__all__ = ["Namelist", "NamelistError", "load", "dump"]
