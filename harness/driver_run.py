"""Run the embedding driver for one run and turn what it did into cycle records.

The driver (``embed/wsgi_driver.c``) appends a step line before every interpreter transition and the
host appends the probe answers after each load, both to one progress file; its stderr (step lines,
tracebacks, faulthandler dumps) is the run's error_log. A cycle is recorded when the next one begins
or the process ends, so a death while ending an interpreter is charged to the reload that ended it.
Outcomes come from the same judge as the Apache mechanisms, fed with the same kinds of evidence.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from harness import judge
from harness.classify import EventKind, LogEvent, classify
from harness.cycle import POLL, CycleRecord, Interrupted
from harness.evidence import RunEvidence
from harness.judge import Confirmation, Fired
from harness.privileges import ServerUser
from harness.probe import ProbeResult
from harness.scenario import Probe
from harness.view import PrivateView

MARKER = "[wh-driver] cycle "
STEP_DEADLINE = 30.0  # making or ending an interpreter, finalizing: far longer than any of them takes
LOAD_DEADLINE = 60.0  # loading the app (a Pylons app on 2.7 takes about a second)
STOP_WAIT = 5.0
HOST_FAILED = 3  # wsgi_driver's exit statuses (see its header)
NEW_INTERPRETER_FAILED = 4
Recorder = Callable[[CycleRecord], None]


@dataclass(frozen=True)
class DriverPlan:
    binary: Path
    mode: str  # interpreter-cycle | finalize-reinit
    cycles: int
    program: Path  # the cell's python: the interpreters take its prefix and site-packages
    root: Path
    app_source: Path
    script_name: str
    probes: tuple[Probe, ...]
    mount: str
    site_dirs: tuple[Path, ...]
    blocked: tuple[str, ...]
    user: ServerUser
    view: PrivateView | None

    def deadline(self, step: str) -> float:
        """Seconds a step may take before the driver counts as hung: a probe has the scenario's own
        timeout, as it has under Apache."""
        if step.startswith("probe "):
            index = int(step.split()[1])
            return self.probes[index].timeout if index < len(self.probes) else STEP_DEADLINE
        return LOAD_DEADLINE if step in ("host", "load") else STEP_DEADLINE


@dataclass
class _Cycle:
    cycle: int
    phase: str
    steps: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    ready: float | None = None  # when the new interpreter (or the re-initialized runtime) ran its first code
    result: dict[str, Any] | None = None  # the host's record


class EmbeddedDriver:
    """One driver process in its own private root, watched from outside."""

    def __init__(self, plan: DriverPlan) -> None:
        self.plan = plan
        self.root = plan.root
        self.app_dir = plan.root / "app"
        self.cores_dir = plan.root / "cores"
        self.progress = plan.root / "progress.jsonl"
        self.error_log = plan.root / "error_log"
        self._proc: subprocess.Popen[bytes] | None = None
        self.extensions: list[tuple[str, str]] = []  # C extension modules the first load imported
        self._offset = 0
        self._partial = b""

    @property
    def script(self) -> Path:
        return self.app_dir / self.plan.script_name

    def config_files(self) -> list[Path]:
        return [self.root / "driver.json"]

    def command(self) -> list[str]:
        plan = self.plan
        args = [str(plan.binary), plan.mode, str(plan.cycles), str(plan.program), str(self.root / "driver_host.py"),
                str(self.progress)]  # fmt: skip
        if plan.view is not None:
            return plan.view.command(args, plan.user, self.root / "view-stage")
        return args

    def prepare(self) -> None:
        self.root.mkdir(mode=0o700)
        shutil.copytree(self.plan.app_source, self.app_dir, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        shutil.copyfile(Path(__file__).resolve().parent / "embed" / "driver_host.py", self.root / "driver_host.py")
        self.cores_dir.mkdir(mode=0o700)
        if self.plan.view is not None:
            (self.root / "view-stage").mkdir(mode=0o700)
        config = {
            "script": str(self.script),
            "module_name": "_mod_wsgi_" + hashlib.md5(str(self.script).encode()).hexdigest(),  # as mod_wsgi names it
            "app_dir": str(self.app_dir),
            "site_dirs": [str(d) for d in self.plan.site_dirs],
            "blocked": list(self.plan.blocked),
            "probes": [p.path for p in self.plan.probes],
            "mount": self.plan.mount,
            "progress": str(self.progress),
        }
        (self.root / "driver.json").write_text(json.dumps(config, indent=2))
        self.progress.touch()
        if os.geteuid() == 0:
            for path in (self.root, *self.root.rglob("*")):
                os.chown(path, self.plan.user.uid, self.plan.user.gid, follow_symlinks=False)

    def start(self) -> None:
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
            self._proc = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.app_dir, env=env, start_new_session=True, **drop,
            )  # fmt: skip

    @property
    def pid(self) -> int | None:
        """The driver's pid: under the private view, unshare, sh and setpriv each exec the next, so the
        process started is the driver itself."""
        return None if self._proc is None else self._proc.pid

    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    def new_lines(self) -> list[dict[str, Any]]:
        """Complete progress lines written since the last call (a half-written one waits)."""
        try:
            with open(self.progress, "rb") as handle:
                handle.seek(self._offset)
                data = handle.read()
        except FileNotFoundError:
            return []
        self._offset += len(data)
        complete, newline, self._partial = (self._partial + data).rpartition(b"\n")
        if not newline:
            return []
        records = []
        for line in complete.decode("utf-8", errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                records.append(json.loads(line))
        return records

    def stop(self) -> None:
        """Kill the process group (the driver never needs asking twice) and anything left in the root."""
        from harness import registry

        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=STOP_WAIT)
        registry.kill_tree(self.root)

    def process_table(self) -> list[dict[str, object]]:
        pid = self.pid
        if pid is None:
            return []
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(pid)
            return [{"pid": pid, "role": "driver", "status": proc.status(), "user": proc.username()}]
        return []


class DriverWatch:
    """Follows one driver process through its cycles and records each."""

    def __init__(self, run_id: str, mechanism: str, driver: EmbeddedDriver, evidence: RunEvidence,
                 stop: threading.Event) -> None:  # fmt: skip
        self.run_id = run_id
        self.mechanism = mechanism
        self.driver = driver
        self.evidence = evidence
        self.stop = stop
        self.log_lines: list[str] = []  # the whole driver log so far
        self._log_offset = 0
        self._cycle_first_line = 1
        self.current: _Cycle | None = None
        self.last_progress = time.monotonic()

    def run(self, record: Recorder) -> None:
        """Watch until the driver exits (or hangs, or the harness stops); `record` takes each CycleRecord."""
        self.driver.start()
        while True:
            for line in self.driver.new_lines():
                self._step(line, record)
            code = self.driver.returncode()
            if code is not None:
                for line in self.driver.new_lines():
                    self._step(line, record)
                self._ended(code, record)
                return
            if self._overdue():
                self._hung(record)
                return
            if self.stop.wait(POLL):
                raise Interrupted()

    def _step(self, line: dict[str, Any], record: Recorder) -> None:
        self.last_progress = time.monotonic()
        cycle, phase = int(line.get("cycle", -1)), str(line.get("phase", ""))
        if self.current is not None and cycle != self.current.cycle:
            record(self._finish(self.current))
            self.current = None
        if self.current is None:
            self.current = _Cycle(cycle, phase)
        if line.get("step") == "done" and self.current.result is not None:  # a second probing, same cycle
            again = [{**answer, "again": True} for answer in line.get("probes") or []]
            self.current.result = {**self.current.result, "probes": [*self.current.result["probes"], *again]}
        elif line.get("step") == "done":
            self.current.result = line
            if not self.driver.extensions:
                self.driver.extensions = [(str(name), str(path)) for name, path in line.get("extensions") or []]
        else:
            self.current.steps.append(str(line.get("step")))
            if line.get("step") == "host" and self.current.ready is None:
                self.current.ready = time.time()

    def _overdue(self) -> bool:
        step = self.current.steps[-1] if self.current and self.current.steps else "start"
        return time.monotonic() - self.last_progress > self.driver.plan.deadline(step)

    def _hung(self, record: Recorder) -> None:
        current = self.current or _Cycle(0, "load")
        step = current.steps[-1] if current.steps else "start"
        waited = time.monotonic() - self.last_progress
        pid = self.driver.pid
        reason = f"cycle {current.cycle}: no progress in step '{step}' for {waited:.0f}s"
        dumps = self.evidence.dump_hung(current.cycle, {pid} if pid else set(), reason)
        self.driver.stop()
        line = f"[harness] driver pid {pid} killed: {reason}"
        killed = LogEvent(EventKind.KILLED, line, pid=pid, signal=int(signal.SIGKILL))
        record(self._finish(current, extra=[killed], dumps=dumps, waited=waited))
        self.current = None

    def _ended(self, code: int, record: Recorder) -> None:
        current = self.current
        self.current = None
        if current is None:
            return
        extra: list[LogEvent] = []
        pid = self.driver.pid
        step = current.steps[-1] if current.steps else "start"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = str(-code)
            line = f"[harness] driver pid {pid} exit signal {name} ({-code}) in cycle {current.cycle}, step '{step}'"
            extra.append(LogEvent(EventKind.SIGNAL_DEATH, line, pid=pid, signal=-code))
        elif code == HOST_FAILED:  # the harness's own host broke: nothing here says anything of the app
            record(self._finish(current, broken=f"the driver's host failed in step '{step}' (see error_log)"))
            return
        elif not (current.phase == "stop" and "finished" in current.steps):
            # The process ended mid-cycle without a signal (the app called os._exit, say): never clean.
            why = "Py_NewInterpreter failed" if code == NEW_INTERPRETER_FAILED else f"exit status {code}"
            extra.append(LogEvent(EventKind.SCRIPT_FAILED, f"[harness] driver ended in step '{step}': {why}", pid=pid))
        record(self._finish(current, extra=extra))

    def _read_log(self) -> None:
        try:
            with open(self.driver.error_log, "rb") as handle:
                handle.seek(self._log_offset)
                data = handle.read()
        except FileNotFoundError:
            return
        complete, newline, _ = data.rpartition(b"\n")
        if newline:
            self._log_offset += len(complete) + 1
            self.log_lines += complete.decode("utf-8", errors="replace").split("\n")

    def _cycle_lines(self, cycle: int) -> tuple[list[str], list[int]]:
        """The log lines of `cycle`: from where the last cycle's ended up to the next cycle's first marker."""
        self._read_log()
        start = self._cycle_first_line - 1
        end = len(self.log_lines)
        for index in range(start, len(self.log_lines)):
            line = self.log_lines[index]
            if line.startswith(MARKER) and not line.startswith(f"{MARKER}{cycle} "):
                end = index
                break
        self._cycle_first_line = end + 1
        return self.log_lines[start:end], [start + 1, end]

    def _finish(self, current: _Cycle, extra: list[LogEvent] | None = None,
                dumps: list[dict[str, object]] | None = None, waited: float | None = None,
                broken: str | None = None) -> CycleRecord:  # fmt: skip
        lines, line_range = self._cycle_lines(current.cycle)
        events = [*classify(lines), *(extra or [])]
        probes = self._probes(current, waited)
        if current.phase == "reload":  # the driver itself made the new interpreter: nothing can fail to fire
            confirmation = Confirmation(Fired.CONFIRMED, " -> ".join(current.steps), current.ready)
        else:
            confirmation = Confirmation(Fired.NOT_APPLICABLE, "first load" if current.phase == "load" else "stop")
        if broken is not None:  # judged a harness error, never clean, whatever else the cycle shows
            confirmation = Confirmation(Fired.NOT_FIRED, broken)
        result = current.result or {}
        if result.get("load_error"):
            failure = f"[harness] loading the script raised {result['load_error']}"
            events.append(LogEvent(EventKind.SCRIPT_FAILED, failure))
        outcome, evidence = judge.decide(confirmation, probes, events, lines)
        pid = self.driver.pid
        return CycleRecord(
            run=self.run_id,
            cycle=current.cycle,
            phase=current.phase,
            mechanism=self.mechanism,
            outcome=outcome,
            evidence=evidence,
            confirmation=confirmation,
            probes=probes,
            events=[e for e in events if e.kind is not EventKind.FAULTHANDLER][:50],
            daemon_pids_before=[pid] if pid else [],
            daemon_pids_after=[pid] if pid and self.driver.returncode() is None else [],
            processes=self.driver.process_table(),
            timestamps={
                "trigger_sent": current.started,
                "reload_confirmed": confirmation.at,
                "probe_answered": max((p.answered_at for p in probes), default=None),
                "outcome_recorded": time.time(),
            },
            cores=self.evidence.collect_cores(current.cycle),
            stacks=list(dumps or []),
            faulthandler=[e.line for e in events if e.kind in (EventKind.FAULTHANDLER, EventKind.FATAL_ERROR)][:60],
            log_lines=line_range,
        )

    def _probes(self, current: _Cycle, waited: float | None) -> list[ProbeResult]:
        """The host's answers, judged against the scenario's probes; the probe in progress when the
        driver was killed for taking too long is a timed-out request, as it would be under Apache."""
        plan = self.driver.plan
        answers = (current.result or {}).get("probes") or []
        results = []
        last = current.steps[-1] if current.steps else ""
        if waited is not None and last.startswith("probe "):
            spec = plan.probes[int(last.split()[1])]
            url = plan.mount.rstrip("/") + spec.path
            return [ProbeResult(url, None, "", "timeout", None, waited, time.time())]
        specs = list(plan.probes) * 2  # a second probing (interpreter-overlap) repeats them
        for spec, answer in zip(specs, answers):
            status = answer.get("status")
            body = answer.get("body") or ""
            error = answer.get("error")
            mismatch = None if status is None or error else spec.mismatch(int(status), body)
            url = plan.mount.rstrip("/") + spec.path
            if answer.get("again"):
                url += " (again, after the previous interpreter ended)"
            results.append(ProbeResult(url, status, body, error, mismatch, float(answer.get("elapsed") or 0.0),
                                       float(answer.get("answered_at") or time.time())))  # fmt: skip
        return results
