"""Timing helper of the benchmark scripts: the median of repeated calls after a warm-up (JIT compilation)."""

import statistics
import time


def median_time(fn, repeat=7, clock=time.perf_counter):
    """Median seconds of ``repeat`` calls of ``fn()`` after one warm-up call.

    ``clock=time.process_time`` measures this process's CPU time (the machines are shared and noisy).
    """
    fn()
    times = []
    for _ in range(repeat):
        t0 = clock()
        fn()
        times.append(clock() - t0)
    return statistics.median(times)
