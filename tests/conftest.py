"""Shared helpers: the harness driven through its real CLI in a subprocess, results read back as records."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.model.records import CycleRecord, RunResult, SessionRecord

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"


def apache_available() -> bool:
    return bool(os.environ.get("APXS") or shutil.which("apxs"))


def require_apache() -> None:
    """Live tests need Apache; on CI its absence is a failure, elsewhere a skip that says why."""
    if apache_available():
        return
    message = "Apache with apxs is not installed (apt-get install apache2 apache2-dev); run .ci/setup"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def harness(
    *args: str, env: dict[str, str] | None = None, timeout: float = 1500, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=cwd or REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


def run_once(
    results: Path, scenario: str, mechanism: str, *extra: str, cycles: int = 1, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m harness run` for one scenario and mechanism, results into `results`, no added controls."""
    args = ["--scenario", scenario, "--mechanism", mechanism, "--cycles", str(cycles), "--results", str(results)]
    return harness("run", *args, "--no-controls", *extra, env=env)


def session_dir(results: Path) -> Path:
    (session,) = [p for p in results.iterdir() if p.is_dir() and (p / "summary.json").is_file()]
    return session


def session_record(results: Path) -> SessionRecord:
    folder = session_dir(results)
    return SessionRecord.from_json(json.loads((folder / "summary.json").read_text()), folder)


def runs_by_id(record: SessionRecord) -> dict[str, RunResult]:
    return {run.folder: run for run in record.runs}


def cycles(results: Path, folder: str) -> list[CycleRecord]:
    path = session_dir(results) / folder / "cycles.jsonl"
    return [CycleRecord.from_json(json.loads(line), path) for line in path.read_text().splitlines()]


@pytest.fixture(autouse=True)
def private_runtime(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Each test's servers live under its own runtime folder, so 'clean' in one test (or one xdist worker)
    never touches another's servers."""
    runtime = tmp_path_factory.mktemp("rt", numbered=True)
    short = Path("/tmp") / f"mwh-t{os.getpid()}-{runtime.name}"  # unix socket paths must stay short
    short.mkdir(mode=0o711, exist_ok=True)
    monkeypatch.setenv("MOD_WSGI_HARNESS_RUNTIME", str(short))
    yield short
    shutil.rmtree(short, ignore_errors=True)


def server_processes_under(runtime: Path) -> list[str]:
    """Command lines of live processes whose httpd.conf lies under runtime."""
    import psutil

    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            cmdline = " ".join(proc.info["cmdline"] or ())
        except psutil.Error:
            continue
        if f"{runtime}/" in cmdline and "httpd.conf" in cmdline:
            found.append(f"{proc.pid}: {cmdline[:120]}")
    return found


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="also run the tests marked slow (minutes each)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "run_last: runs after every other test (it reads what they wrote)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked run_last go to the end, where the files of every other test exist."""
    items.sort(key=lambda item: item.get_closest_marker("run_last") is not None)
    if not config.getoption("--run-slow"):
        skip = pytest.mark.skip(reason="marked slow: run with --run-slow")
        for item in items:
            if item.get_closest_marker("slow") is not None:
                item.add_marker(skip)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under pytest-xdist, the check of every result file runs here, on the controller, once every worker has
    finished (a test cannot be made to run after the other workers' tests); a problem fails the session."""
    config = session.config
    if hasattr(config, "workerinput") or not config.pluginmanager.hasplugin("dsession"):
        return
    from tests.test_every_result import check, said

    base = config._tmp_path_factory.getbasetemp()  # type: ignore[attr-defined]
    counted, problems = check(sorted(base.glob("popen-gw*")))
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"every result file of the suite: {said(counted, problems)}")
        for problem in problems[:40]:
            reporter.write_line(f"  {problem}")
    if problems:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
