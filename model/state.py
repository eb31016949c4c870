"""Prognostic state of the land surface model, shared with the filter.

Layout
------
All prognostic variables live in ONE float64 block ``data`` of shape (n_cells, n_vars, n_members),
C-contiguous, in the order of ``VARIABLES`` (units, long names and bounds in ``smda.variables``)::

    sm_surface    m3 m-3   volumetric water content of the 0-d1 (0-5 cm) surface layer (ISBA wg)
    sm_rootzone   m3 m-3   mean volumetric water content of the 0-d2 (0-1 m) column (ISBA w2)
    t_skin        K        surface (skin) temperature, the model's LST (ISBA Ts)
    t_deep        K        deep soil temperature, daily mean (ISBA T2)
    swe           kg m-2   snow water equivalent
    canopy_water  kg m-2   water intercepted on the canopy (ISBA Wr)

Why this layout: the filter needs a (n_cells, n_vars, n_members) array (members inner, as the LETKF
analyses one cell's small ensemble matrix at a time); with this block ``data[:, i:j, :]`` is that
array for any contiguous range of variables as a zero-copy VIEW, so the analysis writes straight
into the model state. The kernel loops over cells outside and members inside, so one cell's whole
state (n_vars x n_members values) is contiguous in memory. The price: a single variable,
``state.sm_surface``, is a strided (n_cells, n_members) view (strides n_vars*n_members*8 and 8 bytes),
not C-contiguous; use ``np.ascontiguousarray`` where a contiguous copy is needed. For a
non-contiguous choice of variables use ``gather`` / ``scatter`` (copy-in / copy-out).

ISBA's w2 is the mean water content of the whole 0-d2 column, INCLUDING the surface layer; wg is a
surface value inside it (Noilhan & Planton 1989). The water stored per cell and member is therefore::

    W = rho_w d2 w2 + swe + canopy_water        (kg m-2)

(``water_storage``), and the model's water budget is closed on W.
"""

import numpy as np

from smda.constants import RHO_WATER
from smda.model.soil import SoilParameters
from smda.variables import bounds

VARIABLES = ("sm_surface", "sm_rootzone", "t_skin", "t_deep", "swe", "canopy_water")
V = {name: i for i, name in enumerate(VARIABLES)}


def _field(value, shape, name):
    """Broadcast a scalar, (n_cells,) or (n_cells, n_members) value to ``shape``."""
    a = np.asarray(value, dtype=np.float64)
    if a.ndim == 1 and a.shape[0] == shape[0]:
        a = a[:, None]
    try:
        return np.broadcast_to(a, shape)
    except ValueError:
        raise ValueError(f"initial {name!r} of shape {a.shape} does not broadcast to {shape}") from None


