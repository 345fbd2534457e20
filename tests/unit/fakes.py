"""A scripted engine for unit tests of everything above the engine boundary (the cycle loop, the runner,
sessions, matrices, bundles, isolate's search): pids, log lines, probe answers, deaths and hangs
happen when the script says, in milliseconds. Every rule exercised here is also proven once against a
live server in tests/live/."""

from __future__ import annotations

import getpass
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.cells.build import Cell, PythonInfo
from harness.cells.privileges import ServerUser
from harness.cells.setup import PreparedCell
from harness.engines.base import CycleLog, EngineSetup, ProbeTarget, StartFailed, TriggerFailed, Waiter
from harness.evidence import collector
from harness.evidence.frames import Frame, Thread
from harness.evidence.stacks import Stacks
from harness.model.records import (
    CellInfo,
    Confirmation,
    Death,
    DeathSource,
    EngineInfo,
    Fired,
    LogEvent,
    ProbeResult,
    ProcessRow,
)
from harness.model.spec import CellSpec

SEGV = 11


@dataclass
class Answer:
    """One probe's answer in a scripted cycle."""

    status: int | None = 200
    body: str | None = None  # None: exactly what the probe expects
    error: str | None = None  # "timeout", "connection dropped: ..."


@dataclass
class Step:
    """What happens in one cycle (0 is the first load, the last is the stop)."""

    answers: list[Answer] = field(default_factory=lambda: [Answer()])
    fired: Fired = Fired.CONFIRMED
    deaths: list[int] = field(default_factory=list)  # signals: each a new pid dying in this cycle
    log: list[str] = field(default_factory=list)  # lines logged during the cycle
    trigger_fails: bool = False
    parent_dies: int | None = None  # the engine's top process ends (by this signal) before the cycle


@dataclass
class Script:
    steps: dict[int, Step] = field(default_factory=dict)
    start_fails: bool = False

    def step(self, cycle: int) -> Step:
        return self.steps.get(cycle, Step())


class FakeEngine:
    """The Engine protocol, by script. `calls` records what the cycle loop asked for, in order."""

    def __init__(self, setup: EngineSetup, script: Script, root: Path) -> None:
        self.setup = setup
        self.script = script
        self.root = root
        self.calls: list[str] = []
        self._cycle = 0
        self._pid = 1000
        self._alive = True
        self._exit_signal: int | None = None
        self._pending_log: list[str] = []
        self._deaths: list[Death] = []
        self.killed: set[int] = set()
        self.stopped = False

    # files
    @property
    def app_dir(self) -> Path:
        return self.root / "app"

    @property
    def core_dirs(self) -> tuple[Path, ...]:
        return (self.root / "cores",)

    @property
    def executable(self) -> str:
        return "/usr/sbin/apache2"

    @property
    def fires_on_request(self) -> bool:
        return self.setup.mechanism.fires_on_request

    @property
    def stop_timeouts(self) -> tuple[float, float]:
        return 0.01, 0.01

    def prepare(self) -> None:
        self.calls.append("prepare")
        (self.root / "cores").mkdir(parents=True, exist_ok=True)
        self.app_dir.mkdir(parents=True, exist_ok=True)

    def start(self) -> None:
        self.calls.append("start")
        if self.script.start_fails:
            raise StartFailed("Apache exited during start-up (status 1)", ["AH00072: make_sock: could not bind"])
        self._enter(0)

    def _enter(self, cycle: int) -> None:
        self._cycle = cycle
        step = self.script.step(cycle)
        self._pending_log += step.log

    def running(self) -> bool:
        return self._alive

    def exit_description(self) -> str | None:
        return None if self._alive else f"killed by signal {self._exit_signal}"

    def exit_signal(self) -> int | None:
        return self._exit_signal

    def ended_from_outside(self) -> str | None:
        return None if self._exit_signal is None or self._exit_signal == 11 else f"killed by {self._exit_signal}"

    def serving_pids(self) -> set[int]:
        return {self._pid} if self._alive else set()

    def ready(self, cycle: int, waiter: Waiter, log: CycleLog, timeout: float) -> set[int]:
        return self.serving_pids()

    def trigger(self, cycle: int) -> None:
        self.calls.append(f"trigger {cycle}")
        step = self.script.step(cycle)
        self._enter(cycle)
        if step.trigger_fails:
            raise TriggerFailed("apachectl graceful failed: refused")
        if step.fired is Fired.CONFIRMED:
            self._pid += 1

    def confirm(self, before: set[int], waiter: Waiter, log: CycleLog) -> Confirmation:
        self.calls.append(f"confirm {self._cycle}")
        fired = self.script.step(self._cycle).fired
        return Confirmation(fired, f"scripted {fired.value}", time.time() if fired is Fired.CONFIRMED else None)

    def probe(self, cycle: int, targets: Sequence[ProbeTarget], waiter: Waiter) -> list[ProbeResult]:
        self.calls.append(f"probe {cycle}")
        step = self.script.step(cycle)
        results = []
        for target, answer in zip(targets, step.answers):
            body = answer.body if answer.body is not None else (target.probe.body_equals or "")
            mismatch = None if answer.status is None else target.probe.mismatch(answer.status, body)
            results.append(ProbeResult(target.url, answer.status, body if answer.status else "", answer.error,
                                       mismatch, 0.01, time.time()))  # fmt: skip
            if answer.error == "timeout":
                break
        for signal in step.deaths:
            self._deaths.append(Death(self._pid, signal, DeathSource.EXIT_STATUS, time.time(), f"pid {self._pid} died"))
            self._pid += 1  # the server starts a new one
        return results

    def read_log(self, final: bool = False) -> list[str]:
        lines, self._pending_log = self._pending_log, []
        return lines

    def take_deaths(self) -> list[Death]:
        found, self._deaths = self._deaths, []
        return found

    def take_events(self) -> list[LogEvent]:
        return []

    def process_table(self) -> list[ProcessRow]:
        return [ProcessRow(self._pid, "daemon", "sleeping", 1)] if self._alive else []

    def kill(self, pids: set[int]) -> None:
        self.calls.append(f"kill {sorted(pids)}")
        self.killed |= pids
        self._pid += 1

    def request_stop(self, cycle: int) -> None:
        self.calls.append("request_stop")
        self._enter(self._cycle + 1)
        for signal in self.script.step(self._cycle).deaths:
            self._deaths.append(Death(self._pid, signal, DeathSource.EXIT_STATUS, time.time(), "died at stop"))
        self._alive = False

    def stop(self) -> None:
        self.stopped = True
        self._alive = False

    def config_files(self) -> list[Path]:
        return []

    def loaded_extensions(self) -> list[tuple[str, str]]:
        return [("_speedups", "/site/pkg/_speedups.so")]

    def info(self) -> EngineInfo:
        return EngineInfo(kind="apache", user=getpass.getuser(), port=8000, command=("mod_wsgi-express", "fake"))

    def die(self, signal: int) -> None:
        """The engine's top process ends (the Apache parent killed, say)."""
        self._alive = False
        self._exit_signal = signal


