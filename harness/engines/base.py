"""The Engine protocol: what the cycle loop needs from whatever runs the app.

Two engines implement it: an Apache server made by ``mod_wsgi-express`` (``engines/apache``) and the
embedding driver that makes and ends Python interpreters itself (``engines/driver``). One cycle loop
(``run/cycle.py``) drives either through these calls, and a fake one drives the loop in unit tests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from harness.cells.setup import PreparedCell
from harness.engines.classify import classify_line, parse_line
from harness.errors import HarnessError
from harness.model.layouts import Layout, Mount
from harness.model.mechanisms import Mechanism
from harness.model.records import Confirmation, Death, EngineInfo, EventKind, LogEvent, ProbeResult, ProcessRow
from harness.model.scenario import Probe, Scenario
from harness.model.spec import RunSpec

POLL = 0.05


class Interrupted(Exception):
    """The harness is being stopped; the cycle in progress is not recorded as an outcome."""


class StartFailed(Exception):
    """The engine did not come up; the lines are the evidence (log lines or output)."""

    def __init__(self, reason: str, lines: Sequence[str] = (), port_in_use: bool = False) -> None:
        super().__init__(reason)
        self.lines = list(lines)
        self.port_in_use = port_in_use


class TriggerFailed(HarnessError):
    """The mechanism could not even be triggered (apachectl refused, say)."""


@dataclass(frozen=True)
class EngineSetup:
    """Everything an engine is made from: the run's spec with what it resolved to here."""

    spec: RunSpec
    scenario: Scenario
    mechanism: Mechanism
    layout: Layout
    cell: PreparedCell
    root: Path  # the private root, claimed but not yet made
    site_dirs: tuple[Path, ...]  # the scenario's installed requirements
    mirror: Path  # the run's copy of the log
    driver: Path | None = None  # the compiled embedding driver, for driver mechanisms

    @property
    def targets(self) -> tuple[ProbeTarget, ...]:
        """The requests of each cycle, in the order their groups first load."""
        return probe_targets(self.scenario, self.layout.ordered(self.spec.load.order))


@dataclass(frozen=True)
class ProbeTarget:
    """One request of a cycle: a scenario probe sent to one mount."""

    prefix: str
    probe: Probe
    group: str

    @property
    def url(self) -> str:
        return self.prefix.rstrip("/") + self.probe.path


def probe_targets(scenario: Scenario, mounts: Sequence[Mount]) -> tuple[ProbeTarget, ...]:
    by_group = {m.application_group: m for m in mounts}
    return tuple(
        ProbeTarget(by_group[group].prefix, probe, group)
        for group, probe in scenario.probes_for([m.application_group for m in mounts])
        if group is not None and group in by_group
    )


class Waiter:
    """Waits that end early when the harness is being stopped."""

    def __init__(self, stop: threading.Event, poll: float = POLL) -> None:
        self.stop = stop
        self.poll = poll

    def check(self) -> None:
        if self.stop.is_set():
            raise Interrupted()

    def sleep(self, seconds: float) -> None:
        if self.stop.wait(seconds):
            raise Interrupted()

    def until(self, condition: Callable[[], bool], timeout: float, each: Callable[[], object] | None = None) -> bool:
        """Poll `condition` until it holds (True) or `timeout` passes (False); `each` runs before every look."""
        deadline = time.monotonic() + timeout
        while True:
            if each is not None:
                each()
            if condition():
                return True
            if time.monotonic() >= deadline:
                return False
            self.sleep(self.poll)


