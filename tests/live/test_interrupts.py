"""The harness stops what it starts: Ctrl-C (or SIGTERM) stops every server, keeps the finished cycles and
marks every run interrupted (never passed); after SIGKILL, 'clean' (or the next run) removes what the
killed run left, and cycles.jsonl still parses line by line; an Apache parent killed from outside ends
its run at once as a harness error, not the app's doing."""

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

from harness.model.outcome import Outcome
from harness.model.records import CycleRecord, Phase
from tests.conftest import REPO, cycles, harness, require_apache, server_processes_under, session_record

pytestmark = pytest.mark.live


def start(results: Path, *args: str) -> subprocess.Popen[str]:
    """`harness run` in the background, without added controls (each test names every run it expects)."""
    return subprocess.Popen(
        [sys.executable, "-m", "harness", "run", "--results", str(results), "--no-controls", *args],
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
    """Every line of every cycles file is one whole, valid cycle record; returns how many there are."""
    lines = 0
    for path in files:
        for line in path.read_text().splitlines():
            CycleRecord.from_json(json.loads(line), path)
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
        "run", "--scenario", "hello", "--mechanism", "sigint", "--cycles", "1", "--no-controls",
        "--results", str(tmp_path / "b"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert server_processes_under(private_runtime) == []
    assert list(private_runtime.iterdir()) == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_stops_servers_and_keeps_results(tmp_path: Path, private_runtime: Path, signum: int) -> None:
    require_apache()
    proc = start(tmp_path, "--scenario", "hello,wrong", "--mechanism", "sigusr1", "--cycles", "40")
    files = wait_for_cycles(tmp_path, 2, runs=2)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1].startswith("interrupted:")
    assert "Traceback" not in stderr
    assert server_processes_under(private_runtime) == []
    assert list(private_runtime.iterdir()) == []
    assert parse_all(files) >= 4
    record = session_record(tmp_path)
    assert record.interrupted and record.finished is not None
    assert {r.scenario for r in record.runs} == {"hello", "wrong"}
    for run in record.runs:
        assert run.interrupted and not run.matches, run.run  # an interrupted run never passes
        assert run.cycles_recorded == len(cycles(tmp_path, run.folder)) >= 2
        assert run.cycles_recorded < 40 + 2 and run.stop_outcome is None  # it never got to its own stop
        assert any(line.startswith("interrupted after") for line in run.not_run), run.not_run


def test_apache_parent_killed_from_outside_ends_the_run_clearly(tmp_path: Path, private_runtime: Path) -> None:
    """Someone kills the Apache parent mid-run: the run stops at once with one line saying so, the
    verdict is a harness error (not the app's doing), nothing is left running and the cycles parse."""
    require_apache()
    proc = start(tmp_path, "--scenario", "hello", "--mechanism", "sigusr1", "--cycles", "30")
    parent = None
    deadline = time.monotonic() + 60
    while parent is None and time.monotonic() < deadline:
        time.sleep(0.5)
        parent = _apache_parent(proc.pid)
    assert parent is not None, "no server came up"
    wait_for_cycles(tmp_path, 3)  # a few cycles in
    started = time.monotonic()
    parent.kill()
    _out, err = proc.communicate(timeout=120)
    assert time.monotonic() - started < 20  # it stops, rather than waiting out 30 cycles
    assert proc.returncode == 1, err
    assert "Traceback" not in err, err
    (run,) = session_record(tmp_path).runs
    assert run.verdict is Outcome.HARNESS_ERROR and not run.interrupted
    assert run.reason is not None
    assert "the Apache parent exited (killed by SIGKILL)" in run.reason
    assert "stopped from outside the harness" in run.reason
    assert any("and the stop not run" in line for line in run.not_run), run.not_run
    assert server_processes_under(private_runtime) == []
    assert list(private_runtime.iterdir()) == []
    records = cycles(tmp_path, run.folder)
    assert records and records[0].phase is Phase.LOAD and records[0].outcome is Outcome.CLEAN
    last = records[-1]  # the cycle the parent was found gone in: no trial, the reason as its evidence
    assert last.outcome is Outcome.HARNESS_ERROR and not last.trial and last.evidence[0] == run.reason
    assert run.stop_outcome is None
    # Every cycle before the kill was clean. The cycle the kill landed in (when it landed mid-cycle) says
    # nothing about the app: a harness error, no trial, naming the kill; the rates count only real trials.
    before_kill = records[:-1]
    assert all(r.outcome is Outcome.CLEAN for r in before_kill[:-1]), [r.outcome.value for r in records]
    in_progress = before_kill[-1]
    assert in_progress.outcome in (Outcome.CLEAN, Outcome.HARNESS_ERROR), in_progress
    if in_progress.outcome is Outcome.HARNESS_ERROR:
        assert not in_progress.trial and "from outside the harness" in in_progress.evidence[0], in_progress
    trials = [r for r in records if r.phase is Phase.RELOAD and r.trial]
    assert all(r.outcome is Outcome.CLEAN for r in trials) and run.trials == len(trials)
    assert [(rate.outcome, rate.count) for rate in run.rates] == [(Outcome.CLEAN, len(trials))], run.rates


def _apache_parent(harness_pid: int) -> psutil.Process | None:
    """The harness's Apache parent (finished helpers of the harness may linger as zombies)."""
    for child in psutil.Process(harness_pid).children():
        try:
            if "httpd.conf" in " ".join(child.cmdline()):
                return child
        except psutil.Error:
            continue
    return None
