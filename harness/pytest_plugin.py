"""pytest plugin: scenarios x mechanisms x layouts (x cells) as tests, each run by the harness in a
subprocess, so a crash happens in Apache and never in a pytest (or pytest-xdist) worker.

Enable with ``--wsgi-harness``. A run whose verdict is clean passes. A scenario expected to give
another verdict (a known crasher, say) is a strict xfail that only that verdict satisfies: when it
stops crashing, the XPASS fails the suite. Verdict and counts go into the JUnit XML as properties.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import layouts, local, mechanisms, scenario
from harness.errors import HarnessError
from harness.outcome import Outcome

RUN_TIMEOUT = 1800


class VerdictError(AssertionError):
    """A run whose verdict is not clean; one subclass per outcome, so xfail can name the one expected."""

    outcome = Outcome.HARNESS_ERROR


VERDICT_ERRORS: dict[Outcome, type[VerdictError]] = {
    outcome: type(f"Verdict_{outcome.name}", (VerdictError,), {"outcome": outcome}) for outcome in Outcome
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("wsgi-harness", "mod_wsgi crash-reproduction harness")
    group.addoption("--wsgi-harness", action="store_true", help="run harness scenarios as tests")
    group.addoption("--wh-scenario", default="hello,segfault,raise,wrong,block", help="comma list, 'all', or paths")
    group.addoption("--wh-mechanism", default="sigusr1", help="comma list or 'all'")
    group.addoption("--wh-layout", default="global", help="comma list or 'all'")
    group.addoption("--wh-cycles", type=int, default=2, help="reloads per run")
    group.addoption("--wh-python", default="", help="comma list of target interpreters (paths); default: the harness's")
    group.addoption("--wh-mod-wsgi", default="", help="comma list of mod_wsgi versions; default: the harness's")
    group.addoption(
        "--wh-local-package",
        action="append",
        default=[],
        help="an sdist, wheel or folder a scenario's local_packages names (repeatable); without it, skipped",
    )


class HarnessRun(pytest.Item):
    def __init__(self, *, spec: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec
        expected: Outcome | None = spec["expected"]
        if expected is not None and expected is not Outcome.CLEAN:
            reason = f"known {expected.value}: {spec['scenario']} is expected to give it"
            self.add_marker(pytest.mark.xfail(raises=VERDICT_ERRORS[expected], strict=True, reason=reason))

    def runtest(self) -> None:
        if self.spec.get("skip"):
            pytest.skip(self.spec["skip"])
        with tempfile.TemporaryDirectory(prefix="wsgi-harness-") as scratch:
            summary = run_in_subprocess(self.spec, Path(scratch))
        verdict = Outcome(summary["verdict"])
        self.user_properties += [("verdict", verdict.value), ("cycles", summary["cycles_recorded"])]
        self.user_properties += [(f"count.{k}", v) for k, v in summary["counts"].items() if v]
        if verdict is not Outcome.CLEAN:
            evidence: list[str] = next(iter(summary.get("evidence", {}).values()), [])
            raise VERDICT_ERRORS[verdict](f"verdict {verdict.value}: " + " | ".join(evidence[:3]))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, (VerdictError, RuntimeError)):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return Path(self.spec["scenario_file"]), 0, self.name


def run_in_subprocess(spec: dict[str, Any], scratch: Path) -> dict[str, Any]:
    """One `python -m harness run` with its own results and runtime folders (unique per xdist worker)."""
    args = [
        sys.executable, "-m", "harness", "run",
        "--scenario", spec["scenario_file"], "--mechanism", spec["mechanism"], "--layout", spec["layout"],
        "--cycles", str(spec["cycles"]), "--jobs", "1", "--results", str(scratch / "results"),
    ]  # fmt: skip
    if spec["python"]:
        args += ["--python", spec["python"]]
    if spec["mod_wsgi"]:
        args += ["--mod-wsgi", spec["mod_wsgi"]]
    for package in spec.get("local_packages", []):
        args += ["--local-package", package]
    runtime = _runtime()
    env = {**os.environ, "MOD_WSGI_HARNESS_RUNTIME": str(runtime)}
    done = subprocess.run(args, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False, env=env)
    sessions = [p for p in (scratch / "results").glob("*") if (p / "summary.json").is_file()]
    if done.returncode not in (0, 1) or not sessions:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"the harness could not run this (exit {done.returncode}): {tail}")
    (run,) = json.loads((sessions[0] / "summary.json").read_text())["runs"]
    return dict(run)


def _runtime() -> Path:
    """Server roots of this pytest process (one per xdist worker), short enough for unix sockets."""
    return Path("/tmp") / f"mwh-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}-{os.getpid()}"


def pytest_unconfigure(config: pytest.Config) -> None:
    """Each harness run removes its own server root; the folder that held them goes at the end."""
    shutil.rmtree(_runtime(), ignore_errors=True)


def _specs(config: pytest.Config) -> Iterator[dict[str, Any]]:
    chosen_scenarios = scenario.resolve(config.getoption("--wh-scenario"))
    chosen_mechanisms = mechanisms.select(config.getoption("--wh-mechanism"))
    chosen_layouts = layouts.select(config.getoption("--wh-layout"))
    pythons = [p for p in config.getoption("--wh-python").split(",") if p] or [""]
    versions = [v for v in config.getoption("--wh-mod-wsgi").split(",") if v] or [""]
    supplied = local.supplied(config.getoption("--wh-local-package"))
    for python in pythons:
        for version in versions:
            for found in chosen_scenarios:
                missing = local.match(found.local_packages, supplied)
                for mechanism in chosen_mechanisms:
                    own = [layouts.LAYOUTS[name] for name in mechanism.layouts]  # a driver mechanism's own layout
                    for layout in own or chosen_layouts:
                        if layout.name not in found.layouts:
                            continue
                        yield {
                            "skip": missing.skip_reason() if missing.missing else None,
                            "local_packages": [str(path) for path in missing.found.values()],
                            "scenario": found.name,
                            "scenario_file": str(found.file),
                            "mechanism": mechanism.name,
                            "layout": layout.name,
                            "cycles": config.getoption("--wh-cycles"),
                            "python": python,
                            "mod_wsgi": version,
                            "expected": found.expected(mechanism.name, layout.name),
                        }


def _name(spec: dict[str, Any]) -> str:
    cell = "-".join(part for part in (Path(spec["python"]).name if spec["python"] else "", spec["mod_wsgi"]) if part)
    return f"{spec['scenario']}[{spec['mechanism']}-{spec['layout']}{'-' + cell if cell else ''}]"


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--wsgi-harness"):
        return
    try:
        specs = list(_specs(config))
    except (ValueError, HarnessError) as exc:  # a bad option or scenario file: one line, no traceback
        raise pytest.UsageError(f"wsgi-harness: {exc}") from None
    # Known crashers and hangers first: they take longest (a death waits for Apache's tick, a hang for
    # its deadline), and `--dist load` hands items out in order, so the long ones start early and the
    # short ones fill the gaps at the end instead of leaving one worker with a long tail.
    specs.sort(key=lambda spec: spec["expected"] in (None, Outcome.CLEAN))
    # A node id of the form "wsgi-harness/<scenario>::<name>" gives JUnit a classname per scenario.
    items.extend(
        HarnessRun.from_parent(session, name=_name(spec), nodeid=f"wsgi-harness/{spec['scenario']}::{_name(spec)}",
                               spec=spec)
        for spec in specs
    )  # fmt: skip
