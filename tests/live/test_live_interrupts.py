"""The harness stops what it starts: Ctrl-C stops every server and keeps finished cycles; after
SIGKILL, 'clean' removes what the killed run left, and cycles.jsonl still parses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from .conftest import REPO, harness, require_apache, server_processes_under, session_summary

pytestmark = pytest.mark.live


def start(results: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "harness", "run", "--results", str(results), *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )


def wait_for_cycles(results: Path, count: int, runs: int = 1, timeout: float = 120) -> list[Path]:
    """The cycles files once `runs` runs have each recorded at least `count` cycles."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        files = list(results.glob("*/*/cycles.jsonl"))
        if len(files) >= runs and all(len(f.read_text().splitlines()) >= count for f in files):
            return files
        time.sleep(0.2)
    raise AssertionError(f"no {count} cycles recorded within {timeout}s")


def parse_all(files: list[Path]) -> int:
    lines = 0
    for path in files:
        for line in path.read_text().splitlines():
            json.loads(line)  # every line a whole record
            lines += 1
    return lines


def test_sigkill_then_clean(tmp_path: Path, private_runtime: Path) -> None:
    require_apache()
    proc = start(tmp_path, "--scenario", "hello,block", "--mechanism", "sigusr1", "--cycles", "40")
    files = wait_for_cycles(tmp_path, 2, runs=2)
    proc.kill()
    proc.wait(timeout=10)
    left = server_processes_under(private_runtime)
    assert left, "the killed harness should have left its servers (else this test proves nothing)"
    done = harness("clean")
    assert done.returncode == 0 and "removed 2 server roots" in done.stdout, done.stdout + done.stderr
    time.sleep(0.5)
    assert server_processes_under(private_runtime) == []
    assert list(private_runtime.iterdir()) == []
    assert parse_all(files) >= 4


def test_next_run_cleans_what_a_killed_one_left(tmp_path: Path, private_runtime: Path) -> None:
    require_apache()
    proc = start(tmp_path / "a", "--scenario", "hello", "--mechanism", "sigusr1", "--cycles", "40")
    wait_for_cycles(tmp_path / "a", 1)
    proc.kill()
    proc.wait(timeout=10)
    assert server_processes_under(private_runtime)
    done = harness(
        "run", "--scenario", "hello", "--mechanism", "sigint", "--cycles", "1", "--results", str(tmp_path / "b")
    )
    assert done.returncode == 0, done.stderr
    assert server_processes_under(private_runtime) == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_stops_servers_and_keeps_results(tmp_path: Path, private_runtime: Path, signum: int) -> None:
    require_apache()
    proc = start(tmp_path, "--scenario", "hello,wrong", "--mechanism", "sigusr1", "--cycles", "40")
    files = wait_for_cycles(tmp_path, 2, runs=2)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert stderr.strip().splitlines()[-1].startswith("interrupted:")
    assert "Traceback" not in stderr
    assert server_processes_under(private_runtime) == []
    assert parse_all(files) >= 4
    (session,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    summary = json.loads((session / "summary.json").read_text())
    assert {r["interrupted"] for r in summary["runs"]} == {True}
    assert not any(r["matches"] for r in summary["runs"])  # an interrupted run never passes


def test_apache_parent_killed_from_outside_ends_the_run_clearly(tmp_path: Path, private_runtime: Path) -> None:
    """Someone kills the Apache parent mid-run: the run stops at once with one line saying so, the
    verdict is a harness error (not the app's doing), nothing is left running and the cycles parse."""
    require_apache()
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", "--scenario", "hello", "--mechanism", "sigusr1",
         "--cycles", "30", "--results", str(tmp_path)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    parent = None
    deadline = time.monotonic() + 60
    while parent is None and time.monotonic() < deadline:
        time.sleep(0.5)
        parent = _apache_parent(proc.pid)
    assert parent is not None, "no server came up"
    time.sleep(4)  # a few cycles in
    started = time.monotonic()
    parent.kill()
    _out, err = proc.communicate(timeout=120)
    assert time.monotonic() - started < 20  # it stops, rather than waiting out 30 cycles
    assert proc.returncode == 1, err
    (run,) = session_summary(tmp_path)["runs"]
    assert run["verdict"] == "harness-error"
    assert "the Apache parent exited (killed by SIGKILL)" in run["reason"]
    assert "stopped from outside the harness" in run["reason"]
    assert server_processes_under(private_runtime) == []
    records = [json.loads(line) for line in next(tmp_path.glob("*/*/cycles.jsonl")).read_text().splitlines()]
    assert records and records[0]["phase"] == "load"


def _apache_parent(harness_pid: int) -> psutil.Process | None:
    """The harness's Apache parent (finished helpers of the harness may linger as zombies)."""
    for child in psutil.Process(harness_pid).children():
        try:
            if "httpd.conf" in " ".join(child.cmdline()):
                return child
        except psutil.Error:
            continue
    return None
