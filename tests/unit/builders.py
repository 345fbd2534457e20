"""Hand-made records for tests of what reads them (baselines, invariants, assessment, schemas): a run's
cycles and a summary made from them by the runner's own rules, so a test changes one field and knows
that everything else agrees."""

from __future__ import annotations

import signal
from collections.abc import Sequence
from typing import TypeAlias

from harness.model.outcome import Outcome, count, worst
from harness.model.rates import reload_rates, stability
from harness.model.records import (
    CellInfo,
    Confirmation,
    CoreSettings,
    CrashEvent,
    CycleRecord,
    Death,
    DeathSource,
    EngineInfo,
    Fired,
    Phase,
    RunResult,
    SignatureCount,
)
from harness.model.spec import ApacheRef, CellSpec, RunSpec, ScenarioRef

SEGV = int(signal.SIGSEGV)
APACHE = ApacheRef(version="2.4.71", origin="debian", apxs="/usr/bin/apxs")
CELL = CellSpec(python="3.11.2", python_executable="/usr/bin/python3.11", mod_wsgi="6.1.1", apache=APACHE)
OTHER_CELL = CellSpec(python="3.12.1", python_executable="/opt/py312/bin/python3.12", mod_wsgi="6.1.1", apache=APACHE)
CONTROLS = frozenset({"hello", "stdlib", "segfault", "raise", "wrong", "block", "alternate"})
Expected: TypeAlias = Outcome | tuple[Outcome, ...] | None  # one verdict, several a run may show, or no expectation


def expected_verdicts(expected: Expected) -> tuple[Outcome, ...]:
    """What RunResult.expected holds: () for no expectation."""
    if expected is None:
        return ()
    return expected if isinstance(expected, tuple) else (expected,)


def cell_info(cell: CellSpec = CELL) -> CellInfo:
    return CellInfo(
        label=cell.label,
        python=cell.python,
        python_executable=cell.python_executable,
        mod_wsgi=cell.mod_wsgi,
        mod_wsgi_version=cell.mod_wsgi,
        apache=cell.apache.version if cell.apache else None,
        apache_origin=cell.apache.origin if cell.apache else None,
        env_dir=f"/cache/cells/{cell.label}",
    )


def run_spec(
    scenario: str = "hello",
    mechanism: str = "sigusr1",
    layout: str = "global",
    cell: CellSpec = CELL,
    cycles: int = 3,
    control: bool | None = None,
) -> RunSpec:
    """A spec as the planner makes it; the shipped controls are controls unless told otherwise."""
    is_control = scenario in CONTROLS if control is None else control
    ref = ScenarioRef(scenario, f"/scenarios/{scenario}/scenario.toml", "ab" * 32, control=is_control)
    return RunSpec(scenario=ref, mechanism=mechanism, layout=layout, cell=cell, cycles=cycles)


def cycle(spec: RunSpec, number: int, phase: Phase, outcome: Outcome, pid: int) -> CycleRecord:
    """One cycle; a crashed one carries the death that made it crashed, a failed one a line of evidence."""
    fired = Fired.CONFIRMED if phase is Phase.RELOAD else Fired.NOT_APPLICABLE
    trial = phase is Phase.RELOAD and outcome not in (Outcome.HARNESS_ERROR, Outcome.UNSUPPORTED)
    deaths = (Death(pid, SEGV, DeathSource.EXIT_STATUS, 1000.0 + number, f"pid {pid} died"),)
    return CycleRecord(
        run=spec.run_id,
        cycle=number,
        phase=phase,
        mechanism=spec.mechanism,
        outcome=outcome,
        trial=trial,
        confirmation=Confirmation(fired, "scripted", 1000.0 + number if fired is Fired.CONFIRMED else None),
        evidence=() if outcome is Outcome.CLEAN else (f"cycle {number}: {outcome.value}",),
        why_not_trial=None if trial or phase is not Phase.RELOAD else "the mechanism did not fire",
        deaths=deaths if outcome is Outcome.CRASHED else (),
        pids_before=(pid,),
        pids_after=(pid + 1,) if phase is Phase.RELOAD else (pid,),
    )


