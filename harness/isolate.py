"""Culprit isolation: the smallest set of C extension modules a failing run needs in order to fail.

Blocking a module (``sys.modules[name] = None`` before the app loads: a .pth line under Apache, the
host under the driver) makes its package take its pure-Python fallback, so each trial is a real run
of the same scenario, mechanism, layout and cell with some modules blocked. The candidates are the
extension modules the app's first load imported from outside the standard library (an inventory run
of the embedding driver). Each candidate is first tried as the only importable one: those that fail
alone are culprits each on its own. If none does, or the others still fail without them, candidates
are dropped one at a time while the run keeps failing, leaving a 1-minimal set that fails only
together. A module's share of the blame is its failing-cycle rate when only it is importable,
over the sum of those rates. A failure can be nondeterministic, so a trial is called clean only
after CLEAN_ATTEMPTS clean runs.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import results
from harness.errors import HarnessError
from harness.mechanisms import MECHANISMS
from harness.session import Selection, run_session

FAILED_TRIAL = ("start-failed", "unsupported", "harness-error")  # a trial that shows nothing about the app
# A crash can hang on the garbage collector's timing (simplejson's speedups on 2.7 crash the second
# interpreter in GC, most runs but not all): a trial is called clean only after this many clean runs.
CLEAN_ATTEMPTS = 3


@dataclass(frozen=True)
class Trial:
    blocked: tuple[str, ...]
    verdict: str
    failing: int  # cycles (load, reloads, stop) that were not clean
    cycles: int
    session: str
    attempts: int = 1  # runs it took: a clean one is only believed after CLEAN_ATTEMPTS

    @property
    def fails(self) -> bool:
        return self.verdict != "clean"

    @property
    def rate(self) -> float:
        return self.failing / self.cycles if self.cycles else 0.0

    def describe(self) -> str:
        tries = f" (run {self.attempts} of up to {CLEAN_ATTEMPTS})" if self.attempts > 1 else ""
        return f"{self.verdict} {self.failing}/{self.cycles}{tries}"


def is_stdlib(path: str, python_executable: str) -> bool:
    """A module file of the interpreter's own install: lib-dynload, or its prefix outside site-packages."""
    prefix = str(Path(python_executable).resolve().parent.parent)
    return "/lib-dynload/" in path or (path.startswith(prefix + "/") and "-packages/" not in path)


class Isolation:
    """Runs trials for one failing run; every trial's session folder stays under `folder`."""

    def __init__(self, base: Selection, folder: Path, python_executable: str) -> None:
        self.base = base
        self.folder = folder
        self.python_executable = python_executable
        self.trials: dict[frozenset[str], Trial] = {}

    def _session(self, blocked: Sequence[str], label: str, **changes: Any) -> dict[str, Any]:
        selection = dataclasses.replace(self.base, blocked=tuple(blocked), session_dir=self.folder / label, **changes)
        _, summaries = run_session(selection)
        if len(summaries) != 1:
            raise HarnessError(f"isolate: trial {label} made {len(summaries)} runs, expected one")
        return summaries[0]

    def inventory(self) -> list[tuple[str, str]]:
        """(module, file) of every C extension module the app's first load imports."""
        driver = MECHANISMS["interpreter-cycle"]
        summary = self._session((), "inventory", mechanisms=[driver], cycles=0)
        found = summary.get("extensions") or []
        if not found and summary["verdict"] != "clean":
            raise HarnessError(
                f"isolate: the inventory load under the embedding driver ended {summary['verdict']} before listing "
                f"any module ({(summary.get('reason') or '')[:120]}); see {self.folder / 'inventory'}"
            )
        return [(str(name), str(path)) for name, path in found]

    def trial(self, blocked: Sequence[str]) -> Trial:
        key = frozenset(blocked)
        if key not in self.trials:
            number = len(self.trials)
            for attempt in range(1, CLEAN_ATTEMPTS + 1):
                label = f"trial-{number:02d}" + (f"-{attempt}" if attempt > 1 else "")
                found = self._one(sorted(key), label, attempt)
                if found.fails:
                    break
            self.trials[key] = found
            shown = ", ".join(sorted(key)) or "nothing"
            print(f"  {label}: blocking {shown} -> {found.describe()}", file=sys.stderr, flush=True)
        return self.trials[key]

    def _one(self, blocked: list[str], label: str, attempt: int) -> Trial:
        summary = self._session(blocked, label)
        if summary["verdict"] in FAILED_TRIAL:
            raise HarnessError(
                f"isolate: trial {label} (blocking {', '.join(blocked) or 'nothing'}) ended "
                f"{summary['verdict']}: {(summary.get('reason') or '')[:160]}; see {self.folder / label}"
            )
        cycles = results.read_jsonl(self.folder / label / summary["run"] / results.CYCLES)
        failing = sum(1 for c in cycles if c.get("outcome") != "clean")
        return Trial(tuple(blocked), summary["verdict"], failing, len(cycles), label, attempt)