@dataclass
class CycleLog:
    """The log lines a cycle has seen, each read and classified once as it arrives."""

    read_lines: Callable[[], list[str]]  # the engine's read_log
    first_line: int = 1  # 1-based number in the run's error_log of this cycle's first line
    lines: list[str] = field(default_factory=list)
    indexed: list[tuple[int, LogEvent]] = field(default_factory=list)  # (line index, event)
    trigger_mark: int = 0  # index of the first line logged after the trigger was sent

    def line_range(self) -> tuple[int, int] | None:
        if not self.lines:
            return None
        return (self.first_line, self.first_line + len(self.lines) - 1)

    def read(self) -> list[str]:
        return self.add(self.read_lines())

    def add(self, new: Sequence[str]) -> list[str]:
        start = len(self.lines)
        self.lines += new
        for offset, line in enumerate(new):
            event = classify_line(parse_line(line))
            if event is not None:
                self.indexed.append((start + offset, event))
        return list(new)

    def note(self, event: LogEvent) -> None:
        """An event the harness itself observed (a kill, a driver's exit), placed after the lines so far."""
        self.indexed.append((len(self.lines), event))

    def mark_trigger(self) -> None:
        self.read()
        self.trigger_mark = len(self.lines)

    def events(self) -> list[LogEvent]:
        return [event for _, event in self.indexed]

    def has(self, kind: EventKind, naming: str = "") -> bool:
        """Whether a line logged since the trigger records this kind of event (and names `naming`)."""
        return any(e.kind is kind and naming in e.line for i, e in self.indexed if i >= self.trigger_mark)


class Engine(Protocol):
    """One running app, reloaded on request and watched from outside."""

    @property
    def app_dir(self) -> Path: ...

    @property
    def core_dirs(self) -> tuple[Path, ...]: ...

    @property
    def executable(self) -> str:
        """The program whose cores this engine's processes leave (httpd, wsgi_driver)."""
        ...

    @property
    def fires_on_request(self) -> bool:
        """The reload takes effect when the next request arrives, so probes come before confirmation."""
        ...

    def prepare(self) -> None:
        """Make the private root and the configuration; StartFailed if that cannot be done."""

    def start(self) -> None:
        """Start, and begin the first load; StartFailed with the evidence when it does not come up."""

    def running(self) -> bool:
        """The engine's own top process (the Apache parent, or a driver process) is alive."""
        ...

    def exit_description(self) -> str | None: ...

    def exit_signal(self) -> int | None: ...

    def ended_from_outside(self) -> str | None:
        """Why the engine's top process ended if something outside the harness and the app ended it (a
        SIGKILL or SIGTERM from elsewhere): a cycle it cut short says nothing of the app."""
        ...

    def serving_pids(self) -> set[int]:
        """The processes that run the app's requests now (daemons, workers, the driver)."""
        ...

    def ready(self, cycle: int, waiter: Waiter, log: CycleLog, timeout: float) -> set[int]:
        """Wait until something serves the app (restarting what a death or a kill left behind, where the
        engine must do that itself); returns the serving pids, empty if none came."""
        ...

    def trigger(self, cycle: int) -> None:
        """Set the reload going; TriggerFailed when it cannot even be asked for."""

    def confirm(self, before: set[int], waiter: Waiter, log: CycleLog) -> Confirmation:
        """Wait until the reload has happened, or say why it did not."""
        ...

    def probe(self, cycle: int, targets: Sequence[ProbeTarget], waiter: Waiter) -> list[ProbeResult]:
        """Send the probes in order; after the first one that times out, send no more."""
        ...

    def read_log(self, final: bool = False) -> list[str]:
        """New complete log lines since the last call (copied into the run's error_log as they come);
        `final`, once the engine has stopped: a last line without a newline too, and nothing after."""
        ...

    def take_deaths(self) -> list[Death]:
        """Deaths by a signal seen at the source (exit statuses) since the last call."""
        ...

    def take_events(self) -> list[LogEvent]:
        """What the engine itself saw since the last call that no log line says: a process that ended
        without a signal mid-cycle, a fault of the harness's own part."""
        ...

    @property
    def stop_timeouts(self) -> tuple[float, float]:
        """(seconds after the stop request before a process still there gets its stacks dumped, seconds
        more before it counts as hung and is killed)."""
        ...

    def process_table(self) -> list[ProcessRow]: ...

    def kill(self, pids: set[int]) -> None:
        """End processes that hung, so the next cycle starts from a live server."""

    def request_stop(self, cycle: int) -> None:
        """Ask for the orderly stop (interpreters destroyed, Python finalized) without waiting."""

    def stop(self) -> None:
        """Stop whatever is left, for certain; safe to call twice."""

    def config_files(self) -> list[Path]:
        """Generated files that travel with the results as evidence of what ran."""
        ...

    def loaded_extensions(self) -> list[tuple[str, str]]:
        """(module, file) of the C extension modules the app's first load imported, where the engine can
        tell (the driver's host lists them; isolate's inventory reads them)."""
        ...

    def info(self) -> EngineInfo: ...
