"""End-to-end throughput of a real-data case per core, by stage, and its weak scaling from 1 to 2 MPI ranks.

The case is namelists/real_site_template.yaml (real SMAP L2 soil moisture, open loop + LETKF, no truth run, every
output streamed: analysis records, products, daily means, diagnostics) moved onto a block of 36 km pixels of the
real SMAP L2 half-orbit sample (../shared/data/smap, central Yukon) where every pixel has retrievals: 1 rank runs
M36 rows 18-21 x columns 122-125 (4 x 4 pixels, 20736 cells), 2 ranks columns 122-129 (4 x 8 pixels): the same work
per rank. Synthetic weather and landscape, as the template ships.

The sample is one overpass (2015-08-11, about 02 UTC). For a run of several days the benchmark writes copies of
the granule that differ from it only in the acquisition times (``tb_time_seconds``, ``tb_time_utc``) and the date in
the file name, both shifted by whole days: one overpass a day at the sample's time of day, with the real
retrievals, quality flags and geometry. The retrieved values repeat from day to day; the cost does not depend on them.

Printed: cell-member-steps per second per core (cells x members x steps x ensembles advanced, open loop and
analysis), over the time loop, over the whole process, and per CPU second of all processes (the figure least
disturbed by other jobs on a shared machine); the time by stage of rank 0 (setup = process start to the first
step: interpreter, namelist, domain, product reading, kernel cache; model (weather, forcing perturbations and the
land surface model), sources (the per-step lookup of the observations due), observations (the observation
operator), analysis and output from the driver's timers; other = the rest of the loop: QC, screening, the gathered
filter view, the per-step stop-signal check (a collective: where ranks wait for each other); finish = the final
checkpoint, rescaling fits and renaming the outputs); the weak-scaling efficiency t(1 rank) / t(2 ranks); and the
1-minute load average sampled during each run (the run itself adds about one per rank; the machine is shared); with
``--repeat``, the fastest time loop of each rank count (on a shared machine the 2-rank run goes at the pace of its
rank slowed most by other jobs). Usage:
    python benchmarks/real_throughput.py [--days 5] [--members 32] [--repeat 1]
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parent.parent
SAMPLE = Path(os.environ.get("SMDA_SAMPLE_DATA", REPO.parent / "shared" / "data"))
GRANULE = "SMAP_L2_SM_P_02801_A_20150811T013002_R18290_001.h5"
START = np.datetime64("2015-08-10T00:00")
ROW0, COL0, ROWS, COLS_PER_RANK = 18, 122, 4, 4  # M36 pixels with retrievals in the sample (rows 17-23, cols 118-134)
MPIEXEC = str(Path(sys.executable).parent / "mpiexec")
STAGES = ("setup", "model", "sources", "observations", "analysis", "output", "other", "finish")


def shifted_granules(folder: Path, days: int) -> str:
    """Copies of the sample granule shifted by -1 .. days - 2 whole days (one overpass on each day of a run that
    starts the day before the sample); returns their glob."""
    import h5py

    src = SAMPLE / "smap" / GRANULE
    stamp = re.search(r"_(\d{8}T\d{6})_", GRANULE).group(1)
    t0 = np.datetime64(f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[9:11]}:{stamp[11:13]}:{stamp[13:]}")
    for k in range(-1, days - 1):
        shift = np.timedelta64(k, "D")
        name = GRANULE.replace(stamp, str(t0 + shift).replace("-", "").replace(":", ""))
        dst = folder / name
        shutil.copyfile(src, dst)
        with h5py.File(dst, "r+") as f:
            g = f["Soil_Moisture_Retrieval_Data"]
            secs = g["tb_time_seconds"][...]
            g["tb_time_seconds"][...] = np.where(secs > -1e6, secs + 86400.0 * k, secs)  # (no fill in the sample)
            utc = g["tb_time_utc"][...]  # e.g. b"2015-08-11T02:21:22.474Z" (some with "***" milliseconds): new dates
            day = np.array([u[:10].decode() for u in utc], "datetime64[D]") + shift
            g["tb_time_utc"][...] = [d.encode() + u[10:] for d, u in zip(np.datetime_as_string(day), utc, strict=True)]
    return str(folder / GRANULE.replace(stamp, "*"))


def case(folder: Path, ranks: int, days: int, members: int, granules: str) -> Path:
    """The template moved onto ``ranks`` blocks of ROWS x COLS_PER_RANK pixels, ``days`` long, written to ``folder``."""
    from smda.model.grid import GRIDS

    nl = yaml.safe_load((REPO / "namelists" / "real_site_template.yaml").read_text())
    cols = COLS_PER_RANK * ranks
    lat, lon = GRIDS["M36"].latlon(ROW0 + (ROWS - 1) / 2, COL0 + (cols - 1) / 2)
    nl["domain"].update(centre=[round(float(lat), 5), round(float(lon), 5)], size_km=[36 * cols, 36 * ROWS])
    nl["time"] = {"start": str(START), "end": str(START + np.timedelta64(days, "D"))}
    nl["model"]["ensemble_size"] = members
    nl["observations"][0]["paths"] = [granules]
    nl["output"] = {"dir": str(folder / f"out{ranks}"), "figures": False, "daily_means": True}
    path = folder / f"real{ranks}.yaml"
    path.write_text(yaml.safe_dump(nl, sort_keys=False))
    return path


class LoadSampler:
    """The 1-minute load average every second while the block runs."""

    def __init__(self):
        self.samples, self._stop = [], threading.Event()

    def __enter__(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(1.0):
            self.samples.append(os.getloadavg()[0])

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.samples.append(os.getloadavg()[0])


def run(path: Path, ranks: int) -> dict:
    """Run the case; seconds by stage (rank 0), the work done and the load average during the run."""
    cmd = [sys.executable, "-m", "smda.run.cli", "run", str(path), "-v"]
    if ranks > 1:
        cmd = [MPIEXEC, "-n", str(ranks), *cmd]
    env = {**os.environ, "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    lines = []
    with LoadSampler() as load:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)
        first_step = None
        for line in p.stderr:
            lines.append(line)
            if first_step is None and "time loop: steps" in line:
                first_step = time.perf_counter() - t0
        p.stderr.close()
        _, status, usage = os.wait4(p.pid, 0)  # CPU time of the run and its waited-for children (the ranks)
        wall = time.perf_counter() - t0
    log = "".join(lines)
    if os.waitstatus_to_exitcode(status) != 0 or first_step is None:
        sys.exit(log[-3000:])
    steps, cells, members = map(int, re.search(r"steps \d+ to (\d+) of \d+ .*?, (\d+) land cells x (\d+) members",
                                               log).groups())
    loop = float(re.search(r"run finished: ([0-9.]+) s wall", log).group(1))
    obs, used = map(int, re.search(r"; (\d+) observations, (\d+) used", log).groups())
    parts = {k: float(v) for k, v in re.findall(r"(\w+) ([0-9.]+) s", log.split("time by part on rank 0:")[1].split("\n")[0])}
    stages = {"setup": first_step, **parts, "other": max(loop - sum(parts.values()), 0.0),
              "finish": max(wall - first_step - loop, 0.0)}
    return {"wall": wall, "loop": loop, "work": steps * cells * members, "stages": stages, "ranks": ranks,
            "cpu": usage.ru_utime + usage.ru_stime,
            "cycles": len(re.findall(r"INFO smda.run.driver: analysis ", log)), "obs": obs, "used": used,
            "load": (float(np.mean(load.samples)), max(load.samples))}


def report(r: dict, label: str):
    per_core_loop = r["work"] / r["loop"] / r["ranks"]
    per_core_all = r["work"] / r["wall"] / r["ranks"]
    print(f"  {label}: {r['work']:.3g} cell-member-steps, {r['cycles']} analyses ({r['used']}/{r['obs']} obs used)")
    print(f"    per core: {per_core_loop:.3g} cell-member-steps/s over the time loop ({r['loop']:.1f} s), "
          f"{per_core_all:.3g} over the whole process ({r['wall']:.1f} s); {r['work'] / r['cpu']:.3g} per CPU second "
          f"({r['cpu']:.1f} CPU s, all processes: what a quiet core would give, MPI waits that spin included)")
    print("    by stage (rank 0): " + ", ".join(f"{k} {r['stages'][k]:.1f} s ({100 * r['stages'][k] / r['wall']:.0f}%)"
                                                for k in STAGES))
    print(f"    1-min load average during the run: mean {r['load'][0]:.2f}, max {r['load'][1]:.2f} "
          f"({r['ranks']} from the run itself)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--days", type=int, default=5, help="run length (days; one analysis a day)")
    ap.add_argument("--members", type=int, default=32, help="ensemble size (the open loop and the analysis each)")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each rank count, interleaved; the fastest is shown")
    a = ap.parse_args()
    if a.days < 2 or a.repeat < 1:
        ap.error("--days must be at least 2 and --repeat at least 1")
    if not (SAMPLE / "smap" / GRANULE).is_file():
        print(f"real_throughput: skipped, no real SMAP L2 sample at {SAMPLE / 'smap' / GRANULE} (set SMDA_SAMPLE_DATA)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        granules = shifted_granules(tmp, a.days)
        (tmp / "warm").mkdir()
        run(case(tmp / "warm", 1, 2, 4, granules), 1)  # compile and cache the numba kernels first
        runs = {1: [], 2: []}
        for i in range(a.repeat):  # each run into its own folder
            (tmp / f"run{i}").mkdir()
            for ranks, done in runs.items():
                done.append(run(case(tmp / f"run{i}", ranks, a.days, a.members, granules), ranks))
        one, two = (min(done, key=lambda r: r["loop"]) for done in runs.values())
    print(f"real-data end to end: SMAP L2 soil moisture (sample granule repeated daily), {a.days} days hourly, "
          f"{a.members} members, open loop + LETKF, no truth run, outputs streamed")
    report(one, f"1 rank , {ROWS} x {COLS_PER_RANK} M36 pixels")
    report(two, f"2 ranks, {ROWS} x {2 * COLS_PER_RANK} M36 pixels")
    print(f"  weak-scaling efficiency 1 -> 2 ranks: {one['loop'] / two['loop']:.2f} (time loop), "
          f"{one['wall'] / two['wall']:.2f} (whole process), {2 * one['cpu'] / two['cpu']:.2f} (CPU seconds per rank; "
          "on a shared machine the figure nearest a quiet one)")


if __name__ == "__main__":
    main()
