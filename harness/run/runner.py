"""Execute one RunSpec: a scenario under one mechanism and layout in one cell, for N reload cycles.

Each run gets its own engine (a private root, a free loopback port) and its own results folder;
the engine is stopped whatever happens, every finished cycle is on disk before the next starts, and
the summary is checked against its cycles before it is written.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness import engines, storage
from harness.cells import requirements
from harness.cells.build import Unsupported
from harness.cells.setup import PreparedCell
from harness.engines import roots
from harness.engines.base import Engine, EngineSetup, Interrupted, StartFailed, Waiter
from harness.engines.classify import CRASH_SIGNALS
from harness.engines.driver.build import ensure_driver
from harness.errors import HarnessError
from harness.evidence.collector import EvidencePlan, RunEvidence
from harness.model import invariants
from harness.model.layouts import LAYOUTS
from harness.model.mechanisms import MECHANISMS
from harness.model.outcome import Outcome, count, worst
from harness.model.rates import reload_rates, stability
from harness.model.records import (
    CYCLES,
    SUMMARY,
    Confirmation,
    CoreSettings,
    CrashEvent,
    CycleRecord,
    Death,
    DeathSource,
    EngineInfo,
    ExceptionCount,
    Fired,
    Phase,
    RunResult,
    SignatureCount,
)
from harness.model.scenario import Scenario
from harness.model.spec import SPEC_FILE, RunSpec
from harness.run.cycle import CycleRunner
from harness.run.judge import exception_signature


@dataclass(frozen=True)
class RunContext:
    """What all runs of one invocation share."""

    session_dir: Path
    stop: threading.Event
    cells: dict[tuple[str, str | None, bool], PreparedCell]  # (cell label, server user, private view)
    scenarios: dict[str, Scenario]  # by spec scenario path
    folders: dict[RunSpec, str]  # each run's folder, relative to the session
    core_note: str | None = None  # why cores cannot be collected here, if they cannot
    core_settings: tuple[tuple[str, str], ...] = ()
    site_dirs: dict[RunSpec, tuple[Path, ...]] = field(default_factory=dict)  # requirements installed at planning


def cell_of(spec: RunSpec, ctx: RunContext) -> PreparedCell:
    return ctx.cells[(spec.cell.label, spec.server_user, spec.private_view)]


class RunRecorder:
    """Collects a run's cycle records, appending each to cycles.jsonl as it is made."""

    def __init__(self, run_dir: Path, run_id: str, mechanism: str) -> None:
        self.run_dir = run_dir
        self.run_id = run_id
        self.mechanism = mechanism
        self.records: list[CycleRecord] = []

    def add(self, record: CycleRecord) -> CycleRecord:
        storage.append_jsonl(self.run_dir / CYCLES, record.to_json())
        self.records.append(record)
        return record

    def setup_failure(
        self,
        outcome: Outcome,
        reason: str,
        lines: Sequence[str] = (),
        deaths: Sequence[Death] = (),
        cycle: int = 0,
        phase: Phase = Phase.SETUP,
    ) -> None:
        """A cycle that could not run, recorded with why: the cell cannot run this, the server did not
        start, or the engine ended under the run."""
        confirmation = Confirmation(Fired.NOT_APPLICABLE, reason)
        self.add(
            CycleRecord(
                self.run_id,
                cycle,
                phase,
                self.mechanism,
                outcome,
                trial=False,
                confirmation=confirmation,
                evidence=tuple([reason, *lines][:14]),
                why_not_trial=reason,
                deaths=tuple(deaths),
            )
        )

    def crashed(self) -> bool:
        return any(r.outcome is Outcome.CRASHED for r in self.records)


