"""The driver engine: the embedding driver (``wsgi_driver.c``) run and watched through the Engine protocol.

The driver does one cycle per command on its stdin (``load``, ``reload``, ``stop``) and appends a step
line before every interpreter transition, and the host appends the probe answers, to one progress
file; its stderr (step lines, tracebacks, faulthandler dumps) is the run's error_log. A death is
placed in its cycle and step, and a step that overruns its deadline is a hang. When a crash or a hang
has ended the process, the next cycle starts a fresh one (which loads the app first), the way Apache
starts a new daemon after one died, so a run of N cycles is N trials.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import IO, Any

import psutil
from packaging.version import Version

from harness.cells.privileges import ServerUser
from harness.cells.view import PrivateView
from harness.engines import roots
from harness.engines.base import CycleLog, EngineSetup, ProbeTarget, StartFailed, Waiter
from harness.engines.classify import CRASH_SIGNALS
from harness.engines.logtail import LogTail
from harness.engines.procs import signal_name
from harness.model.records import (
    Confirmation,
    Death,
    DeathSource,
    EngineInfo,
    EventKind,
    Fired,
    LogEvent,
    ProbeResult,
    ProcessRow,
)

STEP_DEADLINE = 30.0  # making or ending an interpreter, finalizing: far longer than any of them takes
LOAD_DEADLINE = 60.0  # loading the app (a Pylons app on 2.7 takes about a second)
KILL_WAIT = 5.0
HOST_FAILED = 3  # wsgi_driver's exit statuses (see its header)
NO_INTERPRETER = 4
HOST = "driver_host.py"


@dataclass(frozen=True)
class DriverPlan:
    binary: Path
    mode: str  # interpreter-cycle | interpreter-overlap | finalize-reinit
    isolated: bool  # Py_NewInterpreterFromConfig with an own GIL (the isolated layout)
    program: Path  # the cell's python: the interpreters take its prefix and site-packages
    root: Path
    app_source: Path
    script_name: str
    probe_paths: tuple[str, ...]
    probe_timeouts: tuple[float, ...]
    mount: str
    group: str
    site_dirs: tuple[Path, ...]
    blocked: tuple[str, ...]
    user: ServerUser
    view: PrivateView | None

    def deadline(self, step: str) -> float:
        """Seconds a step may take before the driver counts as hung: a probe has the scenario's own timeout,
        as it has under Apache."""
        if step.startswith("probe "):
            index = int(step.split()[1])
            return self.probe_timeouts[index] if index < len(self.probe_timeouts) else STEP_DEADLINE
        return LOAD_DEADLINE if step in ("host", "load") else STEP_DEADLINE


@dataclass
class _Command:
    """What one command to the driver has shown so far."""

    cycle: int
    fresh: bool  # the first load of a process that replaces one that died
    steps: list[str] = field(default_factory=list)
    done: list[dict[str, Any]] = field(default_factory=list)  # the host's records
    exceptions: list[str] = field(default_factory=list)
    ready: bool = False  # the driver finished it and waits for the next
    host_at: float | None = None  # when the new interpreter ran its first code
    last_progress: float = field(default_factory=time.monotonic)

    @property
    def step(self) -> str:
        return self.steps[-1] if self.steps else "start"


class DriverEngine:
    def __init__(self, plan: DriverPlan, mirror: Path) -> None:
        self.plan = plan
        self.root = plan.root
        self.progress = plan.root / "progress.jsonl"
        self.error_log = plan.root / "error_log"
        self.tail = LogTail(self.error_log, mirror=mirror)
        self.extensions: list[tuple[str, str]] = []  # C extension modules the first load imported
        self._app_ran: set[int] = set()  # driver processes in which the app's script has run
        self._process: subprocess.Popen[bytes] | None = None
        self._stdin: IO[bytes] | None = None
        self._offset = 0
        self._partial = b""
        self._command: _Command | None = None
        self._events: list[LogEvent] = []
        self._deaths: list[Death] = []
        self._reported: set[int] = set()
        self._cycle = 0
        self._killed: set[int] = set()
        self._fresh: _Command | None = None  # a fresh process's first load, made ready for the next reload
        self._earlier: _Command | None = None  # that load, for the cycle whose reload comes after it

    # --- files -------------------------------------------------------------------------------
    @property
    def app_dir(self) -> Path:
        return self.root / "app"

    @property
    def core_dirs(self) -> tuple[Path, ...]:
        return (self.root / "cores", self.app_dir)

    @property
    def executable(self) -> str:
        return str(self.plan.binary)

    @property
    def fires_on_request(self) -> bool:
        return False

    @property
    def stop_timeouts(self) -> tuple[float, float]:
        return 10.0, 5.0

    @property
    def script(self) -> Path:
        return self.app_dir / self.plan.script_name

    def config_files(self) -> list[Path]:
        return [self.root / "driver.json"]

    def command(self) -> list[str]:
        plan = self.plan
        return [
            str(plan.binary),
            plan.mode,
            "isolated" if plan.isolated else "legacy",
            str(plan.program),
            str(self.root / HOST),
            str(self.progress),
        ]

    def _argv(self) -> list[str]:
        if self.plan.view is not None:
            return self.plan.view.command(self.command(), self.plan.user, self.root / "view-stage")
        return self.command()

    def prepare(self) -> None:
        self.root.mkdir(mode=0o700)
        shutil.copytree(self.plan.app_source, self.app_dir, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        (self.root / HOST).write_text(resources.files("harness.engines.driver").joinpath(HOST).read_text())
        (self.root / "cores").mkdir(mode=0o700)
        if self.plan.view is not None:
            (self.root / "view-stage").mkdir(mode=0o700)
        config = {
            "script": str(self.script),
            "module_name": "_mod_wsgi_" + hashlib.md5(str(self.script).encode()).hexdigest(),  # as mod_wsgi names it
            "app_dir": str(self.app_dir),
            "site_dirs": [str(d) for d in self.plan.site_dirs],
            "blocked": list(self.plan.blocked),
            "probes": list(self.plan.probe_paths),
            "mount": self.plan.mount,
            "group": self.plan.group,
            "progress": str(self.progress),
        }
        (self.root / "driver.json").write_text(json.dumps(config, indent=2))
        self.progress.touch()
        if os.geteuid() == 0:
            for path in (self.root, *self.root.rglob("*")):
                os.chown(path, self.plan.user.uid, self.plan.user.gid, follow_symlinks=False)

    # --- the process -------------------------------------------------------------------------
    def _spawn(self) -> None:
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.root),
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "PYTHONFAULTHANDLER": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "WH_DRIVER_CONFIG": str(self.root / "driver.json"),
        }
        drop = {} if self.plan.view is not None else self.plan.user.popen_kwargs()
        with open(self.error_log, "ab") as log:
            try:
                self._process = subprocess.Popen(
                    self._argv(),
                    stdin=subprocess.PIPE,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.app_dir,
                    env=env,
                    start_new_session=True,
                    **drop,
                )
            except OSError as exc:
                raise StartFailed(f"the embedding driver cannot start: {exc.strerror or exc}") from None
        # pids are reused (pid_max is 32768 here): a new driver is not the one killed or reported before it.
        self._killed.discard(self._process.pid)
        self._reported.discard(self._process.pid)
        self._stdin = self._process.stdin

    def _send(self, line: str, cycle: int, fresh: bool = False) -> None:
        self._command = _Command(cycle, fresh)
        self._cycle = cycle
        try:
            assert self._stdin is not None
            self._stdin.write((line + "\n").encode())
            self._stdin.flush()
        except (OSError, ValueError):
            pass  # it died: the next look at it says how

    @property
    def pid(self) -> int | None:
        """The driver's pid: under the private view, unshare, sh and setpriv each exec the next, so the
        process started is the driver itself."""
        return None if self._process is None else self._process.pid

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def exit_description(self) -> str | None:
        code = None if self._process is None else self._process.poll()
        if code is None:
            return None
        return f"killed by {signal_name(-code)}" if code < 0 else f"exit status {code}"

    def exit_signal(self) -> int | None:
        code = None if self._process is None else self._process.poll()
        return -code if code is not None and code < 0 else None

    def ended_from_outside(self) -> str | None:
        process = self._process
        signum = self.exit_signal()
        if process is None or signum is None or signum in CRASH_SIGNALS or process.pid in self._killed:
            return None
        return f"the driver was killed by {signal_name(signum)} from outside the harness"

    def serving_pids(self) -> set[int]:
        return {self._process.pid} if self._process is not None and self.running() else set()

    # --- progress ----------------------------------------------------------------------------
    def _read_progress(self) -> None:
        try:
            with open(self.progress, "rb") as handle:
                handle.seek(self._offset)
                data = handle.read()
        except FileNotFoundError:
            return
        self._offset += len(data)
        complete, newline, self._partial = (self._partial + data).rpartition(b"\n")
        if not newline or self._command is None:
            return
        command = self._command
        for text in complete.decode("utf-8", errors="replace").splitlines():
            try:
                line = json.loads(text)
            except ValueError:
                continue
            if not isinstance(line, dict):
                continue
            command.last_progress = time.monotonic()
            step = str(line.get("step"))
            if step == "done":
                command.done.append(line)
                if self._process is not None:
                    self._app_ran.add(self._process.pid)
                if not self.extensions:
                    self.extensions = [(str(n), str(p)) for n, p in line.get("extensions") or []]
                if line.get("load_error"):
                    self._events.append(
                        LogEvent(EventKind.SCRIPT_FAILED, f"[wh-driver] loading the script raised {line['load_error']}")
                    )
            elif step == "exception":
                text_line = f"[wh-driver] exception in {line.get('where')}: {line.get('error')}"
                command.exceptions.append(text_line)
                self._events.append(LogEvent(EventKind.TRACEBACK, text_line))
            elif step == "ready":
                command.ready = True
            else:
                command.steps.append(step)
                if step == "host" and command.host_at is None:
                    command.host_at = time.time()

    def _overdue(self) -> bool:
        command = self._command
        if command is None or command.ready:
            return False
        return time.monotonic() - command.last_progress > self.plan.deadline(command.step)

    def _settle(self) -> None:
        """A process that ended: how (a signal is a death; anything else mid-command is noted)."""
        process = self._process
        if process is None or process.poll() is None or process.pid in self._reported:
            return
        self._read_progress()
        self._reported.add(process.pid)
        code = process.returncode
        command = self._command
        where = f"in cycle {command.cycle}, step '{command.step}'" if command else "before its first command"
        if process.pid in self._killed:
            return
        if code < 0:
            self._deaths.append(
                Death(
                    process.pid,
                    -code,
                    DeathSource.EXIT_STATUS,
                    time.time(),
                    f"[harness] driver pid {process.pid} exit signal {signal_name(-code)} ({-code}) {where}",
                )
            )
        elif code == HOST_FAILED and process.pid in self._app_ran:
            # The host's own code (recording the answers) raised in a process the app's code has run in: its
            # interpreter was left broken by the app (the controls vouch for the host), so this is the app's.
            self._events.append(
                LogEvent(
                    EventKind.TRACEBACK,
                    f"[wh-driver] the driver's own code raised {where}, after the app ran in this process: the app "
                    "left the interpreter broken (its traceback is in the error_log)",
                    pid=process.pid,
                )
            )
        elif code == HOST_FAILED:
            self._events.append(
                LogEvent(
                    EventKind.HARNESS_FAULT,
                    f"[harness] the driver's host failed {where}, before the app's script had run (see error_log)",
                    pid=process.pid,
                )
            )
        elif code == 0 and command is not None and (command.ready or "finished" in command.steps):
            return  # it stopped when told to
        else:
            why = "no interpreter could be made" if code == NO_INTERPRETER else f"exit status {code}"
            self._events.append(
                LogEvent(EventKind.EXITED, f"[harness] driver pid {process.pid} ended {where}: {why}", pid=process.pid)
            )

    def _wait_command(self, waiter: Waiter, until_host: bool = False) -> bool:
        """Until the command is done (or, with `until_host`, has reached the new interpreter's first code),
        the process ends, or a step overruns its deadline (False)."""

        def settled() -> bool:
            self._read_progress()
            command = self._command
            if command is None or not self.running():
                return True
            return command.ready or (until_host and command.host_at is not None)

        while not settled():
            if self._overdue():
                return False
            waiter.sleep(waiter.poll)
        return True

    # --- the Engine protocol -------------------------------------------------------------------
    def start(self) -> None:
        self._spawn()
        self._send("load 0 load", 0)

    def ready(self, cycle: int, waiter: Waiter, log: CycleLog, timeout: float) -> set[int]:
        """A live driver, or a fresh one that has loaded the app (as Apache starts a new daemon)."""
        if not self.running():
            self._settle()
            self._spawn()
            self._send(f"load {cycle} reload quiet", cycle, fresh=True)
            self._wait_command(waiter)
            self._fresh = self._command
        return self.serving_pids()

    def trigger(self, cycle: int) -> None:
        self._earlier, self._fresh = self._fresh, None
        self._send(f"reload {cycle} reload", cycle)

    def confirm(self, before: set[int], waiter: Waiter, log: CycleLog) -> Confirmation:
        """The driver makes the new interpreter itself: the reload happened once it reached the new
        interpreter's first code, or died trying (the transition is what killed it)."""
        reached = self._wait_command(waiter, until_host=True)
        command = self._command
        assert command is not None
        if not reached:
            waited = time.monotonic() - command.last_progress
            return Confirmation(Fired.STUCK, f"no progress in step '{command.step}' for {waited:.0f}s")
        detail = " -> ".join(command.steps) or "no step"
        if not self.running() and command.host_at is None:
            return Confirmation(Fired.CONFIRMED, f"{detail} (the process ended there)", time.time())
        return Confirmation(Fired.CONFIRMED, detail, command.host_at)

    def probe(self, cycle: int, targets: Sequence[ProbeTarget], waiter: Waiter) -> list[ProbeResult]:
        finished = self._wait_command(waiter)
        earlier, self._earlier = self._earlier, None
        results = self._answers(earlier, targets, note="fresh process, before the reload") if earlier else []
        command = self._command
        assert command is not None
        results += self._answers(command, targets)
        if finished and not command.ready and command.step.startswith("probe "):
            index = int(command.step.split()[1])
            url = targets[index].url if index < len(targets) else self.plan.mount
            results.append(
                ProbeResult(
                    url,
                    None,
                    "",
                    "connection dropped: the driver died during this request",
                    None,
                    time.monotonic() - command.last_progress,
                    time.time(),
                )
            )
        if not finished:
            waited = time.monotonic() - command.last_progress
            if command.step.startswith("probe "):
                index = int(command.step.split()[1])
                url = targets[index].url if index < len(targets) else self.plan.mount + "?"
                results.append(ProbeResult(url, None, "", "timeout", None, waited, time.time()))
            else:
                results.append(ProbeResult(f"(step '{command.step}')", None, "", "timeout", None, waited, time.time()))
        return results

    def _answers(self, command: _Command, targets: Sequence[ProbeTarget], note: str = "") -> list[ProbeResult]:
        results = []
        for number, record in enumerate(command.done):
            again = record.get("task") == "probe-again"
            for target, answer in zip(targets, record.get("probes") or []):
                status = answer.get("status")
                body = answer.get("body") or ""
                error = answer.get("error")
                mismatch = None if status is None or error else target.probe.mismatch(int(status), body)
                label = "again, after the previous interpreter ended" if again else note
                if command.fresh and number == 0 and not note:
                    label = "fresh process after the previous one ended"
                results.append(
                    ProbeResult(
                        target.url,
                        status,
                        body,
                        error,
                        mismatch,
                        float(answer.get("elapsed") or 0.0),
                        float(answer.get("answered_at") or time.time()),
                        label,
                    )
                )
        return results

    def read_log(self, final: bool = False) -> list[str]:
        return self.tail.flush() if final else self.tail.read()

    def take_deaths(self) -> list[Death]:
        self._settle()
        found, self._deaths = self._deaths, []
        return found

    def take_events(self) -> list[LogEvent]:
        self._read_progress()
        self._settle()
        found, self._events = self._events, []
        return found

    def process_table(self) -> list[ProcessRow]:
        pid = self.pid
        if pid is None:
            return []
        with contextlib.suppress(psutil.Error):
            process = psutil.Process(pid)
            return [ProcessRow(pid, "driver", process.status(), process.num_threads())]
        return []

    def kill(self, pids: set[int]) -> None:
        process = self._process
        if process is not None and process.pid in pids and process.poll() is None:
            self._killed.add(process.pid)
            self._settle_kill(process)

    def _settle_kill(self, process: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=KILL_WAIT)
        self._reported.add(process.pid)

    def request_stop(self, cycle: int) -> None:
        if self.running():
            self._send(f"stop {cycle}", cycle)

    def stop(self) -> None:
        """Kill the process group (the driver never needs asking twice) and anything left in the root."""
        process = self._process
        if process is not None and process.poll() is None:
            self._killed.add(process.pid)
            self._settle_kill(process)
        if self._stdin is not None:
            with contextlib.suppress(OSError):
                self._stdin.close()
        roots.kill_tree(self.root)

    def stopped_cleanly(self) -> bool:
        command = self._command
        return bool(command and "finished" in command.steps)

    def loaded_extensions(self) -> list[tuple[str, str]]:
        return list(self.extensions)

    def info(self) -> EngineInfo:
        return EngineInfo(kind="driver", user=self.plan.user.name, command=tuple(self.command()))


def refusal(setup: EngineSetup) -> str | None:
    if setup.layout.name not in setup.mechanism.layouts:
        return f"{setup.mechanism.name} runs in layouts {', '.join(setup.mechanism.layouts)}, not {setup.layout.name}"
    if setup.layout.driver_only and Version(setup.cell.info.python) < Version("3.12"):
        return (
            f"layout {setup.layout.name} needs Python >= 3.12 (Py_NewInterpreterFromConfig with an own GIL); "
            f"this cell has {setup.cell.info.python}"
        )
    return None


def create(setup: EngineSetup) -> DriverEngine:
    cell = setup.cell
    assert cell.cell is not None and setup.driver is not None, "a driver run needs its environment and binary"
    targets = setup.targets
    mount = setup.layout.mounts[0]
    plan = DriverPlan(
        binary=setup.driver,
        mode=setup.mechanism.name,
        isolated=setup.layout.driver_only,
        program=cell.cell.env_python,
        root=setup.root,
        app_source=setup.scenario.directory,
        script_name=setup.scenario.script,
        probe_paths=tuple(t.probe.path for t in targets),
        probe_timeouts=tuple(t.probe.timeout for t in targets),
        mount=mount.prefix,
        group=mount.application_group,
        site_dirs=setup.site_dirs,
        blocked=setup.spec.blocked,
        user=cell.user,
        view=cell.view,
    )
    return DriverEngine(plan, setup.mirror)
