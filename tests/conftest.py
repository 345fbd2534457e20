"""Shared fixtures: the harness is always driven through its real CLI in a subprocess, against real
Apache/mod_wsgi-express servers on 127.0.0.1, so a crash stays in Apache and never in a test worker."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
REFERENCE = REPO.parent / "shared" / "reference"


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


def harness(*args: str, env: dict[str, str] | None = None, timeout: float = 1500) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


def run_once(
    results: Path, scenario: str, mechanism: str, *extra: str, cycles: int = 1, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m harness run` for one scenario and mechanism, results into `results`."""
    args = ["--scenario", scenario, "--mechanism", mechanism, "--cycles", str(cycles), "--results", str(results)]
    return harness("run", *args, *extra, env=env)


def session_summary(results: Path) -> dict[str, Any]:
    (session,) = [p for p in results.iterdir() if p.is_dir()]
    return json.loads((session / "summary.json").read_text())


def runs_by_id(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {run["run"]: run for run in summary["runs"]}


def cycles(results: Path, run_id: str) -> list[dict[str, Any]]:
    (session,) = [p for p in results.iterdir() if p.is_dir()]
    return [json.loads(line) for line in (session / run_id / "cycles.jsonl").read_text().splitlines()]


@pytest.fixture(autouse=True)
def private_runtime(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Each test's servers live under its own runtime folder, so 'clean' in one test (or one xdist
    worker) never touches another's servers."""
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
