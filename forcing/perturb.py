"""Ensemble forcing perturbations in the SMAP Level-4 / GEOS-LDAS manner.

Reichle et al. (2007, doi:10.1029/2006JD008033) and Reichle et al. (2017, doi:10.1175/JHM-D-17-0063.1):
each perturbed variable k has a standard-normal field z_k(x, t) that is

* AR(1) in time: ``z_t = phi z_(t-1) + sqrt(1 - phi^2) eps_t`` with ``phi = exp(-dt/tau)``;
* spatially correlated with a Gaussian correlation ``rho(d) = exp(-d^2 / (2 L^2))``;
* cross-correlated between variables: the innovations at one lattice point are ``C^(1/2) w``
  (Cholesky factor of the requested correlation matrix C, w independent normals).

Perturbations:

* precipitation and shortwave, multiplicative lognormal with mean 1 and std s:
  ``f = exp(mu_ln + sigma_ln z)``, ``sigma_ln^2 = ln(1 + s^2)``, ``mu_ln = -sigma_ln^2/2``;
  z is truncated (clipped) at ``truncate_sigma`` and ``mu_ln`` is shifted so that the mean stays
  exactly 1 under the truncation;
* longwave (and optionally air temperature), additive normal ``std * z``.

Construction of z (domain-split invariant and restartable): white normals w are drawn on a
coarse lattice anchored to the EASE-Grid 2.0 global origin (spacing ``lattice_cells`` 1 km cells, or
a quarter of L when that is finer, so that storm-scale lengths of 5-20 km are resolved and not smoothed
by the interpolation), keyed by (seed, "forcing.perturb", global lattice index, member, step, variable) through
:mod:`smda.model.streams`. The correlated lattice field is the normalised discrete convolution of w
with a Gaussian kernel of width ``L / sqrt(2)`` (the convolution of two such kernels is the
Gaussian correlation of length L). Every rank computes the lattice points around its own cells
in exactly the same way. Cell values are the bilinear interpolation of the lattice AR(1) state,
divided by the exact standard deviation of that interpolant (known from the lattice
correlation), so every cell has unit variance.

Multi-scale fields (``scales_km`` with ``scale_fractions`` f_i): z is the sum of independent fields of each
length, ``z = sqrt(f_0) z(L_0) + sum_i sqrt(f_i) z(L_i)`` with ``L_0 = corr_length_km`` and ``f_0 = 1 - sum f_i``,
each built as above on its own lattice (streams keyed by variable + 4 i), so the correlation is the sum of Gaussians
``rho(d) = sum_i f_i exp(-d^2 / (2 L_i^2))`` and each cell keeps unit variance. A forcing whose error has two
scales (a reanalysis' synoptic error and the storms below its grid, e.g. 55 and 9 km) gets both, in the manner of
the multi-scale random patterns of ECMWF's SPPT (Leutbecher et al. 2017, doi:10.1002/qj.3094); every variable
and scale has the same cross-correlations, so they stay exact.

The AR(1) states live on the lattices and are exported by :meth:`ForcingPerturbations.get_state`.
With equal ``tau`` for all variables the cross-correlations are exact;
with unequal ``tau`` the stationary cross-correlation is ``c sqrt((1-phi_i^2)(1-phi_j^2)) / (1-phi_i phi_j)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from smda.jit import inline, kernel
from smda.model.grid import M01
from smda.model.lsm import MULTIPLIED, PERTURBABLE, Perturbation
from smda.model.streams import normal, purpose_id

VARIABLES = PERTURBABLE  # precip, sw_down, lw_down, t_air
_MULTIPLICATIVE = tuple(k in MULTIPLIED for k in VARIABLES)
_LATTICE_NCOLS = 1 << 24  # global lattice index = row * 2**24 + col (offset to keep indices >= 0)
_LATTICE_OFFSET = 1 << 22
_SCALE_SHIFT = 48  # lattice indices of scale s start at s * 2**48


def ar1_coefficients(dt_s: float, tau_s: float):
    """AR(1) coefficient ``phi = exp(-dt/tau)`` and innovation scale ``sqrt(1 - phi^2)``."""
    if dt_s <= 0 or tau_s <= 0:
        raise ValueError(f"dt_s ({dt_s}) and tau_s ({tau_s}) must be positive")
    phi = math.exp(-dt_s / tau_s)
    return phi, math.sqrt(1.0 - phi * phi)


def lognormal_parameters(std: float):
    """(sigma_ln, mu_ln) of a lognormal with mean 1 and standard deviation ``std``."""
    if std < 0:
        raise ValueError(f"std must be >= 0, got {std}")
    s2 = math.log1p(std * std)
    return math.sqrt(s2), -0.5 * s2


def _phi(x):
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def truncated_lognormal_mu(sigma_ln: float, c: float) -> float:
    """mu_ln such that E[exp(mu + sigma clip(z, -c, c))] = 1 for z ~ N(0, 1)."""
    if sigma_ln == 0.0:
        return 0.0
    s = sigma_ln
    m = (math.exp(0.5 * s * s) * (_phi(c - s) - _phi(-c - s))
         + math.exp(s * c) * (1.0 - _phi(c)) + math.exp(-s * c) * _phi(-c))
    return -math.log(m)


@dataclass(frozen=True, kw_only=True)
class PerturbationSettings:
    """Forcing perturbation settings (defaults: SCIENCE.md section 4, SMAP L4).

    Std of the multiplicative factors is dimensionless; ``lw_std_wm2`` in W m-2, ``t_air_std_k``
    in K (0 disables a variable). Correlation length ``corr_length_km`` L of rho = exp(-d^2/2L^2)
    (0.5 deg ~ 55 km). ``lattice_cells`` is the lattice spacing in 1 km EASE-Grid cells (at most L / 4).
    """

    precip_std: float = 0.5
    sw_std: float = 0.3
    lw_std_wm2: float = 20.0
    t_air_std_k: float = 0.0
    precip_tau_h: float = 24.0
    sw_tau_h: float = 24.0
    lw_tau_h: float = 24.0
    t_air_tau_h: float = 24.0
    corr_length_km: float = 55.0  # 0.5 deg of latitude (SCIENCE.md section 4)
    corr_precip_sw: float = -0.8
    corr_precip_lw: float = 0.5
    corr_sw_lw: float = -0.5
    corr_precip_t: float = 0.0
    corr_sw_t: float = 0.0
    corr_lw_t: float = 0.0
    truncate_sigma: float = 3.0
    lattice_cells: int = 12
    kernel_radius: float = 3.0  # kernel truncation in kernel standard deviations
    scales_km: tuple[float, ...] = ()  # further correlation lengths (multi-scale fields)
    scale_fractions: tuple[float, ...] = ()  # their shares of each field's variance

    def __post_init__(self):
        for name in ("precip_std", "sw_std", "lw_std_wm2", "t_air_std_k"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v >= 0):
                raise ValueError(f"perturbation setting {name} must be finite and >= 0, got {v}")
        for name in ("precip_tau_h", "sw_tau_h", "lw_tau_h", "t_air_tau_h", "corr_length_km",
                     "truncate_sigma", "kernel_radius"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v > 0):
                raise ValueError(f"perturbation setting {name} must be finite and > 0, got {v}")
        if not (isinstance(self.lattice_cells, int | np.integer) and self.lattice_cells >= 1):
            raise ValueError(f"perturbation setting lattice_cells must be an integer >= 1, got {self.lattice_cells}")
        if len(self.scales_km) != len(self.scale_fractions):
            raise ValueError(f"perturbation scales_km {self.scales_km} and scale_fractions {self.scale_fractions} "
                             "must have the same length")
        if not all(np.isfinite(v) and v > 0 for v in self.scales_km):
            raise ValueError(f"perturbation scales_km must be > 0, got {self.scales_km}")
        if not (all(np.isfinite(f) and f > 0 for f in self.scale_fractions) and sum(self.scale_fractions) < 1):
            raise ValueError(f"perturbation scale_fractions must be > 0 with a sum < 1 (the rest is corr_length_km's), "
                             f"got {self.scale_fractions}")
        c = self.correlation_matrix()
        if np.any(np.abs(c) > 1) or np.linalg.eigvalsh(c).min() <= 1e-10:
            raise ValueError("perturbation cross-correlations (corr_*) do not form a positive-definite matrix")

    @property
    def stds(self):
        return (self.precip_std, self.sw_std, self.lw_std_wm2, self.t_air_std_k)

    @property
    def taus_h(self):
        return (self.precip_tau_h, self.sw_tau_h, self.lw_tau_h, self.t_air_tau_h)

    @property
    def scales(self):
        """(lengths in km, variance fractions) of every scale, ``corr_length_km`` first with the rest of the variance."""
        return ((self.corr_length_km, *self.scales_km),
                (1.0 - math.fsum(self.scale_fractions), *self.scale_fractions))

    def correlation_matrix(self) -> np.ndarray:
        """4 x 4 correlation matrix in the order precip, sw_down, lw_down, t_air."""
        c = np.eye(4)
        for (i, j), v in {(0, 1): self.corr_precip_sw, (0, 2): self.corr_precip_lw, (1, 2): self.corr_sw_lw,
                          (0, 3): self.corr_precip_t, (1, 3): self.corr_sw_t, (2, 3): self.corr_lw_t}.items():
            c[i, j] = c[j, i] = v
        return c


# ----------------------------------------------------------------------------------------------
# kernels


@kernel
def _white_and_mix(seed, pid, row0, col0, step, var_draw, chol, out):
    """Independent normals keyed by lattice point, mixed by the Cholesky factor ``chol`` (nv, nv)."""
    nr, nc, nm, nv = out.shape
    w = np.empty(nv)
    for r in range(nr):
        for c in range(nc):
            cell = (row0 + r + _LATTICE_OFFSET) * _LATTICE_NCOLS + (col0 + c + _LATTICE_OFFSET)
            for m in range(nm):
                for k in range(nv):
                    w[k] = normal(seed, pid, cell, m, step, var_draw[k])
                for k in range(nv):
                    s = 0.0
                    for j in range(k + 1):
                        s += chol[k, j] * w[j]
                    out[r, c, m, k] = s


@kernel
def _convolve(white, kern, tmp, out):
    """Separable convolution: white (nr+2K, nc+2K, nm, nv) -> out (nr, nc, nm, nv); kern (2K+1,). The taps are
    summed in order j = 0..2K for every point, over the contiguous (member, variable) values."""
    nrh, nch, nm, nv = white.shape
    nr, nc = out.shape[0], out.shape[1]
    q = nm * nv
    w, t, o = white.reshape(nrh, nch, q), tmp.reshape(nrh, nc, q), out.reshape(nr, nc, q)
    s = np.empty(q)
    for r in range(nrh):  # along columns
        for c in range(nc):
            s[:] = 0.0
            for j in range(kern.shape[0]):
                kj = kern[j]
                for i in range(q):
                    s[i] += kj * w[r, c + j, i]
            t[r, c, :] = s
    for r in range(nr):  # then along rows
        for c in range(nc):
            s[:] = 0.0
            for j in range(kern.shape[0]):
                kj = kern[j]
                for i in range(q):
                    s[i] += kj * t[r + j, c, i]
            o[r, c, :] = s


@kernel
def _ar1(state, innov, phi, scale):
    nr, nc, nm, nv = state.shape
    for r in range(nr):
        for c in range(nc):
            for m in range(nm):
                for k in range(nv):
                    state[r, c, m, k] = phi[k] * state[r, c, m, k] + scale[k] * innov[r, c, m, k]


@inline
def _bilinear(state, r, c, fr, fc, m, k):
    """Lattice variable k of member m, bilinear between lattice nodes (r, c) and (r + 1, c + 1) at fractions fr, fc."""
    return ((1.0 - fr) * (1.0 - fc) * state[r, c, m, k] + (1.0 - fr) * fc * state[r, c + 1, m, k]
            + fr * (1.0 - fc) * state[r + 1, c, m, k] + fr * fc * state[r + 1, c + 1, m, k])


@kernel
def _add_cell_values(state, ir, ic, wr, wc, norm, weight, z):
    """Add ``weight`` times the unit-variance cell values interpolated from one lattice's state to z (n, nv, nm)."""
    n = ir.shape[0]
    nm, nv = state.shape[2], state.shape[3]
    for i in range(n):
        r, c, fr, fc = ir[i], ic[i], wr[i], wc[i]
        for k in range(nv):
            for m in range(nm):
                z[i, k, m] += weight * (_bilinear(state, r, c, fr, fc, m, k) * norm[i])


