"""pytest plugin: scenarios x mechanisms x layouts (x cells) as tests, and a ``wsgi_harness`` fixture for
users' own tests. Every run is a RunSpec run by ``harness run --spec`` in a subprocess, so a crash
happens in Apache (or the driver) and never in a pytest or pytest-xdist worker.

Enable the collected tests with ``--wsgi-harness``. A clean verdict passes; a scenario expected to give
another verdict (a known crasher) is a strict xfail that only that verdict satisfies: when it stops
crashing, the XPASS fails the suite. Verdict and counts go into the JUnit XML as properties.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness import storage
from harness.cells import handins
from harness.commands import common, options
from harness.errors import HarnessError
from harness.model import layouts, mechanisms
from harness.model import scenario as scenarios
from harness.model.outcome import Outcome
from harness.model.records import RunResult, SessionRecord
from harness.model.spec import RunSpec
from harness.run.plan import Selection, plan

RUN_TIMEOUT = 3600


class VerdictError(AssertionError):
    """A run whose verdict is not clean; one subclass per outcome, so xfail can name the one expected."""

    outcome = Outcome.HARNESS_ERROR


VERDICT_ERRORS: dict[Outcome, type[VerdictError]] = {
    outcome: type(f"Verdict_{outcome.name}", (VerdictError,), {"outcome": outcome}) for outcome in Outcome
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("wsgi-harness", "mod_wsgi crash-reproduction harness")
    group.addoption("--wsgi-harness", action="store_true", help="run harness scenarios as tests")
    group.addoption("--wh-scenario", default=options.DEFAULT_SCENARIOS, help="comma list, 'all', or paths")
    group.addoption("--wh-mechanism", default="sigusr1", help="comma list or 'all'")
    group.addoption("--wh-layout", default="global", help="comma list or 'all'")
    group.addoption("--wh-cycles", type=int, default=2, help="reloads per run")
    group.addoption("--wh-python", default="", help="comma list of target interpreters (versions or paths)")
    group.addoption("--wh-mod-wsgi", default="", help="comma list of mod_wsgi versions; default: the harness's")
    group.addoption(
        "--wh-local-package",
        action="append",
        default=[],
        help="an sdist, wheel or folder a scenario's local_packages names (repeatable); without it, skipped",
    )


def _runtime() -> Path:
    """Server roots of this pytest process (one per xdist worker), short enough for unix sockets."""
    return Path("/tmp") / f"mwh-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}-{os.getpid()}"


def run_spec(spec: RunSpec, scratch: Path, timeout: float = RUN_TIMEOUT) -> tuple[RunResult, Path]:
    """One `harness run --spec` in a subprocess with its own results and runtime folders; (result, run folder)."""
    spec_file = scratch / "spec.json"
    storage.write_json(spec_file, spec.to_json())
    env = {**os.environ, "MOD_WSGI_HARNESS_RUNTIME": str(_runtime())}
    args = [sys.executable, "-m", "harness", "run", "--spec", str(spec_file), "--results", str(scratch / "results")]
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False, env=env)
    sessions = [p for p in (scratch / "results").glob("*") if (p / "summary.json").is_file()]
    if done.returncode not in (0, 1) or not sessions:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"the harness could not run this (exit {done.returncode}): {tail}")
    record = SessionRecord.from_json(json.loads((sessions[0] / "summary.json").read_text()), sessions[0])
    (result,) = record.runs
    return result, sessions[0] / result.folder


class HarnessRun(pytest.Item):
    def __init__(self, *, spec: RunSpec, expected: tuple[Outcome, ...], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec
        known = tuple(VERDICT_ERRORS[o] for o in expected if o is not Outcome.CLEAN)
        if known and Outcome.CLEAN not in expected:
            names = " or ".join(o.value for o in expected)
            reason = f"known {names}: {spec.scenario.name} is expected to give it"
            self.add_marker(pytest.mark.xfail(raises=known, strict=True, reason=reason))

    def runtest(self) -> None:
        with tempfile.TemporaryDirectory(prefix="wsgi-harness-") as scratch:
            result, _ = run_spec(self.spec, Path(scratch))
        self.user_properties += [("verdict", result.verdict.value), ("trials", result.trials)]
        self.user_properties += [(f"count.{k.value}", v) for k, v in result.counts.items() if v]
        if result.verdict is not Outcome.CLEAN:
            evidence = next(iter(result.evidence.values()), ())
            raise VERDICT_ERRORS[result.verdict](f"verdict {result.verdict.value}: " + " | ".join(evidence[:3]))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, (VerdictError, RuntimeError)):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return Path(self.spec.scenario.path), 0, self.name


class SkippedScenario(pytest.Item):
    """A scenario that cannot run here (its hand-in packages are missing): one skip that says why."""

    def __init__(self, *, why: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.why = why

    def runtest(self) -> None:
        pytest.skip(self.why)


def _items(config: pytest.Config) -> tuple[list[tuple[RunSpec, tuple[Outcome, ...]]], list[tuple[str, str]]]:
    chosen = Selection(
        scenarios=scenarios.resolve(config.getoption("--wh-scenario")),
        mechanisms=mechanisms.select(config.getoption("--wh-mechanism")),
        layouts=[layout.name for layout in layouts.select(config.getoption("--wh-layout"))],
        cycles=config.getoption("--wh-cycles"),
        hand_in_paths=handins.supplied(config.getoption("--wh-local-package")),
        controls=False,
    )
    cells = common.cells(config.getoption("--wh-python") or None, config.getoption("--wh-mod-wsgi") or None, None)
    planned = plan(chosen, cells)
    found: list[tuple[RunSpec, tuple[Outcome, ...]]] = []
    for spec in planned.specs:
        loaded = scenarios.load(Path(spec.scenario.path))
        expectation = loaded.expected(spec.mechanism, spec.layout, spec.cell.python, spec.cell.mod_wsgi)
        found.append((spec, expectation.verdicts if expectation else ()))
    return found, planned.skipped


def _name(spec: RunSpec, several_cells: bool) -> str:
    cell = f"-{spec.cell.label}" if several_cells else ""
    return f"{spec.scenario.name}[{spec.mechanism}-{spec.layout}{cell}]"


def pytest_configure(config: pytest.Config) -> None:
    """Bad names are said before anything starts, on the pytest-xdist controller too (whose workers would
    otherwise each fail to collect, and the run end as 'no tests ran')."""
    if not config.getoption("--wsgi-harness", default=False) or hasattr(config, "workerinput"):
        return
    try:
        scenarios.resolve(config.getoption("--wh-scenario"))
        mechanisms.select(config.getoption("--wh-mechanism"))
        layouts.select(config.getoption("--wh-layout"))
    except (ValueError, HarnessError) as exc:
        raise pytest.UsageError(f"wsgi-harness: {exc}") from None


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--wsgi-harness"):
        return
    try:
        found, skipped = _items(config)
    except (ValueError, HarnessError) as exc:  # a bad option or scenario file: one line, no traceback
        raise pytest.UsageError(f"wsgi-harness: {exc}") from None
    # Known crashers and hangers first: they take longest, and `--dist load` hands items out in order, so
    # the long ones start early and the short ones fill the gaps at the end.
    found.sort(key=lambda item: item[1] in ((), (Outcome.CLEAN,)))
    several = len({spec.cell.label for spec, _ in found}) > 1
    for spec, expected in found:
        name = _name(spec, several)
        items.append(
            HarnessRun.from_parent(
                session, name=name, nodeid=f"wsgi-harness/{spec.scenario.name}::{name}", spec=spec, expected=expected
            )
        )
    for scenario_name, why in skipped:
        items.append(
            SkippedScenario.from_parent(
                session, name=scenario_name, nodeid=f"wsgi-harness/{scenario_name}::skipped", why=why
            )
        )


def pytest_unconfigure(config: pytest.Config) -> None:
    """Each harness run removes its own server root; the folder that held them goes at the end."""
    shutil.rmtree(_runtime(), ignore_errors=True)


# --- the fixture for users' own tests -------------------------------------------------------------
@dataclass(frozen=True)
class Run:
    """What a test gets back: the run's result and where its folder is."""

    result: RunResult
    folder: Path

    @property
    def verdict(self) -> str:
        return self.result.verdict.value

    @property
    def crashed(self) -> int:
        return self.result.counts.get(Outcome.CRASHED, 0)