CELL = CellSpec(python="3.11.2", python_executable="/usr/bin/python3.11", mod_wsgi="6.1.1")


def prepared(spec: CellSpec, user: str | None = None, private_view: bool = True) -> PreparedCell:
    me = ServerUser(getpass.getuser(), os.getuid(), os.getgid())
    info = CellInfo(label=spec.label, python=spec.python, python_executable=spec.python_executable,
                    mod_wsgi=spec.mod_wsgi, mod_wsgi_version=spec.mod_wsgi, apache="2.4.71", apache_origin="debian",
                    env_dir="/nonexistent/cell")  # fmt: skip
    python = PythonInfo(spec.python, spec.python_executable)
    cell = Cell(python, spec.mod_wsgi, None, "/nonexistent/cell", spec.mod_wsgi)
    return PreparedCell(spec, info, cell, me, None, frozenset({"--process-group"}))


@dataclass
class World:
    """The patched boundary: scripts per scenario name, and the engines made from them."""

    scripts: dict[str, Script] = field(default_factory=dict)
    engines: list[FakeEngine] = field(default_factory=list)
    hang_dumps: list[int] = field(default_factory=list)

    def script(self, scenario: str) -> Script:
        return self.scripts.setdefault(scenario, Script())


def hung_stacks(app_dir: Path) -> Stacks:
    thread = Thread(1, [Frame("C", "take_gil", "Python/ceval_gil.c", 300, "libpython3.11.so.1.0"),
                        Frame("Python", "application", f"{app_dir}/app.wsgi", 9)])  # fmt: skip
    return Stacks("pystack", [thread], "Traceback for thread 1\n", ["pystack: used"])


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[World]:
    """Runs made with the real runner, session and writers, but FakeEngines and ready-made cells."""
    from harness import engines
    from harness.run import session

    found = World()
    roots = tmp_path / "roots"
    roots.mkdir()

    def create(setup: EngineSetup) -> FakeEngine:
        engine = FakeEngine(setup, found.script(setup.spec.scenario.name), setup.root)
        found.engines.append(engine)
        return engine

    def dump(pid: int, accept: Callable[[list[Thread]], str | None], python_gdb: object) -> Stacks:
        found.hang_dumps.append(pid)
        return hung_stacks(found.engines[-1].app_dir)

    monkeypatch.setattr(engines, "create", create)
    monkeypatch.setattr(engines, "refusal", lambda setup: None)
    monkeypatch.setattr(session, "prepare", prepared)
    monkeypatch.setattr(collector, "live_stacks", dump)
    monkeypatch.setenv("MOD_WSGI_HARNESS_RUNTIME", str(tmp_path / "runtime"))
    yield found
