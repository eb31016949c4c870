"""One model integration of a run (the truth of a twin experiment, the open loop, the analysis ensemble).

Each holds its state, its fluxes and the daily sums of the flux outputs, preallocated once; stepping it
calls the land surface model kernel (:func:`smda.model.lsm.step`) and adds the step's ensemble-mean fluxes.
"""

from __future__ import annotations

import numpy as np

from smda.model import lsm
from smda.model.state import State
from smda.model.streams import normal_field

# daily outputs (smda.variables names) as sums of model fluxes (smda.model.lsm.FLUXES)
FLUX_OUT = {"evapotranspiration": ("soil_evaporation", "transpiration", "interception_loss"),
            "runoff": ("surface_runoff",), "drainage": ("drainage",), "latent_heat": ("latent_heat",),
            "sensible_heat": ("sensible_heat",)}


class ModelRun:
    """One integration: ``name``, ``state``, ``fluxes``, ``daily`` (len(FLUX_OUT), n) flux sums of the day.

    ``ensemble`` runs are written as ensemble mean (and spread) ``<var>_<name>_mean``; a single-member
    run (the truth) as ``<var>_<name>``.
    """

    def __init__(self, name: str, exp, n_members: int, *, perturb_init: bool, t_init):
        self.name = name
        self.ensemble = n_members > 1 or perturb_init
        soil, nl = exp.soil, exp.nl
        sm0 = soil["wwilt"] + nl.model.initial_sm_fraction * (soil["wfc"] - soil["wwilt"])
        sm = np.repeat(sm0[:, None], n_members, axis=1)
        if perturb_init:
            sm = sm + nl.model.sm_perturbation_std * normal_field(nl.seed, "init.sm", exp.gidx, n_members, 0)
        self.state = State.initial(exp.n, n_members, soil, sm=sm, t=t_init)
        self.fluxes = lsm.Fluxes(exp.n, n_members)
        self.daily = np.zeros((len(FLUX_OUT), exp.n))
        self._buf = np.zeros(exp.n)

    def output_name(self, var: str) -> str:
        """The output variable of ``var`` for this run (sm_surface_openloop_mean, sm_surface_truth)."""
        return f"{var}_{self.name}" + ("_mean" if self.ensemble else "")

    def step(self, forcing, exp, veg, dt_s):
        lsm.step(self.state, forcing, exp.soil, veg, dt_s, self.fluxes)
        for i, parts in enumerate(FLUX_OUT.values()):
            for p in parts:
                self.daily[i] += np.mean(self.fluxes[p], axis=1, out=self._buf)
