"""One invocation of ``run``: expand the selection into runs, execute them side by side, write the
session's summary, JUnit file and report.

A reload cycle is mostly waiting for Apache's one-second tick, so runs go in parallel threads, each
with its own server. SIGINT, SIGTERM and SIGHUP set one stop event that every run watches; each run
then stops its server in its own ``finally``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from harness import baseline as baselines
from harness import cores, registry, results, view
from harness.cell import (
    DEFAULT_MOD_WSGI,
    Cell,
    Unsupported,
    base_interpreter,
    cell_known,
    describe_python,
    ensure_cell,
    express_options,
    find_apache,
)
from harness.errors import HarnessError
from harness.layouts import LAYOUTS, Layout
from harness.mechanisms import Mechanism
from harness.privileges import ServerUser, blocked_path, check_can_run, choose
from harness.runner import RunContext, RunSpec, execute
from harness.scenario import Scenario
from harness.view import PrivateView

RESULTS_DIR = Path(__file__).resolve().parent.parent / "results"


def default_jobs() -> int:
    """Cycles mostly wait on Apache's timers: two runs per core keeps the CPUs busy but not swamped."""
    return max(2, min(8, 2 * (os.cpu_count() or 1)))


@dataclass(frozen=True)
class Selection:
    scenarios: Sequence[Scenario]
    mechanisms: Sequence[Mechanism]
    layouts: Sequence[Layout]
    cycles: int
    jobs: int
    python: Path | None = None
    mod_wsgi: str = DEFAULT_MOD_WSGI
    server_user: str | None = None
    port: int | None = None
    results_dir: Path = RESULTS_DIR
    until_crash: bool = False
    baseline: baselines.Baseline | None = None
    private_view: bool = True  # as root: show an unreadable interpreter to the server user in a namespace
    session_dir: Path | None = None  # a fixed folder (the matrix's per cell) instead of a new one
    apxs: str | None = None  # which Apache (default: $APXS, else apxs on the PATH)
    blocked: tuple[str, ...] = ()  # extension modules made unimportable in the app (isolate's trials)
    skipped: Mapping[str, str] = field(default_factory=dict)  # scenario -> why it cannot run here

    def specs(self) -> list[RunSpec]:
        """Every scenario x mechanism x layout the scenario supports; a driver mechanism runs in its own
        layout whatever layouts were chosen (there is no Apache around it to lay out)."""
        return [
            RunSpec(scenario, mechanism, layout, self.cycles, self.until_crash, self.blocked)
            for scenario in self.scenarios
            for mechanism in self.mechanisms
            for layout in ([LAYOUTS[n] for n in mechanism.layouts] if mechanism.layouts else self.layouts)
            if layout.name in scenario.layouts
        ]


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Turn SIGINT/SIGTERM/SIGHUP into the stop event; a second signal is not needed to stop."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {}

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def _session_dir(base: Path) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%S")
    try:
        base.mkdir(parents=True, exist_ok=True)
        for n in range(1000):
            candidate = base / (stamp if n == 0 else f"{stamp}-{n}")
            try:
                candidate.mkdir()
                return candidate
            except FileExistsError:
                continue
    except OSError as exc:
        raise HarnessError(f"cannot create results under {base}: {exc.strerror or exc}; pass --results DIR") from None
    raise HarnessError(f"cannot find a free results folder name under {base}")


@dataclass(frozen=True)
class CellSetup:
    cell: Cell | Unsupported
    info: dict[str, Any]
    user: ServerUser
    view: PrivateView | None  # how the server user reaches an interpreter it cannot read, if it must
    named_groups: bool  # the cell's express has --process-group/--application-group (5.x and later)
    express_options: frozenset[str]  # every option the cell's setup-server takes


def prepare_cell(selection: Selection) -> CellSetup:
    """Find Apache, build or reuse the cell, choose the server user and prove it can run the cell;
    all before any results folder exists, so a set-up problem leaves nothing behind."""
    apache = find_apache(selection.apxs)
    python = describe_python(selection.python or base_interpreter())
    compiled = not cell_known(python, selection.mod_wsgi, apache)
    cell = ensure_cell(python, selection.mod_wsgi, apache)
    user = choose(selection.server_user)
    info: dict[str, Any] = {
        "compiled_now": compiled,
        "python": python.version,
        "python_executable": python.executable,
        "mod_wsgi": selection.mod_wsgi,
        "apache": apache.version,
        "apache_origin": apache.origin,
        "httpd": apache.httpd,
    }
    private: PrivateView | None = None
    if isinstance(cell, Cell):
        info["env_dir"] = cell.env_dir
        blocked = blocked_path(user, python.executable, cell.env_python) if os.geteuid() == 0 else None
        if blocked is not None and selection.private_view:
            private = view.plan(blocked, Path(python.executable).parent.parent, registry.runtime_dir())
            info["private_view"] = private.describe()
            print(f"note: {user.name} cannot read {blocked}; {private.describe()}", file=sys.stderr)
            check_can_run(user, python.executable, cell.env_python, wrap=_probe_wrapper(private, user))
        else:
            check_can_run(user, python.executable, cell.env_python)
    else:
        info["unsupported"] = cell.reason
    options = frozenset(express_options(cell)) if isinstance(cell, Cell) else frozenset()
    return CellSetup(cell, info, user, private, "--process-group" in options, options)