def minimal_failing_set(candidates: Sequence[str], fails_with: Callable[[Sequence[str]], bool]) -> list[str]:
    """Drop each candidate in turn while the rest still make it fail: every module left is needed.
    `fails_with(allowed)` says whether the run fails with only `allowed` importable."""
    needed = list(candidates)
    for module in candidates:
        trial = [m for m in needed if m != module]
        if fails_with(trial):
            needed = trial
    return needed


def blame(candidates: Sequence[str], needed: Sequence[str], alone: dict[str, Trial]) -> dict[str, float]:
    """Each module's share: its failure rate when it alone is importable, over the sum of those; when no
    module fails alone (only together), the needed ones share equally."""
    total = sum(alone[m].rate for m in candidates)
    if total > 0:
        return {m: alone[m].rate / total for m in candidates}
    return {m: (1 / len(needed) if m in needed else 0.0) for m in candidates}


def isolate(base: Selection, folder: Path, python_executable: str, include_stdlib: bool = False) -> dict[str, Any]:
    """The whole search; returns the record written to isolate.json."""
    work = Isolation(base, folder, python_executable)
    print("inventory: loading the app once under the embedding driver", file=sys.stderr)
    modules = work.inventory()
    candidates = sorted({name for name, path in modules if include_stdlib or not is_stdlib(path, python_executable)})
    record: dict[str, Any] = {
        "extension_modules": [list(m) for m in modules],
        "candidates": candidates,
        "culprits": [],
        "finding": "",
    }
    if not candidates:
        record["finding"] = "the app imports no C extension module from outside the standard library"
        return _done(record, work)
    print(f"candidates: {', '.join(candidates)}", file=sys.stderr)

    def fails_with(allowed: Sequence[str]) -> bool:
        return work.trial([m for m in candidates if m not in allowed]).fails

    if not fails_with(candidates):
        record["finding"] = "the run did not fail again with nothing blocked; try more --cycles"
        return _done(record, work)
    if fails_with([]):
        record["finding"] = "it still fails with every candidate blocked: these C extensions are not the cause"
        return _done(record, work)
    alone = {m: work.trial([c for c in candidates if c != m]) for m in candidates}
    culprits = [m for m in candidates if alone[m].fails]  # each enough on its own
    rest = [m for m in candidates if m not in culprits]
    if not culprits or fails_with(rest):  # (also) a combination that fails only together
        culprits += minimal_failing_set(rest, fails_with)
    without = {m: work.trial([m]) for m in candidates}
    shares = blame(candidates, culprits, alone)
    record["culprits"] = culprits
    record["finding"] = (
        f"fails while any of {', '.join(m for m in culprits if alone[m].fails)} can be imported"
        if all(alone[m].fails for m in culprits)
        else f"fails while {', '.join(culprits)} can be imported"
    ) + "; clean with every candidate blocked"
    record["modules"] = [
        {"module": m, "culprit": m in culprits, "share": round(shares[m], 3),
         "alone": dataclasses.asdict(alone[m]), "without": dataclasses.asdict(without[m])}
        for m in sorted(candidates, key=lambda m: -shares[m])
    ]  # fmt: skip
    return _done(record, work)


def _done(record: dict[str, Any], work: Isolation) -> dict[str, Any]:
    record["trials"] = [dataclasses.asdict(t) for t in work.trials.values()]
    results.write_json(work.folder / "isolate.json", record)
    results.write_atomic(work.folder / "isolate.md", table(record))
    return record


def table(record: dict[str, Any]) -> str:
    lines = [f"finding: {record['finding']}"]
    if record.get("modules"):
        lines.append("")
        lines.append(f"{'module':<36} {'share':>6}  {'only it importable':<22} {'only it blocked':<22} culprit")
        for row in record["modules"]:
            alone = f"{row['alone']['verdict']} {row['alone']['failing']}/{row['alone']['cycles']}"
            without = f"{row['without']['verdict']} {row['without']['failing']}/{row['without']['cycles']}"
            mark = "yes" if row["culprit"] else ""
            lines.append(f"{row['module']:<36} {row['share']:>6.0%}  {alone:<22} {without:<22} {mark}")
    lines.append("")
    lines.append(f"{len(record.get('trials', []))} trials; each is a session folder beside this file")
    return "\n".join(lines) + "\n"
