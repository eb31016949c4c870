"""Satellite observation readers, chosen by product name; each returns an :class:`smda.assimilation.observations.table.ObsTable`.

``read(product, paths, *, bbox, halo_km, start, end, kind, error_std, **product_options)``

Products (see the reader modules for formats, flags and product options):

=================  ==========================================  ========  =================================
name               product                                     kinds     options
=================  ==========================================  ========  =================================
smap_l1c_tb        SMAP L1C_TB half-orbit (SPL1CTB), M36       tb        pols, looks, max_fore_aft_std_K
smap_l2_sm_p       SMAP L2_SM_P half-orbit (SPL2SMP), M36      tb, sm    pols, tb_variant, sm_dataset
smap_l3_sm_p       SMAP L3_SM_P daily (SPL3SMP), M36           tb, sm    pols, passes, tb_variant, sm_dataset
smap_l3_sm_p_e     SMAP L3_SM_P_E daily (SPL3SMP_E), M09       tb, sm    pols, passes, tb_variant, sm_dataset
smos_l3_sm         SMOS CATDS L3 SM daily (MIR_CLF31), M25     sm        max_rfi_prob
smos_l3_tb         SMOS CATDS L3 TB multi-angle (MIR_CDF3T)    tb        pols, angles, max_rfi_ratio
smos_l2_sm         SMOS L2 SM v700 netCDF (MIR_SMUDP2), DGG    tb, sm    pols, tb_level, max_rfi_prob,
                                                                         max_rfi_ratio, max_vod_np
=================  ==========================================  ========  =================================
"""

from __future__ import annotations

import inspect
import logging

from smda.assimilation.observations.readers import smap, smos
from smda.assimilation.observations.readers.common import Region
from smda.assimilation.observations.table import ObsTable
from smda.registry import Registry

log = logging.getLogger(__name__)

READERS = Registry("observation product", {
    "smap_l1c_tb": smap.read_l1c_tb,
    "smap_l2_sm_p": smap.read_l2_sm_p,
    "smap_l3_sm_p": smap.read_l3_sm_p,
    "smap_l3_sm_p_e": smap.read_l3_sm_p_e,
    "smos_l3_sm": smos.read_l3_sm,
    "smos_l3_tb": smos.read_l3_tb,
    "smos_l2_sm": smos.read_l2_sm,
})


def read(product: str, paths, *, bbox=None, xy_bbox=None, halo_km: float = 50.0, start=None, end=None,
         kind: str | None = None, error_std: float | None = None, **product_options) -> ObsTable:
    """Read observation files of one product, subset to a domain and period, with product-flag QC.

    Parameters
    ----------
    product : a name of :data:`READERS`.
    paths : list of file paths (or one path).
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
    table = fn(paths, region=region, error_std=error_std, **kw)
    log.info("%s: %d observations read, QC %s", product, len(table), table.qc_counts())
    return table


__all__ = ["READERS", "Region", "read"]
