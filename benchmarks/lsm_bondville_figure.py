"""Figure of a land surface model year on the Bondville 1998 forcing.

Panels: surface and root-zone soil moisture, daily skin and deep soil temperature, cumulative water
fluxes (precipitation, ET, runoff, drainage), for a sand, a silt loam and a clay soil under the same
weather and a simple crop cycle.

Usage: python benchmarks/lsm_bondville_figure.py OUT.png [path/to/bondville.dat]
"""

import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from smda.model import site_run  # noqa: E402

SOILS = {"sand": (0.92, 0.03), "silt loam": (0.20, 0.20), "clay": (0.10, 0.60)}


def main(out_png, forcing_path=None):
    if forcing_path is None:
        data = Path(os.environ.get("SMDA_SAMPLE_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
        forcing_path = data / "forcing" / "bondville.dat"
    met = site_run.read_bondville(forcing_path)
    fveg, lai = site_run.crop_phenology(met["time"])
    r = site_run.run_site(met, [s for s, _ in SOILS.values()], [c for _, c in SOILS.values()], fveg, lai,
                          n_members=1, sm0=0.30)
    t = r["time"]
    st, cum = r["state"], r["cum"]
    fig, ax = plt.subplots(4, 1, figsize=(10, 12), sharex=True)
    colors = ("tab:orange", "tab:green", "tab:brown")
    for c, (name, col) in enumerate(zip(SOILS, colors, strict=True)):
        ax[0].plot(t, st["sm_surface"][:, c, 0], color=col, lw=0.8, label=f"{name} 0-5 cm")
        ax[0].plot(t, st["sm_rootzone"][:, c, 0], color=col, lw=2.0, label=f"{name} root zone")
        et = cum["evaporation"][:, c, 0] + cum["transpiration"][:, c, 0] + cum["interception_loss"][:, c, 0]
        ax[2].plot(t, et, color=col, label=f"{name} ET")
        ax[2].plot(t, cum["surface_runoff"][:, c, 0] + cum["drainage"][:, c, 0], color=col, ls="--",
                   label=f"{name} runoff + drainage")
        ax[3].plot(t, cum["transpiration"][:, c, 0], color=col, label=f"{name} transpiration")
        ax[3].plot(t, cum["evaporation"][:, c, 0], color=col, ls=":", label=f"{name} soil evaporation")
    ax[1].plot(t, st["t_skin"][:, 1, 0] - 273.15, color="tab:red", label="skin (silt loam), daily mean")
    ax[1].plot(t, st["t_deep"][:, 1, 0] - 273.15, color="k", label="deep soil (silt loam)")
    ax[2].plot(t, cum["precip"][:, 0, 0], color="tab:blue", lw=2, label="precipitation")
    ax[0].set_ylabel("soil moisture (m3 m-3)")
    ax[1].set_ylabel("temperature (C)")
    ax[2].set_ylabel("cumulative (mm)")
    ax[3].set_ylabel("cumulative (mm)")
    for a in ax:
        a.legend(fontsize=7, ncol=3)
        a.grid(alpha=0.3)
    ax[0].set_title("smda land surface model, Bondville (Illinois) 1998 forcing")
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    f = r["flux_sum"]
    for c, name in enumerate(SOILS):
        et = f["evaporation"][c, 0] + f["transpiration"][c, 0] + f["interception_loss"][c, 0]
        print(f"{name:10s} P {r['precip_sum'][c, 0]:.0f} mm  ET {et:.0f}  runoff {f['surface_runoff'][c, 0]:.0f}  "
              f"drainage {f['drainage'][c, 0]:.0f}  dS {r['storage1'][c, 0] - r['storage0'][c, 0]:.0f}")
    print(f"wrote {out_png}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
