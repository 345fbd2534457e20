"""Execute one run: a scenario under one mechanism and layout in one cell, for N reload cycles.

Each run gets its own server (private root, free loopback port) and its own results folder; the
server is stopped whatever happens, and every finished cycle is on disk before the next starts.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import registry, results
from harness.cell import Cell, Unsupported, install_requirements
from harness.classify import CRASH_SIGNALS
from harness.cycle import CycleRecord, CycleRunner, Interrupted
from harness.driver import ensure_driver
from harness.driver_run import DriverPlan, DriverWatch, EmbeddedDriver
from harness.errorlog import LogTail
from harness.errors import HarnessError
from harness.evidence import EvidencePlan, RunEvidence
from harness.layouts import GLOBAL, Layout
from harness.mechanisms import Mechanism
from harness.outcome import Outcome, count, worst
from harness.privileges import ServerUser
from harness.rates import reload_rates, stability
from harness.scenario import Scenario
from harness.server import ApacheServer, ServerPlan, StartFailed
from harness.view import PrivateView


@dataclass(frozen=True)
class RunSpec:
    scenario: Scenario
    mechanism: Mechanism
    layout: Layout
    cycles: int
    until_crash: bool = False  # stop reloading at the first crashed cycle
    blocked: tuple[str, ...] = ()  # extension modules made unimportable in the app (isolate's trials)

    @property
    def run_id(self) -> str:
        return f"{self.scenario.name}.{self.mechanism.name}.{self.layout.name}"


@dataclass(frozen=True)
class RunContext:
    """What all runs of one invocation share."""

    session_dir: Path
    cell: Cell | Unsupported
    cell_info: dict[str, Any]
    user: ServerUser
    stop: threading.Event
    port: int | None = None
    core_note: str | None = None  # why cores cannot be collected here, if they cannot
    core_settings: dict[str, str] = field(default_factory=dict)  # the kernel's and our limits, as run
    view: PrivateView | None = None
    named_groups: bool = True
    express_options: frozenset[str] = frozenset()  # what the cell's setup-server takes


class RunRecorder:
    """Collects a run's cycle records, appending each to cycles.jsonl as it is made."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.records: list[CycleRecord] = []
        self.synthetic: list[tuple[Outcome, list[str]]] = []

    def add(self, record: CycleRecord) -> None:
        results.append_jsonl(self.run_dir / results.CYCLES, record.to_json())
        self.records.append(record)

    def outcomes(self) -> list[Outcome]:
        return [r.outcome for r in self.records] + [o for o, _ in self.synthetic]

    def reload_outcomes(self) -> list[Outcome]:
        return [r.outcome for r in self.records if r.phase == "reload"]

    def first_crash(self) -> int | None:
        return next((r.cycle for r in self.records if r.outcome is Outcome.CRASHED), None)

    def phase_outcome(self, phase: str) -> str | None:
        return next((r.outcome.value for r in self.records if r.phase == phase), None)

    def signal_deaths(self) -> list[dict[str, Any]]:
        return [death for record in self.records for death in record.signal_deaths()]

    def stack_dumps(self) -> list[dict[str, Any]]:
        return [{"cycle": r.cycle, **dump} for r in self.records for dump in r.stacks]

    def evidence(self) -> dict[str, list[str]]:
        """The first evidence lines of each non-clean outcome class."""
        found: dict[str, list[str]] = {}
        for outcome, lines in [(r.outcome, r.evidence) for r in self.records] + self.synthetic:
            if outcome is not Outcome.CLEAN and outcome.value not in found and lines:
                found[outcome.value] = lines
        return found


