"""One model integration of a run (the truth of a twin experiment, the open loop, the analysis ensemble).

Each holds its state, its fluxes and the daily sums of the flux and soil moisture outputs, preallocated once;
stepping it calls the land surface model kernel (:func:`smda.model.lsm.step`) and adds the step's ensemble-mean
fluxes and end-of-step soil moisture.
"""

from __future__ import annotations

import numpy as np

from smda.model import lsm
from smda.model.state import State, V
from smda.model.streams import normal_field

# daily outputs (smda.variables names) as sums of model fluxes (smda.model.lsm.FLUXES)
FLUX_OUT = {"evapotranspiration": ("soil_evaporation", "transpiration", "interception_loss"),
            "runoff": ("surface_runoff",), "drainage": ("drainage",), "latent_heat": ("latent_heat",),
            "sensible_heat": ("sensible_heat",)}
DAILY_STATE = ("sm_surface", "sm_rootzone")  # state variables of the daily means (mean of the end-of-step states)


class ModelRun:
    """One integration: ``name``, ``state``, ``fluxes``, ``daily`` (len(FLUX_OUT) + len(DAILY_STATE), n) sums
    over the day's steps of the ensemble-mean flux outputs and end-of-step states.

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
        self.fluxes = lsm.Fluxes(exp.n, n_members, per_member=False)  # the kernel's ensemble means only
        self.daily = np.zeros((len(FLUX_OUT) + len(DAILY_STATE), exp.n))

    def output_name(self, var: str) -> str:
        """The output variable of ``var`` for this run (sm_surface_openloop_mean, sm_surface_truth)."""
        return f"{var}_{self.name}" + ("_mean" if self.ensemble else "")

    def step(self, forcing, exp, veg, dt_s, perturbation=None):
        """One step with the base forcing (n,) fields and, for an ensemble, the per-member ``perturbation``
        (:class:`smda.model.lsm.Perturbation`)."""
        lsm.step(self.state, forcing, exp.soil, veg, dt_s, self.fluxes, perturbation)
        for i, parts in enumerate(FLUX_OUT.values()):
            for p in parts:
                self.daily[i] += self.fluxes.mean[lsm.F[p]]
        for i, v in enumerate(DAILY_STATE, start=len(FLUX_OUT)):
            self.daily[i] += self.fluxes.state_mean[V[v]]
