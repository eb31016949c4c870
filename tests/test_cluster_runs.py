"""Cluster-scale behaviour of `smda run`: bounded memory and checkpoints, uneven rank counts, stop signals,
locked folders, cycles without accepted observations, and an open-loop spin-up continued with a filter."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
import tracemalloc

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from smda.run.driver import Driver
from smda.run.guard import EXIT_STOPPED
from smda.run.namelist import load
from tests.conftest import REPO
from tests.test_driver import assert_same_outputs, case, smda


def _data_bytes(path):
    with xr.open_dataset(path) as ds:
        return sum(v.nbytes for v in ds.data_vars.values())


def test_checkpoint_size_and_memory_do_not_grow_with_run_length(tmp_path):
    a = case(tmp_path, end="2019-05-12T00:00")
    nl = load(a)
    drv = Driver(nl)
    drv.run(stop_after_days=1)  # compile, open the output files
    tracemalloc.start()
    drv.run(stop_after_days=2)
    after_3_days = tracemalloc.get_traced_memory()[0]
    drv.run(stop_after_days=6)
    after_9_days = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert after_9_days - after_3_days < 256 * 1024, "memory grows with run length"
    early, late = drv.checkpoint(drv.step0 - 6 * drv.steps_per_day), drv.checkpoint(drv.step0)
    assert _data_bytes(early) == _data_bytes(late) > 0
    assert abs(early.stat().st_size - late.stat().st_size) < 4096
    with xr.open_dataset(drv.rec.part("products/analysis.nc")) as ds:  # outputs appended, readable meanwhile
        assert ds.sizes["time"] == drv.cycle > 3


@pytest.mark.mpi
def test_three_ranks_equal_one(tmp_path):
    one, three = case(tmp_path, sub="one"), case(tmp_path, sub="three")
    wide = ("--set", "domain.size_km=[144, 36]")  # 4 pixels on 3 ranks: an uneven split
    smda("run", one, *wide)
    smda("run", three, *wide, ranks=3)
    assert_same_outputs(one.parent / "out", three.parent / "out")


# the real SMAP L2 half-orbit sample on M36 rows 18-19 x columns 122-125 (central Yukon): 8 pixels, all with
# retrievals; one overpass (2015-08-11 about 02 UTC) and one day boundary in the period
REAL_CASE = """\
name: tiny
seed: 5
domain:
  centre: [64.6527, -133.6929]
  size_km: [144, 72]
  landscape: synthetic
time:
  start: 2015-08-10T00:00
  end: 2015-08-11T06:00
model:
  ensemble_size: 4
forcing:
  source: synthetic
observations:
  - name: smap
    source: smap_l2_sm_p
    paths: [{granule}]
    kind: sm
    error: 0.04
    background_k: 4
assimilation:
  filter: letkf
  loc_radius_km: 40
comparison:
  methods: []
output:
  dir: out
  figures: false
