"""Soil hydraulic and thermal parameters per cell from sand and clay fractions.

The land surface model (``smda.model.lsm``) is the ISBA force-restore scheme, so its parameters come from
the ISBA pedotransfer regressions of Noilhan & Planton (1989, doi:10.1175/1520-0493(1989)117<0536:ASPOLS>2.0.CO;2)
and Noilhan & Mahfouf (1996, doi:10.1016/0921-8181(95)00043-7), with S and C the sand and clay
fractions (0-1) and C% = 100 C::

    wsat  = (-108 S + 494.305) 1e-3                 porosity, m3 m-3
    wwilt = 37.1342e-3 C%^0.5                       wilting point, m3 m-3
    wfc   = 89.0467e-3 C%^0.3496                    field capacity, m3 m-3
    b     = 13.7 C + 3.501                          Clapp-Hornberger exponent (-)
    C1sat = 5.58 C + 0.8488                         surface force coefficient at saturation (-)
    C2ref = 13.815 C%^-0.954                        restore coefficient (-)
    C3    = 5.327 C%^-1.043                         drainage coefficient (-)
    a     = 0.73242 C%^-0.539,  p = 13.4 C + 3.4    equilibrium surface moisture (-)
    CGsat = (-1.557 S - 1.441 C + 4.7021) 1e-6      soil thermal coefficient at saturation, K m2 J-1

Saturated hydraulic conductivity and air-entry suction come from Cosby et al. (1984,
doi:10.1029/WR020i006p00682), with %S, %C, %Si in percent::

    b_cosby          = 3.10 + 0.157 %C - 0.003 %S
    log10 psi_s(cm)  = 1.54 - 0.0095 %S + 0.0063 %Si
    log10 Ks(in/h)   = -0.60 + 0.0126 %S - 0.0064 %C
    theta_s          = (50.5 - 0.142 %S - 0.037 %C) / 100

Soil organic matter (peat, organic topsoils) follows Lawrence & Slater (2008, doi:10.1007/s00382-007-0278-1),
as in CLM: with f the organic fraction (organic matter density / 130 kg m-3, clipped to [0, 1]), porosity,
b and psi_s are the f-weighted means of the mineral values above and of the organic end member
(wsat 0.9, b 2.7, psi_s 0.0103 m); Ks is the parallel connection of the percolating organic share
(f > 0.5: N = (1 - 0.5)^-0.139 (f - 0.5)^0.139 of it flows at the organic Ks 1e-4 m s-1) with the harmonic
mean of the rest (mineral Ks and the non-percolating organic share). wwilt and wfc are weighted the same
way with the organic end member's values at the ISBA definitions (wwilt at psi = -150 m, wfc where
K = 0.1 mm day-1) by Clapp & Hornberger (1978), so 0 < wwilt < wfc < wsat holds for every f.

Ks sets the infiltration capacity of the model. The residual water content (the lower bound of
both soil layers) is 0.1 wwilt by default. The clay percentage is floored at 0.5 % inside the power
laws (a 0 % clay soil has no finite C2ref, C3 or a). Every parameter can be overridden per cell with a
keyword (scalar or (n_cells,) array), e.g. ``soil_parameters(sand, clay, wsat=0.40, d2_m=1.5)``.

Parameters that are not soil properties but belong to the same per-cell table: layer depths
``d1_m`` (0.05 m, the L-band sensing depth) and ``d2_m`` (1.0 m, root zone), snow-free surface
albedo ``albedo`` (0.20), emissivity ``emissivity`` (0.97), minimum stomatal resistance
``rsmin_s_m`` (40 s m-1, crops), roughness lengths ``z0_soil_m`` (0.01 m) and ``z0_veg_m`` (0.10 m).
"""

import numpy as np

from smda.variables import VARIABLES

# Order of the rows of SoilParameters.packed; smda.model.lsm indexes the packed table with these.
# Units, long names and valid ranges: smda.variables.
PARAMETER_NAMES = (
    "sand", "clay", "wsat", "wwilt", "wfc", "wres", "b", "c1sat", "c2ref", "c3", "a", "p", "cgsat",
    "ks_m_s", "psi_s_m", "d1_m", "d2_m", "albedo", "emissivity", "rsmin_s_m", "z0_soil_m", "z0_veg_m",
)
P = {name: i for i, name in enumerate(PARAMETER_NAMES)}

_DEFAULTS = {"d1_m": 0.05, "d2_m": 1.0, "albedo": 0.20, "emissivity": 0.97, "rsmin_s_m": 40.0,
             "z0_soil_m": 0.01, "z0_veg_m": 0.10}
_IN_PER_H_TO_M_PER_S = 0.0254 / 3600.0


