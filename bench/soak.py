"""A soak at --jobs auto: the default controls again and again for some minutes, every run's verdict held
to what the control expects. A run starved of CPU must not turn into a false hung (or any other verdict)."""

from __future__ import annotations

import time
from collections import Counter

from bench.common import CELL_PYTHON, Bench, Figure, Section, harness, table, timed
from harness.model.outcome import Outcome


def measure(bench: Bench, minutes: float) -> Section:
    section = Section(f"A {minutes:g}-minute soak of the controls at --jobs auto")
    verdicts: Counter[tuple[str, str]] = Counter()
    wrong: list[str] = []
    sessions = reloads = 0
    with timed(section):
        ends = time.monotonic() + minutes * 60
        while time.monotonic() < ends:
            done = harness(bench, f"soak-{sessions:03d}", "run", "--python", CELL_PYTHON, "--cycles", "10",
                           "--jobs", "auto")  # fmt: skip
            sessions += 1
            reloads += done.reloads
            for run in done.record.runs:
                verdicts[(run.spec.scenario.name, run.verdict.value)] += 1
                if not run.matches:
                    wrong.append(f"{run.run}: {run.verdict.value}, expected {'/'.join(v.value for v in run.expected)}")
    false_hung = [w for w in wrong if f": {Outcome.HUNG.value}," in w]
    section.figures.append(Figure(
        "6", f"Soak: the default controls at --jobs auto for {minutes:g} minutes, verdicts not as expected",
        f"{len(wrong)} (hung: {len(false_hung)})", "0", not wrong,
        f"{sessions} sessions, {sum(verdicts.values())} runs, {reloads} reloads"
        + (f"; {'; '.join(wrong[:5])}" if wrong else ""),
    ))  # fmt: skip
    section.details += table(["scenario", "verdict", "runs"], [(s, v, n) for (s, v), n in sorted(verdicts.items())])
    return section
