"""Decide one cycle's outcome from what was observed: confirmation, probe answers, log events.

Pure functions over observations, so every rule is unit-tested on recorded input and proven
against live controls.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass

from harness.classify import EventKind, LogEvent, classify_line, parse_line
from harness.outcome import Outcome, worst
from harness.probe import ProbeResult

EVIDENCE_LINES = 12


class Fired(str, enum.Enum):
    CONFIRMED = "confirmed"
    NOT_APPLICABLE = "not-applicable"  # the first load and the final stop: nothing to confirm
    NOT_FIRED = "not-fired"  # the old daemon is still serving and nothing asked it to go
    STUCK = "stuck"  # asked to go (the log says so), still there at the deadline
    NO_NEW_DAEMON = "no-new-daemon"  # the old one went, no new one came up
    SERVER_GONE = "server-gone"  # the Apache parent itself is not running


@dataclass(frozen=True)
class Confirmation:
    fired: Fired
    detail: str
    at: float | None = None


_EVIDENCE_KINDS = {
    Outcome.CRASHED: {EventKind.SIGNAL_DEATH, EventKind.FATAL_ERROR, EventKind.NATIVE_ABORT, EventKind.FAULTHANDLER},
    Outcome.HUNG: {EventKind.KILLED, EventKind.SHUTDOWN_TIMEOUT},
    Outcome.RAISED: {EventKind.TRACEBACK, EventKind.SCRIPT_FAILED, EventKind.LOST_RESPONSE},
    Outcome.START_FAILED: {EventKind.START_FAILURE},
}


def decide(
    confirmation: Confirmation, probes: Sequence[ProbeResult], events: Sequence[LogEvent], lines: Sequence[str]
) -> tuple[Outcome, list[str]]:
    """(outcome, evidence lines): the worst thing the cycle shows, and the lines that show it."""
    found: list[Outcome] = [e.effect for e in events if e.effect is not None]
    notes: list[str] = []
    for result in probes:
        if result.timed_out:
            found.append(Outcome.HUNG)
            notes.append(f"GET {result.url}: no answer within {result.elapsed:.1f}s")
        elif result.error is not None:
            # A dropped connection with no death in the log is still a failed request.
            found.append(Outcome.RAISED)
            notes.append(f"GET {result.url}: {result.error}")
        elif result.server_error:
            found.append(Outcome.RAISED)
            notes.append(f"GET {result.url}: HTTP {result.status}")
        elif result.mismatch is not None:
            found.append(Outcome.WRONG_RESULT)
            notes.append(f"GET {result.url}: {result.mismatch}")
    if confirmation.fired is Fired.STUCK:
        found.append(Outcome.HUNG)
        notes.append(f"reload stuck: {confirmation.detail}")
    elif confirmation.fired in (Fired.NO_NEW_DAEMON, Fired.SERVER_GONE):
        found.append(Outcome.START_FAILED)
        notes.append(f"reload failed: {confirmation.detail}")
    outcome = worst(found) if found else Outcome.CLEAN
    if confirmation.fired is Fired.NOT_FIRED and outcome not in (Outcome.CRASHED, Outcome.HUNG, Outcome.START_FAILED):
        # A reload that did not happen proves nothing about the app: never call it clean (or raised).
        return Outcome.HARNESS_ERROR, [f"mechanism did not fire: {confirmation.detail}", *notes]
    return outcome, _evidence(outcome, events, lines, notes)


def _evidence(outcome: Outcome, events: Sequence[LogEvent], lines: Sequence[str], notes: list[str]) -> list[str]:
    if outcome is Outcome.CLEAN:
        return []
    kinds = _EVIDENCE_KINDS.get(outcome, set())
    picked = _exception_block(lines) if outcome is Outcome.RAISED else []
    picked += [e.line for e in events if e.kind in kinds]
    unique = list(dict.fromkeys([*notes, *picked]))
    return unique[:EVIDENCE_LINES]


_THREAD = re.compile(r"\[pid \d+:tid \d+\]")


def _exception_block(lines: Sequence[str]) -> list[str]:
    """The first logged exception with the lines its thread logged right after it (the traceback,
    or on 6.x the exception's own line)."""
    for index, line in enumerate(lines):
        event = classify_line(parse_line(line))
        if event is None or event.kind not in (EventKind.TRACEBACK, EventKind.SCRIPT_FAILED):
            continue
        thread = _THREAD.search(line)
        block = [line]
        for follower in lines[index + 1 : index + EVIDENCE_LINES]:
            same = _THREAD.search(follower)
            if thread is None or same is None or same.group() != thread.group():
                break
            block.append(follower)
        return block
    return []