def isba_pedotransfer(sand, clay):
    """ISBA pedotransfer (Noilhan & Planton 1989; Noilhan & Mahfouf 1996).

    Parameters
    ----------
    sand, clay : array_like
        Sand and clay mass fractions (0-1), any shape.

    Returns
    -------
    dict of ndarray
        wsat, wwilt, wfc (m3 m-3), b, c1sat, c2ref, c3, a, p (-), cgsat (K m2 J-1).
    """
    s = np.asarray(sand, dtype=np.float64)
    c = np.asarray(clay, dtype=np.float64)
    cp = np.maximum(100.0 * c, 0.5)
    return {
        "wsat": (-108.0 * s + 494.305) * 1e-3,
        "wwilt": 37.1342e-3 * np.sqrt(cp),
        "wfc": 89.0467e-3 * cp**0.3496,
        "b": 13.7 * c + 3.501,
        "c1sat": 5.58 * c + 0.8488,
        "c2ref": 13.815 * cp**-0.954,
        "c3": 5.327 * cp**-1.043,
        "a": 0.73242 * cp**-0.539,
        "p": 13.4 * c + 3.4,
        "cgsat": (-1.557 * s - 1.441 * c + 4.7021) * 1e-6,
    }


# organic end member of Lawrence & Slater (2008) / CLM4.5: porosity, b, air-entry suction (m), Ks (m s-1)
ORGANIC = {"wsat": 0.9, "b": 2.7, "psi_s_m": 0.0103, "ks_m_s": 1.0e-4}
ORGANIC_MAX_KG_M3 = 130.0  # organic matter density of pure peat, kg m-3 (f = 1)
_PERCOLATION_THRESHOLD, _PERCOLATION_EXPONENT = 0.5, 0.139
_WILT_PSI_M, _FC_K_M_S = 150.0, 1.0e-4 / 86400.0  # ISBA wilting point (-15 bar) and field capacity (0.1 mm/day)
ORGANIC["wwilt"] = ORGANIC["wsat"] * (_WILT_PSI_M / ORGANIC["psi_s_m"]) ** (-1.0 / ORGANIC["b"])
ORGANIC["wfc"] = ORGANIC["wsat"] * (_FC_K_M_S / ORGANIC["ks_m_s"]) ** (1.0 / (2.0 * ORGANIC["b"] + 3.0))


def organic_mixing(mineral, f):
    """Blend mineral soil parameters with the organic end member (Lawrence & Slater 2008; see the module text).

    Parameters
    ----------
    mineral : dict of ndarray
        wsat, wwilt, wfc (m3 m-3), b (-), psi_s_m (m), ks_m_s (m s-1) of the mineral soil, (n_cells,).
    f : array_like
        Organic fraction, 0-1 (0: unchanged).

    Returns
    -------
    dict of ndarray
        The same six parameters for the mixed soil.
    """
    f = np.clip(np.asarray(f, dtype=np.float64), 0.0, 1.0)
    out = {k: (1.0 - f) * mineral[k] + f * ORGANIC[k] for k in ("wsat", "wwilt", "wfc", "b", "psi_s_m")}
    excess = np.maximum(f - _PERCOLATION_THRESHOLD, 0.0)
    perc = (1.0 - _PERCOLATION_THRESHOLD) ** -_PERCOLATION_EXPONENT * excess ** _PERCOLATION_EXPONENT
    unconnected = 1.0 - perc * f  # share of the soil outside the percolating organic network
    with np.errstate(divide="ignore", invalid="ignore"):
        ks_rest = unconnected / ((1.0 - f) / mineral["ks_m_s"] + (1.0 - perc) * f / ORGANIC["ks_m_s"])
    out["ks_m_s"] = np.where(unconnected > 0, unconnected * ks_rest, 0.0) + perc * f * ORGANIC["ks_m_s"]
    return out


def cosby(sand, clay):
    """Cosby et al. (1984) regressions.

    Parameters
    ----------
    sand, clay : array_like
        Sand and clay mass fractions (0-1); silt = 1 - sand - clay.

    Returns
    -------
    dict of ndarray
        b (-), psi_s_m (air-entry suction, m, positive), ks_m_s (m s-1), theta_s (m3 m-3).
    """
    s = 100.0 * np.asarray(sand, dtype=np.float64)
    c = 100.0 * np.asarray(clay, dtype=np.float64)
    si = 100.0 - s - c
    return {
        "b": 3.10 + 0.157 * c - 0.003 * s,
        "psi_s_m": 0.01 * 10.0 ** (1.54 - 0.0095 * s + 0.0063 * si),
        "ks_m_s": _IN_PER_H_TO_M_PER_S * 10.0 ** (-0.60 + 0.0126 * s - 0.0064 * c),
        "theta_s": (50.5 - 0.142 * s - 0.037 * c) / 100.0,
    }


