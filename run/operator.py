"""The observation operator of a run: model equivalents of any source's observations.

1 km brightness temperatures (L-band RTM of :mod:`smda.model.emission`, at each observation's angle and
polarization) or surface soil moisture of every member, averaged over each footprint across ranks in
pixel order (:class:`smda.run.aggregate.PixelAggregator`, bit-identical for any rank count), together
with the footprint means of the screening fields (deep soil temperature and frozen fraction, snow, the
rain of the last 24 h) and the inside fractions. The synthetic source uses the same RTM and aggregation
for its truth, and the MPI contract test the same aggregation.
"""

from __future__ import annotations

import numpy as np

from smda.assimilation.observations.table import ObsTable
from smda.constants import T_FREEZE
from smda.model import emission
from smda.model.state import State
from smda.run.aggregate import PixelAggregator


class ObservationOperator:
    """H of one run: :meth:`tb`, :meth:`aggregator`, :meth:`equivalents`."""

    def __init__(self, exp, nl):
        self.exp, self.obs = exp, nl.observations

    def tb(self, state: State, veg, angles_deg=None):
        """1 km TB (H, V) of every member, K: (n, N) at observations.angle_deg, or (n, N, n_angles) at each
        of ``angles_deg`` (one RTM call for all the angles of an observation set)."""
        exp, o = self.exp, self.obs
        args = (state.sm_surface, state.t_skin, state.t_deep, state.t_skin, veg["vwc"], exp.static["clay"],
                exp.static["sand"], exp.bulk_density)
        kw = dict(dielectric=o.dielectric, teff=o.teff, porosity=exp.soil["wsat"], **exp.tau_omega)
        if angles_deg is None:
            return emission.brightness_temperature(*args, o.angle_deg, **kw)
        return emission.brightness_temperature_multiangle(*args, angles_deg, **kw)

    def aggregator(self, table: ObsTable) -> PixelAggregator:
        """Footprint weights of ``table``'s rows on this rank's cells (Gaussian with the namelist's
        footprint: gauss; otherwise each row's own grid box, or its field of view)."""
        kind = "gauss" if self.obs.footprint == "gauss" else "auto"
        return PixelAggregator(table, self.exp, kind=kind, fov_km=np.where(table.fov_km > 0, table.fov_km, self.obs.fov_km))

    def equivalents(self, run, veg, table: ObsTable, agg: PixelAggregator, rain_24h_mm):
        """Model equivalents HX (n_obs, N) of ``table`` from a model run (TB at each row's angle and
        polarization, or surface SM), the footprint means of the screening fields (n_obs, 4: deep soil
        temperature K, frozen fraction, snow fraction, rain of the last 24 h mm), and the inside fractions."""
        N = run.state.n_members
        if self.obs.kind == "tb":
            angles, which = np.unique(np.round(table.angle_deg, 1), return_inverse=True)
            tbh, tbv = self.tb(run.state, veg, angles)  # (n, N, n_angles)
            # field columns: angle by angle, H then V, members inner; an observation's block is 2 angle + V
            fields = [np.stack([tbh, tbv], axis=1).transpose(0, 3, 1, 2).reshape(tbh.shape[0], -1)]
            col = 2 * which + (table.pol == "V")
        else:
            fields, col = [np.ascontiguousarray(run.state.sm_surface)], np.zeros(len(table), np.int64)
        # frozen soil: the deep (daily-mean) soil temperature below 0 C, not a frosty dawn skin
        fields.append(np.stack([run.state.t_deep.mean(axis=1), (run.state.t_deep < T_FREEZE).mean(axis=1),
                                run.fluxes.snow.mean(axis=1), rain_24h_mm], axis=1))
        mean, inside = agg.mean(np.concatenate(fields, axis=1), self.obs.min_inside_fraction)
        hx = np.take_along_axis(mean, col[:, None] * N + np.arange(N)[None, :], axis=1)
        return hx, mean[:, -4:], inside
