"""Registries: unknown names list the valid ones, and the namelist's choices are the registries' names."""

import dataclasses

import pytest

from smda.assimilation.downscaling import METHODS
from smda.assimilation.filters import FILTERS
from smda.assimilation.observations.bias import MATCHERS, PERIODS
from smda.assimilation.observations.readers import READERS
from smda.forcing.readers import PRESETS
from smda.model.dielectric import DIELECTRIC_MODELS
from smda.model.emission import TEFF_MODELS
from smda.registry import Registry, UnknownName
from smda.run import namelist


def test_lookup_membership_and_order():
    reg = Registry("colour", {"red": 1, "green": 2})
    assert reg["green"] == 2 and "red" in reg and "blue" not in reg
    assert list(reg) == ["red", "green"] and reg.names("none") == ("none", "red", "green")
    with pytest.raises(ValueError, match=r"^unknown colour 'blue'; valid: red, green$"):
        reg["blue"]
    with pytest.raises(KeyError):
        reg[["unhashable"]]
    assert issubclass(UnknownName, KeyError) and issubclass(UnknownName, ValueError)


def _choices(section, name):
    return next(f for f in dataclasses.fields(section) if f.name == name).metadata["choices"]


@pytest.mark.parametrize("section,key,registry,extra", [
    (namelist.Assimilation, "filter", FILTERS, ("none",)),
    (namelist.Observations, "source", READERS, ("none", "synthetic")),
    (namelist.Observations, "dielectric", DIELECTRIC_MODELS, ()),
    (namelist.Observations, "teff", TEFF_MODELS, ()),
    (namelist.Observations, "rescaling", MATCHERS, ("none",)),
    (namelist.Observations, "rescaling_window", PERIODS, ()),
    (namelist.Comparison, "methods", METHODS, ()),
    (namelist.Forcing, "preset", PRESETS, ()),
])
def test_namelist_choices_are_the_registries(section, key, registry, extra):
    assert tuple(_choices(section, key)) == registry.names(*extra)


def test_namelist_defaults_are_the_settings_defaults():
    from smda.forcing.perturb import PerturbationSettings
    from smda.run.validate import ValidationSettings

    nl = namelist.Namelist()
    assert nl.forcing.perturbations.length_km == PerturbationSettings().corr_length_km == 55.0  # 0.5 deg
    assert nl.validation.min_samples == ValidationSettings().min_samples
    assert tuple(nl.validation.depth_m) == tuple(ValidationSettings().depth_m)
