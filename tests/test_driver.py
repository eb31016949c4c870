"""The driver end to end: 1 rank vs 2 ranks, restart vs uninterrupted, skill, bad input, no partial output."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from tests.conftest import REPO

CASE = """\
name: tiny
seed: 3
domain:
  centre: [41.35, -5.40]
  size_km: [72, 36]
time:
  start: 2019-05-02T00:00
  end: {end}
model:
  ensemble_size: 6
observations:
  orbits: [am, pm]
assimilation:
  filter: {filter}
  loc_radius_km: 30
comparison:
  methods: [dispatch]
output:
  dir: out
  figures: false
"""
MPIEXEC = shutil.which("mpiexec", path=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))


def case(tmp_path, end="2019-05-06T00:00", filter="letkf", sub="a"):
    d = tmp_path / sub
    d.mkdir()
    p = d / "case.yaml"
    p.write_text(CASE.format(end=end, filter=filter))
    return p


def mpi_python(script, *args, ranks=2, timeout=300):
    """Run the Python file ``script`` (with ``args``) under mpiexec -n ``ranks``; the completed process, its
    success asserted. Warnings are errors, so a rank's warning fails the test."""
    assert MPIEXEC, "mpiexec not found (install the [mpich] extra or a system MPI)"
    env = {**os.environ, "NUMBA_NUM_THREADS": "1", "PYTHONWARNINGS": "error"}
    r = subprocess.run([MPIEXEC, "-n", str(ranks), sys.executable, str(script), *map(str, args)], capture_output=True,
                       text=True, cwd=REPO, env=env, timeout=timeout)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


def smda(*args, ranks=1, check=True):
    cmd = [sys.executable, "-m", "smda.run.cli", *map(str, args)]
    if ranks > 1:
        assert MPIEXEC, "mpiexec not found (install the [mpich] extra or a system MPI)"
        cmd = [MPIEXEC, "-n", str(ranks), *cmd]
    env = {**os.environ, "NUMBA_NUM_THREADS": "1"}
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    if check:
        assert r.returncode == 0, r.stderr[-3000:]
    return r


def load(path):
    with xr.open_dataset(path) as ds:
        return ds.load()


def assert_same_outputs(a: Path, b: Path):
    files = sorted(p.relative_to(a) for p in a.rglob("*.nc") if "restart" not in p.parts)
    assert files and files == sorted(p.relative_to(b) for p in b.rglob("*.nc") if "restart" not in p.parts)
    for f in files:
        da, db = load(a / f), load(b / f)
        for v in da.data_vars:
            np.testing.assert_array_equal(da[v].values, db[v].values, err_msg=f"{f}:{v}")
    ca = (a / "tiny_obs_diagnostics.csv").read_text()
    assert ca == (b / "tiny_obs_diagnostics.csv").read_text()


@pytest.mark.mpi
def test_one_and_two_ranks_identical(tmp_path):
    one, two = case(tmp_path, sub="one"), case(tmp_path, sub="two")
    smda("run", one)
    smda("run", two, ranks=2)
    assert_same_outputs(one.parent / "out", two.parent / "out")
    diag = (one.parent / "out" / "tiny_obs_diagnostics.csv").read_text().splitlines()
    assert len(diag) > 4  # the period has overpasses and analyses


def test_restart_equals_uninterrupted(tmp_path):
    full, split = case(tmp_path, sub="full"), case(tmp_path, sub="split")
    smda("run", full)
    smda("run", split, "--stop-after-days", 2)
    out = split.parent / "out"
    looks_complete = [p for p in out.rglob("*") if p.is_file() and "restart" not in p.parts and p.suffix != ".part"]
    assert not looks_complete, "an interrupted run must not leave outputs that look complete"
    assert (out / "products" / "analysis.nc.part").exists()  # streamed, and readable while the run goes on
    with xr.open_dataset(out / "products" / "analysis.nc.part") as ds:
        assert ds.sizes["time"] > 0
    ckpt = sorted((out / "restart").glob("*.nc"))
    assert [p.name for p in ckpt] == ["tiny_2019-05-04T00.nc"]
    smda("run", split, "--restart", ckpt[0])
    assert_same_outputs(full.parent / "out", out)
    assert not list(out.rglob("*.part"))


def test_restart_mismatch_refused(tmp_path):
    a = case(tmp_path, sub="a")
    smda("run", a, "--stop-after-days", 1)
    ckpt = next((a.parent / "out" / "restart").glob("*.nc"))
    r = smda("run", a, "--restart", ckpt, "--set", "model.sm_perturbation_std=0.02", check=False)
    assert r.returncode == 1 and "does not match this run" in r.stderr and "model.sm_perturbation_std" in r.stderr
    r = smda("run", a, "--restart", ckpt, "--set", "forcing.openloop_precip_bias=0.7", check=False)
    assert r.returncode == 1 and "forcing.openloop_precip_bias: file has 0.8, this run has 0.7" in r.stderr
    r = smda("run", a, "--restart", a, check=False)
    assert r.returncode == 1 and "not a readable netCDF restart" in r.stderr


def test_unwritable_output_and_missing_input(tmp_path):
    a = case(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = smda("run", a, "--set", f"output.dir={blocker}/sub", "--set", "time.end=2019-05-03T00:00", check=False)
    assert r.returncode == 1 and "cannot" in r.stderr and str(blocker) in r.stderr
    assert "smda.progress" not in r.stderr  # refused before the time loop
    assert not list(tmp_path.rglob("*.tmp"))
    r = smda("run", a, "--set", "domain.parameters=missing.nc", check=False)  # a namelist error: exit 2
    assert r.returncode == 2 and "domain.parameters: file not found" in r.stderr and "missing.nc" in r.stderr
    r = smda("run", a, "--set", "assimilation.filter=kalman", check=False)
    assert r.returncode == 2 and "assimilation.filter" in r.stderr


@pytest.mark.parametrize("name", ["enkf", "etkf", "eakf"])
def test_other_filters_through_the_driver(tmp_path, name):
    a = case(tmp_path, filter=name, end="2019-05-04T00:00")
    smda("run", a, "-q", "--set", "output.daily_means=false")
    assert not (a.parent / "out" / "tiny_daily.nc").exists() and (a.parent / "out" / "tiny_analysis.nc").exists()
    d = pd.read_csv(a.parent / "out" / "tiny_obs_diagnostics.csv")
    used = d[d["qc"] == 0]
    assert len(used) > 0
    assert ((used["value"] - used["hx_analysis_mean"]) ** 2).mean() < ((used["value"] - used["hx_forecast_mean"]) ** 2).mean()
