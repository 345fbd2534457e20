"""Crash detection: from the moment a process dies to its crashed cycle being recorded, under Apache
(a daemon killed by SIGSEGV in a request) and under the embedding driver.

The bench app (scenarios/crash_stamp) writes time.time() to fd 2 right before it reads address 0, so
the moment of death is in the run's error_log; the harness's cycle record says when it recorded the
outcome. Each crash must be counted once, and under Apache Apache's own AH00051/52 line must still be
attached to it as evidence.
"""

from __future__ import annotations

import re
from pathlib import Path

from bench.common import BENCH, CELL_PYTHON, Bench, BenchError, Figure, HarnessRun, Section, harness, median, table
from bench.common import timed as timed_section
from harness.model.outcome import Outcome
from harness.model.records import DeathSource

SCENARIO = BENCH / "scenarios" / "crash_stamp"
STAMP = re.compile(r"BENCH-DEATH pid=(\d+) t=([0-9.]+)")
GOAL = 0.10
MECHANISMS = (
    ("1a", "Apache daemon (sigusr1)", "sigusr1"),
    ("1b", "embedding driver (interpreter-cycle)", "interpreter-cycle"),
)


def stamps(error_log: Path) -> dict[int, float]:
    return {int(m[1]): float(m[2]) for m in STAMP.finditer(error_log.read_text(errors="replace"))}


def latencies(done: HarnessRun) -> tuple[list[float], list[str]]:
    """Death -> recorded for every crash, and what is wrong with the counting (nothing, if all is well)."""
    (run,) = done.record.runs
    died = stamps(done.session / run.folder / "error_log")
    recorded = {c.cycle: c.timestamps.outcome_recorded for c in done.cycles(run.folder)}
    problems = []
    if len(run.crashes) != len(died):
        problems.append(f"{len(run.crashes)} crash events for {len(died)} deaths")
    if len({c.pid for c in run.crashes}) != len(run.crashes):
        problems.append("a pid counted twice")
    found = []
    for crash in run.crashes:
        moment, at = died.get(crash.pid or -1), recorded.get(crash.cycle)
        if moment is not None and at is not None:
            found.append(at - moment)
    return found, problems


def measure(bench: Bench) -> Section:
    section = Section("Crash detection")
    cycles = "6" if bench.quick else "12"
    with timed_section(section):
        rows = []
        for number, name, mechanism in MECHANISMS:
            done = harness(bench, f"crash-{mechanism}", "run", "--scenario", str(SCENARIO), "--mechanism", mechanism,
                           "--cycles", cycles, "--python", CELL_PYTHON, "--jobs", "1", "--no-controls")  # fmt: skip
            (run,) = done.record.runs
            if run.verdict is not Outcome.CRASHED:
                raise BenchError(f"crash_stamp under {mechanism}: {run.verdict.value}, not crashed")
            found, problems = latencies(done)
            if not found:
                raise BenchError(f"crash_stamp under {mechanism}: no crash matched a death stamp")
            with_log = sum(1 for c in run.crashes if DeathSource.LOG in c.sources)
            note = f"max {max(found):.3f} s over {len(found)} crashes"
            if mechanism == "sigusr1":
                note += f"; Apache's AH00051/52 line attached to {with_log} of {len(run.crashes)}"
            note += "; " + ("; ".join(problems) if problems else "each death counted once")
            value = median(found)
            section.figures.append(Figure(number, f"Crash detection, {name}: death -> crashed cycle recorded, median",
                                          f"{value:.3f} s", f"<= {GOAL:.2f} s", value <= GOAL and not problems,
                                          note))  # fmt: skip
            rows += [
                (mechanism, crash.cycle, crash.pid, ", ".join(s.value for s in crash.sources)) for crash in run.crashes
            ]
        section.details += table(["mechanism", "cycle", "pid", "seen by"], rows)
    return section
