"""The cycle loop: load, reload after reload, stop, each observed and judged the same way for any engine.

A cycle reads the log lines and deaths that arrive while it runs, so everything it shows is its own.
A death is recorded in the cycle it is first seen (from the process's exit status, a core, or Apache's
line), and a later line about the same process only confirms it. A probe that times out ends the
cycle's probing: the stuck processes get their stacks dumped and are killed, so the next cycle starts
from a live server and is a real trial.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from harness.engines.base import CycleLog, Engine, ProbeTarget, TriggerFailed, Waiter
from harness.engines.classify import CRASH_SIGNALS, DEATH_KINDS
from harness.engines.procs import alive
from harness.evidence.collector import RunEvidence
from harness.model.outcome import Outcome
from harness.model.records import (
    Confirmation,
    CoreRecord,
    CycleRecord,
    Death,
    DeathSource,
    EventKind,
    Fired,
    LogEvent,
    Phase,
    ProbeResult,
    StackDump,
    Timestamps,
)
from harness.run import judge

DAEMON_WAIT = 15.0  # for a process that serves the app, before a reload
STOP_READY_WAIT = 5.0
QUICK_DEATH_WAIT = 0.3  # after a failed request: a death by a signal is readable at the source within this
# Without a direct observation (the process was reaped before we looked), Apache's AH00051/AH00052 comes on
# its one-second maintenance tick: wait this long for it.
DEATH_NOTICE_WAIT = 1.6


@dataclass
class RunMemory:
    """What a run's cycles learn that later cycles need."""

    dead: dict[int, int] = field(default_factory=dict)  # pid -> the cycle its death was recorded in
    killed: set[int] = field(default_factory=set)  # processes the harness killed after they hung
    app_loaded: bool = False  # some request was answered: the app's script loaded at least once
    lines: int = 0  # log lines so far (line numbers of the run's error_log)


