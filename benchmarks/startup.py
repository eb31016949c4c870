"""Start-up of ``smda run``: seconds to the first log line and to the first model step, cold and warm.

Cold: an empty numba cache (``NUMBA_CACHE_DIR`` pointed at a fresh folder), as after an install; warm:
the same folder again, as for every later run. The case is the default twin cut to one day on one 36 km
pixel, so the time loop itself is short. Medians of ``--repeat`` warm runs; one cold run.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CASE = ["--set", "time.end=2019-05-02T00:00", "--set", "domain.size_km=[36, 36]", "--set", "model.ensemble_size=4",
        "--set", "output.figures=false", "--set", "comparison.methods=[]"]


def one(cache: str, out: str) -> dict:
    env = {**os.environ, "NUMBA_CACHE_DIR": cache, "NUMBA_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "smda.run.cli", "run", str(REPO / "namelists" / "osse_default.yaml"), *CASE,
           "--set", f"output.dir={out}"]
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    marks = {}
    for line in p.stderr:
        now = time.perf_counter() - t0
        marks.setdefault("first log line", now)
        if re.search(r"time loop: steps", line):
            marks["first step"] = now
    marks["end"] = time.perf_counter() - t0
    if p.wait() != 0:
        sys.exit(f"smda run failed ({p.returncode})")
    return marks


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="smda-startup-") as tmp:
        cold = one(f"{tmp}/cache", f"{tmp}/out0")
        warm = [one(f"{tmp}/cache", f"{tmp}/out{i + 1}") for i in range(args.repeat)]
    print(f"{'':16s} {'cold (s)':>9s} {'warm (s)':>9s} {'cold/warm':>9s}")
    for k in ("first log line", "first step", "end"):
        w = statistics.median(m[k] for m in warm)
        print(f"{k:16s} {cold[k]:9.2f} {w:9.2f} {cold[k] / w:9.1f}")


if __name__ == "__main__":
    main()