"""


@pytest.mark.mpi
def test_eight_oversubscribed_ranks_equal_one_on_real_smap_retrievals(tmp_path, sample_data, monkeypatch):
    """8 ranks on this 2-core machine (mpich's hydra oversubscribes without a flag), one 36 km pixel each, equal
    bit for bit to 1 rank: every variable of every netCDF file, the final checkpoint included, and the text outputs."""
    monkeypatch.setenv("OMPI_MCA_rmaps_base_oversubscribe", "1")  # a system Open MPI 4 refuses more ranks than cores
    monkeypatch.setenv("PRTE_MCA_rmaps_default_mapping_policy", ":OVERSUBSCRIBE")  # and Open MPI 5 (PRRTE)
    granule = sample_data / "smap" / "SMAP_L2_SM_P_02801_A_20150811T013002_R18290_001.h5"
    outs, logs = {}, {}
    for ranks in (1, 8):
        d = tmp_path / f"r{ranks}"
        d.mkdir()
        (d / "case.yaml").write_text(REAL_CASE.format(granule=granule))
        logs[ranks] = smda("run", d / "case.yaml", ranks=ranks).stderr
        outs[ranks] = d / "out"
    files = sorted(p.relative_to(outs[1]) for p in outs[1].rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(outs[8]) for p in outs[8].rglob("*") if p.is_file())
    assert {"tiny_daily.nc", "products/analysis.nc", "products/satellite.nc", "restart/tiny_2015-08-11T06.nc"} <= set(
        map(str, files))
    for f in files:
        if f.suffix != ".nc":
            assert (outs[1] / f).read_text() == (outs[8] / f).read_text(), f
            continue
        with xr.open_dataset(outs[1] / f) as a, xr.open_dataset(outs[8] / f) as b:
            assert sorted(a.variables) == sorted(b.variables), f
            for v in a.variables:
                np.testing.assert_array_equal(a[v].values, b[v].values, err_msg=f"{f}:{v}")
    used = int(re.search(r"run finished: .*; \d+ observations, (\d+) used", logs[1]).group(1))
    assert used > 0 and "analysis 2015-08-11T03:00" in logs[8]
    with xr.open_dataset(outs[1] / "products" / "analysis.nc") as a, xr.open_dataset(outs[1] / "products" / "openloop.nc") as o:
        assert a.sizes["y"] == 72 and a.sizes["x"] == 144  # 8 pixels: every rank has one
        assert not np.array_equal(a["sm_surface"].values, o["sm_surface"].values)  # the analysis moved the state


def _start(case_path):
    cmd = [sys.executable, "-m", "smda.run.cli", "run", str(case_path)]
    env = {**os.environ, "NUMBA_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)


def test_sigterm_checkpoints_and_the_continued_run_equals_the_uninterrupted_one(tmp_path):
    full, cut = case(tmp_path, sub="full"), case(tmp_path, sub="cut")
    smda("run", full)
    with _start(cut) as proc:
        for line in proc.stderr:  # wait until the time loop has passed its first analysis
            if "analysis 2019-05-03" in line:
                proc.send_signal(signal.SIGTERM)
                break
        rest = proc.stderr.read()
        assert proc.wait(timeout=120) == EXIT_STOPPED, rest[-2000:]
    out = cut.parent / "out"
    ckpt = sorted((out / "restart").glob("*.nc"))
    assert len(ckpt) == 1 and "stop requested by SIGTERM" in rest
    assert not [p for p in out.rglob("*") if p.is_file() and "restart" not in p.parts and p.suffix != ".part"]
    assert not (out / ".smda.lock").exists()
    smda("run", cut, "--restart", ckpt[0])
    assert_same_outputs(full.parent / "out", out)


def test_a_second_run_into_a_locked_folder_is_refused_at_once(tmp_path):
    a = case(tmp_path)
    out = a.parent / "out"
    out.mkdir()
    lock = {"host": socket.gethostname(), "pid": os.getpid(), "started": "2026-01-01T00:00:00", "case": "tiny"}
    (out / ".smda.lock").write_text(pd.Series(lock).to_json())
    t0 = time.perf_counter()
    r = smda("run", a, check=False)
    assert r.returncode == 1 and f"pid {os.getpid()}" in r.stderr and socket.gethostname() in r.stderr
    assert "smda.progress" not in r.stderr and time.perf_counter() - t0 < 60
    assert (out / ".smda.lock").exists()  # the other run's lock is left alone


def test_a_cycle_whose_observations_are_all_rejected_is_counted_and_does_not_crash(tmp_path):
    nl = load(case(tmp_path))
    drv = Driver(nl)
    drv.run(stop_after_days=1)
    t = drv.time_of(drv.step0)
    veg = drv.exp.vegetation_on(122.0)
    src = drv.source.children[0]  # the one synthetic source
    table, sm = src._observe(drv.step0, t, np.ones(len(src.pixels), bool), veg)
    table = table.with_qc(np.ones(len(table), bool), "rfi")
    before, counts = drv.analysis.state.data.copy(), (drv.cycle, drv.n_obs, drv.n_used)
    drv._cycle(drv.step0, t, veg, table, {"satellite": sm[src.cell_pixel]})
    np.testing.assert_array_equal(drv.analysis.state.data, before)  # the analysis is the background
    assert (drv.cycle, drv.n_obs, drv.n_used) == (counts[0] + 1, counts[1] + len(table), counts[2])
    rows = pd.read_csv(drv.rec.part("tiny_obs_diagnostics.csv"))
    assert (rows["qc_reason"] == "rfi").sum() == len(table)


def test_an_open_loop_spin_up_continues_with_the_letkf(tmp_path):
    spin = case(tmp_path, filter="none", end="2019-05-04T00:00", sub="spin")
    smda("run", spin)
    ckpt = sorted((spin.parent / "out" / "restart").glob("*.nc"))[-1]
    r = smda("run", spin, "--restart", ckpt, "--set", "assimilation.filter=letkf",
             "--set", "time.end=2019-05-06T00:00", "--set", f"output.dir={spin.parent / 'assim'}")
    out = spin.parent / "assim"
    assert "the analysis ensemble starts from the open-loop ensemble" in r.stderr
    with xr.open_dataset(out / "tiny_analysis.nc") as ds:
        assert ds["time"].values.min() > np.datetime64("2019-05-04T00:00")
        assert "sm_surface_analysis_mean" in ds and ds.sizes["time"] > 0
    d = pd.read_csv(out / "tiny_obs_diagnostics.csv")
    assert (d["qc"] == 0).sum() > 0


def test_an_ensemble_resized_on_restart_continues_every_member_from_a_stored_one(tmp_path):
    a = case(tmp_path, end="2019-05-04T00:00")
    smda("run", a, "--stop-after-days", 1)
    ckpt = sorted((a.parent / "out" / "restart").glob("*.nc"))[-1]
    r = smda("run", a, "--restart", ckpt, "--set", "model.ensemble_size=9", "--set", f"output.dir={a.parent / 'resized'}")
    assert "ensemble resized from 6 to 9 members" in r.stderr
    final = sorted((a.parent / "resized" / "restart").glob("*.nc"))[-1]
    with xr.open_dataset(final) as ds:
        assert ds["state_analysis"].shape[2] == 9 and ds["pert_values"].shape[1] == 9
        x = ds["state_openloop"].values
    assert np.all(np.isfinite(x)) and not np.array_equal(x[:, :, 6], x[:, :, 0])  # the copies have parted


def test_a_damaged_checkpoint_is_refused(tmp_path):
    import netCDF4

    a = case(tmp_path, end="2019-05-04T00:00")
    smda("run", a, "--stop-after-days", 1)
    ckpt = sorted((a.parent / "out" / "restart").glob("*.nc"))[-1]
    with netCDF4.Dataset(ckpt, "a") as ds:
        ds["state_openloop"][0, 0, 0] = ds["state_openloop"][0, 0, 0] + 1e-9
    r = smda("run", a, "--restart", ckpt, check=False)
    assert r.returncode == 1 and "checksum mismatch" in r.stderr


def test_a_stopped_run_continued_with_other_outputs_is_told_to_use_a_new_folder(tmp_path):
    a = case(tmp_path, filter="none")
    smda("run", a, "--stop-after-days", 2)
    ckpt = sorted((a.parent / "out" / "restart").glob("*.nc"))[-1]
    r = smda("run", a, "--restart", ckpt, "--set", "assimilation.filter=letkf", check=False)
    assert r.returncode == 1 and "continue into a new output.dir" in r.stderr
    smda("run", a, "--restart", ckpt, "--set", "assimilation.filter=letkf", "--set", f"output.dir={a.parent / 'assim'}")
