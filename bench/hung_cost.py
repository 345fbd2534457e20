"""What a hung cycle costs under Apache: the block control (every request waits forever) for a few
cycles; each cycle's cost is from the previous cycle's recorded outcome to its own, so the probe's
deadline, the stack dump, the kill and the next daemon's start are all in it."""

from __future__ import annotations

from bench.common import CELL_PYTHON, REPO, Bench, BenchError, Figure, Section, harness, table, timed
from harness.model import scenario as scenarios
from harness.model.outcome import Outcome
from harness.model.records import Phase

SCENARIO = REPO / "scenarios" / "block"
ALLOWANCE = 3.0  # what a hung cycle may cost beyond the probe's own deadline


def measure(bench: Bench) -> Section:
    section = Section("Hung cycles")
    deadline = scenarios.load(SCENARIO / scenarios.SCENARIO_FILE).probes[0].timeout
    with timed(section):
        done = harness(bench, "hung", "run", "--scenario", str(SCENARIO), "--mechanism", "sigusr1", "--cycles", "3",
                       "--python", CELL_PYTHON, "--jobs", "1", "--no-controls")  # fmt: skip
        (run,) = done.record.runs
        records = done.cycles(run.folder)
        previous = run.started
        costs, rows = [], []
        for record in records:
            recorded = record.timestamps.outcome_recorded
            if recorded is None:
                continue
            cost = recorded - previous
            previous = recorded
            if record.phase is not Phase.STOP:
                rows.append((record.cycle, record.phase.value, record.outcome.value, "yes" if record.trial else "no",
                             f"{cost:.2f} s", ", ".join(d.tool for d in record.stacks) or "-"))  # fmt: skip
            if record.outcome is Outcome.HUNG and record.phase is not Phase.STOP:
                costs.append(cost)
        if not costs:
            raise BenchError(f"block under sigusr1: {run.verdict.value}, no hung cycle")
        worst = max(costs)
        trials = sum(1 for r in records if r.phase is Phase.RELOAD and r.trial)
        section.figures.append(Figure(
            "2", "A hung cycle under Apache (block control, sigusr1): its cost, the worst of the run",
            f"{worst:.2f} s", f"<= probe deadline {deadline:.1f} s + {ALLOWANCE:.0f} s", worst <= deadline + ALLOWANCE,
            f"{len(costs)} hung cycles, {trials} of 3 reloads real trials; the whole run {run.duration:.1f} s",
        ))  # fmt: skip
        section.details += table(["cycle", "phase", "outcome", "trial", "cost", "stacks by"], rows)
    return section
