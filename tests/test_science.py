"""Science of the twin experiments (issue 20): fine-scale forcing perturbations, and the skill of the twins.

The slow tests run the shipped templates over their whole period (a few minutes each on one core) and assert
the figures measured when the science was set (the measured value and the margin are in each test).
"""

import math
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from smda.forcing.perturb import ForcingPerturbations, PerturbationSettings
from smda.model.grid import M01
from tests.conftest import REPO


def _skill(tmp_path, name):
    """Run the shipped template ``name`` over its whole period; its skill table against the 1 km truth."""
    out = tmp_path / name
    cmd = [sys.executable, "-m", "smda.run.cli", "run", str(REPO / "namelists" / f"{name}.yaml"), "--set",
           f"output.dir={out}", "--set", "output.figures=false", "-q"]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env={**os.environ, "NUMBA_NUM_THREADS": "1"},
                       timeout=3600)
    assert r.returncode == 0, r.stderr[-3000:]
    return pd.read_csv(out / f"{name}_skill.csv", index_col=0)


def test_storm_scale_perturbation_length_is_resolved():
    """A storm-scale length (12 km, for a forcing whose error lies below a coarse grid's 36 km) gets a lattice of
    L / 4 = 3 km, not the default 12 km, so the field keeps its unit variance and Gaussian correlation
    exp(-d^2 / 2 L^2) at sub-lattice lags."""
    n, n_mem = 60, 300
    x = M01.x0 + 7_000_000.0 + np.arange(n) * M01.cell_m
    y = np.full(n, 3.0e6)
    p = ForcingPerturbations(PerturbationSettings(corr_length_km=12.0), seed=3, dt_s=3 * 3600.0, x_m=x, y_m=y,
                             n_members=n_mem)
    assert p.lattice_m == 3 * M01.cell_m
    assert ForcingPerturbations(PerturbationSettings(), seed=3, dt_s=3600.0, x_m=x, y_m=y, n_members=2).lattice_m \
        == 12 * M01.cell_m  # the default 55 km keeps its 12 km lattice
    z = np.array([p.standard_fields(k)[:, :, 0].copy() for k in range(4)])  # (t, n, member) precipitation
    assert np.allclose(z.std(axis=(0, 2)), 1.0, atol=0.1)
    for lag_km, tol in ((6, 0.04), (12, 0.05), (24, 0.05)):
        r = np.corrcoef(z[:, :-lag_km].ravel(), z[:, lag_km:].ravel())[0, 1]
        assert r == pytest.approx(math.exp(-0.5 * (lag_km / 12.0) ** 2), abs=tol), lag_km


@pytest.mark.slow
def test_default_twin_reaches_most_of_the_pixel_mean_oracle(tmp_path):
    """36 km TB only: the analysis corrects the pixel means, not the within-pixel pattern, so its gain is measured
    against the pixel-mean oracle (truth pixel means + open-loop anomalies). Measured (2019-05-01 to 07-31, this
    physics): gain fraction 0.84, analysis / open-loop ubRMSE 0.0309 / 0.0360 = 0.86; asserted with margins."""
    skill = _skill(tmp_path, "osse_default")
    ol, an = skill.loc["openloop"], skill.loc["analysis"]
    assert an["gain_fraction"] > 0.75, skill
    assert an["ubRMSE"] < 0.9 * ol["ubRMSE"], skill
    assert an["ubRMSE_pixel"] < 0.5 * ol["ubRMSE_pixel"], skill


@pytest.mark.slow
def test_multiscale_twin_gains_within_the_pixels(tmp_path):
    """36 km TB + 3 km SM at a Sentinel-1-like revisit: the fine observations move the within-pixel part that
    TB alone cannot. Measured (12 km localization of the 3 km SM, 40 km of the TB): analysis / open-loop ubRMSE
    0.0291 / 0.0365 = 0.80 (the goal of issue 20, 0.6, is not reached: the 3 km errors, correlated over 10 km,
    enter the filter as independent; with uncorrelated errors 0.76), R_within_dyn 0.19 -> 0.44, ubRMSE_within
    0.0305 -> 0.0279, gain fraction 1.23 (beyond the pixel-mean oracle); asserted with margins. M09 super-observations
    (0.81, R_within_dyn 0.39) and error_inflation 2 or 5 (0.80, 0.43; 0.81, 0.40) measured no better (the template's
    comment), so the thresholds stay."""
    skill = _skill(tmp_path, "osse_multiscale")
    ol, an = skill.loc["openloop"], skill.loc["analysis"]
    assert an["ubRMSE"] < 0.85 * ol["ubRMSE"], skill
    assert an["R_within_dyn"] > ol["R_within_dyn"] + 0.15, skill
    assert an["ubRMSE_within"] < 0.96 * ol["ubRMSE_within"], skill
    assert an["gain_fraction"] > 1.0, skill
