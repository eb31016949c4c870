"""Figures of a twin experiment: maps on one date, time series at a few cells, the skill bar chart."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from smda.model.grid import GRIDS  # noqa: E402

ORDER = ("truth", "satellite", "openloop", "analysis", "dispatch", "empirical", "random_forest")


def _save(fig, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)
    return path


def skill_figures(fig_dir, grids: dict, times, table, domain) -> list:
    """Write maps.png, timeseries.png and skill.png; returns their paths."""
    names = [n for n in ORDER if n in grids] + [n for n in grids if n not in ORDER]
    paths = []
    # maps on the analysis time with the most comparison estimates
    valid = np.array([np.isfinite(grids.get("dispatch", grids["analysis"])[i]).sum() for i in range(len(times))])
    i = int(np.argmax(valid))
    truth = grids["truth"][i]
    vmin, vmax = np.nanpercentile(truth, 2), np.nanpercentile(truth, 98)
    ext = np.array([domain.x[0], domain.x[-1], domain.y[-1], domain.y[0]]) / 1000.0
    n_rows, n_cols = domain.coarse_shape("M36")
    pixel_km = GRIDS["M36"].km
    fig, axes = plt.subplots(1, len(names), figsize=(3.1 * len(names), 3.2), constrained_layout=True)
    for ax, n in zip(np.atleast_1d(axes), names, strict=True):
        im = ax.imshow(grids[n][i], vmin=vmin, vmax=vmax, cmap="YlGnBu", extent=ext)
        ax.set_title(n)
        ax.set_xticks([])
        ax.set_yticks([])
        for k in range(1, n_cols):
            ax.axvline(ext[0] + k * pixel_km, color="k", lw=0.5)
        for k in range(1, n_rows):
            ax.axhline(ext[3] - k * pixel_km, color="k", lw=0.5)
    fig.colorbar(im, ax=axes, shrink=0.8, label="surface soil moisture (m3 m-3)")
    fig.suptitle(f"0-5 cm soil moisture on {str(times[i])[:16]} UTC (36 km pixel edges)")
    paths.append(_save(fig, fig_dir / "maps.png"))
    # time series at three cells of one pixel
    fig, axes = plt.subplots(3, 1, figsize=(9, 7), sharex=True, constrained_layout=True)
    cells = [(5, 5), (18, 30), (30, 12)]
    for ax, (r, c) in zip(axes, cells, strict=True):
        for n in names:
            style = {"truth": dict(color="k", lw=2, marker="."),
                     "satellite": dict(color="0.5", ls="none", marker="s", ms=3)}.get(n, dict(marker="."))
            ax.plot(times, grids[n][:, r, c], label=n, **style)
        ax.set_ylabel(f"cell ({r},{c})\nm3 m-3")
    axes[0].legend(ncol=4, fontsize=8)
    paths.append(_save(fig, fig_dir / "timeseries.png"))
    # skill bar chart
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2), constrained_layout=True)
    for ax, col in zip(axes, ("ubRMSE", "R", "R_within"), strict=True):
        vals = table[col].reindex([n for n in names if n in table.index])
        ax.bar(vals.index, vals.to_numpy(), color="tab:blue")
        ax.set_title(col)
        ax.tick_params(axis="x", rotation=45)
        if col == "ubRMSE":
            ax.axhline(0.04, color="r", lw=1, ls="--", label="SMAP target 0.04")
            ax.legend(fontsize=8)
    paths.append(_save(fig, fig_dir / "skill.png"))
    return paths
