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
    """H of one run for every source of the namelist: :meth:`tb`, :meth:`aggregator`, :meth:`equivalents`."""

    def __init__(self, exp, nl):
        self.exp, self.obs = exp, nl.observations[0]  # the RTM settings (the same for every source)

    def tb(self, state: State, veg, angles_deg=None, angle_deg=None, rows=slice(None)):
        """1 km TB (H, V) of every member of the cells ``rows``, K: (n, N) at ``angle_deg`` (default the first
        source's angle_deg), or (n, N, n_angles) at each of ``angles_deg`` (one RTM call for all the angles of an
        observation set)."""
        exp, o = self.exp, self.obs
        args = (state.sm_surface[rows], state.t_skin[rows], state.t_deep[rows], state.t_skin[rows], veg["vwc"][rows],
                exp.static["clay"][rows], exp.static["sand"][rows], exp.bulk_density[rows])
        kw = dict(dielectric=o.dielectric, teff=o.teff, porosity=exp.soil["wsat"][rows],
                  **{k: v[rows] for k, v in exp.tau_omega.items()})
        if angles_deg is None:
            return emission.brightness_temperature(*args, o.angle_deg if angle_deg is None else angle_deg, **kw)
        return emission.brightness_temperature_multiangle(*args, angles_deg, **kw)

    def aggregator(self, table: ObsTable) -> PixelAggregator:
        """Footprint weights of ``table``'s rows on this rank's cells: each row's own grid box (M01: its cell) or,
        for "gauss" rows, its Gaussian field of view (``fov_km``; the sources set both)."""
        return PixelAggregator(table, self.exp, kind="auto", fov_km=table.fov_km)

    def equivalents(self, run, veg, table: ObsTable, agg: PixelAggregator, rain_24h_mm, inside_threshold, tb_out=False):
        """Model equivalents HX (n_obs, N) of ``table`` from a model run (TB at each TB row's angle and
        polarization, surface SM for SM rows), the footprint means of the screening fields (n_obs, 4: deep soil
        temperature K, frozen fraction, snow fraction, rain of the last 24 h mm), the inside fractions, and with
        ``tb_out`` the ensemble mean and spread ((n,), (n,)) of the 1 km TB H and of V at the output angle (the
        first source's angle_deg) from the same RTM call (else None): one RTM evaluation per model state and
        cycle, and no 1 km TB kept beyond it.
        ``inside_threshold`` (scalar or (n_obs,), > 0): HX is NaN where less of the footprint is on model cells.

        The footprint field (TB of every member, surface SM, screening fields) is evaluated and summed a block of
        whole pixels at a time (:meth:`PixelAggregator.block_sums`): its memory is that of one block, not of the
        rank's cells x members, and its values and sums are those of the whole field."""
        st = run.state
        n, N = st.sm_surface.shape
        thr = np.broadcast_to(np.asarray(inside_threshold, float), (len(table),))
        rain = np.broadcast_to(np.asarray(rain_24h_mm, float), (n,))
        is_tb = table.kind == "tb"
        angles, which = np.unique(np.round(table.angle_deg[is_tb], 1), return_inverse=True)
        n_ang = angles.size  # observed angles; the output angle is appended if it is not one of them
        out_at = np.flatnonzero(angles == self.obs.angle_deg)
        if tb_out and out_at.size == 0:
            angles, out_at = np.append(angles, self.obs.angle_deg), [n_ang]
        # field columns: angle by angle, H then V, members inner (an observation's block is 2 angle + V), then
        # surface SM if any row observes it, then the screening fields
        n_sm = int(not is_tb.all())
        k = (2 * n_ang + n_sm) * N + 4
        tb = tuple((np.empty(n), np.empty(n)) for _ in range(2)) if tb_out else None  # (mean, spread) of H, V

        def rows(a, b):
            field = np.empty((b - a, k))
            if angles.size:
                tbh, tbv = self.tb(st, veg, angles, rows=slice(a, b))  # (b - a, N, n_angles)
                for i in range(n_ang):
                    field[:, 2 * i * N:(2 * i + 1) * N] = tbh[:, :, i]
                    field[:, (2 * i + 1) * N:(2 * i + 2) * N] = tbv[:, :, i]
                if tb_out:
                    for (mean, spread), t in zip(tb, (tbh, tbv), strict=True):
                        mean[a:b], spread[a:b] = _mean_spread(np.ascontiguousarray(t[:, :, out_at[0]]))
            if n_sm:
                field[:, 2 * n_ang * N:(2 * n_ang + 1) * N] = st.sm_surface[a:b]
            # frozen soil: the deep (daily-mean) soil temperature below 0 C, not a frosty dawn skin
            field[:, -4] = st.t_deep[a:b].mean(axis=1)
            field[:, -3] = (st.t_deep[a:b] < T_FREEZE).mean(axis=1)
            field[:, -2] = run.fluxes.snow[a:b].mean(axis=1)
            field[:, -1] = rain[a:b]
            return field

        mean, inside = agg.block_mean(rows, k, float(thr.min()) if thr.size else 1.0)
        col = np.zeros(len(table), np.int64)
        col[is_tb] = 2 * which.ravel() + (table.pol[is_tb] == "V")
        col[~is_tb] = 2 * n_ang
        hx = np.take_along_axis(mean, col[:, None] * N + np.arange(N)[None, :], axis=1)
        hx[inside < thr] = np.nan
        return hx, mean[:, -4:], inside, tb


def _mean_spread(a):
    """Ensemble mean and spread (standard deviation, N - 1) of (n, N) over the members."""
    return a.mean(axis=1), a.std(axis=1, ddof=1)