@kernel
def _transform(z, kind, a, b, lo, hi):
    """In place, standard values z (n, nv, nm) -> forcing factors ``exp(a + b z)`` (kind 1) or offsets ``b z``, z clipped
    to [lo, hi]."""
    n, nv, nm = z.shape
    for i in range(n):
        for k in range(nv):
            for m in range(nm):
                v = min(max(z[i, k, m], lo), hi)
                z[i, k, m] = math.exp(a[k] + b[k] * v) if kind[k] == 1 else b[k] * v


# ----------------------------------------------------------------------------------------------


def lattice_spacing_m(lattice_cells: int, corr_length_km: float) -> float:
    """Spacing (m) of the perturbation lattice: ``lattice_cells`` 1 km cells, or a quarter of the correlation
    length when that is finer (storm-scale lengths are resolved, not smoothed)."""
    quarter = max(1, round(corr_length_km * 1000.0 / (4.0 * M01.cell_m)))
    return min(lattice_cells, quarter) * M01.cell_m


class _Lattice:
    """One scale of the perturbation fields: the AR(1) state of ``nv`` unit-variance fields with correlation length
    ``length_km`` on a lattice anchored to the EASE-Grid 2.0 origin, covering the cells at ``x_m``, ``y_m``.
    ``draw`` keys each variable's random stream (distinct per variable and scale)."""

    def __init__(self, settings: PerturbationSettings, length_km: float, draw, x_m, y_m, n_members: int):
        nv = draw.size
        self.draw = draw
        h = self.spacing_m = lattice_spacing_m(settings.lattice_cells, length_km)
        sig_k = length_km * 1000.0 / math.sqrt(2.0)
        nk = self.nk = max(1, int(math.ceil(settings.kernel_radius * sig_k / h)))
        kern = np.exp(-0.5 * (np.arange(-nk, nk + 1) * h / sig_k) ** 2)
        self.kern = kern / math.sqrt(np.sum(kern**2))  # 1-D; 2-D = outer product, unit variance
        fr = (M01.y0 - y_m) / h  # fractional lattice row (rows count south)
        fc = (x_m - M01.x0) / h
        r_abs = np.floor(fr).astype(np.int64)
        c_abs = np.floor(fc).astype(np.int64)
        self.row0, self.col0 = int(r_abs.min()), int(c_abs.min())
        nr, nc = int(r_abs.max()) - self.row0 + 2, int(c_abs.max()) - self.col0 + 2
        self.ir = (r_abs - self.row0).astype(np.int64)
        self.ic = (c_abs - self.col0).astype(np.int64)
        self.wr = fr - r_abs
        self.wc = fc - c_abs
        # exact variance of the bilinear interpolant, separable: v = vx * vy
        r1 = float(np.sum(self.kern[:-1] * self.kern[1:]))  # lattice correlation at lag 1 (1-D)
        vx = (1 - self.wc) ** 2 + self.wc**2 + 2 * r1 * self.wc * (1 - self.wc)
        vy = (1 - self.wr) ** 2 + self.wr**2 + 2 * r1 * self.wr * (1 - self.wr)
        self.norm = 1.0 / np.sqrt(vx * vy)
        # buffers (allocated once)
        self.white = np.empty((nr + 2 * nk, nc + 2 * nk, n_members, nv))
        self.tmp = np.empty((nr + 2 * nk, nc, n_members, nv))
        self.innov = np.empty((nr, nc, n_members, nv))
        self.state = np.zeros((nr, nc, n_members, nv))

    def index(self) -> np.ndarray:
        """Global lattice index of every lattice point of the state, row-major."""
        nr, nc = self.state.shape[:2]
        rows = np.arange(self.row0, self.row0 + nr, dtype=np.int64) + _LATTICE_OFFSET
        cols = np.arange(self.col0, self.col0 + nc, dtype=np.int64) + _LATTICE_OFFSET
        return (rows[:, None] * _LATTICE_NCOLS + cols[None, :]).ravel()

    def innovation(self, seed: int, pid: int, step: int, chol):
        _white_and_mix(seed, pid, self.row0 - self.nk, self.col0 - self.nk, step, self.draw, chol, self.white)
        _convolve(self.white, self.kern, self.tmp, self.innov)
        return self.innov

    def add_to(self, weight: float, z):
        _add_cell_values(self.state, self.ir, self.ic, self.wr, self.wc, self.norm, weight, z)