def execute(spec: RunSpec, ctx: RunContext) -> RunResult:
    """Run it, write its results folder, and return its result."""
    folder = ctx.folders[spec]
    site_dirs = ctx.site_dirs.get(spec)
    run_dir = ctx.session_dir / folder
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        _keep_unfinished(run_dir)
    except OSError as exc:
        raise storage.disk_error(run_dir, exc) from None
    scenario = ctx.scenarios[spec.scenario.path]
    cell = cell_of(spec, ctx)
    spec = spec.with_cell(cell.spec)  # what its cell resolved to here, so the spec reruns exactly this
    storage.write_json(run_dir / SPEC_FILE, spec.to_json())
    mechanism = MECHANISMS[spec.mechanism]
    recorder = RunRecorder(run_dir, spec.run_id, spec.mechanism)
    started = time.time()
    not_run: list[str] = []
    reason: str | None = None
    interrupted = False
    engine: Engine | None = None
    owner: roots.Owner | None = None
    evidence: RunEvidence | None = None
    crashes: list[CrashEvent] = []
    failure: BaseException | None = None
    extensions: tuple[tuple[str, str], ...] = ()
    try:
        setup = _setup(spec, site_dirs, scenario, cell, run_dir)
        if not isinstance(setup, Unsupported):
            site_dirs = setup.site_dirs
        if isinstance(setup, Unsupported):
            reason = setup.reason
            recorder.setup_failure(Outcome.UNSUPPORTED, reason)
            if setup.log:
                storage.write_atomic(run_dir / "build.log", setup.log)
        else:
            owner = roots.claim_root(spec.run_id)
            setup = replace(setup, root=owner.root)
            engine = engines.create(setup)
            evidence = RunEvidence(
                EvidencePlan(
                    run_dir=run_dir,
                    core_dirs=() if ctx.core_note else engine.core_dirs,
                    core_note=ctx.core_note,
                    executable=engine.executable,
                    python_executable=cell.info.python_executable,
                    app_dir=str(engine.app_dir),
                )
            )
            reason = _drive(setup, engine, evidence, recorder, ctx.stop, not_run)
    except Interrupted:
        interrupted = True
        not_run.append(f"interrupted after {len(recorder.records)} cycle(s)")
    except BaseException as exc:
        failure = exc
        raise
    finally:
        try:
            if engine is not None:
                engine.stop()
                for path in engine.config_files():
                    _copy_into_results(path, run_dir / path.name)
                extensions = tuple(engine.loaded_extensions())
            if evidence is not None:
                evidence.close()
                crashes = evidence.crash_events(recorder.records)
        except HarnessError:
            if failure is None:
                raise  # else the first error is the one to say (a full disk fails everything after it)
        finally:  # a full results disk above must not leave the server root behind
            if owner is not None:
                roots.release(owner)
    result = _result(
        spec,
        cell,
        scenario,
        recorder.records,
        crashes,
        reason,
        not_run,
        interrupted,
        started,
        engine.info() if engine else EngineInfo("driver" if mechanism.driver else "apache", cell.user.name),
        ctx,
        extensions,
        folder,
    )
    result = replace(result, site_dirs=tuple(str(d) for d in site_dirs or ()))
    storage.write_json(run_dir / SUMMARY, result.to_json())
    invariants.check(result, recorder.records, str(run_dir / SUMMARY))
    return result


def _setup(
    spec: RunSpec, site_dirs: tuple[Path, ...] | None, scenario: Scenario, cell: PreparedCell, run_dir: Path
) -> EngineSetup | Unsupported:
    """Everything the engine is made from, or why this cell cannot run it."""
    if cell.cell is None:
        return Unsupported(cell.info.unsupported or "the cell cannot be built", cell.log)
    mechanism, layout = MECHANISMS[spec.mechanism], LAYOUTS[spec.layout]
    if site_dirs is None:
        installed = requirements.install(cell.cell, _requirements(spec, scenario))
        if isinstance(installed, Unsupported):
            return installed
        site_dirs = (installed,) if installed else ()
    binary = None
    if mechanism.driver:
        built = ensure_driver(cell.cell.python)
        if isinstance(built, Unsupported):
            return built
        binary = built
    setup = EngineSetup(
        spec, scenario, mechanism, layout, cell, Path("/nonexistent"), site_dirs, run_dir / "error_log", binary
    )
    refused = engines.refusal(setup)
    return Unsupported(refused) if refused else setup


def _requirements(spec: RunSpec, scenario: Scenario) -> tuple[str, ...]:
    return (*scenario.pip_requirements(), *(h.path for h in spec.hand_ins))


def _drive(
    setup: EngineSetup,
    engine: Engine,
    evidence: RunEvidence,
    recorder: RunRecorder,
    stop: threading.Event,
    not_run: list[str],
) -> str | None:
    """Start, cycle, stop; returns a reason when the run could not get going or ended early."""
    spec = setup.spec
    waiter = Waiter(stop)
    try:
        engine.prepare()
        evidence.start()
        engine.start()
    except StartFailed as failure:
        engine.read_log(final=True)
        recorder.setup_failure(Outcome.START_FAILED, str(failure), failure.lines)
        return str(failure)
    cycles = CycleRunner(spec.run_id, spec.mechanism, engine, setup.targets, evidence, waiter)
    recorder.add(cycles.load())
    index = 0
    while index < spec.cycles:
        if spec.until_crash and recorder.crashed():
            not_run.append(f"reloads {index + 1}-{spec.cycles} not run: stopped at the first crash (--until-crash)")
            break
        if not engine.running() and not setup.mechanism.driver:
            return _engine_gone(engine, recorder, index, spec.cycles, not_run)
        index += 1
        recorder.add(cycles.reload(index))
    if not engine.running() and not setup.mechanism.driver:
        return _engine_gone(engine, recorder, index, spec.cycles, not_run)
    recorder.add(cycles.stop(index + 1))
    for record in recorder.records:
        if record.phase is Phase.RELOAD and not record.trial:
            not_run.append(f"cycle {record.cycle} was no trial: {record.why_not_trial}")
    return None


