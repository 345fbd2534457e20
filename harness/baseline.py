"""Regression baselines: the verdicts a set of runs is known to give, and what changed since.

A baseline is a small TOML file committed under results/baselines/, one verdict per run id, so a
reviewer sees a changed expectation in a diff. A run compared with it reports every verdict that
moved, as a regression (more severe than before) or a fix (less severe).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.outcome import OUTCOME_NAMES, Outcome

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.9/3.10 only
    import tomli as tomllib

BASELINES_DIR = Path(__file__).resolve().parent.parent / "results" / "baselines"
CELL_KEYS = ("python", "mod_wsgi", "apache", "apache_origin")


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
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise HarnessError(f"{file}: not valid TOML ({exc}); fix the syntax or regenerate it") from None
    unknown = set(data) - {"cell", "verdicts"}
    if unknown:
        name = sorted(unknown)[0]
        raise _bad(file, name, "is not a baseline field", "keep only [cell] and [verdicts]")
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


def compare(baseline: Baseline, summaries: Iterable[Mapping[str, Any]]) -> list[Change]:
    """Verdicts that differ from the baseline, for runs that finished and are in it."""
    changes = []
    for summary in summaries:
        was = baseline.verdicts.get(summary["run"])
        if was is None or summary.get("interrupted"):
            continue
        now = Outcome(summary["verdict"])
        if now is not was:
            changes.append(Change(summary["run"], was, now))
    return sorted(changes, key=lambda c: (c.kind, c.run))


def annotate(baseline: Baseline, summary: dict[str, Any]) -> None:
    """Record in a run's summary what the baseline expected of it and whether that changed."""
    was = baseline.verdicts.get(summary["run"])
    change = next(iter(compare(baseline, [summary])), None)
    summary["baseline"] = {
        "file": str(baseline.file),
        "expected": was.value if was else None,
        "change": change.kind if change else ("new" if was is None else None),
    }


def cell_differences(baseline: Baseline, cell: Mapping[str, Any]) -> list[str]:
    """Which cell fields differ between the baseline and this run (comparing across versions is allowed)."""
    return [
        f"{key} {baseline.cell[key]} -> {cell.get(key)}"
        for key in CELL_KEYS
        if key in baseline.cell and str(cell.get(key)) != baseline.cell[key]
    ]


def render(cell: Mapping[str, Any], verdicts: Mapping[str, Outcome]) -> str:
    """The baseline file's text: sorted, one verdict per line, so diffs show exactly what moved."""
    lines = [
        "# Expected verdicts: python -m harness run --baseline THIS_FILE",
        "# Rewrite from a session with: python -m harness baseline update SESSION --file THIS_FILE",
        "",
        "[cell]",
        *(f"{key} = {json.dumps(str(cell[key]))}" for key in CELL_KEYS if cell.get(key) is not None),
        "",
        "[verdicts]",
        *(f"{json.dumps(run)} = {json.dumps(verdicts[run].value)}" for run in sorted(verdicts)),
    ]
    return "\n".join(lines) + "\n"


def updated(
    file: Path, summaries: Iterable[Mapping[str, Any]], replace: bool = False
) -> tuple[str, list[Change], list[str]]:
    """The new text of a baseline from a session's runs, what changed, and the runs added.

    Runs of the baseline that the session did not run are kept unless `replace`; interrupted runs
    never change a verdict."""
    finished = [s for s in summaries if not s.get("interrupted")]
    if not finished:
        raise HarnessError("no finished runs in that session to take verdicts from; run it again")
    old = load(file) if file.exists() else None
    verdicts: dict[str, Outcome] = {} if replace or old is None else dict(old.verdicts)
    changes = compare(old, finished) if old else []
    added = [s["run"] for s in finished if old is None or s["run"] not in old.verdicts]
    for summary in finished:
        verdicts[summary["run"]] = Outcome(summary["verdict"])
    return render(finished[0]["cell"], verdicts), changes, added
