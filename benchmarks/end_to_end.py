"""End-to-end throughput of `smda run` and weak scaling from 1 to 2 MPI ranks.

Runs the default twin experiment's physics on a domain of 2 x 2 coarse pixels with 1 rank, then
2 x 4 pixels with 2 ranks (same work per rank), and prints wall times, cell-member-steps per second,
the weak-scaling efficiency t(1 rank) / t(2 ranks) and the peak resident memory (largest process) per
cell-member: all included, and above that of the 1 x 1 pixel, 2-day compile run (the interpreter,
libraries and kernels). A rank's cell-members are its land cells times the members of every run it holds
(truth 1, open loop N, analysis N), as in benchmarks/scale.py and `smda info`. Usage: python benchmarks/end_to_end.py [days]
The real-data configuration (no truth run), per core and by stage: benchmarks/real_throughput.py.
"""

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MPIEXEC = str(Path(sys.executable).parent / "mpiexec")
MEMBERS = 24


def run(ranks: int, width_km: int, days: int, workdir: Path) -> tuple[float, float, int]:
    """Wall seconds, the time loop's cell-member-steps per second, and the peak RSS (bytes) of the largest process."""
    out = workdir / f"r{ranks}"
    cmd = [sys.executable, "-m", "smda.run.cli", "run", str(REPO / "namelists" / "osse_default.yaml"), "-v",
           "--set", f"domain.size_km=[{width_km}, 72]", "--set", f"time.end=2019-05-{1 + days:02d}T00:00",
           "--set", f"model.ensemble_size={MEMBERS}", "--set", f"output.dir={out}", "--set", "output.figures=false"]
    if ranks > 1:
        cmd = [MPIEXEC, "-n", str(ranks), *cmd]
    env = {**os.environ, "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as err:
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, text=True, cwd=REPO, env=env)
        _, status, usage = os.wait4(p.pid, 0)  # ru_maxrss (KiB): the largest of the process and its children
        wall = time.perf_counter() - t0
        err.seek(0)
        log = err.read()
    if os.waitstatus_to_exitcode(status):
        sys.exit(log[-2000:])
    rate = float(re.search(r"([0-9.e+]+) cell-member-steps/s;", log).group(1))
    return wall, rate, usage.ru_maxrss * 1024


def main():
    days = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    with tempfile.TemporaryDirectory() as tmp:
        _, _, base = run(1, 36, 2, Path(tmp))  # compile and cache the numba kernels first
        w1, r1, m1 = run(1, 72, days, Path(tmp))
        w2, r2, m2 = run(2, 144, days, Path(tmp))
    print(f"end-to-end, {days} days hourly, 24 members, truth + open loop + LETKF analysis")
    print(f"  1 rank , 72 x 72 km : wall {w1:6.1f} s, {r1:.3g} cell-member-steps/s (time loop)")
    print(f"  2 ranks, 144 x 72 km: wall {w2:6.1f} s, {r2:.3g} cell-member-steps/s (time loop)")
    print(f"  weak-scaling efficiency (wall 1 rank / wall 2 ranks): {w1 / w2:.2f}; "
          f"time-loop rate ratio {r2 / r1:.2f} (ideal 2)")
    cm = 72 * 72 * (1 + 2 * MEMBERS)  # cell-members of one rank in both runs: truth, open loop, analysis
    print(f"  peak RSS of a rank: {m1 / 2**20:.0f} MiB (1 rank), {m2 / 2**20:.0f} MiB (2 ranks), compile run "
          f"{base / 2**20:.0f} MiB; per cell-member of a rank ({cm} = 72 x 72 cells x (1 + 2 x {MEMBERS}) "
          f"members): {m1 / cm:.0f} B all included, {(m1 - base) / cm:.0f} B above the compile run")


if __name__ == "__main__":
    main()