class SoilParameters:
    """Per-cell parameter table of the land surface model.

    Attributes are (n_cells,) float64 views into ``packed`` (shape (n_parameters, n_cells), rows in
    ``PARAMETER_NAMES`` order), which is what the numba kernel receives.
    """

    def __init__(self, packed):
        packed = np.ascontiguousarray(packed, dtype=np.float64)
        if packed.ndim != 2 or packed.shape[0] != len(PARAMETER_NAMES):
            raise ValueError(f"packed parameters must have shape ({len(PARAMETER_NAMES)}, n_cells), "
                             f"got {packed.shape}")
        self.packed = packed

    @property
    def n_cells(self):
        return self.packed.shape[1]

    def __getattr__(self, name):
        if name in P:
            return self.packed[P[name]]
        raise AttributeError(name)

    def __getitem__(self, name):
        if name not in P:
            raise KeyError(f"unknown soil parameter {name!r}; valid: {', '.join(PARAMETER_NAMES)}")
        return self.packed[P[name]]

    def to_dict(self):
        """Copy of every parameter as a dict of (n_cells,) arrays."""
        return {name: self.packed[i].copy() for i, name in enumerate(PARAMETER_NAMES)}

    def subset(self, index):
        """Parameters of a subset of cells (integer index or boolean mask over cells)."""
        return SoilParameters(self.packed[:, index])


def _check_range(name, value):
    """Finite and inside the bounds of ``name`` in ``smda.variables``."""
    lo, hi = VARIABLES[name].lower, VARIABLES[name].upper
    if not np.all(np.isfinite(value)):
        raise ValueError(f"soil parameter {name!r} has non-finite values")
    if np.any(value < lo) or np.any(value > hi):
        raise ValueError(f"soil parameter {name!r} outside [{lo}, {hi}]: "
                         f"min {np.min(value):.6g}, max {np.max(value):.6g}")


def soil_parameters(sand, clay, organic_fraction=None, **overrides):
    """Per-cell parameters of the land surface model from sand and clay fractions (and organic matter).

    Parameters
    ----------
    sand, clay : array_like, shape (n_cells,)
        Sand and clay mass fractions, 0-1, sand + clay <= 1.
    organic_fraction : array_like, shape (n_cells,), optional
        Lawrence & Slater (2008) organic fraction, 0-1 (:func:`organic_mixing`); None or 0: mineral soil.
    **overrides : float or array_like (n_cells,)
        Replace any parameter of ``PARAMETER_NAMES`` (units in ``smda.variables``) for all or
        individual cells; NaN entries of an array keep the computed value of their cell.

    Returns
    -------
    SoilParameters
        Attribute and item access give (n_cells,) arrays; ``packed`` is the (n_parameters, n_cells)
        table the kernel uses.

    Raises
    ------
    ValueError
        Bad shapes, fractions outside [0, 1], unknown override names, or inconsistent moisture
        constants (the model needs 0 < wres < wwilt < wfc < wsat < 1).
    """
    sand = np.atleast_1d(np.asarray(sand, dtype=np.float64))
    clay = np.atleast_1d(np.asarray(clay, dtype=np.float64))
    if sand.ndim != 1 or sand.shape != clay.shape:
        raise ValueError(f"sand and clay must be 1-D arrays of equal shape (n_cells,), got {sand.shape} "
                         f"and {clay.shape}")
    _check_range("sand", sand)
    _check_range("clay", clay)
    if np.any(sand + clay > 1.0 + 1e-12):
        raise ValueError("sand + clay must not exceed 1")
    unknown = sorted(set(overrides) - set(PARAMETER_NAMES))
    if unknown:
        raise ValueError(f"unknown soil parameter override(s) {unknown}; valid: {', '.join(PARAMETER_NAMES)}")
    n = sand.size
    values = {"sand": sand, "clay": clay}
    values.update(isba_pedotransfer(sand, clay))
    cos = cosby(sand, clay)
    values["ks_m_s"] = cos["ks_m_s"]
    values["psi_s_m"] = cos["psi_s_m"]
    if organic_fraction is not None:
        f = np.broadcast_to(np.asarray(organic_fraction, dtype=np.float64), (n,))
        if not np.all((f >= 0) & (f <= 1)):
            raise ValueError("organic_fraction must lie in [0, 1] in every cell")
        values.update(organic_mixing(values, f))
    values["wres"] = 0.1 * values["wwilt"]
    for key, val in _DEFAULTS.items():
        values[key] = np.full(n, val)
    for key, val in overrides.items():
        arr = np.asarray(val, dtype=np.float64)
        if arr.ndim == 0:
            arr = np.full(n, float(arr))
        if arr.shape != (n,):
            raise ValueError(f"override {key!r} must be a scalar or shape ({n},), got {arr.shape}")
        values[key] = np.where(np.isnan(arr), values[key], arr)
    packed = np.empty((len(PARAMETER_NAMES), n))
    for i, name in enumerate(PARAMETER_NAMES):
        packed[i] = values[name]
    params = SoilParameters(packed)
    for name in PARAMETER_NAMES:
        _check_range(name, params[name])
    for lo, hi in (("wres", "wwilt"), ("wwilt", "wfc"), ("wfc", "wsat")):
        if np.any(params[lo] <= 0) or np.any(params[lo] >= params[hi]):
            raise ValueError(f"soil parameters need 0 < {lo} < {hi} in every cell")
    if np.any(params.d1_m >= params.d2_m):
        raise ValueError("d1_m must be smaller than d2_m")
    return params
