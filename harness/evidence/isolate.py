"""Culprit isolation: the smallest set of C extension modules a failing run needs in order to fail.

Blocking a module (``sys.modules[name] = None`` before the app loads) makes its package take its
pure-Python fallback, so each trial is a real run of the same spec with some more modules blocked (on
top of those the run blocked itself). The candidates are the extension modules the app's first load
imported from outside the standard library. Each is first tried as the only importable one: those
that fail alone are culprits each on its own. If none does, or the others still fail without them,
candidates are dropped one at a time while the run keeps failing, leaving a 1-minimal set that fails
only together. Each module's failing rate alone is reported with its 95% interval; a failure can be
nondeterministic, so a trial is called clean only after CLEAN_ATTEMPTS clean runs.

This module is the search alone; ``run/trials.py`` runs the trials.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.model.outcome import Outcome
from harness.model.rates import Rate

CLEAN_ATTEMPTS = 3


@dataclass(frozen=True)
class Trial:
    blocked: tuple[str, ...]  # blocked on top of the run's own
    verdict: Outcome
    failing: int  # cycles (load, reloads, stop) that were not clean
    cycles: int
    outcomes: tuple[tuple[Outcome, int], ...]  # how many cycles of each class that is not clean
    session: str
    attempts: int = 1  # runs it took: a clean one is only believed after CLEAN_ATTEMPTS

    @property
    def fails(self) -> bool:
        return self.verdict.is_failure

    @property
    def rate(self) -> Rate:
        return Rate.of(self.verdict, self.failing, self.cycles)

    def describe(self) -> str:
        classes = ", ".join(f"{o.value} {n}" for o, n in self.outcomes) or "clean"
        tries = f", clean in all {self.attempts} runs" if self.attempts > 1 and not self.fails else ""
        low, high = self.rate.ci95
        return f"{self.failing}/{self.cycles} cycles failing ({low:.0%}-{high:.0%}: {classes}){tries}"


@dataclass(frozen=True)
class ModuleFinding:
    module: str
    culprit: bool
    alone: Trial  # only it importable
    without: Trial  # only it blocked


@dataclass(frozen=True)
class Isolation:
    extension_modules: tuple[tuple[str, str], ...]
    candidates: tuple[str, ...]
    culprits: tuple[str, ...]
    finding: str
    modules: tuple[ModuleFinding, ...] = ()
    trials: tuple[Trial, ...] = field(default_factory=tuple)
    base_blocked: tuple[str, ...] = ()


RunTrial = Callable[[tuple[str, ...], str, int], Trial]  # (blocked, label, attempt) -> one run's trial


def is_stdlib(path: str, python_executable: str) -> bool:
    """A module file of the interpreter's own install: lib-dynload, or its prefix outside site-packages."""
    prefix = str(Path(python_executable).resolve().parent.parent)
    return "/lib-dynload/" in path or (path.startswith(prefix + "/") and "-packages/" not in path)


class Search:
    """Runs and remembers trials: each blocked set once (a clean one up to CLEAN_ATTEMPTS times)."""

    def __init__(self, run_trial: RunTrial, report: Callable[[str], None] = lambda _: None) -> None:
        self.run_trial = run_trial
        self.report = report
        self.trials: dict[frozenset[str], Trial] = {}

    def trial(self, blocked: Sequence[str]) -> Trial:
        key = frozenset(blocked)
        if key not in self.trials:
            number = len(self.trials)
            found = None
            for attempt in range(1, CLEAN_ATTEMPTS + 1):
                label = f"trial-{number:02d}" + (f"-{attempt}" if attempt > 1 else "")
                found = self.run_trial(tuple(sorted(key)), label, attempt)
                if found.fails:
                    break
            assert found is not None
            self.trials[key] = found
            self.report(f"  {found.session}: blocking {', '.join(sorted(key)) or 'nothing'} -> {found.describe()}")
        return self.trials[key]


def minimal_failing_set(candidates: Sequence[str], fails_with: Callable[[Sequence[str]], bool]) -> list[str]:
    """Drop each candidate in turn while the rest still make it fail: every module left is needed.
    `fails_with(allowed)` says whether the run fails with only `allowed` importable."""
    needed = list(candidates)
    for module in candidates:
        trial = [m for m in needed if m != module]
        if fails_with(trial):
            needed = trial
    return needed


def isolate(
    modules: Sequence[tuple[str, str]], candidates: Sequence[str], search: Search, base_blocked: tuple[str, ...] = ()
) -> Isolation:
    """The whole search over the candidates."""

    def done(culprits: Sequence[str], finding: str, findings: Sequence[ModuleFinding] = ()) -> Isolation:
        return Isolation(
            tuple(modules),
            tuple(candidates),
            tuple(culprits),
            finding,
            tuple(findings),
            tuple(search.trials.values()),
            base_blocked,
        )

    if not candidates:
        return done([], "the app imports no C extension module from outside the standard library")

    def fails_with(allowed: Sequence[str]) -> bool:
        return search.trial([m for m in candidates if m not in allowed]).fails

    if not fails_with(candidates):
        return done([], "the run did not fail again with nothing more blocked; try more --cycles")
    if fails_with([]):
        return done([], "it still fails with every candidate blocked: these C extensions are not the cause")
    alone = {m: search.trial([c for c in candidates if c != m]) for m in candidates}
    culprits = [m for m in candidates if alone[m].fails]  # each enough on its own
    rest = [m for m in candidates if m not in culprits]
    if not culprits or fails_with(rest):  # (also) a combination that fails only together
        culprits += minimal_failing_set(rest, fails_with)
    without = {m: search.trial([m]) for m in candidates}
    if all(alone[m].fails for m in culprits):
        finding = f"fails while any of {', '.join(culprits)} can be imported"
    else:
        finding = f"fails while {', '.join(culprits)} can be imported together"
    findings = sorted(
        (ModuleFinding(m, m in culprits, alone[m], without[m]) for m in candidates),
        key=lambda f: (-f.alone.rate.rate, f.module),
    )
    return done(culprits, finding + "; clean with every candidate blocked", findings)


def table(found: Isolation) -> str:
    lines = [f"finding: {found.finding}"]
    if found.base_blocked:
        lines.append(f"blocked in every trial, as in the run: {', '.join(found.base_blocked)}")
    if found.modules:
        lines += ["", f"{'module':<34} {'only it importable':<44} {'only it blocked':<30} culprit"]
        for row in found.modules:
            alone = row.alone.describe()
            without = f"{row.without.failing}/{row.without.cycles} failing"
            lines.append(f"{row.module:<34} {alone:<44} {without:<30} {'yes' if row.culprit else ''}")
    lines += ["", f"{len(found.trials)} trials; each is a session folder beside this file"]
    return "\n".join(lines) + "\n"