class ForcingPerturbations:
    """AR(1), spatially and cross-correlated forcing perturbations for an ensemble.

    Parameters
    ----------
    settings : PerturbationSettings
    seed : int
        Experiment seed (keys the random streams together with lattice point, member and step).
    dt_s : float
        Forcing time step (s); ``perturbation`` must be called with consecutive steps.
    x_m, y_m : (n,) float
        EASE-Grid 2.0 projected coordinates (m) of this rank's cells.
    n_members : int
    """

    def __init__(self, settings: PerturbationSettings, *, seed: int, dt_s: float, x_m, y_m, n_members: int):
        if not isinstance(settings, PerturbationSettings):
            raise ValueError("settings must be a smda.forcing.perturb.PerturbationSettings")
        x_m = np.asarray(x_m, dtype=np.float64).ravel()
        y_m = np.asarray(y_m, dtype=np.float64).ravel()
        if x_m.shape != y_m.shape or x_m.size == 0:
            raise ValueError(f"x_m and y_m must be non-empty and of equal length, got {x_m.shape}, {y_m.shape}")
        if not (np.all(np.isfinite(x_m)) and np.all(np.isfinite(y_m))):
            raise ValueError("x_m and y_m must be finite")
        if int(n_members) < 1:
            raise ValueError(f"n_members must be >= 1, got {n_members}")
        if not dt_s > 0:
            raise ValueError(f"dt_s must be positive, got {dt_s}")
        self.settings = settings
        self.seed = int(seed)
        self.dt_s = float(dt_s)
        self.n_members = int(n_members)
        self.n_cells = x_m.size
        self._pid = purpose_id("forcing.perturb")
        active = [k for k, s in enumerate(settings.stds) if s > 0]
        self.active = tuple(VARIABLES[k] for k in active)
        nv = len(active)
        self._nv = nv
        corr = settings.correlation_matrix()[np.ix_(active, active)]
        self._chol = np.ascontiguousarray(np.linalg.cholesky(corr)) if nv else np.zeros((0, 0))
        phis, scales = zip(*(ar1_coefficients(self.dt_s, settings.taus_h[k] * 3600.0) for k in active),
                           strict=True) if nv else ((), ())
        self._phi = np.array(phis, float)
        self._scale = np.array(scales, float)
        c = settings.truncate_sigma
        self._lo, self._hi = -c, c
        kind, a, b = [], [], []
        for k in active:
            if _MULTIPLICATIVE[k]:
                sig, _ = lognormal_parameters(settings.stds[k])
                kind.append(1)
                a.append(truncated_lognormal_mu(sig, c))
                b.append(sig)
            else:
                kind.append(0)
                a.append(0.0)
                b.append(settings.stds[k])
        self._kind = np.array(kind, np.int64)
        self._a = np.array(a, float)
        self._b = np.array(b, float)
        # one lattice per scale; scale s draws its variables' streams as variable + 4 s
        lengths, fractions = settings.scales
        self._lattices = [_Lattice(settings, length, np.array(active, np.int64) + len(VARIABLES) * s, x_m, y_m,
                                   self.n_members) for s, length in enumerate(lengths)]
        self._weights = tuple(math.sqrt(f) for f in fractions)
        self.lattice_m = self._lattices[0].spacing_m
        self._values = Perturbation(self.active, np.empty((self.n_cells, nv, self.n_members)))
        self._step = None

    # --- state ---------------------------------------------------------------------------
    def lattice_index(self) -> np.ndarray:
        """Global index of every lattice point of the state, scale s at s * 2**48 + row * 2**24 + col, (p,)."""
        return np.concatenate([lat.index() + (s << _SCALE_SHIFT) for s, lat in enumerate(self._lattices)])

    def get_state(self) -> dict:
        """Restart state: {"step", "variables", "lattice_index" (p,), "values" (p, n_members, n_vars)}."""
        return {
            "step": -1 if self._step is None else int(self._step),
            "variables": self.active,
            "lattice_index": self.lattice_index(),
            "values": np.concatenate([lat.state.reshape(-1, self.n_members, self._nv) for lat in self._lattices]),
        }

    def set_state(self, state: dict) -> None:
        """Restore a state from :meth:`get_state` (possibly of another domain split that covers ours)."""
        try:
            step, variables, idx, values = (state["step"], tuple(state["variables"]), np.asarray(state["lattice_index"]),
                                            np.asarray(state["values"], float))
        except KeyError as err:
            raise ValueError(f"perturbation state lacks key {err}") from None
        if variables != self.active:
            raise ValueError(f"perturbation state has variables {variables}, expected {self.active}")
        if values.ndim != 3 or values.shape[1:] != (self.n_members, self._nv) or values.shape[0] != idx.size:
            raise ValueError(f"perturbation state values have shape {values.shape}, expected "
                             f"({idx.size}, {self.n_members}, {self._nv})")
        if int(step) < 0:
            self._step = None
            for lat in self._lattices:
                lat.state[...] = 0.0
            return
        mine = self.lattice_index()
        order = np.argsort(idx)
        pos = np.clip(np.searchsorted(idx[order], mine), 0, idx.size - 1)
        found = idx[order][pos] == mine
        if not np.all(found):
            raise ValueError(f"perturbation state lacks {int((~found).sum())} of this domain's lattice points "
                             "(a state of other perturbation scales?)")
        got = values[order][pos]
        a = 0
        for lat in self._lattices:
            lat.state[...] = got[a:a + lat.state[..., 0, 0].size].reshape(lat.state.shape)
            a += lat.state[..., 0, 0].size
        self._step = int(step)

    # --- stepping --------------------------------------------------------------------------
    def advance(self, step: int) -> None:
        """Advance the AR(1) lattice states to ``step`` (the first call initialises them stationary)."""
        step = int(step)
        if self._nv == 0:
            self._step = step
            return
        if self._step is not None and step != self._step + 1:
            if step == self._step:
                return
            raise ValueError(f"perturbation steps must be consecutive: at step {self._step}, asked for {step}")
        for lat in self._lattices:
            innov = lat.innovation(self.seed, self._pid, step, self._chol)
            if self._step is None:
                lat.state[...] = innov
            else:
                _ar1(lat.state, innov, self._phi, self._scale)
        self._step = step

    def _standard(self, step: int, z) -> None:
        """z (n_cells, n_active, n_members) <- the unit-variance fields at ``step``: the weighted sum over scales."""
        self.advance(step)
        z[...] = 0.0
        for w, lat in zip(self._weights, self._lattices, strict=True):
            lat.add_to(w, z)

    def standard_fields(self, step: int) -> np.ndarray:
        """Unit-variance correlated fields (n_cells, n_members, n_active) at ``step`` (diagnostics, tests)."""
        z = np.empty((self.n_cells, self._nv, self.n_members))
        self._standard(step, z)
        return z.transpose(0, 2, 1).copy()

    def perturbation(self, step: int) -> Perturbation:
        """The per-member forcing of ``step`` for :func:`smda.model.lsm.step`: factors of precip and sw_down,
        offsets of lw_down (W m-2) and t_air (K), (n_cells, n_active, n_members), in a buffer reused every step."""
        z = self._values.values
        self._standard(step, z)
        _transform(z, self._kind, self._a, self._b, self._lo, self._hi)
        return self._values