def _probe_wrapper(private: PrivateView, user: ServerUser) -> Callable[[list[str]], list[str]]:
    stage = registry.runtime_dir() / "view-stage"
    stage.mkdir(mode=0o700, exist_ok=True)
    return lambda args: private.command(args, user, stage)


Progress = Callable[[dict[str, Any], int, int], None]


def run_session(selection: Selection, progress: Progress | None = None) -> tuple[Path, list[dict[str, Any]]]:
    """Execute every run of the selection; returns the session folder and the run summaries."""
    specs = selection.specs()
    if not specs:
        raise HarnessError("nothing to run: no scenario supports the chosen layouts (see 'python -m harness list')")
    done_ids: set[str] = set()
    registry.clean()  # what a killed run left behind goes first
    stop = threading.Event()
    summaries: list[dict[str, Any]] = []
    with stop_on_signals(stop):
        setup = prepare_cell(selection)
        session_dir = _session_dir(selection.results_dir) if selection.session_dir is None else selection.session_dir
        if selection.session_dir is not None:
            session_dir.mkdir(parents=True, exist_ok=True)
            summaries = finished_runs(session_dir, [spec.run_id for spec in specs])
            if selection.baseline is not None:
                for summary in summaries:
                    baselines.annotate(selection.baseline, summary)
            done_ids = {s["run"] for s in summaries}
            specs = [spec for spec in specs if spec.run_id not in done_ids]
            if summaries:
                _write_session(session_dir, summaries, selection.skipped)
        core_note = cores.enable()
        ctx = RunContext(
            session_dir, setup.cell, setup.info, setup.user, stop, port=selection.port, core_note=core_note,
            view=setup.view, named_groups=setup.named_groups, express_options=setup.express_options,
            core_settings=cores.kernel_settings(),
        )  # fmt: skip
        jobs = 1 if selection.port is not None else max(1, selection.jobs)
        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="run") as pool:
            pending: set[Future[dict[str, Any]]] = {pool.submit(execute, spec, ctx) for spec in specs}
            try:
                while pending:
                    done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                    for future in done:
                        if future.cancelled():
                            continue
                        summary = future.result()
                        if selection.baseline is not None:
                            baselines.annotate(selection.baseline, summary)
                        summaries.append(summary)
                        _write_session(session_dir, summaries, selection.skipped)
                        if progress:
                            progress(summaries[-1], len(summaries), len(specs) + len(done_ids))
                    if stop.is_set():
                        for future in pending:
                            future.cancel()
            except BaseException:
                stop.set()
                raise
    if stop.is_set():
        raise KeyboardInterrupt
    return session_dir, summaries


def finished_runs(session_dir: Path, run_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Summaries of the runs a folder already holds, finished (not interrupted) and readable: a resumed
    matrix keeps them and does not run them again."""
    found = []
    for run_id in run_ids:
        try:
            summary = json.loads((session_dir / run_id / results.SUMMARY).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(summary, dict) and not summary.get("interrupted") and summary.get("run") == run_id:
            found.append(summary)
    return found


def _write_session(session_dir: Path, summaries: list[dict[str, Any]], skipped: Mapping[str, str]) -> None:
    ordered = sorted(summaries, key=lambda s: s["run"])
    record = {"session": session_dir.name, "runs": ordered, "skipped": dict(skipped)}
    results.write_json(session_dir / results.SUMMARY, record)
    results.write_atomic(session_dir / results.JUNIT, results.junit(ordered, f"harness.{session_dir.name}"))
    results.write_atomic(session_dir / results.REPORT, results.report(ordered, f"Harness run {session_dir.name}"))


def print_progress(summary: dict[str, Any], done: int, total: int) -> None:
    mark = "ok  " if results.passed(summary) else "FAIL"
    expected = (summary.get("baseline") or {}).get("expected") or summary["expected"]
    print(
        f"[{done}/{total}] {mark} {summary['run']}: {summary['verdict']} (expected {expected}) "
        f"in {summary['duration']:.1f}s",
        file=sys.stderr,
        flush=True,
    )