def execute(spec: RunSpec, ctx: RunContext) -> dict[str, Any]:
    """Run it, write its results folder, and return its summary."""
    run_dir = ctx.session_dir / spec.run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    recorder = RunRecorder(run_dir)
    started = time.time()
    reason: str | None = None
    interrupted = False
    server: ApacheServer | None = None
    driver: EmbeddedDriver | None = None
    owner: registry.Owner | None = None
    evidence: RunEvidence | None = None
    crashes: list[dict[str, Any]] = []
    failure: BaseException | None = None
    try:
        cell = ctx.cell
        why = _combination_unsupported(spec, ctx) if isinstance(cell, Cell) else None
        if why is not None:
            deps: Path | Unsupported | None = Unsupported(why)
        else:
            deps = install_requirements(cell, spec.scenario.pip_requirements()) if isinstance(cell, Cell) else cell
        if isinstance(deps, Unsupported):
            recorder.synthetic.append((Outcome.UNSUPPORTED, [deps.reason]))
            reason = deps.reason
            if deps.log:
                results.write_atomic(run_dir / "build.log", deps.log)
        elif spec.mechanism.driver:
            assert isinstance(cell, Cell)
            binary = ensure_driver(cell.python)
            if isinstance(binary, Unsupported):
                recorder.synthetic.append((Outcome.UNSUPPORTED, [binary.reason]))
                reason = binary.reason
                results.write_atomic(run_dir / "build.log", binary.log)
            else:
                owner = registry.claim_root(spec.run_id)
                driver = EmbeddedDriver(_driver_plan(spec, ctx, cell, owner.root, deps, binary))
                evidence = RunEvidence(_evidence_plan(ctx, cell, driver, run_dir, str(binary)))
                reason = _drive_embedded(spec, driver, recorder, evidence, ctx)
        else:
            assert isinstance(cell, Cell)
            owner = registry.claim_root(spec.run_id)
            server = ApacheServer(_plan(spec, ctx, cell, owner.root, deps))
            evidence = RunEvidence(_evidence_plan(ctx, cell, server, run_dir, cell.apache.httpd))
            reason = _drive(spec, ctx, server, recorder, evidence)
    except Interrupted:
        interrupted = True
    except BaseException as exc:
        failure = exc
        raise
    finally:
        try:
            processes = [p for p in (server, driver) if p is not None]
            for process in processes:
                process.stop()
            for process in processes:
                _keep_config(process, run_dir)
            if evidence is not None:
                last = recorder.records[-1].cycle if recorder.records else 0
                crashes = evidence.finish(last, recorder.signal_deaths())
        except HarnessError:
            if failure is None:
                raise  # else the first error is the one to say (a full disk fails everything after it)
        finally:  # a full results disk above must not leave the server root behind
            if owner is not None:
                registry.release(owner)
    outcomes = recorder.outcomes()
    verdict = worst(outcomes)
    expected = spec.scenario.expected(spec.mechanism.name, spec.layout.name)
    summary: dict[str, Any] = {
        "run": spec.run_id,
        "scenario": spec.scenario.name,
        "scenario_file": str(spec.scenario.file),
        "requirements": list(spec.scenario.pip_requirements()),
        "control": spec.scenario.control,
        "mechanism": spec.mechanism.name,
        "layout": spec.layout.name,
        "cell": ctx.cell_info,
        "cycles": spec.cycles,
        "cycles_recorded": len(recorder.records),
        "counts": count(outcomes),
        "rates": {name: rate.to_json() for name, rate in reload_rates(recorder.reload_outcomes()).items()},
        "stability": stability(recorder.reload_outcomes()),
        "load_outcome": recorder.phase_outcome("load"),
        "stop_outcome": recorder.phase_outcome("stop"),
        "first_crash_cycle": recorder.first_crash(),
        "until_crash": spec.until_crash,
        "verdict": verdict.value,
        "expected": expected.value if expected else None,
        "matches": expected is not None and verdict is expected and not interrupted,
        "evidence": recorder.evidence(),
        "crashes": crashes,
        "hangs": recorder.stack_dumps(),
        "core_dumps": {"collected": ctx.core_note is None, "note": ctx.core_note, "settings": ctx.core_settings},
        "reason": reason,
        "blocked": list(spec.blocked),
        "extensions": [list(pair) for pair in driver.extensions] if driver else None,
        "interrupted": interrupted,
        "server": {
            "user": ctx.user.name,
            "port": server.port if server else None,
            "express_arguments": server.express_arguments() if server else None,
            "driver_command": driver.command() if driver else None,
        },
        "started": started,
        "finished": time.time(),
        "duration": round(time.time() - started, 3),
    }
    results.write_json(run_dir / results.SUMMARY, summary)
    return summary


def _combination_unsupported(spec: RunSpec, ctx: RunContext) -> str | None:
    """A mechanism or layout that cannot work in this cell, said before anything starts."""
    missing = [o for o in spec.layout.express_options if o not in ctx.express_options]
    if missing and not spec.mechanism.driver:
        return f"layout {spec.layout.name} needs {', '.join(missing)}, which this cell's mod_wsgi-express lacks"
    if spec.mechanism.name == "reload-on-changes" and not ctx.named_groups and spec.layout.primary_group != GLOBAL:
        return (
            "reload-on-changes cannot fire here: express before 5.x runs its change monitor in %{GLOBAL} and "
            f"watches only that interpreter's modules, while this layout loads the app in '{spec.layout.primary_group}'"
        )
    return None


def _plan(spec: RunSpec, ctx: RunContext, cell: Cell, root: Path, deps: Path | None) -> ServerPlan:
    return ServerPlan(
        cell=cell,
        user=ctx.user,
        root=root,
        app_source=spec.scenario.directory,
        script_name=spec.scenario.script,
        watch_name=spec.scenario.watch,
        layout=spec.layout,
        embedded=spec.mechanism.embedded,
        script_reloading=spec.mechanism.script_reloading,
        mechanism_options=spec.mechanism.express_options,
        python_path=deps,
        blocked=spec.blocked,
        port=ctx.port,
        view=ctx.view,
        named_groups=ctx.named_groups,
    )


