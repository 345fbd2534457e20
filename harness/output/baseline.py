"""Regression baselines: the verdicts a set of runs is known to give, and what changed since.

A baseline is a small TOML file committed under results/baselines/, one verdict per run (keyed by the
run's folder in its session: the run id, under its cell's label in a multi-cell session), so a reviewer
sees a changed expectation in a diff. A run compared with it reports every verdict that moved, as a
regression (more severe than before) or a fix (less severe).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import tomli_w

from harness.errors import HarnessError
from harness.model.outcome import OUTCOME_NAMES, Outcome
from harness.model.records import BaselineNote, CellInfo, RunResult

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.9/3.10 only
    import tomli as tomllib

CELL_KEYS = ("python", "mod_wsgi", "apache", "apache_origin")
HEADER = (
    "# Expected verdicts: python -m harness run --baseline THIS_FILE\n"
    "# Rewrite from a session with: python -m harness baseline update SESSION --file THIS_FILE\n"
)


@dataclass(frozen=True)
class Baseline:
    file: Path
    cell: Mapping[str, str]
    verdicts: Mapping[str, Outcome]


@dataclass(frozen=True)
class Change:
    run: str
    was: Outcome
    now: Outcome

    @property
    def kind(self) -> str:
        return "regression" if self.now.severity > self.was.severity else "fix"

    def __str__(self) -> str:
        return f"{self.kind}: {self.run} was {self.was.value}, now {self.now.value}"


def _bad(file: Path, fieldname: str, problem: str, fix: str) -> HarnessError:
    return HarnessError(f"{file}: field '{fieldname}' {problem}; {fix}")


def load(file: Path) -> Baseline:
    """Read and check a baseline file; every problem is one line naming the file and field."""
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HarnessError(
            f"{file}: no such baseline; create it with 'python -m harness baseline update SESSION --file {file}'"
        ) from None
    except OSError as exc:
        raise HarnessError(f"{file}: cannot read it ({exc.strerror or exc}); check its permissions") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise HarnessError(f"{file}: not valid TOML ({exc}); fix the syntax or regenerate it") from None
    unknown = set(data) - {"cell", "verdicts"}
    if unknown:
        raise _bad(file, sorted(unknown)[0], "is not a baseline field", "keep only [cell] and [verdicts]")
    cell = data.get("cell", {})
    if not isinstance(cell, dict) or not all(isinstance(v, str) for v in cell.values()):
        raise _bad(file, "cell", "must be a table of strings", f"give {', '.join(CELL_KEYS)} as strings")
    verdicts = data.get("verdicts")
    if not isinstance(verdicts, dict) or not verdicts:
        raise _bad(file, "verdicts", "is missing or empty", 'add lines like "hello.script-touch.global" = "clean"')
    parsed: dict[str, Outcome] = {}
    for run, verdict in verdicts.items():
        if not isinstance(verdict, str) or verdict not in OUTCOME_NAMES:
            raise _bad(file, f"verdicts.{run}", f"is {verdict!r}", f"use one of: {', '.join(OUTCOME_NAMES)}")
        parsed[run] = Outcome(verdict)
    return Baseline(file=file, cell=cell, verdicts=parsed)


def key(result: RunResult) -> str:
    return result.folder or result.run


def compare(baseline: Baseline, results: Iterable[RunResult]) -> list[Change]:
    """Verdicts that differ from the baseline, for runs that finished and are in it."""
    changes = []
    for result in results:
        was = baseline.verdicts.get(key(result))
        if was is None or result.interrupted:
            continue
        if result.verdict is not was:
            changes.append(Change(key(result), was, result.verdict))
    return sorted(changes, key=lambda c: (c.kind, c.run))


def annotate(baseline: Baseline, result: RunResult) -> RunResult:
    """The result with what the baseline expected of it and whether that changed."""
    was = baseline.verdicts.get(key(result))
    change = next(iter(compare(baseline, [result])), None)
    note = BaselineNote(str(baseline.file), was, change.kind if change else ("new" if was is None else None))
    return replace(result, baseline=note)


def cell_differences(baseline: Baseline, cell: CellInfo) -> list[str]:
    """Which cell fields differ between the baseline and this run (comparing across versions is allowed)."""
    found = {
        "python": cell.python,
        "mod_wsgi": cell.mod_wsgi,
        "apache": cell.apache,
        "apache_origin": cell.apache_origin,
    }
    return [
        f"{name} {baseline.cell[name]} -> {found.get(name)}"
        for name in CELL_KEYS
        if name in baseline.cell and str(found.get(name)) != baseline.cell[name]
    ]


def render(cell: CellInfo, verdicts: Mapping[str, Outcome]) -> str:
    """The baseline file's text: sorted, one verdict per line, so diffs show exactly what moved."""
    values = {
        "python": cell.python,
        "mod_wsgi": cell.mod_wsgi,
        "apache": cell.apache,
        "apache_origin": cell.apache_origin,
    }
    data = {
        "cell": {name: str(values[name]) for name in CELL_KEYS if values.get(name) is not None},
        "verdicts": {run: verdicts[run].value for run in sorted(verdicts)},
    }
    return HEADER + "\n" + tomli_w.dumps(data)


def updated(file: Path, results: Iterable[RunResult], replace_all: bool = False) -> tuple[str, list[Change], list[str]]:
    """The new text of a baseline from a session's runs, what changed, and the runs added. Runs of the
    baseline that the session did not run are kept unless `replace_all`; interrupted runs never change a
    verdict."""
    finished = [r for r in results if not r.interrupted]
    if not finished:
        raise HarnessError("no finished runs in that session to take verdicts from; run it again")
    old = load(file) if file.exists() else None
    verdicts: dict[str, Outcome] = {} if replace_all or old is None else dict(old.verdicts)
    changes = compare(old, finished) if old else []
    added = [key(r) for r in finished if old is None or key(r) not in old.verdicts]
    for result in finished:
        verdicts[key(result)] = result.verdict
    return render(finished[0].cell, verdicts), changes, added
