"""One reload cycle: trigger the mechanism, confirm it fired, probe the app, collect the log delta.

Every cycle yields one record with its timestamps (trigger sent, reload confirmed, probe answered,
outcome recorded), the probe answers, the new log lines parsed into events, and the process table.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from harness import judge, probe
from harness.classify import EventKind, LogEvent, classify_line, parse_line
from harness.errorlog import LogTail
from harness.errors import HarnessError
from harness.evidence import RunEvidence
from harness.judge import Confirmation, Fired
from harness.layouts import Layout
from harness.mechanisms import Confirm, Mechanism
from harness.outcome import Outcome
from harness.probe import ProbeResult
from harness.scenario import Scenario
from harness.server import ApacheServer

POLL = 0.05
# Apache's parent reaps children and logs AH00052 on a one-second maintenance tick: after a failed
# request, wait this long for the line that says whether a process died by a signal.
DEATH_NOTICE_WAIT = 1.6
AFTER_REQUEST_CONFIRM = 8.0
DAEMON_WAIT = 15.0
# A process still there this long after the stop request gets its stacks dumped; Apache's shutdown
# timeout (3 s, server.TIMING_OPTIONS) kills it later.
STOP_DUMP_AFTER = 1.5
STOP_GRACE = 6.0  # Apache's shutdown timeout (3 s, server.TIMING_OPTIONS) and then some


class Interrupted(Exception):
    """The harness is being stopped; the cycle in progress is not recorded as an outcome."""


@dataclass
class CycleLog:
    """The log lines a cycle has seen so far, read and classified as they arrive (once each: the
    confirmation loop polls this every 50 ms)."""

    tail: LogTail
    lines: list[str] = field(default_factory=list)
    indexed: list[tuple[int, LogEvent]] = field(default_factory=list)  # (line index, event)
    trigger_mark: int = 0  # index of the first line logged after the trigger was sent
    first_line: int = field(init=False)  # 1-based number in the run's error_log of this cycle's first line

    def __post_init__(self) -> None:
        self.first_line = self.tail.count + 1

    def line_range(self) -> list[int]:
        """[first, last] line numbers of this cycle in the run's error_log (last < first: none)."""
        return [self.first_line, self.first_line + len(self.lines) - 1]

    def read(self) -> list[str]:
        return self.add(self.tail.read())

    def add(self, new: list[str]) -> list[str]:
        start = len(self.lines)
        self.lines += new
        for offset, line in enumerate(new):
            event = classify_line(parse_line(line))
            if event is not None:
                self.indexed.append((start + offset, event))
        return new

    def mark_trigger(self) -> None:
        self.read()
        self.trigger_mark = len(self.lines)

    def events(self) -> list[LogEvent]:
        return [event for _, event in self.indexed]

    def has(self, kind: EventKind, naming: str = "") -> bool:
        """Whether a line logged since the trigger records this kind of event (and names `naming`)."""
        return any(
            event.kind is kind and naming in event.line for index, event in self.indexed if index >= self.trigger_mark
        )


@dataclass
class CycleRecord:
    run: str
    cycle: int
    phase: str  # "load" (first request), "reload", "stop" (server shut down)
    mechanism: str
    outcome: Outcome
    evidence: list[str]
    confirmation: Confirmation
    probes: list[ProbeResult]
    events: list[LogEvent]
    daemon_pids_before: list[int]
    daemon_pids_after: list[int]
    processes: list[dict[str, object]]
    timestamps: dict[str, float | None]
    cores: list[dict[str, object]] = field(default_factory=list)
    stacks: list[dict[str, object]] = field(default_factory=list)  # dumps of possibly hung processes
    faulthandler: list[str] = field(default_factory=list)
    log_lines: list[int] = field(default_factory=list)  # [first, last] in the run's error_log

    def signal_deaths(self) -> list[dict[str, object]]:
        return [
            {"cycle": self.cycle, "pid": e.pid, "signal": e.signal, "line": e.line, "faulthandler": self.faulthandler}
            for e in self.events
            if e.kind is EventKind.SIGNAL_DEATH
        ]

    def to_json(self) -> dict[str, object]:
        return {
            "run": self.run,
            "cycle": self.cycle,
            "phase": self.phase,
            "mechanism": self.mechanism,
            "outcome": self.outcome.value,
            "evidence": self.evidence,
            "confirmation": {
                "fired": self.confirmation.fired.value,
                "detail": self.confirmation.detail,
            },
            "probes": [p.to_json() for p in self.probes],
            "events": [e.to_json() for e in self.events],
            "daemon_pids_before": self.daemon_pids_before,
            "daemon_pids_after": self.daemon_pids_after,
            "processes": self.processes,
            "timestamps": self.timestamps,
            "cores": self.cores,
            "stacks": self.stacks,
            "faulthandler": self.faulthandler,
            "log_lines": self.log_lines,
        }


