"""Satellite observation readers, chosen by product name; each returns an :class:`smda.assimilation.observations.table.ObsTable`.

``read(product, paths, *, bbox, halo_km, start, end, kind, error_std, **product_options)``

Products and generic sources (see the reader modules for formats, flags and options). Every product
reader also takes ``reject_bits`` ({flag field: [bits]}, replacing that field's default rejecting bits;
:mod:`smda.assimilation.observations.qc`):

=================  ===========================================  ========  ========================================
name               product / source                             kinds     options (besides reject_bits)
=================  ===========================================  ========  ========================================
smap_l1c_tb        SMAP L1C_TB half-orbit (SPL1CTB), M36        tb        pols, looks, max_fore_aft_std_K
smap_l2_sm_p       SMAP L2_SM_P half-orbit (SPL2SMP), M36       tb, sm    pols, passes, tb_variant, sm_dataset,
                                                                          max_vod, max_frozen_fraction
smap_l3_sm_p       SMAP L3_SM_P daily (SPL3SMP), M36            tb, sm    as smap_l2_sm_p
smap_l3_sm_p_e     SMAP L3_SM_P_E daily (SPL3SMP_E), 9 km       tb, sm    as smap_l2_sm_p, fov_km (Gaussian
                   posting, Gaussian antenna footprint                    sigma, default 16 km)
smap_l2_sm_sp      SMAP/Sentinel-1 L2_SM_SP scene (SPL2SMAP_S)  sm        resolution (3km: M03 box, 1km: the
                                                                          1 km cell), product_error,
                                                                          max_frozen_fraction
smos_l3_sm         SMOS CATDS L3 SM daily (MIR_CLF31), M25      sm        max_rfi_prob
smos_l3_tb         SMOS CATDS L3 TB multi-angle (MIR_CDF3T)     tb        pols, angles (class centres), max_rfi_ratio
smos_l2_sm         SMOS L2 SM v700 netCDF (MIR_SMUDP2), DGG     tb, sm    pols, tb_level, max_rfi_prob,
                                                                          max_rfi_ratio, max_vod
table              CSV / netCDF table of point or footprint     tb, sm    columns, units, porosity, fov_km
                   observations (generic)
gridded            CF netCDF grid, lat/lon or projected         tb, sm    variable, units, porosity,
                   (generic)                                              error_variable, flag_variables,
                                                                          time_variable, pol, angle_deg,
                                                                          footprint, fov_km
tuw_cells          TU Wien time-series cell files (pynetcf,     tb, sm    variable, grid_file, layout, units,
                   pygeogrids; extra ``tuw``)                             porosity, error_variable,
                                                                          flag_variable, reject_bits,
                                                                          footprint, fov_km, pol, angle_deg
=================  ===========================================  ========  ========================================

Soil moisture in percent of saturation (generic sources, ``units: percent_saturation``) is converted with
``porosity`` (m3/m3) when given; without it the values stay in degree of saturation and the source needs
a rescaling onto the model's climatology (:func:`in_saturation_units`).
"""

from __future__ import annotations

import inspect
import logging

from smda.assimilation.observations.readers import generic, smap, smos
from smda.assimilation.observations.readers.common import Region, unique_paths
from smda.assimilation.observations.table import ObsTable
from smda.registry import Registry

log = logging.getLogger(__name__)

READERS = Registry("observation product", {
    "smap_l1c_tb": smap.read_l1c_tb,
    "smap_l2_sm_p": smap.read_l2_sm_p,
    "smap_l3_sm_p": smap.read_l3_sm_p,
    "smap_l3_sm_p_e": smap.read_l3_sm_p_e,
    "smap_l2_sm_sp": smap.read_l2_sm_sp,
    "smos_l3_sm": smos.read_l3_sm,
    "smos_l3_tb": smos.read_l3_tb,
    "smos_l2_sm": smos.read_l2_sm,
    "table": generic.read_table,
    "gridded": generic.read_gridded,
    "tuw_cells": generic.read_tuw_cells,
})


def read(product: str, paths, *, bbox=None, xy_bbox=None, halo_km: float = 50.0, start=None, end=None,
         kind: str | None = None, error_std: float | None = None, **product_options) -> ObsTable:
    """Read observation files of one product, subset to a domain and period, with product-flag QC.

    Parameters
    ----------
    product : a name of :data:`READERS`.
    paths : list of file paths (or one path); a granule listed twice is read once (with a warning naming both
        paths), a truncated netCDF-3 or unreadable file is an error naming it.
    bbox : (lat_min, lat_max, lon_min, lon_max) in degrees, or ``xy_bbox`` (x_min, x_max, y_min, y_max) in
        EPSG:6933 m; None for no spatial subsetting.
    halo_km : widening of the box on every side (projected EASE-Grid km).
    start, end : period [start, end) as ``numpy.datetime64`` (UTC); None leaves that side open.
    kind : "tb" or "sm"; None takes the product's default: "sm" for smap_l3_sm_p, smap_l3_sm_p_e,
        smos_l3_sm and smos_l2_sm, "tb" for smap_l1c_tb, smap_l2_sm_p and smos_l3_tb.
    error_std : observation error std (K for TB, m3/m3 for SM); None uses SCIENCE.md section 4 (4 K, 0.04).
    product_options : passed to the reader; unknown options are an error naming the valid ones.
    """
    fn = READERS[product]
    params = inspect.signature(fn).parameters
    valid = [p for p in params if p not in ("paths", "region", "kind", "error_std")]
    bad = sorted(set(product_options) - set(valid))
    if bad:
        raise ValueError(f"unknown option(s) {bad} for product {product!r}; valid: {', '.join(valid)}")
    region = Region.build(bbox=bbox, xy_bbox=xy_bbox, halo_km=halo_km, start=start, end=end)
    kw = dict(product_options)
    if kind is not None:
        kw["kind"] = kind
    table = fn(unique_paths(paths, product), region=region, error_std=error_std, **kw)
    log.info("%s: %d observations read, QC %s", product, len(table), table.qc_counts())
    return table


def in_saturation_units(product: str, options: dict | None) -> bool:
    """True when a source's values are left in degree of saturation (0-1): a generic reader (table,
    gridded, tuw_cells) with ``units`` percent_saturation/saturation and no ``porosity``. Such values need a
    rescaling onto the model's climatology (CDF matching or anomalies) before they can be assimilated."""
    from smda.assimilation.observations.readers.common import sm_units

    options = options or {}
    if product not in ("table", "gridded", "tuw_cells") or options.get("units") is None:
        return False
    return sm_units(options["units"], f"{product} options")[1] == "saturation" and options.get("porosity") is None


__all__ = ["READERS", "Region", "in_saturation_units", "read"]
