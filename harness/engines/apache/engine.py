"""The Apache engine: an ``ApacheServer`` driven through the Engine protocol.

A reload is confirmed the way each mechanism allows: by every daemon pid from before the trigger
being replaced (daemon mode), or by the log line that says the script was loaded again (embedded
mode). Deaths are seen at the source: every child of the Apache parent is watched, and a dead one's
exit status is read while it is still a zombie, before Apache reaps it and logs AH00051/AH00052.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Sequence
from pathlib import Path

from packaging.version import Version

from harness.engines.apache import http
from harness.engines.apache.server import SHUTDOWN_TIMEOUT, ApacheServer, ServerPlan
from harness.engines.base import CycleLog, EngineSetup, ProbeTarget, Waiter
from harness.engines.classify import CRASH_SIGNALS, classify_line, parse_line
from harness.engines.logtail import LogTail
from harness.engines.procs import DeathWatch, signal_name
from harness.errors import HarnessError
from harness.model.layouts import GLOBAL
from harness.model.mechanisms import Confirm, Mechanism
from harness.model.records import Confirmation, Death, EngineInfo, EventKind, Fired, LogEvent, ProbeResult, ProcessRow

AFTER_REQUEST_CONFIRM = 8.0  # a reload that fires on the next request: its proof comes within this
STOP_DUMP_AFTER = 0.8  # a process still there this long after the stop request gets its stacks dumped
PRELOAD_WAIT = 10.0  # a fresh daemon's preload of the app (a Pylons app on 2.7 takes about a second)


class ApacheEngine:
    def __init__(self, server: ApacheServer, mechanism: Mechanism, mirror: Path) -> None:
        self.server = server
        self.mechanism = mechanism
        self.tail = LogTail(server.error_log, mirror=mirror)
        self.deaths = DeathWatch()
        self._loaded: set[int] = set()  # processes seen to have loaded the app's script
        self._killed: set[int] = set()  # processes the harness killed (hung daemons, after their stacks)

    @property
    def app_dir(self) -> Path:
        return self.server.app_dir

    @property
    def core_dirs(self) -> tuple[Path, ...]:
        # The daemons started with Apache die before its fatal-signal handler is theirs and dump into
        # their working directory (the app folder); the others follow CoreDumpDirectory.
        return (self.server.cores_dir, self.server.app_dir)

    @property
    def executable(self) -> str:
        """The httpd binary the cores come from (pystack and gdb need its real path)."""
        httpd = self.server.plan.cell.httpd
        if not httpd:
            cell = self.server.plan.cell.env_dir
            raise HarnessError(f"cell {cell} names no httpd; remove that folder to rebuild it")
        return httpd

    @property
    def fires_on_request(self) -> bool:
        return self.mechanism.fires_on_request

    @property
    def stop_timeouts(self) -> tuple[float, float]:
        # Then Apache's own shutdown timeout acts and logs it ("Shutdown timeout expired"): a second stop
        # request would end the parent at once and the hang would leave no trace in the log.
        return STOP_DUMP_AFTER, SHUTDOWN_TIMEOUT + 3.0

    def prepare(self) -> None:
        self.server.prepare()

    def start(self) -> None:
        try:
            self.server.start()
        finally:
            self._watch_children()

    def running(self) -> bool:
        return self.server.running()

    def exit_description(self) -> str | None:
        return self.server.exit_description()

    def exit_signal(self) -> int | None:
        return self.server.exit_signal()

    def ended_from_outside(self) -> str | None:
        signum = self.server.exit_signal()
        if signum is None or signum in CRASH_SIGNALS:
            return None
        return f"the Apache parent was killed by {signal_name(signum)} from outside the harness"

    def serving_pids(self) -> set[int]:
        """The processes serving the app now; one the harness has killed (a hung daemon) is not serving, even
        in the moment before it is gone, or its replacement would be taken for the next cycle's reload."""
        pids = self._unkilled()
        self.deaths.watch(pids)
        return pids

    def _unkilled(self) -> set[int]:
        """The server's request processes less those the harness killed; a killed pid is forgotten once it is
        gone, so a later daemon that reuses the number is seen."""
        pids = self.server.request_pids()
        self._killed &= pids
        return pids - self._killed

    def ready(self, cycle: int, waiter: Waiter, log: CycleLog, timeout: float) -> set[int]:
        """Something serves the app, and a daemon that preloads it has done so: a reload triggered while a
        fresh daemon is still loading the script would be taken for the load itself (the script's mtime
        read after a touch counts as unchanged)."""
        server = self.server
        waiter.until(lambda: bool(self._unkilled()) or not server.running(), timeout, log.read)
        pids = self.serving_pids()
        server.mpm()  # read while the start-up line is there
        if self.server.plan.preload and not self.mechanism.embedded:
            waiter.until(lambda: pids <= self._loaded or not server.running(), PRELOAD_WAIT, log.read)
        return pids

    def trigger(self, cycle: int) -> None:
        self.mechanism.trigger(self.server)

    def confirm(self, before: set[int], waiter: Waiter, log: CycleLog) -> Confirmation:
        timeout = AFTER_REQUEST_CONFIRM if self.mechanism.fires_on_request else self.mechanism.deadline
        if self.mechanism.confirm is Confirm.SCRIPT_LOAD:
            return self._confirm_script_load(timeout, waiter, log)
        return self._confirm_pid(before, timeout, waiter, log)

    def _confirm_pid(self, before: set[int], timeout: float, waiter: Waiter, log: CycleLog) -> Confirmation:
        server = self.server

        def replaced() -> bool:
            now = server.daemon_pids()
            return bool(now) and not (before & now)

        if waiter.until(lambda: replaced() or not server.running(), timeout, log.read) and server.running():
            after = self.serving_pids()
            return Confirmation(Fired.CONFIRMED, f"daemon {sorted(before)} -> {sorted(after)}", time.time())
        if not server.running():
            return Confirmation(Fired.SERVER_GONE, f"the Apache parent exited ({server.exit_description()})")
        now = server.daemon_pids()
        if before & now:
            if log.has(EventKind.RELOAD_REQUESTED):
                return Confirmation(
                    Fired.STUCK, f"daemon {sorted(before & now)} asked to restart, still alive after {timeout:.0f}s"
                )
            return Confirmation(Fired.NOT_FIRED, f"daemon {sorted(before & now)} still serving after {timeout:.0f}s")
        return Confirmation(Fired.NO_NEW_DAEMON, f"daemon {sorted(before)} gone, none started within {timeout:.0f}s")

    def _confirm_script_load(self, timeout: float, waiter: Waiter, log: CycleLog) -> Confirmation:
        """The app's own script executed again since the trigger: 'Reloading' in a process that had it, or
        'Loading' in a worker that had not; express's handler.wsgi loading does not count."""
        script = f"'{self.server.script}'"
        if waiter.until(lambda: log.has(EventKind.SCRIPT_LOADED, naming=script), timeout, log.read):
            return Confirmation(Fired.CONFIRMED, "script loaded again (log)", time.time())
        if not self.server.running():
            return Confirmation(Fired.SERVER_GONE, "the Apache parent exited")
        return Confirmation(Fired.NOT_FIRED, f"no 'Loading/Reloading WSGI script' line within {timeout:.0f}s")

    def probe(self, cycle: int, targets: Sequence[ProbeTarget], waiter: Waiter) -> list[ProbeResult]:
        results: list[ProbeResult] = []
        for target in targets:
            waiter.check()
            self.serving_pids()  # watched before the request, so a death while it runs is seen
            result = http.send(self.server.port, target)
            results.append(result)
            if result.timed_out:
                break  # the daemon is stuck: the next request would wait the same deadline for nothing
        return results

    def read_log(self, final: bool = False) -> list[str]:
        lines = self.tail.flush() if final else self.tail.read()
        self._loaded |= script_loaders(lines, self.server.script)
        return lines

    def _watch_children(self) -> None:
        self.deaths.watch(self.server.children())

    def take_deaths(self) -> list[Death]:
        self._watch_children()  # zombies too: a child that died before anyone looked is still our child
        return self.deaths.take()

    def take_events(self) -> list[LogEvent]:
        return []

    def process_table(self) -> list[ProcessRow]:
        return self.server.process_table()

    def kill(self, pids: set[int]) -> None:
        self._killed |= pids
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    def request_stop(self, cycle: int) -> None:
        self._watch_children()
        self.server.request_stop()

    def stop(self) -> None:
        self.server.stop()

    def config_files(self) -> list[Path]:
        return self.server.config_files()

    def loaded_extensions(self) -> list[tuple[str, str]]:
        return []

    def info(self) -> EngineInfo:
        return EngineInfo(
            kind="apache",
            user=self.server.plan.user.name,
            port=self.server.port,
            command=tuple(["mod_wsgi-express", *self.server.express_arguments()]),
            mpm=self.server.mpm(),
            apache=self.server.version(),
        )


