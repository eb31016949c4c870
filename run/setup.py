"""Experiment assembly helpers shared by the driver and ``smda info``."""

from __future__ import annotations

import numpy as np

from smda.model.grid import Domain
from smda.run.namelist import Namelist


def make_domain(nl: Namelist) -> Domain:
    """The 1 km domain of the namelist (land mask from the parameter file when given)."""
    d = nl.domain
    if d.bbox is not None:
        dom = Domain.from_bbox(*d.bbox)
    else:
        dom = Domain.from_centre(d.centre[0], d.centre[1], d.size_km[0], d.size_km[1])
    if d.parameters is not None:
        import xarray as xr

        if not d.parameters.exists():
            raise FileNotFoundError(f"domain.parameters: file not found: {d.parameters}")
        with xr.open_dataset(d.parameters) as ds:
            if "land_mask" in ds:
                land = np.asarray(ds["land_mask"].values, bool)
                if land.shape != dom.shape:
                    raise ValueError(f"{d.parameters}: land_mask shape {land.shape} != domain {dom.shape}")
                dom = Domain(dom.row0, dom.col0, dom.nrows, dom.ncols, land)
    return dom
