"""Decide one cycle's outcome from what was observed: the confirmation, probe answers, log events and
deaths seen at the source.

Pure functions over observations, so every rule is unit-tested on recorded input and proven against
live controls.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from harness.engines.classify import CRASH_SIGNALS, classify_line, effect, parse_line
from harness.engines.procs import signal_name
from harness.model.outcome import Outcome, worst
from harness.model.records import Confirmation, Death, EventKind, Fired, LogEvent, ProbeResult

EVIDENCE_LINES = 14

_EVIDENCE_KINDS = {
    Outcome.CRASHED: {EventKind.SIGNAL_DEATH, EventKind.FATAL_ERROR, EventKind.NATIVE_ABORT, EventKind.FAULTHANDLER},
    Outcome.HUNG: {EventKind.KILLED, EventKind.SHUTDOWN_TIMEOUT},
    Outcome.RAISED: {EventKind.TRACEBACK, EventKind.SCRIPT_FAILED, EventKind.LOST_RESPONSE, EventKind.EXITED},
    Outcome.START_FAILED: {EventKind.START_FAILURE},
    Outcome.HARNESS_ERROR: {EventKind.HARNESS_FAULT},
}


@dataclass(frozen=True)
class Judgement:
    outcome: Outcome
    evidence: tuple[str, ...]
    trial: bool  # the reload (or load, or stop) really happened: it counts
    why_not_trial: str | None = None
    first_exception: str | None = None


def death_outcome(death: Death) -> Outcome | None:
    if death.signal in CRASH_SIGNALS:
        return Outcome.CRASHED
    return None  # SIGKILL and the like: the log's KILLED line (or the harness's own kill) says more


def decide(
    confirmation: Confirmation,
    probes: Sequence[ProbeResult],
    events: Sequence[LogEvent],
    lines: Sequence[str],
    deaths: Sequence[Death] = (),
    app_loaded: bool = True,
) -> Judgement:
    """The worst thing the cycle shows, the lines that show it, and whether the cycle was a real trial."""
    found: list[Outcome] = [o for e in events if (o := effect(e)) is not None]
    notes: list[str] = []
    for death in deaths:
        outcome = death_outcome(death)
        if outcome is not None:
            found.append(outcome)
            notes.append(death.line or f"pid {death.pid} died by {signal_name(death.signal)}")
    for result in probes:
        label = f"GET {result.url}" + (f" ({result.note})" if result.note else "")
        if result.timed_out:
            found.append(Outcome.HUNG)
            notes.append(f"{label}: no answer within {result.elapsed:.1f}s")
        elif result.error is not None:
            found.append(Outcome.RAISED)  # a dropped connection with no death seen is still a failed request
            notes.append(f"{label}: {result.error}")
        elif result.server_error:
            found.append(Outcome.RAISED)
            notes.append(f"{label}: HTTP {result.status}")
        elif result.mismatch is not None:
            found.append(Outcome.WRONG_RESULT)
            notes.append(f"{label}: {result.mismatch}")
    if confirmation.fired is Fired.STUCK:
        found.append(Outcome.HUNG)
        notes.append(f"reload stuck: {confirmation.detail}")
    elif confirmation.fired in (Fired.NO_NEW_DAEMON, Fired.SERVER_GONE) and not _app_explains(found):
        found.append(Outcome.START_FAILED)
        notes.append(f"reload failed: {confirmation.detail}")
    outcome = worst(found) if found else Outcome.CLEAN
    exception = first_exception(events, lines)
    if confirmation.fired is Fired.NOT_FIRED:
        if not app_loaded and outcome is Outcome.RAISED:
            # The script never loaded, so mod_wsgi has nothing to reload and loads it again on each
            # request: every such request is a fresh load attempt, and its error is the app's.
            note = "the app has not loaded since the start (its script raised); each request loads it again"
            return Judgement(outcome, _evidence(outcome, events, lines, [note, *notes]), True, None, exception)
        if outcome not in (Outcome.CRASHED, Outcome.HUNG, Outcome.START_FAILED):
            # A reload that did not happen proves nothing about the app: never call it clean (or raised).
            why = f"mechanism did not fire: {confirmation.detail}"
            return Judgement(Outcome.HARNESS_ERROR, (why, *notes)[:EVIDENCE_LINES], False, why, exception)
        why = f"the reload did not happen ({confirmation.detail}); what the cycle shows came before it could"
        return Judgement(outcome, _evidence(outcome, events, lines, notes), False, why, exception)
    return Judgement(outcome, _evidence(outcome, events, lines, notes), True, None, exception)


def _app_explains(found: Sequence[Outcome]) -> bool:
    """A crash, or the app's own exception or exit, explains a process that did not come back."""
    return any(o in (Outcome.CRASHED, Outcome.RAISED) for o in found)


def _evidence(outcome: Outcome, events: Sequence[LogEvent], lines: Sequence[str], notes: list[str]) -> tuple[str, ...]:
    """The lines that show the outcome; for an exception its own one-line summary first, so the first line of
    evidence says what was raised rather than "Traceback (most recent call last):"."""
    if outcome is Outcome.CLEAN:
        return ()
    kinds = _EVIDENCE_KINDS.get(outcome, set())
    block = exception_block(lines) if outcome is Outcome.RAISED else []
    summary = first_exception(events, lines) if outcome is Outcome.RAISED else None
    picked = [e.line for e in events if e.kind in kinds and e.line not in block]
    unique = list(dict.fromkeys([*([summary] if summary else []), *notes, *_keep_exception(block), *picked]))
    return tuple(unique[:EVIDENCE_LINES])


def _keep_exception(block: list[str], room: int = EVIDENCE_LINES - 4) -> list[str]:
    """A traceback cut to fit, always keeping its first line and its last (the exception itself)."""
    if len(block) <= room:
        return block
    return [block[0], f"... ({len(block) - room} traceback lines in the error_log)", *block[-(room - 2) :]]


_THREAD = re.compile(r"\[pid \d+:tid \d+\]")


def exception_block(lines: Sequence[str]) -> list[str]:
    """The first logged exception with the lines its thread logged right after it (the traceback, or on
    6.x the exception's own line)."""
    for index, line in enumerate(lines):
        event = classify_line(parse_line(line))
        if event is None or event.kind not in (EventKind.TRACEBACK, EventKind.SCRIPT_FAILED):
            continue
        thread = _THREAD.search(line)
        block = [line]
        for follower in lines[index + 1 : index + 200]:
            same = _THREAD.search(follower)
            if (thread is None) != (same is None) or (thread and same and same.group() != thread.group()):
                break
            if thread is None and not follower.startswith((" ", "Traceback")) and block[-1].startswith("Traceback"):
                break
            block.append(follower)
            if thread is None and not follower.startswith(" "):
                break  # a raw traceback ends with its exception line
        return block
    return []


def first_exception(events: Sequence[LogEvent], lines: Sequence[str]) -> str | None:
    """The first Python exception of a cycle, as one line, even when a crash came after it."""
    for event in events:
        if event.line.startswith("[wh-driver] exception in "):
            return event.line.removeprefix("[wh-driver] ")
    block = exception_block(lines)
    if not block:
        return None
    last = parse_line(block[-1]).message.strip()
    return last or None


_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")


def exception_signature(text: str) -> str:
    """A cycle's first exception as a key that groups it across cycles and runs: the line with its
    object addresses masked (they differ in every process)."""
    return _ADDRESS.sub("0x…", text.strip())
