"""How many runs go side by side. A reload cycle is mostly waiting (for Apache's one-second tick, a daemon's
start, a probe's deadline), so a fixed two per core leaves most of the machine idle; `--jobs auto` admits
another run whenever the CPU and memory measured now allow one, and stops admitting before the machine is
so busy that a starved request could pass for a hang.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import psutil

CPU_BUSY_LIMIT = 70.0  # percent of all cores busy: above it no new run starts
MEMORY_PER_RUN = 80 * 1024 * 1024  # a server (parent, worker, daemon with an app) or a driver, with margin
MEMORY_FLOOR = 512 * 1024 * 1024  # always left free
SETTLE = 0.25  # between two admissions, so the last one's start shows in the measurement
MAX_RUNS = 48  # a hard cap whatever the machine says


@dataclass
class Admission:
    """Fixed (`jobs`) or measured (`jobs` None: auto) admission of runs."""

    jobs: int | None
    cores: int = field(default_factory=lambda: os.cpu_count() or 1)
    _last: float = 0.0

    def __post_init__(self) -> None:
        psutil.cpu_percent(interval=None)  # starts the measurement window

    @property
    def workers(self) -> int:
        """Threads to have ready: every run that may ever be admitted at once."""
        return self.jobs if self.jobs is not None else MAX_RUNS

    @property
    def floor(self) -> int:
        """Runs admitted without measuring: the start of any session."""
        return self.jobs if self.jobs is not None else max(2, 2 * self.cores)

    def room(self, running: int) -> bool:
        if self.jobs is not None:
            return running < self.jobs
        if running >= MAX_RUNS:
            return False
        if running < self.floor:
            return True
        if time.monotonic() - self._last < SETTLE:
            return False
        busy = psutil.cpu_percent(interval=None)
        free = psutil.virtual_memory().available
        return busy < CPU_BUSY_LIMIT and free > MEMORY_FLOOR + MEMORY_PER_RUN

    def admitted(self) -> None:
        self._last = time.monotonic()

    def describe(self) -> str:
        if self.jobs is not None:
            return f"{self.jobs} at a time"
        return f"as many at a time as the CPU (under {CPU_BUSY_LIMIT:.0f}% busy) and memory allow"
