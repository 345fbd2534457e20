"""The README's test command, timed as a user runs it (warm caches: the cells exist already)."""

from __future__ import annotations

import re

from bench.common import PYTHON, Bench, BenchError, Figure, Section, run, timed

GOAL = 8 * 60


def measure(bench: Bench) -> Section:
    section = Section("The README's test command")
    with timed(section):
        done = run(bench, [str(PYTHON), "-m", "pytest", "-q", "-p", "no:cacheprovider"], timeout=3600)
    tail = done.stdout.strip().splitlines()[-1:] or ["(no output)"]
    if done.returncode != 0:
        raise BenchError(f"the test command failed: {tail[0]}")
    counts = re.sub(r" in [0-9.]+s.*$", "", tail[0].strip("= "))
    section.figures.append(Figure(
        "7", "The README's test command (python -m pytest), warm caches", f"{done.wall / 60:.1f} min",
        f"<= {GOAL // 60} min", done.wall <= GOAL, counts,
    ))  # fmt: skip
    return section