class WsgiHarness:
    """Runs a user's app through the harness from a test: ``wsgi_harness.run(app="myapp.wsgi", ...)``."""

    def __init__(self, scratch: Path, request: pytest.FixtureRequest) -> None:
        self.scratch = scratch
        self.request = request
        self.runs: list[Run] = []

    def run(
        self,
        app: str | Path,
        mechanism: str = "sigusr1",
        cycles: int = 3,
        layout: str = "global",
        python: str | None = None,
        mod_wsgi: str | None = None,
        packages: Sequence[str] = (),
        probe_path: str = "/",
        expect_status: int = 200,
    ) -> Run:
        """Run `app` (a WSGI script, or a scenario folder or file) under one mechanism for `cycles` reloads."""
        found = self._scenario(Path(app), packages, probe_path, expect_status)
        chosen = Selection(
            scenarios=[found], mechanisms=mechanisms.select(mechanism), layouts=[layout], cycles=cycles, controls=False
        )
        planned = plan(chosen, common.cells(python, mod_wsgi, None))
        if len(planned.specs) != 1:
            raise pytest.UsageError(f"wsgi_harness.run: {mechanism} and {layout} make {len(planned.specs)} runs, not 1")
        scratch = Path(tempfile.mkdtemp(prefix="run-", dir=self.scratch))
        result, folder = run_spec(planned.specs[0], scratch)
        self.runs.append(Run(result, folder))
        self.request.node.user_properties.append(("wsgi_harness_run", str(folder)))
        return self.runs[-1]

    def _scenario(self, app: Path, packages: Sequence[str], probe_path: str, status: int) -> scenarios.Scenario:
        if app.is_dir() or app.suffix == ".toml":
            return scenarios.load(app / scenarios.SCENARIO_FILE if app.is_dir() else app)
        if not app.is_file():
            raise pytest.UsageError(f"wsgi_harness.run: {app} is not a WSGI script, scenario folder or scenario.toml")
        folder = Path(tempfile.mkdtemp(prefix="app-", dir=self.scratch))
        shutil.copyfile(app, folder / app.name)
        requirements = json.dumps(list(packages))
        (folder / scenarios.SCENARIO_FILE).write_text(
            f'name = "{app.stem[:40] or "app"}"\ndescription = "written by the wsgi_harness fixture"\n'
            f'[app]\nscript = "{app.name}"\nrequirements = {requirements}\n'
            f'[[probe]]\npath = {json.dumps(probe_path)}\nstatus = {status}\n[expect]\ndefault = "clean"\n'
        )
        return scenarios.load(folder / scenarios.SCENARIO_FILE)


@pytest.fixture
def wsgi_harness(request: pytest.FixtureRequest, tmp_path: Path) -> WsgiHarness:
    """Run apps through the harness; the runs' folders are attached to the test's report when it fails."""
    return WsgiHarness(tmp_path, request)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when == "call" and report.failed:
        folders = [str(value) for key, value in item.user_properties if key == "wsgi_harness_run"]
        for folder in folders:
            report.sections.append(("wsgi_harness run", f"{folder}\n" + _digest(Path(folder))))


def _digest(folder: Path) -> str:
    try:
        result = RunResult.from_json(json.loads((folder / "summary.json").read_text()), folder)
    except (OSError, ValueError, HarnessError):
        return "(no summary)"
    lines = [f"verdict {result.verdict.value}, {result.trials} reload trials, cell {result.cell.label}"]
    for outcome, evidence in result.evidence.items():
        lines.append(f"{outcome.value}: " + " | ".join(evidence[:3]))
    lines += [f"signature: {s.signature} ({s.crashes} crashes)" for s in result.signatures]
    return "\n".join(lines)