def _driver_plan(spec: RunSpec, ctx: RunContext, cell: Cell, root: Path, deps: Path | None, binary: Path) -> DriverPlan:
    return DriverPlan(
        binary=binary,
        mode=spec.mechanism.name,
        cycles=spec.cycles,  # a crash ends the driver's process, so it stops there in any case
        program=cell.env_python,
        root=root,
        app_source=spec.scenario.directory,
        script_name=spec.scenario.script,
        probes=spec.scenario.probes,
        mount=spec.layout.mounts[0].prefix,
        site_dirs=(deps,) if deps else (),
        blocked=spec.blocked,
        user=ctx.user,
        view=ctx.view,
    )


def _evidence_plan(
    ctx: RunContext, cell: Cell, process: ApacheServer | EmbeddedDriver, run_dir: Path, executable: str
) -> EvidencePlan:
    return EvidencePlan(
        run_dir=run_dir,
        core_dirs=() if ctx.core_note else (process.cores_dir, process.app_dir),
        core_note=ctx.core_note,
        httpd=executable,
        python_executable=cell.python.executable,
        app_dir=str(process.app_dir),
    )


def _drive_embedded(
    spec: RunSpec, driver: EmbeddedDriver, recorder: RunRecorder, evidence: RunEvidence, ctx: RunContext
) -> str | None:
    """Prepare and run the driver; every cycle is recorded as the driver moves past it."""
    watch = DriverWatch(spec.run_id, spec.mechanism.name, driver, evidence, ctx.stop)
    driver.prepare()
    evidence.start()
    log_copy = evidence.plan.run_dir / "error_log"
    try:
        watch.run(recorder.add)
    except BaseException:
        with contextlib.suppress(HarnessError):  # the first error is the one to say
            _copy_into_results(driver.error_log, log_copy)
        raise
    _copy_into_results(driver.error_log, log_copy)
    return None


def _copy_into_results(source: Path, target: Path) -> None:
    """A whole copy or none: a copy cut short by a full disk is removed, and the error said."""
    try:
        shutil.copyfile(source, target)
    except FileNotFoundError:
        return  # the process never wrote it
    except OSError as exc:
        target.unlink(missing_ok=True)
        raise results.disk_error(target, exc) from None


def _drive(
    spec: RunSpec, ctx: RunContext, server: ApacheServer, recorder: RunRecorder, evidence: RunEvidence
) -> str | None:
    """Start, cycle, stop; returns a reason when the run could not get going."""
    tail = LogTail(server.error_log, mirror=evidence.plan.run_dir / "error_log")
    try:
        server.prepare()
        evidence.start()
        server.start()
    except StartFailed as failure:
        tail.flush()
        recorder.synthetic.append((Outcome.START_FAILED, [str(failure), *failure.lines]))
        return str(failure)
    cycles = CycleRunner(spec.run_id, server, spec.mechanism, spec.scenario, spec.layout, tail, ctx.stop, evidence)
    try:
        recorder.add(cycles.first_load())
        index = 0
        while index < spec.cycles and not (spec.until_crash and recorder.first_crash() is not None):
            if not server.running():
                return _parent_gone(server, recorder, index)
            index += 1
            recorder.add(cycles.reload(index))
        if not server.running():
            return _parent_gone(server, recorder, index)
        recorder.add(cycles.shutdown(index + 1))
    finally:
        tail.flush()  # interrupted or not, the results keep every line logged so far
    return None


def _parent_gone(server: ApacheServer, recorder: RunRecorder, index: int) -> str:
    """The Apache parent ended under the run: no cycle after it can show anything. Killed from outside
    (SIGKILL, SIGTERM, ...) it is not the app's doing: harness-error; a crash signal is a crash."""
    reason = f"the Apache parent exited ({server.exit_description()}) after cycle {index}; no further cycles"
    signum = server.exit_signal()
    if signum in CRASH_SIGNALS:
        outcome = Outcome.CRASHED
    elif signum is not None:
        outcome, reason = Outcome.HARNESS_ERROR, reason + " (stopped from outside the harness)"
    else:
        outcome = Outcome.START_FAILED
    recorder.synthetic.append((outcome, [reason]))
    return reason


def _keep_config(process: ApacheServer | EmbeddedDriver, run_dir: Path) -> None:
    """The generated config travels with the results, as evidence of exactly what ran."""
    for path in process.config_files():
        _copy_into_results(path, run_dir / path.name)