class CycleRunner:
    """Drives the cycles of one run against one server."""

    def __init__(
        self,
        run_id: str,
        server: ApacheServer,
        mechanism: Mechanism,
        scenario: Scenario,
        layout: Layout,
        tail: LogTail,
        stop: threading.Event,
        evidence: RunEvidence,
    ) -> None:
        self.run_id = run_id
        self.server = server
        self.mechanism = mechanism
        self.scenario = scenario
        self.layout = layout
        self.tail = tail
        self.stop = stop
        self.evidence = evidence

    # --- waiting -----------------------------------------------------------------------------
    def _wait(self, condition: Callable[[], bool], timeout: float, log: CycleLog | None = None) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if log is not None:
                log.read()
            if condition():
                return True
            if time.monotonic() >= deadline:
                return False
            if self.stop.wait(POLL):
                raise Interrupted()

    def _probe_all(self) -> list[ProbeResult]:
        results = []
        for mount in self.layout.mounts:
            for spec in self.scenario.probes:
                if self.stop.is_set():
                    raise Interrupted()
                results.append(probe.send(self.server.port, mount.prefix, spec))
        return results

    @property
    def _daemon_mode(self) -> bool:
        return not self.mechanism.embedded

    # --- confirmation ------------------------------------------------------------------------
    def _confirm_pid(self, before: set[int], timeout: float, log: CycleLog) -> Confirmation:
        def replaced() -> bool:
            now = self.server.daemon_pids()
            return bool(now) and not (before & now)

        if self._wait(lambda: replaced() or not self.server.running(), timeout, log) and self.server.running():
            return Confirmation(
                Fired.CONFIRMED, f"daemon {sorted(before)} -> {sorted(self.server.daemon_pids())}", time.time()
            )
        if not self.server.running():
            return Confirmation(Fired.SERVER_GONE, f"the Apache parent exited ({self.server.exit_description()})")
        now = self.server.daemon_pids()
        if before & now:
            if log.has(EventKind.RELOAD_REQUESTED):
                return Confirmation(
                    Fired.STUCK, f"daemon {sorted(before & now)} asked to restart, still alive after {timeout:.0f}s"
                )
            return Confirmation(Fired.NOT_FIRED, f"daemon {sorted(before & now)} still serving after {timeout:.0f}s")
        return Confirmation(Fired.NO_NEW_DAEMON, f"daemon {sorted(before)} gone, none started within {timeout:.0f}s")

    def _confirm_script_load(self, timeout: float, log: CycleLog) -> Confirmation:
        """The app's own script executed again since the trigger: 'Reloading' in a process that had it,
        or 'Loading' in a worker that had not; express's handler.wsgi loading does not count."""
        script = f"'{self.server.script}'"
        if self._wait(lambda: log.has(EventKind.SCRIPT_LOADED, naming=script), timeout, log):
            return Confirmation(Fired.CONFIRMED, "script loaded again (log)", time.time())
        if not self.server.running():
            return Confirmation(Fired.SERVER_GONE, "the Apache parent exited")
        return Confirmation(Fired.NOT_FIRED, f"no 'Loading/Reloading WSGI script' line within {timeout:.0f}s")

    # --- cycles ------------------------------------------------------------------------------
    def first_load(self) -> CycleRecord:
        """Cycle 0: the app's first requests after start-up, before any reload."""
        log = CycleLog(self.tail)
        before = sorted(self.server.daemon_pids())
        probes = self._probe_all()
        confirmation = Confirmation(Fired.NOT_APPLICABLE, "first load")
        return self._finish(0, "load", log, confirmation, probes, before, _stamps(None, None, _last(probes)))

    def reload(self, index: int) -> CycleRecord:
        log = CycleLog(self.tail)
        mechanism = self.mechanism
        before: set[int] = set()
        if self._daemon_mode:
            self._wait(lambda: bool(self.server.daemon_pids()) or not self.server.running(), DAEMON_WAIT, log)
            before = self.server.daemon_pids()
            if not before:
                fired = Fired.SERVER_GONE if not self.server.running() else Fired.NO_NEW_DAEMON
                confirmation = Confirmation(fired, f"no daemon process to reload within {DAEMON_WAIT:.0f}s")
                return self._finish(index, "reload", log, confirmation, [], [], _stamps(None, None, None))
        log.mark_trigger()  # lines before it still count for this cycle's outcome, not for confirmation
        sent = time.time()
        try:
            mechanism.trigger(self.server)
        except HarnessError as exc:
            confirmation = Confirmation(Fired.NOT_FIRED, str(exc))
            return self._finish(index, "reload", log, confirmation, [], sorted(before), _stamps(sent, None, None))
        if mechanism.fires_on_request:
            probes = self._probe_all()
            if mechanism.confirm is Confirm.SCRIPT_LOAD:
                confirmation = self._confirm_script_load(AFTER_REQUEST_CONFIRM, log)
            else:
                confirmation = self._confirm_pid(before, AFTER_REQUEST_CONFIRM, log)
        else:
            confirmation = self._confirm_pid(before, mechanism.deadline, log)
            # Probe even when the reload was not confirmed: an app that crashes or hangs on every
            # request can keep a timer-driven mechanism from ever firing, and that is worth seeing.
            probes = self._probe_all() if self.server.running() else []
        return self._finish(
            index, "reload", log, confirmation, probes, sorted(before), _stamps(sent, confirmation.at, _last(probes))
        )

    def shutdown(self, index: int) -> CycleRecord:
        """The server's own stop: sub-interpreters are destroyed and Python finalized here."""
        log = CycleLog(self.tail)
        before = sorted(self.server.daemon_pids())
        serving = self.server.request_pids()
        sent = time.time()
        self.server.request_stop()
        dumps: list[dict[str, object]] = []
        deadline = time.monotonic() + STOP_DUMP_AFTER
        while self.server.alive(serving) and time.monotonic() < deadline:
            time.sleep(POLL)
        left = self.server.alive(serving)
        forced: list[LogEvent] = []
        if left:  # still there: stacks now, before Apache's shutdown timeout kills them
            reason = f"cycle {index}: still running {STOP_DUMP_AFTER:.1f}s after the server was told to stop"
            dumps = self.evidence.dump_hung(index, left, reason)
            # Let Apache's own shutdown timeout act and log it ("Shutdown timeout expired"): a second
            # stop request would end the parent at once and the hang would leave no trace in the log.
            deadline = time.monotonic() + STOP_GRACE
            while self.server.running() and time.monotonic() < deadline:
                time.sleep(POLL)
            forced = [
                LogEvent(EventKind.KILLED, f"[harness] pid {pid} still running {STOP_GRACE:.0f}s after the stop "
                         "request and Apache's shutdown timeout: killed", pid=pid)
                for pid in sorted(self.server.alive(left))
            ]  # fmt: skip
        self.server.stop()
        log.add(self.tail.flush())
        log.indexed += [(len(log.lines), event) for event in forced]
        confirmation = Confirmation(Fired.NOT_APPLICABLE, "server stopped")
        stamps = _stamps(sent, None, None)
        return self._finish(index, "stop", log, confirmation, [], before, stamps, settle=False, dumps=dumps)

    def _finish(
        self,
        index: int,
        phase: str,
        log: CycleLog,
        confirmation: Confirmation,
        probes: list[ProbeResult],
        before: Sequence[int],
        stamps: dict[str, float | None],
        settle: bool = True,
        dumps: list[dict[str, object]] | None = None,
    ) -> CycleRecord:
        # Stacks first: nothing may kill a hung process before they are taken.
        hung = [p.url for p in probes if p.timed_out]
        dumps = list(dumps or [])
        if hung or confirmation.fired is Fired.STUCK:
            reason = f"cycle {index}: " + (f"no answer from {', '.join(hung)}" if hung else confirmation.detail)
            dumps = self.evidence.dump_hung(index, self.server.request_pids(), reason)
        # A dropped connection or a 5xx may be a death that Apache has yet to log; a timeout is not.
        failed = any(p.server_error or p.error not in (None, "timeout") for p in probes) or confirmation.fired not in (
            Fired.CONFIRMED,
            Fired.NOT_APPLICABLE,
        )
        if settle and failed:
            self._wait(lambda: log.has(EventKind.SIGNAL_DEATH) or log.has(EventKind.KILLED), DEATH_NOTICE_WAIT, log)
        elif settle:
            log.read()
        events = log.events()
        outcome, evidence = judge.decide(confirmation, probes, events, log.lines)
        stamps["outcome_recorded"] = time.time()
        return CycleRecord(
            run=self.run_id,
            cycle=index,
            phase=phase,
            mechanism=self.mechanism.name,
            outcome=outcome,
            evidence=evidence,
            confirmation=confirmation,
            probes=probes,
            events=[e for e in events if e.kind is not EventKind.FAULTHANDLER][:50],
            daemon_pids_before=list(before),
            daemon_pids_after=sorted(self.server.daemon_pids()),
            processes=self.server.process_table(),
            timestamps=stamps,
            cores=self.evidence.collect_cores(index),
            stacks=dumps,
            faulthandler=[e.line for e in events if e.kind in (EventKind.FAULTHANDLER, EventKind.FATAL_ERROR)][:60],
            log_lines=log.line_range(),
        )


def _last(probes: Sequence[ProbeResult]) -> float | None:
    return max((p.answered_at for p in probes), default=None)


def _stamps(sent: float | None, confirmed: float | None, answered: float | None) -> dict[str, float | None]:
    return {"trigger_sent": sent, "reload_confirmed": confirmed, "probe_answered": answered}
