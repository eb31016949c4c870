"""The variable registry serves the model, the forcing, the writer and the docs; the writer refuses unknown names."""

import numpy as np
import pytest

from smda.forcing import units
from smda.model import lsm, soil, state
from smda.model.grid import Domain
from smda.run import output
from smda.run.recorder import Recorder
from smda.run.runs import DAILY_STATE, FLUX_OUT
from smda.variables import VARIABLES, Variable, bounds, names


@pytest.mark.parametrize("kind, members", [
    ("state", state.VARIABLES), ("flux", lsm.FLUXES), ("forcing", lsm.FORCING), ("parameter", soil.PARAMETER_NAMES),
])
def test_every_model_variable_is_registered_with_its_kind(kind, members):
    assert set(members) <= set(names(kind))
    assert all(VARIABLES[n].kind == kind and VARIABLES[n].units for n in members)


def test_forcing_fluxes_are_the_interval_means():
    assert units.FLUXES == ("precip", "sw_down", "lw_down")
    assert units.STATES == ("t_air", "q_air", "p_surf", "wind")
    assert all(VARIABLES[n].interval_mean for n in lsm.FLUXES)


def test_bounds_named_by_a_soil_parameter_are_per_cell():
    p = soil.soil_parameters([0.9, 0.1], [0.05, 0.5])
    lo, hi = bounds("sm_rootzone", p)
    np.testing.assert_array_equal(lo, p.wres)
    np.testing.assert_array_equal(hi, p.wsat)
    lo, hi = bounds("t_skin", p)
    assert lo.shape == (2,) and np.all(lo == 180.0) and np.all(hi == 360.0)
    with pytest.raises(ValueError, match="valid: sm_surface"):
        bounds("soil_moisture", p)
    with pytest.raises(ValueError, match="kind"):
        names("prognostic")
    with pytest.raises(ValueError, match="units"):
        Variable("x", "state", "", "no units")


def test_one_meaning_per_name():
    """Bare-soil evaporation (a model flux) and evapotranspiration (an output) are different variables."""
    assert VARIABLES["evapotranspiration"].standard_name == "water_evapotranspiration_flux"
    assert VARIABLES["soil_evaporation"].standard_name != "water_evapotranspiration_flux"
    assert "evaporation" not in VARIABLES


def test_attributes_of_decorated_names():
    a = output.variable_attrs("sm_surface_analysis_mean")
    assert a == {"units": "m3 m-3", "long_name": "ensemble mean of analysis soil moisture of the 0-5 cm layer",
                 "standard_name": "volume_fraction_of_condensed_water_in_soil"}
    assert "standard_name" not in output.variable_attrs("t_skin_analysis_spread")
    assert output.variable_attrs("evapotranspiration_openloop_mean")["units"] == "kg m-2 s-1"
    assert output.split_name("sm_surface_truth") == ("sm_surface", "truth", "")


def test_writer_refuses_a_variable_without_units(tmp_path):
    dom = Domain(0, 0, 36, 36, np.ones((36, 36), bool))
    rec = Recorder(tmp_path, dom, [np.arange(dom.n_cells)])
    with pytest.raises(ValueError, match="no units"):
        rec.append("x.nc", np.datetime64("2020-01-01"), {"soil_wetness_analysis_mean": np.zeros((36, 36))})
    assert not list(tmp_path.iterdir())


def test_daily_means_are_registered_output_variables():
    """The daily-means file holds the flux outputs and the soil moisture of every run: all documented outputs."""
    assert DAILY_STATE == ("sm_surface", "sm_rootzone")
    for name in (*FLUX_OUT, *DAILY_STATE):
        assert VARIABLES[name].output and (VARIABLES[name].interval_mean or VARIABLES[name].kind == "state"), name
        assert output.variable_attrs(f"{name}_truth")["units"] == VARIABLES[name].units
