"""Progress of long runs on rank 0: simulated time, speed and ETA as log lines."""

from __future__ import annotations

import logging
import time

log = logging.getLogger("smda.progress")


class Progress:
    """Logs about every ``every`` fraction of the run (rank 0 only; other ranks pass enabled=False)."""

    def __init__(self, n_steps: int, work_per_step: float, *, enabled: bool = True, every: float = 0.1):
        self.n, self.work, self.enabled = max(int(n_steps), 1), work_per_step, enabled
        self.every = every
        self.t0 = time.perf_counter()
        self.next = every
        self.done = 0

    def update(self, step_done: int, sim_time) -> None:
        self.done = step_done
        frac = step_done / self.n
        if not self.enabled or frac + 1e-12 < self.next:
            return
        while self.next <= frac + 1e-12:
            self.next += self.every
        el = time.perf_counter() - self.t0
        eta = el / frac * (1 - frac) if frac > 0 else float("nan")
        bar = "#" * int(20 * frac) + "." * (20 - int(20 * frac))
        log.info("[%s] %3.0f%%  %s  %.2e cell-member-steps/s  elapsed %.0f s  ETA %.0f s",
                 bar, 100 * frac, str(sim_time)[:16], self.rate(), el, eta)

    def rate(self) -> float:
        el = time.perf_counter() - self.t0
        return self.done * self.work / el if el > 0 else 0.0

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.t0
