"""The canonical observation table that every reader and the synthetic generator produce.

One row per observation: when and where (EASE-Grid 2.0 x/y in m, lat/lon in degrees), what (``kind``
"tb" brightness temperature in K or "sm" soil moisture in m3/m3, polarization "H"/"V" for TB and ""
for SM, incidence angle in degrees), the value and its error standard deviation (same unit as the
value), the product's own quality flags (raw bits), the footprint (the native grid name, e.g. "M36"
or "M25", or "M01" for a 1 km cell, with row and column on that grid, or "gauss" with a field of view in
km), the source (the product, or in a run the name of its namelist source; at most 24 characters), and a QC
code (0 = accepted; see :data:`QC_REASONS`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

from smda.model.grid import M01

QC_REASONS = {
    0: "accepted",
    1: "fill_value",
    2: "out_of_range",
    3: "product_quality_flag",
    4: "rfi",
    5: "frozen_ground",
    6: "snow",
    7: "open_water",
    8: "dense_vegetation",
    9: "heavy_rain",
    10: "tb_exceeds_soil_temperature",
    11: "outside_domain",
    12: "outside_period",
    13: "gross_error",
    14: "model_frozen_or_snow",
    15: "too_few_cells",
    16: "no_rescaling_statistics",
    17: "background_check",
}
QC_CODES = {name: code for code, name in QC_REASONS.items()}

_DTYPES = {
    "time": "datetime64[s]", "x": np.float64, "y": np.float64, "lat": np.float64, "lon": np.float64,
    "kind": "<U2", "pol": "<U1", "angle_deg": np.float64, "value": np.float64, "error_std": np.float64,
    "flags": np.uint32, "footprint": "<U5", "row": np.int64, "col": np.int64, "fov_km": np.float64,
    "source": "<U24", "qc": np.uint8,
}


@dataclass(frozen=True)
class ObsTable:
    """Columns of equal length (n_obs,); see the module docstring for meanings and units."""

    time: np.ndarray
    x: np.ndarray
    y: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    kind: np.ndarray
    pol: np.ndarray
    angle_deg: np.ndarray
    value: np.ndarray
    error_std: np.ndarray
    flags: np.ndarray
    footprint: np.ndarray
    row: np.ndarray
    col: np.ndarray
    fov_km: np.ndarray
    source: np.ndarray
    qc: np.ndarray

    def __post_init__(self):
        n = len(self.value)
        for f in fields(self):
            arr = np.asarray(getattr(self, f.name), dtype=_DTYPES[f.name])
            if arr.ndim == 0:
                arr = np.full(n, arr, dtype=_DTYPES[f.name])
            if arr.shape != (n,):
                raise ValueError(f"observation column {f.name!r} has shape {arr.shape}, expected ({n},)")
            object.__setattr__(self, f.name, arr)

    @classmethod
    def empty(cls) -> ObsTable:
        return cls(**{f.name: np.empty(0, _DTYPES[f.name]) for f in fields(cls)})

    @classmethod
    def concat(cls, tables) -> ObsTable:
        tables = list(tables)
        if not tables:
            return cls.empty()
        return cls(**{f.name: np.concatenate([getattr(t, f.name) for t in tables]) for f in fields(cls)})

    def __len__(self) -> int:
        return len(self.value)

    def select(self, mask_or_index) -> ObsTable:
        """Rows chosen by a boolean mask or an index array."""
        return ObsTable(**{f.name: getattr(self, f.name)[mask_or_index] for f in fields(self)})

    def with_qc(self, mask, reason: str) -> ObsTable:
        """Set QC code ``reason`` where ``mask`` is true and the row was still accepted."""
        qc = self.qc.copy()
        qc[np.asarray(mask, bool) & (qc == 0)] = QC_CODES[reason]
        return replace(self, qc=qc)

    def rescaling_groups(self) -> np.ndarray:
        """Group key of an observation series for climatological rescaling: footprint position on the
        global 1 km grid, kind, polarization and incidence angle (0.5 degree bins)."""
        r, c = M01.rowcol(self.x, self.y)
        variable = (self.kind == "tb") * 3 + np.select([self.pol == "H", self.pol == "V"], [1, 2], 0)
        angle = np.nan_to_num(np.round(self.angle_deg * 2), nan=0).astype(np.int64)
        return ((r * M01.n_cols + c) * 6 + variable) * 200 + angle

    @property
    def accepted(self) -> np.ndarray:
        return self.qc == 0

    def qc_counts(self) -> dict[str, int]:
        """Number of observations per QC reason (only reasons that occur)."""
        codes, counts = np.unique(self.qc, return_counts=True)
        return {QC_REASONS[int(c)]: int(n) for c, n in zip(codes, counts, strict=True)}

    def to_dataframe(self):
        import pandas as pd

        return pd.DataFrame({f.name: getattr(self, f.name) for f in fields(self)})