def script_loaders(lines: Sequence[str], script: Path) -> set[int]:
    """The processes these log lines show loading the app's script (mod_wsgi 4.x and 5.x say "Loading Python
    script file", 6.x "Loading WSGI script"; express's own handler.wsgi is not the app)."""
    quoted = f"'{script}'"
    found = set()
    for line in lines:
        if quoted in line:
            event = classify_line(parse_line(line))
            if event is not None and event.kind is EventKind.SCRIPT_LOADED and event.pid is not None:
                found.add(event.pid)
    return found


def refuse_free_threaded(setup: EngineSetup) -> str | None:
    """The free-threaded layout on an interpreter built with the GIL (every one here, so far)."""
    python = setup.cell.cell.python if setup.cell.cell is not None else None
    if setup.layout.free_threaded and (python is None or not python.free_threaded):
        return (
            f"layout {setup.layout.name} needs a free-threaded build of Python (3.13t or later, Py_GIL_DISABLED); "
            f"Python {setup.cell.info.python} at {setup.cell.info.python_executable} is built with the GIL"
        )
    return None


def refusal(setup: EngineSetup) -> str | None:
    """A mechanism or layout this cell's Apache and mod_wsgi cannot do, said before anything starts."""
    layout, cell = setup.layout, setup.cell
    if layout.driver_only:
        return f"layout {layout.name} is made only by the embedding driver (interpreter-cycle, interpreter-overlap)"
    missing = [o for o in layout.express_options if o not in cell.express_options]
    if missing:
        return f"layout {layout.name} needs {', '.join(missing)}, which this cell's mod_wsgi-express lacks"
    free_threaded = refuse_free_threaded(setup)
    if free_threaded:
        return free_threaded
    if layout.own_gil:
        version = cell.info.mod_wsgi_version or ""
        if not version or Version(version) < Version("6.0"):
            return f"layout {layout.name} needs mod_wsgi >= 6.0 (WSGIPerInterpreterGIL); this cell has {version or '?'}"
        if Version(cell.info.python) < Version("3.12"):
            return (
                f"layout {layout.name} needs Python >= 3.12 (a GIL per interpreter); this cell has {cell.info.python}"
            )
    if setup.mechanism.name == "reload-on-changes" and not cell.named_groups and layout.primary_group != GLOBAL:
        return (
            "reload-on-changes cannot fire here: express before 5.x runs its change monitor in %{GLOBAL} and "
            f"watches only that interpreter's modules, while this layout loads the app in '{layout.primary_group}'"
        )
    return None


def create(setup: EngineSetup) -> ApacheEngine:
    cell = setup.cell
    assert cell.cell is not None, "an unsupported cell has no server"
    plan = ServerPlan(
        cell=cell.cell,
        user=cell.user,
        root=setup.root,
        app_source=setup.scenario.directory,
        script_name=setup.scenario.script,
        watch_name=setup.scenario.watch,
        layout=setup.layout,
        mounts=setup.layout.ordered(setup.spec.load.order),
        preload=setup.spec.load.preload,
        embedded=setup.mechanism.embedded,
        script_reloading=setup.mechanism.script_reloading,
        mechanism_options=setup.mechanism.express_options,
        python_path=setup.site_dirs,
        blocked=setup.spec.blocked,
        threads=setup.spec.threads,
        port=setup.spec.port,
        view=cell.view,
        named_groups=cell.named_groups,
    )
    return ApacheEngine(ApacheServer(plan), setup.mechanism, setup.mirror)
