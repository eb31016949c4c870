"""Registry of the comparison (downscaling) operators: method name -> callable with one signature.

Every operator maps the same inputs to the same 1 km output, so validation treats them alike:

``downscale(method, *, sm_coarse, pixel_of_cell, lst, ndvi, elevation_m=None, tb_h=None, tb_v=None,
history=None, **settings) -> (nrows, ncols) m3/m3 with NaN where no estimate``

* ``sm_coarse`` (n_pix,) coarse soil moisture of the domain's coarse pixels at one time, m3/m3;
* ``pixel_of_cell`` (nrows, ncols) int index into ``sm_coarse`` (-1 outside any pixel / not land);
* ``lst`` (n_acq, nrows, ncols) or (nrows, ncols) 1 km land surface temperature, K, NaN gaps;
* ``ndvi`` (nrows, ncols); ``elevation_m`` (nrows, ncols) m or None;
* ``tb_h``, ``tb_v`` (n_pix,) coarse brightness temperatures, K, or None;
* ``history``: :class:`smda.assimilation.downscaling.regression.CoarseHistory` (moving-window empirical operators);
* ``settings``: the fields of the method's settings dataclass (unknown keys are errors).

Methods:

* ``dispatch`` -- :mod:`smda.assimilation.downscaling.dispatch` (Merlin et al. 2012; settings ``DispatchSettings``);
* ``empirical`` -- linear regression, BEC SMOS L4 style (Piles et al. 2014;
  :func:`smda.assimilation.downscaling.regression.downscale_linear`, ``RegressionSettings``);
* ``random_forest`` -- :func:`smda.assimilation.downscaling.regression.downscale_random_forest` (``ForestSettings``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from smda.assimilation.downscaling import dispatch, regression
from smda.registry import Registry


@dataclass(frozen=True)
class Method:
    """A downscaling method: its function (the signature above) and its settings dataclass."""

    downscale: Callable
    settings: type


METHODS: Registry[Method] = Registry("downscaling method", {
    "dispatch": Method(dispatch.downscale, dispatch.DispatchSettings),
    "empirical": Method(regression.downscale_linear, regression.RegressionSettings),
    "random_forest": Method(regression.downscale_random_forest, regression.ForestSettings),
})


def downscale(method: str, *, sm_coarse, pixel_of_cell, lst, ndvi, elevation_m=None, tb_h=None, tb_v=None,
              history=None, **settings):
    """Downscale one coarse observation time with the named method; (nrows, ncols) m3/m3, NaN gaps."""
    return METHODS[method].downscale(sm_coarse=sm_coarse, pixel_of_cell=pixel_of_cell, lst=lst, ndvi=ndvi,
                              elevation_m=elevation_m, tb_h=tb_h, tb_v=tb_v, history=history, **settings)


def pixel_of_cell_for(domain, grid_name: str = "M36"):
    """``pixel_of_cell`` of a Domain: each 1 km cell's pixel of a nested grid, numbered row-major among the
    domain's pixels (:meth:`smda.model.grid.Domain.pixel_index`), -1 off land; (nrows, ncols) int64."""
    return np.where(domain.land, domain.pixel_index(grid_name).reshape(domain.shape), -1)
