"""Figure of a land surface model year on the Bondville 1998 forcing, run through the driver.

The run is the one of tests/test_lsm_bondville.py (the site template in open loop on a sand, a silt loam
and a clay cell under the same weather and a cropland NDVI season). Panels: surface and root-zone soil
moisture, daily skin and deep soil temperature, cumulative water fluxes (precipitation, ET, runoff,
drainage), cumulative transpiration and soil evaporation. Prints the annual water budget per soil.

Usage: python benchmarks/lsm_bondville_figure.py [OUT.png]   (default out/lsm_bondville_1998.png;
the forcing is $SMDA_SAMPLE_DATA/forcing/bondville.dat, default ../shared/data)
"""

import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for tests/
from tests.test_lsm_bondville import SOILS, run_year  # noqa: E402


def main(out_png):
    with tempfile.TemporaryDirectory() as tmp:
        r = run_year(Path(tmp))
    t, st = r["days"], r["state"]
    cum = {k: np.cumsum(v, axis=0) for k, v in r["flux"].items()}
    fig, ax = plt.subplots(4, 1, figsize=(10, 12), sharex=True)
    colors = ("tab:orange", "tab:green", "tab:brown")
    for c, (name, col) in enumerate(zip(SOILS, colors, strict=True)):
        ax[0].plot(t, st["sm_surface"][:, c], color=col, lw=0.8, label=f"{name} 0-5 cm")
        ax[0].plot(t, st["sm_rootzone"][:, c], color=col, lw=2.0, label=f"{name} root zone")
        et = cum["soil_evaporation"][:, c] + cum["transpiration"][:, c] + cum["interception_loss"][:, c]
        ax[2].plot(t, et, color=col, label=f"{name} ET")
        ax[2].plot(t, cum["surface_runoff"][:, c] + cum["drainage"][:, c], color=col, ls="--",
                   label=f"{name} runoff + drainage")
        ax[3].plot(t, cum["transpiration"][:, c], color=col, label=f"{name} transpiration")
        ax[3].plot(t, cum["soil_evaporation"][:, c], color=col, ls=":", label=f"{name} soil evaporation")
    ax[1].plot(t, st["t_skin"][:, 1] - 273.15, color="tab:red", label="skin (silt loam), daily mean")
    ax[1].plot(t, st["t_deep"][:, 1] - 273.15, color="k", label="deep soil (silt loam)")
    ax[2].plot(t, cum["precip"][:, 0], color="tab:blue", lw=2, label="precipitation")
    ax[0].set_ylabel("soil moisture (m3 m-3)")
    ax[1].set_ylabel("temperature (C)")
    ax[2].set_ylabel("cumulative (mm)")
    ax[3].set_ylabel("cumulative (mm)")
    for a in ax:
        a.legend(fontsize=7, ncol=3)
        a.grid(alpha=0.3)
    ax[0].set_title("smda land surface model, Bondville (Illinois) 1998 forcing")
    fig.tight_layout()
    Path(out_png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=110)
    total = {k: v[-1] for k, v in cum.items()}
    storage0, storage1 = r["storage"]
    for c, name in enumerate(SOILS):
        et = total["soil_evaporation"][c] + total["transpiration"][c] + total["interception_loss"][c]
        print(f"{name:10s} P {total['precip'][c]:.0f} mm  ET {et:.0f} (transpiration {total['transpiration'][c]:.0f})  "
              f"runoff {total['surface_runoff'][c]:.0f}  drainage {total['drainage'][c]:.0f}  "
              f"dS {storage1[c] - storage0[c]:.0f}")
    print(f"wrote {out_png}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "out/lsm_bondville_1998.png")