class CycleRunner:
    """Drives the cycles of one run through one engine."""

    def __init__(
        self,
        run_id: str,
        mechanism: str,
        engine: Engine,
        targets: Sequence[ProbeTarget],
        evidence: RunEvidence,
        waiter: Waiter,
    ) -> None:
        self.run_id = run_id
        self.mechanism = mechanism
        self.engine = engine
        self.targets = list(targets)
        self.evidence = evidence
        self.waiter = waiter
        self.memory = RunMemory()

    def _log(self) -> CycleLog:
        return CycleLog(self.engine.read_log, first_line=self.memory.lines + 1)

    def load(self) -> CycleRecord:
        """Cycle 0: the app's first requests after start-up, before any reload."""
        log = self._log()
        before = self.engine.ready(0, self.waiter, log, DAEMON_WAIT)
        probes = self.engine.probe(0, self.targets, self.waiter)
        stamps = Timestamps(probe_answered=_last(probes))
        return self._finish(
            0, Phase.LOAD, log, Confirmation(Fired.NOT_APPLICABLE, "first load"), probes, before, stamps
        )

    def reload(self, index: int) -> CycleRecord:
        engine, waiter = self.engine, self.waiter
        log = self._log()
        before = engine.ready(index, waiter, log, DAEMON_WAIT)
        if not before:
            why = Fired.SERVER_GONE if not engine.running() else Fired.NO_NEW_DAEMON
            confirmation = Confirmation(why, f"no process serving the app within {DAEMON_WAIT:.0f}s to reload")
            return self._finish(index, Phase.RELOAD, log, confirmation, [], before, Timestamps(),
                                no_reload="no process served the app when the reload was due")  # fmt: skip
        log.mark_trigger()  # lines before it still count for this cycle's outcome, not for confirmation
        sent = time.time()
        try:
            engine.trigger(index)
        except TriggerFailed as exc:
            confirmation = Confirmation(Fired.NOT_FIRED, str(exc))
            return self._finish(index, Phase.RELOAD, log, confirmation, [], before, Timestamps(trigger_sent=sent))
        if engine.fires_on_request:
            probes = engine.probe(index, self.targets, waiter)
            confirmation = engine.confirm(before, waiter, log)
        else:
            confirmation = engine.confirm(before, waiter, log)
            # Probe even when the reload was not confirmed: an app that crashes or hangs on every request
            # can keep a timer-driven mechanism from firing, and that is worth seeing. Not when the reload
            # itself is stuck: that cycle is hung already, and a request would only wait out its deadline.
            stuck = confirmation.fired is Fired.STUCK
            probes = engine.probe(index, self.targets, waiter) if engine.running() and not stuck else []
        stamps = Timestamps(trigger_sent=sent, reload_confirmed=confirmation.at, probe_answered=_last(probes))
        return self._finish(index, Phase.RELOAD, log, confirmation, probes, before, stamps)

    def stop(self, index: int) -> CycleRecord:
        """The engine's own stop: sub-interpreters are destroyed and Python finalized here."""
        engine, waiter = self.engine, self.waiter
        log = self._log()
        before = engine.ready(index, waiter, log, STOP_READY_WAIT)
        deaths: list[Death] = []
        sent = time.time()
        engine.request_stop(index)
        dump_after, grace = engine.stop_timeouts

        def watch() -> None:
            log.read()
            deaths.extend(engine.take_deaths())

        waiter.until(lambda: not alive(before), dump_after, watch)
        left = alive(before)
        dumps: list[StackDump] = []
        if left:  # still there: stacks now, before the engine's own shutdown timeout kills them
            reason = f"cycle {index}: still running {dump_after:.1f}s after the stop request"
            dumps = self.evidence.dump_hung(index, left, reason)
            waiter.until(lambda: not alive(left), grace, watch)
            for pid in sorted(alive(left)):
                log.note(
                    LogEvent(
                        EventKind.KILLED,
                        f"[harness] pid {pid} still running {dump_after + grace:.0f}s "
                        "after the stop request and the shutdown timeout: killed",
                        pid=pid,
                    )
                )
        engine.stop()
        deaths.extend(engine.take_deaths())
        log.add(engine.read_log(final=True))
        cores = self.evidence.close()
        confirmation = Confirmation(Fired.NOT_APPLICABLE, "stopped")
        return self._finish(
            index,
            Phase.STOP,
            log,
            confirmation,
            [],
            before,
            Timestamps(trigger_sent=sent),
            dumps=dumps,
            deaths=deaths,
            cores=cores,
        )

    def _finish(
        self,
        index: int,
        phase: Phase,
        log: CycleLog,
        confirmation: Confirmation,
        probes: Sequence[ProbeResult],
        before: set[int],
        stamps: Timestamps,
        dumps: Sequence[StackDump] = (),
        deaths: Sequence[Death] = (),
        cores: Sequence[CoreRecord] | None = None,
        no_reload: str | None = None,
    ) -> CycleRecord:
        engine, memory = self.engine, self.memory
        stacks = list(dumps)
        hung = [p.url for p in probes if p.timed_out]
        if hung or confirmation.fired is Fired.STUCK:
            # Stacks first: nothing may kill a hung process before they are taken. Then it is killed, so
            # the next cycle starts from a live server instead of waiting on the same stuck one.
            pids = engine.serving_pids() | alive(before)
            reason = f"cycle {index}: " + (f"no answer from {', '.join(hung)}" if hung else confirmation.detail)
            stacks += self.evidence.dump_hung(index, pids, reason)
            engine.kill(pids)
            memory.killed |= pids
        seen = list(deaths) + engine.take_deaths()
        if phase is not Phase.STOP:
            log.read()
            if not seen and _may_be_a_death(probes, confirmation, log):
                self._await_death(log, seen)
            log.read()
        for event in engine.take_events():
            log.note(event)
        if cores is None:
            cores = self.evidence.collect_cores()
        events = log.events()
        deaths_here = self._deaths(seen, cores, events)
        settled = set(memory.dead) | memory.killed
        judged = [e for e in events if not (e.kind in DEATH_KINDS and e.pid in settled)]
        verdict = judge.decide(confirmation, probes, judged, log.lines, deaths_here, memory.app_loaded)
        outside = None if engine.running() else engine.ended_from_outside()
        if outside is not None and phase is not Phase.STOP:
            verdict = judge.Judgement(Outcome.HARNESS_ERROR, (outside, *verdict.evidence)[:14], False, outside,
                                      verdict.first_exception)  # fmt: skip
        memory.dead.update({d.pid: index for d in deaths_here if d.pid is not None})
        memory.app_loaded |= any(p.status is not None and p.status < 500 and p.error is None for p in probes)
        memory.lines += len(log.lines)
        first_death = min((d.at for d in deaths_here if d.at is not None), default=None)
        return CycleRecord(
            run=self.run_id,
            cycle=index,
            phase=phase,
            mechanism=self.mechanism,
            outcome=verdict.outcome,
            trial=verdict.trial and no_reload is None,
            why_not_trial=no_reload or verdict.why_not_trial,
            confirmation=confirmation,
            evidence=verdict.evidence,
            probes=tuple(probes),
            events=tuple(e for e in events if e.kind is not EventKind.FAULTHANDLER)[:60],
            deaths=tuple(deaths_here),
            pids_before=tuple(sorted(before)),
            pids_after=tuple(sorted(engine.serving_pids())),
            processes=tuple(engine.process_table()),
            timestamps=Timestamps(
                stamps.trigger_sent, stamps.reload_confirmed, stamps.probe_answered, first_death, time.time()
            ),
            cores=tuple(cores),
            stacks=tuple(stacks),
            faulthandler=tuple(e.line for e in events if e.kind in (EventKind.FAULTHANDLER, EventKind.FATAL_ERROR))[
                :60
            ],
            log_lines=log.line_range(),
            first_exception=verdict.first_exception,
            destroy_order=tuple(e.group for e in events if e.kind is EventKind.INTERPRETER_DESTROYED and e.group),
        )

    def _await_death(self, log: CycleLog, seen: list[Death]) -> None:
        """A request that lost its answer may be a death: read it at the source first, and wait for Apache's
        line only when the process was reaped before its exit status could be read."""
        engine = self.engine

        def look() -> bool:
            seen.extend(engine.take_deaths())
            return bool(seen)

        if self.waiter.until(look, QUICK_DEATH_WAIT):
            return
        self.waiter.until(lambda: any(log.has(kind) for kind in DEATH_KINDS) or look(), DEATH_NOTICE_WAIT, log.read)

    def _deaths(self, direct: Sequence[Death], cores: Sequence[CoreRecord], events: Sequence[LogEvent]) -> list[Death]:
        """Every death by a crash signal this cycle shows, from any source, of a process not yet known dead."""
        found = [d for d in direct if d.signal in CRASH_SIGNALS]
        found += [
            Death(c.pid, c.signal, DeathSource.CORE, None, f"core of pid {c.pid}: {c.file}")
            for c in cores
            if c.signal in CRASH_SIGNALS
        ]
        found += [
            Death(e.pid, e.signal, DeathSource.LOG, None, e.line)
            for e in events
            if e.kind is EventKind.SIGNAL_DEATH and e.signal is not None
        ]
        settled = set(self.memory.dead) | self.memory.killed
        return [d for d in found if d.pid is None or d.pid not in settled]


def _may_be_a_death(probes: Sequence[ProbeResult], confirmation: Confirmation, log: CycleLog) -> bool:
    """The signs a process died under a request: the connection dropped, a 502/503 from Apache, mod_wsgi's
    "truncated headers" line, or a reload that did not complete. A 500 with the app's own traceback is not."""
    lost = any(p.error is not None and p.error.startswith(("connection dropped", "refused")) for p in probes)
    lost = lost or any(p.status in (502, 503) for p in probes)
    unfinished = confirmation.fired in (Fired.NO_NEW_DAEMON, Fired.SERVER_GONE)  # (not fired: the old one serves)
    return lost or unfinished or any(e.kind is EventKind.LOST_RESPONSE for e in log.events())


def _last(probes: Sequence[ProbeResult]) -> float | None:
    return max((p.answered_at for p in probes), default=None)