def run(
    scenario: str = "hello",
    mechanism: str = "sigusr1",
    layout: str = "global",
    *,
    reloads: Sequence[Outcome] = (Outcome.CLEAN,) * 3,
    load: Outcome = Outcome.CLEAN,
    stop: Outcome = Outcome.CLEAN,
    setup: Outcome | None = None,
    expected: Expected = Outcome.CLEAN,
    control: bool | None = None,
    interrupted: bool = False,
    cell: CellSpec = CELL,
    folder: str | None = None,
    reason: str | None = None,
) -> tuple[RunResult, list[CycleRecord]]:
    """A run and its cycles: load, the reloads, stop; or one setup cycle (unsupported, start-failed)."""
    verdicts = expected_verdicts(expected)
    spec = run_spec(scenario, mechanism, layout, cell, max(1, len(reloads)), control)
    if setup is not None:
        records = [cycle(spec, 0, Phase.SETUP, setup, 1000)]
    else:
        records = [cycle(spec, 0, Phase.LOAD, load, 1000)]
        records += [cycle(spec, i, Phase.RELOAD, o, 1000 + i) for i, o in enumerate(reloads, start=1)]
        records.append(cycle(spec, len(reloads) + 1, Phase.STOP, stop, 1000 + len(reloads) + 1))
    outcomes = [r.outcome for r in records]
    verdict = worst(outcomes)
    trials = [r.outcome for r in records if r.phase is Phase.RELOAD and r.trial]
    crashes = tuple(
        CrashEvent(r.cycle, d.pid, d.signal, (d.source,), signature=f"strlen in libc | {signal.Signals(d.signal).name}")
        for r in records
        for d in r.deaths
    )
    signatures = tuple(
        SignatureCount(sig, sum(1 for c in crashes if c.signature == sig), tuple(c.cycle for c in crashes))
        for sig in dict.fromkeys(c.signature for c in crashes if c.signature)
    )
    evidence: dict[Outcome, tuple[str, ...]] = {}
    for record in records:
        if record.outcome is not Outcome.CLEAN:
            evidence.setdefault(record.outcome, record.evidence)
    result = RunResult(
        run=spec.run_id,
        spec=spec,
        cell=cell_info(cell),
        verdict=verdict,
        expected=verdicts,
        matches=verdict in verdicts and not interrupted,
        counts=count(outcomes),
        cycles_requested=spec.cycles,
        cycles_recorded=len(records),
        trials=len(trials),
        rates=tuple(reload_rates(trials)),
        stability=stability(trials),
        engine=EngineInfo(kind="apache", user="www-data", port=8000, command=("mod_wsgi-express", "setup-server")),
        core_dumps=CoreSettings(True, None, (("core_pattern", "core"),)),
        started=1000.0,
        finished=1000.0 + len(records),
        load_outcome=next((r.outcome for r in records if r.phase is Phase.LOAD), None),
        stop_outcome=next((r.outcome for r in records if r.phase is Phase.STOP), None),
        first_crash_cycle=next((r.cycle for r in records if r.outcome is Outcome.CRASHED), None),
        evidence=evidence,
        crashes=crashes,
        signatures=signatures,
        reason=reason,
        interrupted=interrupted,
        folder=spec.run_id if folder is None else folder,
    )
    return result, records


def result(
    scenario: str = "hello",
    mechanism: str = "sigusr1",
    layout: str = "global",
    *,
    verdict: Outcome = Outcome.CLEAN,
    expected: Expected = Outcome.CLEAN,
    control: bool | None = None,
    interrupted: bool = False,
    cell: CellSpec = CELL,
    folder: str | None = None,
) -> RunResult:
    """A run summary with this verdict, reached the way a real run reaches it: a cell that cannot run it
    fails in set-up, a harness error is a reload that did not fire, the rest are every reload's outcome."""
    if verdict in (Outcome.UNSUPPORTED, Outcome.START_FAILED):
        reason = f"set-up: {verdict.value}"
        found, _ = run(scenario, mechanism, layout, setup=verdict, expected=expected, control=control,
                       interrupted=interrupted, cell=cell, folder=folder, reason=reason)  # fmt: skip
        return found
    reloads = (Outcome.CLEAN, verdict, Outcome.CLEAN) if verdict is Outcome.HARNESS_ERROR else (verdict,) * 3
    found, _ = run(scenario, mechanism, layout, reloads=reloads, expected=expected, control=control,
                   interrupted=interrupted, cell=cell, folder=folder)  # fmt: skip
    return found
