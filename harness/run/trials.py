"""isolate's trials as real runs: the failing run's own spec, with more modules blocked, one session each."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from harness.errors import HarnessError
from harness.evidence import isolate
from harness.model.outcome import Outcome
from harness.model.records import RunResult
from harness.model.spec import RunSpec
from harness.run.plan import driver_cell
from harness.run.session import SessionPlan, run_session


def _one(spec: RunSpec, folder: Path) -> RunResult:
    _, record = run_session(SessionPlan((spec,), folder.parent, jobs=1, session_dir=folder))
    if len(record.runs) != 1:
        raise HarnessError(f"isolate: {folder} made {len(record.runs)} runs, expected one")
    return record.runs[0]


def inventory(base: RunSpec, folder: Path) -> list[tuple[str, str]]:
    """(module, file) of every C extension module the app's first load imports, from one load under the
    embedding driver (which lists them from inside the interpreter)."""
    spec = replace(
        base, mechanism="interpreter-cycle", layout="named", cycles=0, cell=driver_cell(base.cell), until_crash=False
    )
    result = _one(spec, folder / "inventory")
    if not result.extensions and result.verdict is not Outcome.CLEAN:
        raise HarnessError(
            f"isolate: the inventory load under the embedding driver ended {result.verdict.value} before listing any "
            f"module ({(result.reason or '')[:120]}); see {folder / 'inventory'}"
        )
    return [(name, path) for name, path in result.extensions]


def runner(base: RunSpec, folder: Path, cycles: int) -> isolate.RunTrial:
    def run_trial(blocked: tuple[str, ...], label: str, attempt: int) -> isolate.Trial:
        spec = replace(base, blocked=tuple(dict.fromkeys((*base.blocked, *blocked))), cycles=cycles)
        result = _one(spec, folder / label)
        if not result.verdict.about_app or result.verdict is Outcome.START_FAILED:
            raise HarnessError(
                f"isolate: trial {label} (blocking {', '.join(blocked) or 'nothing more'}) ended "
                f"{result.verdict.value}: {(result.reason or '')[:160]}; see {folder / label}"
            )
        failing = tuple((o, n) for o, n in result.counts.items() if n and o is not Outcome.CLEAN)
        return isolate.Trial(
            blocked, result.verdict, sum(n for _, n in failing), result.cycles_recorded, failing, label, attempt
        )

    return run_trial


def isolate_run(
    base: RunSpec, folder: Path, python_executable: str, cycles: int, include_stdlib: bool = False
) -> isolate.Isolation:
    print("inventory: loading the app once under the embedding driver", file=sys.stderr)
    modules = inventory(base, folder)
    candidates = sorted(
        {name for name, path in modules if include_stdlib or not isolate.is_stdlib(path, python_executable)}
        - set(base.blocked)
    )
    if candidates:
        print(f"candidates: {', '.join(candidates)}", file=sys.stderr)
    search = isolate.Search(runner(base, folder, cycles), report=lambda line: print(line, file=sys.stderr, flush=True))
    return isolate.isolate(modules, candidates, search, base.blocked)
