"""The variable registry: name, units, CF standard name, long name and physical bounds of every variable.

One entry per variable that smda reads, computes or writes; every module takes its metadata from here
(the model state and fluxes, the forcing readers and unit checks, the soil parameter checks, the
netCDF writer and the generated documentation). Modules that lay variables out in memory keep their
own ORDER (``smda.model.state.VARIABLES``, ``smda.model.lsm.FLUXES``, ``smda.model.soil.PARAMETER_NAMES``),
never their own metadata.

A :class:`Variable` holds

* ``kind``: ``state`` (prognostic state of the land surface model), ``forcing`` (meteorological
  forcing of one step), ``flux`` (land surface model fluxes), ``parameter`` (static per-cell fields)
  or ``diagnostic`` (quantities derived for the observation operator and the outputs);
* ``units`` (UDUNITS spelling, never empty: the writer refuses a variable without units),
  ``long_name`` and ``standard_name`` (CF standard name table; "" where CF has no name);
* ``lower``, ``upper``: the inclusive physical bounds; a string names a soil parameter, so the bound
  is that parameter's value in each cell (soil moisture lies in [wres, wsat]); see :func:`bounds`;
* ``interval_mean``: True for a mean over an interval (precipitation, radiation, model fluxes), False
  for an instantaneous value (temperatures, humidity, pressure, wind, stores);
* ``output``: written to the netCDF outputs of a run (the documented table of output variables).

Asking for an unknown name raises :class:`smda.registry.UnknownName` (a KeyError and a ValueError)
listing the registered names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from smda.registry import Registry

KINDS = ("state", "forcing", "flux", "parameter", "diagnostic")
_POSITIVE = 1e-12  # lower bound of parameters that must be strictly positive (bounds are inclusive)
_INF = math.inf


@dataclass(frozen=True)
class Variable:
    name: str
    kind: str
    units: str
    long_name: str
    standard_name: str = ""
    lower: float | str = -_INF
    upper: float | str = _INF
    interval_mean: bool = False
    output: bool = False

    def __post_init__(self):
        if self.kind not in KINDS or not self.units:
            raise ValueError(f"variable {self.name!r}: kind must be one of {KINDS} and units must be given")


def _state(name, units, long_name, standard_name, lower, upper, output):
    return Variable(name, "state", units, long_name, standard_name, lower, upper, output=output)


def _forcing(name, units, long_name, standard_name, lower, upper, interval_mean):
    return Variable(name, "forcing", units, long_name, standard_name, lower, upper, interval_mean=interval_mean)


def _flux(name, units, long_name, standard_name="", output=False):
    return Variable(name, "flux", units, long_name, standard_name, interval_mean=True, output=output)


def _parameter(name, units, long_name, lower=_POSITIVE, upper=_INF, standard_name=""):
    return Variable(name, "parameter", units, long_name, standard_name, lower, upper)


_SM = "volume_fraction_of_condensed_water_in_soil"
_WATER_FLUX = "kg m-2 s-1"

VARIABLES = Registry("variable", {v.name: v for v in (
    # prognostic state (smda.model.state)
    _state("sm_surface", "m3 m-3", "soil moisture of the 0-5 cm layer", _SM, "wres", "wsat", True),
    _state("sm_rootzone", "m3 m-3", "soil moisture of the 0-1 m root zone", _SM, "wres", "wsat", True),
    _state("t_skin", "K", "skin temperature (land surface temperature)", "surface_temperature", 180.0, 360.0, True),
    _state("t_deep", "K", "deep soil temperature", "soil_temperature", 200.0, 340.0, True),
    _state("swe", "kg m-2", "snow water equivalent", "surface_snow_amount", 0.0, _INF, False),
    _state("canopy_water", "kg m-2", "water intercepted by the canopy", "canopy_water_amount", 0.0, _INF, False),
    # forcing of one step (smda.forcing); bounds are the plausible ranges of the optional forcing check
    _forcing("precip", _WATER_FLUX, "total precipitation rate (rain and snow)", "precipitation_flux", 0.0, 0.1, True),
    _forcing("sw_down", "W m-2", "downward shortwave radiation at the surface",
             "surface_downwelling_shortwave_flux_in_air", 0.0, 1500.0, True),
    _forcing("lw_down", "W m-2", "downward longwave radiation at the surface",
             "surface_downwelling_longwave_flux_in_air", 30.0, 700.0, True),
    _forcing("t_air", "K", "near-surface air temperature", "air_temperature", 180.0, 340.0, False),
    _forcing("q_air", "kg kg-1", "near-surface specific humidity", "specific_humidity", 0.0, 0.06, False),
    _forcing("p_surf", "Pa", "surface air pressure", "surface_air_pressure", 3.0e4, 1.1e5, False),
    _forcing("wind", "m s-1", "near-surface wind speed", "wind_speed", 0.0, 80.0, False),
    # land surface model fluxes, step means (smda.model.lsm); soil evaporation includes snow sublimation,
    # for which CF has no single name
    _flux("soil_evaporation", _WATER_FLUX, "bare soil evaporation plus snow sublimation (negative: condensation)"),
    _flux("transpiration", _WATER_FLUX, "transpiration", "transpiration_flux"),
    _flux("interception_loss", _WATER_FLUX, "evaporation of canopy intercepted water",
          "water_evaporation_flux_from_canopy"),
    _flux("surface_runoff", _WATER_FLUX, "surface runoff (infiltration excess plus saturation excess)",
          "surface_runoff_flux"),
    _flux("drainage", _WATER_FLUX, "drainage at the bottom of the root zone", "subsurface_runoff_flux", output=True),
    _flux("sensible_heat", "W m-2", "sensible heat flux", "surface_upward_sensible_heat_flux", output=True),
    _flux("latent_heat", "W m-2", "latent heat flux", "surface_upward_latent_heat_flux", output=True),
    _flux("ground_heat", "W m-2", "heat flux into skin and soil (residual Rn - H - LE)"),
    _flux("net_radiation", "W m-2", "net radiation at the surface", "surface_net_downward_radiative_flux"),
    _flux("snowmelt", _WATER_FLUX, "snowmelt (internal transfer, not part of the budget)", "surface_snow_melt_flux"),
    # static per-cell fields: soil and surface parameters (smda.model.soil), elevation
    _parameter("sand", "1", "sand mass fraction", 0.0, 1.0),
    _parameter("clay", "1", "clay mass fraction", 0.0, 1.0),
    _parameter("wsat", "m3 m-3", "volumetric water content at saturation (porosity)", 0.05, 0.95),
    _parameter("wwilt", "m3 m-3", "volumetric water content at the wilting point", 0.0, 1.0,
               f"{_SM}_at_wilting_point"),
    _parameter("wfc", "m3 m-3", "volumetric water content at field capacity", 0.0, 1.0, f"{_SM}_at_field_capacity"),
    _parameter("wres", "m3 m-3", "residual volumetric water content (lower bound of soil moisture)", 0.0, 1.0),
    _parameter("b", "1", "Clapp-Hornberger exponent", 1.0, 30.0),  # Cosby et al. 1984: 2.8-19; organic 2.7
    _parameter("c1sat", "1", "ISBA surface force coefficient at saturation"),
    _parameter("c2ref", "1", "ISBA restore coefficient"),
    _parameter("c3", "1", "ISBA drainage coefficient"),
    _parameter("a", "1", "ISBA equilibrium surface moisture coefficient"),
    _parameter("p", "1", "ISBA equilibrium surface moisture exponent"),
    _parameter("cgsat", "K m2 J-1", "soil thermal coefficient at saturation"),
    _parameter("ks_m_s", "m s-1", "saturated hydraulic conductivity",
               standard_name="soil_hydraulic_conductivity_at_saturation"),
    _parameter("psi_s_m", "m", "air-entry matric suction"),
    _parameter("d1_m", "m", "depth of the surface layer"),
    _parameter("d2_m", "m", "depth of the root zone", 0.1, 10.0),
    _parameter("albedo", "1", "snow-free surface albedo", 0.0, 1.0),
    _parameter("emissivity", "1", "surface emissivity", 0.5, 1.0),
    _parameter("rsmin_s_m", "s m-1", "minimum stomatal resistance"),
    _parameter("z0_soil_m", "m", "roughness length of bare soil"),
    _parameter("z0_veg_m", "m", "roughness length of vegetation"),
    Variable("elevation", "parameter", "m", "surface elevation", "height_above_mean_sea_level", output=True),
    # the fields of a parameter file (smda.model.parameters, written by smda parameters); its hydraulic
    # overrides (porosity, b, psi_sat_m, k_sat_ms) must lie within their bounds
    _parameter("elevation_m", "m", "surface elevation", -500.0, 9000.0, "height_above_mean_sea_level"),
    _parameter("ndvi_min", "1", "minimum of the NDVI climatology", -1.0, 1.0),
    _parameter("ndvi_max", "1", "maximum of the NDVI climatology", -1.0, 1.0),
    _parameter("green_up_doy", "day", "day of year of the NDVI climatology's peak", 1.0, 366.0),
    _parameter("igbp", "1", "IGBP land-cover class (0: no data)", 0.0, 17.0, "area_type"),
    _parameter("land_mask", "1", "model land cell (IGBP class 1-16)", 0.0, 1.0, "land_binary_mask"),
    _parameter("organic_fraction", "1", "organic fraction of the soil (Lawrence & Slater 2008)", 0.0, 1.0),
    _parameter("porosity", "m3 m-3", "porosity override (NaN: pedotransfer)", 0.05, 0.95),
    _parameter("psi_sat_m", "m", "air-entry suction override (NaN: pedotransfer)", 1e-4, 10.0),
    _parameter("k_sat_ms", "m s-1", "saturated hydraulic conductivity override (NaN: pedotransfer)", 1e-10, 1e-2,
               "soil_hydraulic_conductivity_at_saturation"),
    # derived for the observation operator, the comparison operators and the daily outputs
    Variable("tb_h", "diagnostic", "K", "L-band brightness temperature, horizontal polarization", output=True),
    Variable("tb_v", "diagnostic", "K", "L-band brightness temperature, vertical polarization", output=True),
    Variable("lst", "diagnostic", "K", "clear-sky land surface temperature (MODIS-like)", "surface_temperature",
             output=True),
    Variable("lst_aqua", "diagnostic", "K", "clear-sky daytime land surface temperature, second platform (MODIS Aqua)",
             "surface_temperature", output=True),
    Variable("lst_night", "diagnostic", "K", "clear-sky night-time land surface temperature", "surface_temperature",
             output=True),
    Variable("lst_view_time", "diagnostic", "h", "local solar time of the daytime land surface temperature view",
             output=True),
    Variable("ndvi", "diagnostic", "1", "normalized difference vegetation index",
             "normalized_difference_vegetation_index", -1.0, 1.0, output=True),
    Variable("evapotranspiration", "diagnostic", _WATER_FLUX, "evapotranspiration", "water_evapotranspiration_flux",
             interval_mean=True, output=True),
    Variable("runoff", "diagnostic", _WATER_FLUX, "surface runoff", "surface_runoff_flux", interval_mean=True,
             output=True),
)})


def names(kind: str) -> tuple[str, ...]:
    """Names of the variables of ``kind`` (one of ``KINDS``), in registry order."""
    if kind not in KINDS:
        raise ValueError(f"unknown variable kind {kind!r}; valid: {', '.join(KINDS)}")
    return tuple(n for n, v in VARIABLES.items() if v.kind == kind)


def bounds(name: str, soil) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) physical bounds of ``name`` in every cell, each (n_cells,) float64.

    soil: smda.model.soil.SoilParameters, which gives the bounds named by a soil parameter (and n_cells).
    """
    v = VARIABLES[name]
    return tuple(np.asarray(soil[b], dtype=np.float64) if isinstance(b, str) else np.full(soil.n_cells, float(b))
                 for b in (v.lower, v.upper))