def _engine_gone(engine: Engine, recorder: RunRecorder, index: int, cycles: int, not_run: list[str]) -> str:
    """The Apache parent ended under the run: no cycle after it can show anything. Killed from outside
    (SIGKILL, SIGTERM...) it is not the app's doing: a harness error; a crash signal is a crash."""
    reason = f"the Apache parent exited ({engine.exit_description()}) after cycle {index}; no further cycles"
    signum = engine.exit_signal()
    deaths: list[Death] = []
    if signum in CRASH_SIGNALS:
        outcome = Outcome.CRASHED
        deaths = [Death(None, signum, DeathSource.EXIT_STATUS, time.time(), reason)]
    elif signum is not None:
        outcome, reason = Outcome.HARNESS_ERROR, reason + " (stopped from outside the harness)"
    else:
        outcome = Outcome.START_FAILED
    recorder.setup_failure(outcome, reason, deaths=deaths, cycle=index + 1, phase=Phase.RELOAD)
    not_run.append(f"reloads {index + 1}-{cycles} and the stop not run: {reason}")
    return reason


def _copy_into_results(source: Path, target: Path) -> None:
    """A whole copy or none: a copy cut short by a full disk is removed, and the error said."""
    try:
        shutil.copyfile(source, target)
    except FileNotFoundError:
        return  # the engine never wrote it
    except OSError as exc:
        target.unlink(missing_ok=True)
        raise storage.disk_error(target, exc) from None


def _result(
    spec: RunSpec,
    cell: PreparedCell,
    scenario: Scenario,
    records: Sequence[CycleRecord],
    crashes: Sequence[CrashEvent],
    reason: str | None,
    not_run: Sequence[str],
    interrupted: bool,
    started: float,
    engine: EngineInfo,
    ctx: RunContext,
    extensions: tuple[tuple[str, str], ...],
    folder: str,
) -> RunResult:
    outcomes = [r.outcome for r in records]
    verdict = worst(outcomes)
    trials = [r.outcome for r in records if r.phase is Phase.RELOAD and r.trial]
    expectation = scenario.expected(spec.mechanism, spec.layout, cell.info.python, cell.info.mod_wsgi_version)
    expected = expectation.verdicts if expectation else ()
    evidence: dict[Outcome, tuple[str, ...]] = {}
    for record in records:
        if record.outcome is not Outcome.CLEAN and record.outcome not in evidence and record.evidence:
            evidence[record.outcome] = record.evidence
    signatures = Counter(c.signature for c in crashes if c.signature)
    return RunResult(
        run=spec.run_id,
        spec=spec,
        cell=cell.info,
        verdict=verdict,
        expected=expected,
        expected_note=expectation.note if expectation else "",
        matches=verdict in expected and not interrupted,
        counts=count(outcomes),
        cycles_requested=spec.cycles,
        cycles_recorded=len(records),
        trials=len(trials),
        rates=tuple(reload_rates(trials)),
        stability=stability(trials),
        engine=engine,
        core_dumps=CoreSettings(ctx.core_note is None, ctx.core_note, ctx.core_settings),
        started=started,
        finished=time.time(),
        not_run=tuple(not_run),
        load_outcome=next((r.outcome for r in records if r.phase is Phase.LOAD), None),
        stop_outcome=next((r.outcome for r in records if r.phase is Phase.STOP), None),
        first_crash_cycle=next((r.cycle for r in records if r.outcome is Outcome.CRASHED), None),
        evidence=evidence,
        crashes=tuple(crashes),
        signatures=tuple(
            SignatureCount(sig, number, tuple(sorted({c.cycle for c in crashes if c.signature == sig})))
            for sig, number in signatures.most_common()
        ),
        exceptions=exception_counts(records),
        hangs=tuple(dump for r in records for dump in r.stacks),
        first_exception=next((r.first_exception for r in records if r.first_exception), None),
        reason=reason,
        extensions=extensions,
        destroy_order=next((r.destroy_order for r in records if r.phase is Phase.STOP), ()),
        interrupted=interrupted,
        folder=folder,
    )


def _keep_unfinished(run_dir: Path) -> None:
    """A resumed session reruns a run that was killed part way: what that attempt wrote moves into
    unfinished-N/ inside the folder (kept, not mixed into the new attempt's cycles)."""
    earlier = [p for p in run_dir.iterdir() if not p.name.startswith("unfinished-")]
    if not earlier:
        return
    number = 1
    while (run_dir / f"unfinished-{number}").exists():
        number += 1
    keep = run_dir / f"unfinished-{number}"
    keep.mkdir()
    for path in earlier:
        path.rename(keep / path.name)


def exception_counts(records: Sequence[CycleRecord]) -> tuple[ExceptionCount, ...]:
    """The cycles' first exceptions grouped by their signature, the most frequent first."""
    cycles: dict[str, set[int]] = {}
    for record in records:
        if record.first_exception:
            cycles.setdefault(exception_signature(record.first_exception), set()).add(record.cycle)
    ranked = sorted(cycles.items(), key=lambda item: (-len(item[1]), min(item[1])))
    return tuple(ExceptionCount(text, tuple(sorted(found))) for text, found in ranked)
