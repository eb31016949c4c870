"""Cluster-scale run: peak memory per rank against `smda info`'s estimate, and the time per step by part.

Runs the default twin experiment (synthetic landscape and weather; truth, open loop and LETKF analysis
ensembles; synthetic SMAP-like TB) three times under a small wrapper that reports each rank's peak RSS
(``ru_maxrss``) and, for the large case, writes each rank's cProfile:

1. baseline: 36 x 36 km, 2 members, 1 rank (Python, libraries and compiled kernels; the arrays are negligible);
2. small: 72 x 72 km, 8 members, 1 rank;
3. large: ``--size-km`` square (default 1008 km, about 1e6 land cells), ``--members`` (32), ``--days`` (2,
   at least one analysis cycle), ``--ranks`` (2) MPI ranks.

Prints, per case and rank, the land cells, the cell-members (land cells x the members of every run the rank
holds: truth 1, open loop N, analysis N), the ensemble state bytes (cell-members x 6 variables x 8 B),
`smda info --ranks N`'s peak estimate, the measured peak RSS with where it was reached (the innermost smda
calls at the largest 5 ms RSS sample) and their ratio, and the peak per cell-member, all included and above
the baseline case's peak; then the time per step of the large case by part, from the profiles (cumulative
times of Driver._step, lsm.step, Driver._equivalents, Filter.analyse, Recorder.record, ...).

Usage: python benchmarks/scale.py [--size-km 1008] [--members 32] [--days 2] [--ranks 2] [--no-profile]
(about 7 minutes and 18 GB with the defaults on 2 cores; on a machine with less memory available the
domain is shrunk until the estimate fits, with a note).
"""

import argparse
import os
import pstats
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from smda.run.decomp import decompose
from smda.run.info import BASELINE_MIB, MiB, memory_estimate
from smda.run.namelist import load
from smda.run.setup import make_domain

REPO = Path(__file__).resolve().parent.parent
NAMELIST = REPO / "namelists" / "osse_default.yaml"
MPIEXEC = str(Path(sys.executable).parent / "mpiexec")

# each rank: smda's CLI (under cProfile when SCALE_PROFILE names a folder), then its peak RSS on stdout and
# where it was reached: a thread samples the RSS every 5 ms and keeps the main thread's innermost smda calls
# at the largest sample
WRAPPER = """
import cProfile, os, resource, sys, threading, time
from smda.run.cli import main
main_thread, page, top, running = threading.get_ident(), os.sysconf("SC_PAGE_SIZE"), [0, ""], [True]
def sample():
    while running[0]:
        with open("/proc/self/statm") as f:
            rss = int(f.read().split()[1]) * page
        if rss > top[0]:
            frame, calls = sys._current_frames().get(main_thread), []
            while frame is not None and len(calls) < 3:
                module = frame.f_globals.get("__name__", "")
                if module.startswith("smda."):
                    calls.append(f"{module[5:]}.{frame.f_code.co_name}")
                frame = frame.f_back
            top[:] = [rss, " < ".join(calls)]
        time.sleep(0.005)
threading.Thread(target=sample, daemon=True).start()
folder = os.environ.get("SCALE_PROFILE")
prof = cProfile.Profile() if folder else None
rc = prof.runcall(main, sys.argv[1:]) if prof else main(sys.argv[1:])
running[0] = False
from mpi4py import MPI
rank = MPI.COMM_WORLD.rank
if prof:
    prof.dump_stats(os.path.join(folder, f"rank{rank}.prof"))
print(f"SCALE_PEAK rank={rank} kib={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss} at={top[1] or '?'}", flush=True)
sys.exit(rc)
"""

# parts of the time loop: (label, [(file name, function), ...], divided by steps, cycles or once); where a
# function moved between modules both places are listed (a profile holds only one)
PARTS = [
    ("model: weather, perturbations, LSM (Driver._step)", [("driver.py", "_step")], "step"),
    ("  of which LSM (lsm.step)", [("lsm.py", "step")], "step"),
    ("  of which forcing perturbations", [("perturb.py", "apply")], "step"),
    ("synthetic obs of the truth (SyntheticSource._observe)", [("driver.py", "_synthetic_obs"),
                                                             ("sources.py", "_observe")], "cycle"),
    ("obs operator: RTM + footprints, 2 per cycle (ObservationOperator.equivalents)",
     [("driver.py", "_equivalents"), ("operator.py", "equivalents")], "cycle"),
    ("  footprint weights of the cycle (PixelAggregator)", [("aggregate.py", "__init__")], "cycle"),
    ("analysis (Filter.analyse)", [("base.py", "analyse")], "cycle"),
    ("whole analysis cycle (Driver._cycle)", [("driver.py", "_cycle")], "cycle"),
    ("output records (Recorder.record, .rows)", [("recorder.py", "record"), ("recorder.py", "rows")], "step"),
    ("checkpoint (final, written rank by rank)", [("driver.py", "checkpoint")], "once"),
    ("end of run on rank 0 (products.finish)", [("products.py", "finish")], "once"),
    ("setup (Driver.__init__)", [("driver.py", "__init__")], "once"),
]


