"""What must hold between a run's summary and its cycles, checked whenever a result is written.

A summary that contradicts its own cycles (a crash event in a clean cycle, a count that is not the
number of cycles with that outcome, a rate over reloads that never happened) would mislead everyone
who gates CI on it; the harness refuses to call such a result finished.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from harness.errors import HarnessError
from harness.model.outcome import Outcome, worst
from harness.model.records import CycleRecord, Phase, RunResult


class InvariantError(HarnessError):
    """A result the harness wrote contradicts itself: a bug in the harness, never in the app."""


def violations(result: RunResult, cycles: Sequence[CycleRecord]) -> list[str]:
    found: list[str] = []
    if result.cycles_recorded != len(cycles):
        found.append(f"cycles_recorded {result.cycles_recorded}, but {len(cycles)} cycle records")
    tally = Counter(c.outcome for c in cycles)
    for outcome in Outcome:
        if result.counts.get(outcome, 0) != tally.get(outcome, 0):
            found.append(
                f"counts[{outcome.value}] is {result.counts.get(outcome, 0)}, cycles show {tally.get(outcome, 0)}"
            )
    if cycles and result.verdict is not worst(c.outcome for c in cycles):
        found.append(
            f"verdict {result.verdict.value} is not the worst cycle ({worst(c.outcome for c in cycles).value})"
        )
    by_cycle = {c.cycle: c for c in cycles}
    for crash in result.crashes:
        cycle = by_cycle.get(crash.cycle)
        if cycle is None or cycle.outcome is not Outcome.CRASHED:
            shown = cycle.outcome.value if cycle else "missing"
            found.append(f"crash of pid {crash.pid} belongs to cycle {crash.cycle}, which is {shown}, not crashed")
    trials = sum(1 for c in cycles if c.phase is Phase.RELOAD and c.trial)
    if result.trials != trials:
        found.append(f"trials {result.trials}, but {trials} reload cycles really happened")
    for rate in result.rates:
        if rate.trials != trials:
            found.append(f"rate of {rate.outcome.value} is over {rate.trials} trials, not {trials}")
    if sum(rate.count for rate in result.rates) != trials:
        found.append(f"rates count {sum(r.count for r in result.rates)} reloads, not {trials}")
    ran, cell = result.engine.apache, result.cell.apache
    if ran is not None and cell is not None and ran != cell:
        found.append(f"Apache {ran} ran, but the cell is recorded as Apache {cell} ({result.cell.apache_origin})")
    expected = result.expected
    if result.matches != (result.verdict in expected and not result.interrupted):
        shown = " or ".join(v.value for v in expected) or "none"
        found.append(f"matches is {result.matches} for verdict {result.verdict.value}, expected {shown}")
    return found


def check(result: RunResult, cycles: Sequence[CycleRecord], where: str) -> None:
    found = violations(result, cycles)
    if found:
        raise InvariantError(f"{where}: the result contradicts itself ({'; '.join(found)}); this is a harness bug")
