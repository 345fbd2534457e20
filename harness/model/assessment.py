"""Where a run stands: passed, failed, in a broken slot, not applicable or interrupted. One rule, used by
the terminal summary, report.md/html, JUnit, the pytest plugin and the exit status.

A slot is (cell, mechanism, layout). Its clean controls (``hello``, ``stdlib``) must stay clean there;
when one does not, the slot is broken: the cell itself fails under that mechanism and layout (CPython
3.12.1 crashes on ``import decimal`` after finalize-reinit), so nothing run in it is blamed on its
scenario.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence

from harness.model.outcome import Outcome
from harness.model.records import BrokenSlot, RunResult


class Standing(str, enum.Enum):
    PASSED = "passed"  # the verdict is the expected one (or the baseline's)
    FAILED = "failed"  # it is not, in a healthy slot: exit status 1
    BROKEN = "broken"  # its slot's clean control failed: nothing is blamed on the scenario
    NOT_APPLICABLE = "n/a"  # unsupported here: the cell cannot run it
    INTERRUPTED = "interrupted"  # stopped before it finished: says nothing

    @property
    def counts_against(self) -> bool:
        return self is Standing.FAILED


def is_clean_control(result: RunResult) -> bool:
    return result.control and result.expected == (Outcome.CLEAN,)


def broken_slots(results: Iterable[RunResult]) -> list[BrokenSlot]:
    """Slots where a clean control gave a verdict about the app other than clean."""
    failing: dict[tuple[str, str, str], list[RunResult]] = {}
    for result in results:
        if is_clean_control(result) and result.verdict.is_failure and not result.interrupted:
            failing.setdefault(result.slot, []).append(result)
    return [
        BrokenSlot(
            cell=slot[0],
            mechanism=slot[1],
            layout=slot[2],
            reason="; ".join(f"clean control {r.scenario} was {r.verdict.value}" for r in runs),
            controls=tuple(r.run for r in runs),
        )
        for slot, runs in sorted(failing.items())
    ]


def standing(result: RunResult, broken: Sequence[BrokenSlot] = ()) -> Standing:
    if result.interrupted:
        return Standing.INTERRUPTED
    if result.verdict is Outcome.UNSUPPORTED and Outcome.UNSUPPORTED not in result.expected:
        return Standing.NOT_APPLICABLE
    if any((b.cell, b.mechanism, b.layout) == result.slot for b in broken):
        return Standing.BROKEN
    base = result.baseline
    if base is not None and base.expected is not None:
        return Standing.FAILED if base.change is not None else Standing.PASSED
    return Standing.PASSED if result.matches else Standing.FAILED


def expected_verdict(result: RunResult) -> tuple[Outcome, ...]:
    """What the run was held to: the baseline's verdict where it has one, else the scenario's."""
    if result.baseline is not None and result.baseline.expected is not None:
        return (result.baseline.expected,)
    return result.expected


def verdicts_text(verdicts: tuple[Outcome, ...]) -> str:
    return " or ".join(v.value for v in verdicts) or "none"


def failure_message(result: RunResult) -> str:
    base = result.baseline
    if base is not None and base.change:
        expected = verdicts_text(expected_verdict(result))
        return f"{base.change}: verdict {result.verdict.value}, baseline {expected} ({base.file})"
    return f"verdict {result.verdict.value}, expected {verdicts_text(result.expected)}"


def evidence_lines(result: RunResult, limit: int = 14) -> list[str]:
    """Why the run came to its verdict, first things first: the reason it could not run, then the first
    evidence of each outcome class from the worst down."""
    lines = [result.reason] if result.reason else []
    for outcome in sorted(result.evidence, key=lambda o: -o.severity):
        lines += result.evidence[outcome]
    return list(dict.fromkeys(lines))[:limit]