def overrides(size_km, members, days, out: Path, filt="letkf"):
    end = np.datetime64("2019-05-01T00:00") + np.timedelta64(int(round(days * 24)), "h")
    return [f"domain.size_km=[{size_km}, {size_km}]", f"model.ensemble_size={members}", f"time.end={end}",
            f"assimilation.filter={filt}", f"output.dir={out}", "output.figures=false"]


def run_case(sets, ranks: int, workdir: Path, profile: bool):
    """Run `smda run` with ``sets`` on ``ranks`` ranks: (peak RSS per rank in bytes, stderr, wall s, profile folder)."""
    prof = workdir / "profiles"
    prof.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-c", WRAPPER, "run", str(NAMELIST), "-v"] + [a for s in sets for a in ("--set", s)]
    if ranks > 1:
        cmd = [MPIEXEC, "-n", str(ranks), *cmd]
    env = {**os.environ, "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    if profile:
        env["SCALE_PROFILE"] = str(prof)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir, env=env)
    wall = time.perf_counter() - t0
    if r.returncode:
        sys.exit(f"{' '.join(cmd[:6])} ... failed:\n{r.stderr[-3000:]}")
    peaks = {int(m[1]): (int(m[2]) * 1024, m[3]) for m in re.finditer(r"SCALE_PEAK rank=(\d+) kib=(\d+) at=(.*)", r.stdout)}
    return [peaks[k] for k in sorted(peaks)], r.stderr, wall, prof


def cell_members(nl, ranks: int):
    """Land cells per rank, and the rank's cell-members: its cells x the members of every run it holds (truth 1,
    open loop N, analysis N), the denominator of the per cell-member figures (also of benchmarks/end_to_end.py)."""
    dom = make_domain(nl)
    dec = decompose(dom, ranks)
    land = np.flatnonzero(dom.land.ravel())
    cells = np.bincount(dec.rank_of_pixel[dec.pixel[land]], minlength=ranks)
    members = nl.twin + nl.model.ensemble_size * (1 + (nl.assimilation.filter != "none"))
    return cells, cells * members


def available_bytes():
    """MemAvailable of /proc/meminfo (None where there is none)."""
    try:
        with open("/proc/meminfo") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable"))
    except (OSError, StopIteration):
        return None


def fitting_size(size_km, members, days, ranks, filt):
    """The largest domain side (km, down from ``size_km`` in steps of 2 pixels) whose estimated peak, all ranks
    together, fits in 90 % of the available memory."""
    avail = available_bytes()
    while avail is not None and size_km > 72:
        est = memory_estimate(load(NAMELIST, overrides(size_km, members, days, Path("out"), filt)), ranks)
        if est[0].peak + (ranks - 1) * est[-1].peak <= 0.9 * avail:
            break
        size_km -= 72
    return size_km


def memory_rows(name, sets, ranks, peaks, baseline):
    """Table rows of a case: per rank the estimate, the measured peak and where, and the peak per cell-member
    all included and above ``baseline`` (bytes: the baseline case's peak)."""
    nl = load(NAMELIST, sets)
    cells, cm = cell_members(nl, ranks)
    est = memory_estimate(nl, ranks)
    rows = []
    for r, (peak, where) in enumerate(peaks):
        e = est[0] if r == 0 else est[-1]  # rank 0, or the other rank with the most cells
        rows.append(f"| {name} | {r} | {cells[r]} | {cm[r]:.3g} | {cm[r] * 6 * 8 / MiB:.0f} | {e.peak / MiB:.0f} "
                    f"({e.peak_phase}) | {peak / MiB:.0f} ({where}) | {e.peak / peak:.2f} | {peak / cm[r]:.0f} | "
                    f"{(peak - baseline) / cm[r]:.0f} |")
    return rows