class State:
    """Ensemble of land surface states.

    Parameters
    ----------
    data : ndarray, shape (n_cells, n_vars, n_members), float64, C-contiguous
        Taken without copying.
    """

    def __init__(self, data):
        if not isinstance(data, np.ndarray) or data.dtype != np.float64 or data.ndim != 3 \
                or data.shape[1] != len(VARIABLES) or not data.flags.c_contiguous:
            raise ValueError(f"state data must be a C-contiguous float64 array (n_cells, {len(VARIABLES)}, "
                             f"n_members), got {getattr(data, 'shape', None)} {getattr(data, 'dtype', None)}")
        self.data = data

    # ---------------------------------------------------------------- construction
    @classmethod
    def initial(cls, n_cells, n_members, params, sm=0.25, t=288.0, swe=0.0, canopy_water=0.0,
                sm_surface=None, t_deep=None):
        """Uniform initial state.

        Parameters
        ----------
        n_cells, n_members : int
        params : SoilParameters with n_cells cells
        sm : float or array broadcastable to (n_cells, n_members)
            Volumetric soil moisture (m3 m-3) of both layers; clipped to [wres, wsat] per cell.
        t : float or array
            Skin and deep soil temperature (K).
        swe, canopy_water : float or array (kg m-2)
        sm_surface, t_deep : optional separate values for the surface layer and the deep temperature.
        """
        if not isinstance(params, SoilParameters):
            raise ValueError("params must be a smda.model.soil.SoilParameters (from soil_parameters)")
        if int(n_cells) != params.n_cells:
            raise ValueError(f"n_cells={n_cells} but params has {params.n_cells} cells")
        if int(n_members) < 1:
            raise ValueError(f"n_members must be >= 1, got {n_members}")
        st = cls(np.empty((int(n_cells), len(VARIABLES), int(n_members))))
        shape = (int(n_cells), int(n_members))
        st.sm_rootzone[...] = _field(sm, shape, "sm")
        st.sm_surface[...] = _field(sm if sm_surface is None else sm_surface, shape, "sm_surface")
        st.t_skin[...] = _field(t, shape, "t")
        st.t_deep[...] = _field(t if t_deep is None else t_deep, shape, "t_deep")
        st.swe[...] = _field(swe, shape, "swe")
        st.canopy_water[...] = _field(canopy_water, shape, "canopy_water")
        if not np.all(np.isfinite(st.data)):
            raise ValueError("initial state has non-finite values")
        if np.any(st.swe < 0) or np.any(st.canopy_water < 0):
            raise ValueError("initial swe and canopy_water must be >= 0")
        st.clip_to_bounds(params)
        return st

    @property
    def n_cells(self):
        return self.data.shape[0]

    @property
    def n_members(self):
        return self.data.shape[2]

    def __getattr__(self, name):
        if name in V:
            return self.data[:, V[name], :]
        raise AttributeError(name)

    def __getitem__(self, name):
        if name not in V:
            raise KeyError(f"unknown state variable {name!r}; valid: {', '.join(VARIABLES)}")
        return self.data[:, V[name], :]

    def copy(self):
        return State(self.data.copy())

    # ---------------------------------------------------------------- filter interface
    def filter_view(self, names):
        """(n_cells, k, n_members) VIEW of variables ``names`` (must be consecutive in ``VARIABLES``)."""
        idx = self._indices(names)
        if list(idx) != list(range(idx[0], idx[0] + len(idx))):
            raise ValueError(f"variables {list(names)} are not consecutive in {VARIABLES}; use gather/scatter")
        return self.data[:, idx[0]:idx[0] + len(idx), :]

    def gather(self, names, out=None):
        """Copy of variables ``names`` as (n_cells, k, n_members) (into ``out`` if given)."""
        idx = self._indices(names)
        if out is None:
            out = np.empty((self.n_cells, len(idx), self.n_members))
        for k, i in enumerate(idx):
            out[:, k, :] = self.data[:, i, :]
        return out

    def scatter(self, names, values):
        """Write (n_cells, k, n_members) ``values`` back into variables ``names``."""
        idx = self._indices(names)
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (self.n_cells, len(idx), self.n_members):
            raise ValueError(f"values must have shape {(self.n_cells, len(idx), self.n_members)}, "
                             f"got {values.shape}")
        for k, i in enumerate(idx):
            self.data[:, i, :] = values[:, k, :]

    def _indices(self, names):
        if isinstance(names, str):
            names = [names]
        bad = [n for n in names if n not in V]
        if bad or not names:
            raise ValueError(f"unknown state variable(s) {bad}; valid: {', '.join(VARIABLES)}")
        return [V[n] for n in names]

    def clip_to_bounds(self, params, names=VARIABLES):
        """Clip variables to their physical bounds (``smda.variables``) in place (e.g. after an analysis).

        Note: clipping changes the water storage; the caller accounts for analysis increments.
        """
        for name in names:
            lo, hi = bounds(name, params)
            v = self[name]
            np.clip(v, lo[:, None], hi[:, None], out=v)

    # ---------------------------------------------------------------- restart
    def to_dict(self):
        """Copies of every variable as (n_cells, n_members) arrays, plus units."""
        return {name: np.ascontiguousarray(self[name]) for name in VARIABLES}

    @classmethod
    def from_dict(cls, d):
        """Inverse of ``to_dict``; every variable of ``VARIABLES`` must be present with one shape."""
        missing = [n for n in VARIABLES if n not in d]
        if missing:
            raise ValueError(f"state dict misses variable(s) {missing}")
        shape = np.shape(d[VARIABLES[0]])
        if len(shape) != 2:
            raise ValueError(f"state variables must be (n_cells, n_members), got {shape} for {VARIABLES[0]}")
        st = cls(np.empty((shape[0], len(VARIABLES), shape[1])))
        for name in VARIABLES:
            a = np.asarray(d[name], dtype=np.float64)
            if a.shape != shape:
                raise ValueError(f"state variable {name!r} has shape {a.shape}, expected {shape}")
            st[name][...] = a
        return st


def water_storage(state, params):
    """Water stored per cell and member, W = rho_w d2 w2 + swe + canopy_water (kg m-2), (n_cells, n_members)."""
    return RHO_WATER * params.d2_m[:, None] * state.sm_rootzone + state.swe + state.canopy_water
