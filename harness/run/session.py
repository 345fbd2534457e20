"""One session: a list of RunSpecs prepared, run side by side, and written as one results folder.

Everything that can be checked is checked before anything starts: scenarios load and still match
their specs' hashes, cells are built (or found impossible), requirements install, the server user
can run each interpreter. A reload cycle is mostly waiting, so runs go in parallel threads, each
with its own server. SIGINT, SIGTERM and SIGHUP set one stop event that every run watches; each run
then stops its server in its own ``finally``, and the session record says it was interrupted.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from harness import storage
from harness.cells import generated, handins, requirements
from harness.cells.build import Unsupported
from harness.cells.setup import PreparedCell, prepare
from harness.engines import roots
from harness.errors import HarnessError
from harness.evidence import cores
from harness.model import scenario as scenarios
from harness.model.assessment import broken_slots
from harness.model.records import SUMMARY, CellStatus, RunResult, SessionRecord
from harness.model.scenario import Scenario
from harness.model.spec import RunSpec
from harness.output import baseline as baselines
from harness.output import session_files
from harness.run.admission import Admission
from harness.run.runner import RunContext, execute

Progress = Callable[[RunResult, int, int], None]


@dataclass(frozen=True)
class SessionPlan:
    specs: tuple[RunSpec, ...]
    results: Path  # where session folders go
    jobs: int | None = None  # runs side by side; None: as many as the machine's CPU and memory allow
    session_dir: Path | None = None  # a fixed folder (resumed, or a matrix's) instead of a new one
    baseline: baselines.Baseline | None = None
    skipped: tuple[tuple[str, str], ...] = ()  # (scenario, why it cannot run here)
    spec_base: Path | None = None  # relative paths in the specs are relative to this (a spec file's folder)


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


def new_session_dir(base: Path, prefix: str = "") -> Path:
    stamp = prefix + time.strftime("%Y%m%dT%H%M%S")
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


def load_scenario(spec: RunSpec, base: Path | None) -> Scenario:
    """The scenario a spec names: made again from its requirements and probe code, or read from its path,
    refused in one line when it is no longer the scenario the spec was made with."""
    ref = spec.scenario
    if ref.package is not None:
        return generated.make(ref.package)
    path = Path(ref.path)
    if not path.is_absolute() and base is not None:
        path = base / path
    found = scenarios.load(path)
    digest = scenarios.content_hash(found.directory)
    if ref.sha256 and digest != ref.sha256:
        raise HarnessError(
            f"{path}: the scenario changed since the spec was made (sha256 {digest[:12]}, spec {ref.sha256[:12]}); "
            "run it with --scenario instead, or restore the scenario"
        )
    return found


def folders(specs: Sequence[RunSpec]) -> dict[RunSpec, str]:
    """Each run's folder in the session: its run id, under its cell's label when one run id is run in
    several cells (a matrix)."""
    by_id: dict[str, set[str]] = {}
    for spec in specs:
        by_id.setdefault(spec.run_id, set()).add(spec.cell.label)
    several = any(len(labels) > 1 for labels in by_id.values())
    found = {s: (f"{s.cell.label}/{s.run_id}" if several else s.run_id) for s in specs}
    seen: dict[str, RunSpec] = {}
    for spec, folder in found.items():
        other = seen.setdefault(folder, spec)
        if other is not spec:
            raise HarnessError(
                f"two runs would share the folder {folder} ({other.scenario.path} and {spec.scenario.path}); "
                "give one of the scenarios another name"
            )
    return found


def _prepare_cells(specs: Sequence[RunSpec]) -> dict[tuple[str, str | None, bool], PreparedCell]:
    prepared: dict[tuple[str, str | None, bool], PreparedCell] = {}
    for spec in specs:
        key = (spec.cell.label, spec.server_user, spec.private_view)
        if key not in prepared:
            prepared[key] = prepare(spec.cell, spec.server_user, spec.private_view)
    return prepared


def _install(
    specs: Sequence[RunSpec],
    ctx_cells: dict[tuple[str, str | None, bool], PreparedCell],
    loaded: dict[str, Scenario],
    base: Path | None,
) -> dict[RunSpec, tuple[Path, ...]]:
    """Each run's requirements, installed once per cell and set; a requirement that exists nowhere is the
    user's error, said now. (A set that cannot install in one cell is that run's 'unsupported'.)"""
    done: dict[RunSpec, tuple[Path, ...]] = {}
    for spec in specs:
        cell = ctx_cells[(spec.cell.label, spec.server_user, spec.private_view)]
        if cell.cell is None:
            continue
        hand_ins = tuple(str(handins.verify(h, base or Path.cwd())) for h in spec.hand_ins)
        wanted = (*loaded[spec.scenario.path].pip_requirements(), *hand_ins)
        installed = requirements.install(cell.cell, wanted)
        if isinstance(installed, Unsupported):
            if installed.user_error:
                raise HarnessError(f"{spec.scenario.name}: {installed.reason}")
            for hand_in, path in zip(spec.hand_ins, hand_ins):
                refused = requirements.refuses(cell.cell, path)
                if refused is not None:
                    raise HarnessError(
                        f"{spec.scenario.name}: the hand-in package {hand_in.filename} is refused by pip "
                        f"({refused[:200]}); hand in a working sdist, wheel or folder"
                    )
            continue
        done[spec] = (installed,) if installed else ()
    return done


def run_session(plan: SessionPlan, progress: Progress | None = None) -> tuple[Path, SessionRecord]:
    """Execute every run of the plan; returns the session folder and its record."""
    specs = list(dict.fromkeys(plan.specs))
    if not specs:
        raise HarnessError(
            "nothing to run: no scenario supports the chosen mechanisms and layouts (see 'harness list')"
        )
    roots.clean()  # what a killed run left behind goes first
    stop = threading.Event()
    started = time.time()
    with stop_on_signals(stop):
        loaded = {spec.scenario.path: load_scenario(spec, plan.spec_base) for spec in specs}
        cells = _prepare_cells(specs)
        site_dirs = _install(specs, cells, loaded, plan.spec_base)
        run_folders = folders(specs)
        session_dir = plan.session_dir or new_session_dir(plan.results)
        kept: list[RunResult] = []
        if plan.session_dir is not None:
            try:
                session_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise storage.disk_error(session_dir, exc) from None
            kept = finished_runs(session_dir, run_folders)
            done = {r.spec.unresolved() for r in kept}
            specs = [s for s in specs if s.unresolved() not in done]
        if plan.baseline is not None:
            kept = [baselines.annotate(plan.baseline, r) for r in kept]
        statuses = tuple(
            CellStatus(cell.info.label, "unsupported" if cell.cell is None else "ok", cell.info.unsupported, cell.info)
            for cell in cells.values()
        )
        core_note = cores.enable()
        ctx = RunContext(
            session_dir, stop, cells, loaded, run_folders, core_note, tuple(cores.kernel_settings().items()), site_dirs
        )
        record = _run_all(plan, specs, ctx, kept, statuses, started, progress)
    if stop.is_set():
        raise KeyboardInterrupt
    return session_dir, record


def _run_all(plan: SessionPlan, specs: list[RunSpec], ctx: RunContext, kept: list[RunResult],
             statuses: tuple[CellStatus, ...], started: float, progress: Progress | None) -> SessionRecord:  # fmt: skip
    results = list(kept)
    total = len(specs) + len(kept)
    compilations = sum(1 for s in statuses if s.cell is not None and s.cell.compiled_now)
    admission = Admission(1 if any(s.port is not None for s in specs) else plan.jobs)

    def write(finished: float | None = None) -> SessionRecord:
        ordered = tuple(sorted(results, key=lambda r: (r.cell.label, r.run)))
        record = SessionRecord(
            session=ctx.session_dir.name, runs=ordered, skipped=plan.skipped, broken=tuple(broken_slots(ordered)),
            cells=statuses, compilations=compilations, interrupted=ctx.stop.is_set(), started=started,
            finished=finished,
        )  # fmt: skip
        session_files.write(ctx.session_dir, record)
        return record

    if kept:
        write()
    queue = list(specs)
    with ThreadPoolExecutor(max_workers=admission.workers, thread_name_prefix="run") as pool:
        pending: set[Future[RunResult]] = set()
        try:
            while queue or pending:
                while queue and not ctx.stop.is_set() and admission.room(len(pending)):
                    admission.admitted()
                    pending.add(pool.submit(execute, queue.pop(0), ctx))
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                for future in done:
                    result = future.result()
                    if plan.baseline is not None:
                        result = baselines.annotate(plan.baseline, result)
                    results.append(result)
                    write()
                    if progress:
                        progress(result, len(results), total)
                if ctx.stop.is_set():
                    queue.clear()
        except BaseException:
            ctx.stop.set()
            with contextlib.suppress(HarnessError):  # the first error is the one to say (a full disk fails the rest)
                write(time.time())
            raise
        record = write(time.time())
    return record


def finished_runs(session_dir: Path, run_folders: dict[RunSpec, str]) -> list[RunResult]:
    """Results a folder already holds for these specs, finished (not interrupted) and readable: a resumed
    session keeps them and does not run them again."""
    found = []
    for spec, folder in run_folders.items():
        path = session_dir / folder / SUMMARY
        if not path.is_file():
            continue
        try:
            result = RunResult.from_json(storage.read_json(path), path)
        except HarnessError as exc:
            print(f"note: {exc}; running it again", file=sys.stderr)
            continue
        if not result.interrupted and result.spec.unresolved() == spec.unresolved():
            found.append(result)
    return found