def profile_split(prof: Path, ranks: int, n_steps: int, n_cycles: int):
    """Seconds per step / cycle / run of each part in PARTS, per rank, from the cProfile files."""
    table = []
    stats = [pstats.Stats(str(prof / f"rank{r}.prof")).stats for r in range(ranks)]
    for label, funcs, per in PARTS:
        div = {"step": n_steps, "cycle": max(n_cycles, 1), "once": 1}[per]
        vals = []
        for st in stats:
            # per (file, function): the outermost of same-named functions (Driver.__init__ calls ModelRun.__init__)
            ct = sum(max((v[3] for (fn, _, name), v in st.items() if fn.endswith("/" + f) and name == g), default=0.0)
                     for f, g in funcs)
            vals.append(f"{ct / div:.3f}")
        table.append(f"| {label} | per {per} | " + " | ".join(vals) + " |")
    return table


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-km", type=int, default=1008, help="side of the square domain (km; 28 SMAP pixels = 1008)")
    ap.add_argument("--members", type=int, default=32)
    ap.add_argument("--days", type=float, default=2.0, help="simulated days from 2019-05-01 (>= 1 analysis cycle)")
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--filter", default="letkf")
    ap.add_argument("--no-profile", action="store_true", help="do not profile the large case")
    ap.add_argument("--large-only", action="store_true", help="skip the baseline and small cases")
    args = ap.parse_args()

    mem = ["| case | rank | land cells | cell-members | state MiB | estimate MiB (peak phase) | measured peak RSS MiB "
           "(where) | estimate / measured | B per cell-member | above baseline |",
           "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|"]
    baseline = BASELINE_MIB * MiB  # (the estimate's, unless measured below)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if not args.large_only:
            for name, size, members, days in (("baseline", 36, 2, 3), ("small", 72, 8, 3)):
                sets = overrides(size, members, days, tmp / name / "out", args.filter)
                peaks, _, wall, _ = run_case(sets, 1, tmp / name, profile=False)
                baseline = peaks[0][0] if name == "baseline" else baseline
                mem += memory_rows(f"{name}: {size} km, {members} members, 1 rank", sets, 1, peaks, baseline)
                print(f"{name} case: {wall:.0f} s", flush=True)
        size = fitting_size(args.size_km, args.members, args.days, args.ranks, args.filter)
        if size != args.size_km:
            print(f"note: {args.size_km} km does not fit in the available memory; running {size} km", flush=True)
            args.size_km = size
        sets = overrides(args.size_km, args.members, args.days, tmp / "large" / "out", args.filter)
        peaks, log, wall, prof = run_case(sets, args.ranks, tmp / "large", profile=not args.no_profile)
        mem += memory_rows(f"large: {args.size_km} km, {args.members} members, {args.ranks} ranks", sets, args.ranks,
                           peaks, baseline)
        n_cycles = len(re.findall(r"smda.run.driver: analysis ", log))
        n_steps = int(round(args.days * 24))
        loop = re.search(r"run finished: ([0-9.]+) s wall, ([0-9.e+]+) cell-member-steps/s", log)
        print(f"\nscale: {args.size_km} x {args.size_km} km, {args.members} members, {args.days:g} days ({n_steps} "
              f"hourly steps), {args.filter}, {args.ranks} ranks: {n_cycles} analysis cycles, wall {wall:.0f} s "
              f"(time loop {loop[1]} s, {float(loop[2]):.3g} cell-member-steps/s)")
        if n_cycles == 0:
            print("WARNING: no analysis cycle in the period: use more --days")
        print("\nmemory per rank (peak RSS from ru_maxrss, where: innermost smda calls at the largest 5 ms sample; "
              "estimate from `smda info --ranks N`; per cell-member: land cells x members of the truth, open loop and "
              f"analysis; baseline {baseline / MiB:.0f} MiB, {'measured' if not args.large_only else 'estimated'})\n")
        print("\n".join(mem))
        if not args.no_profile:
            print("\ntime by part (s, cProfile cumulative time / steps, / cycles or once) of the large case\n")
            print("| part | per | " + " | ".join(f"rank {r}" for r in range(args.ranks)) + " |")
            print("|---|---|" + "---:|" * args.ranks)
            print("\n".join(profile_split(prof, args.ranks, n_steps, n_cycles)))
        timers = re.search(r"time by part on rank 0: (.*)", log)  # the driver's own timers, where it logs them
        if timers:
            print(f"\ndriver timers, rank 0 (whole run): {timers[1]}")


if __name__ == "__main__":
    main()
