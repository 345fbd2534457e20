"""Crash and hang evidence against live servers: a core and a backtrace per real crash with a signature that
names the culprit frame (not libc), gdb reading the same core to the same culprit, hang stacks taken
before the kill that name the app's line and the native function, rates over alternating crashes,
--until-crash, and a baseline that holds and names an edited verdict."""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.evidence import frames, signature, stacks
from harness.model.outcome import Outcome
from harness.model.records import Phase, RunResult
from tests.conftest import REPO, cycles, harness, require_apache, run_once, session_dir, session_record

pytestmark = pytest.mark.live
CONTROLS_BASELINE = REPO / "results" / "baselines" / "controls.toml"


@pytest.fixture(autouse=True)
def _apache() -> None:
    require_apache()


def only_run(results: Path) -> RunResult:
    (run,) = session_record(results).runs
    return run


def test_segfault_leaves_a_core_per_crash_and_a_signature_naming_the_ctypes_call(tmp_path: Path) -> None:
    done = run_once(tmp_path, "segfault", "sigusr1", cycles=2)
    assert done.returncode == 0, done.stderr
    run = only_run(tmp_path)
    folder = session_dir(tmp_path) / run.folder
    if os.geteuid() == 0:  # mod_wsgi 6.x as root writes no core: the whole tree must have run unprivileged
        assert run.engine.user != "root"
    log = (folder / "error_log").read_text()
    logged = {int(pid) for pid in re.findall(r"AH0005[12]: child pid (\d+) exit signal Segmentation fault", log)}
    assert logged and logged <= {c.pid for c in run.crashes}
    for crash in run.crashes:
        assert crash.signal == 11 and crash.core is not None
        assert (folder / crash.core).read_bytes()[:4] == b"\x7fELF"
        trace = crash.backtrace
        assert trace is not None and trace.tool == "pystack", trace
        # The culprit is the first frame outside libc, Python, Apache and mod_wsgi: ctypes' own, called by libffi.
        assert trace.culprit is not None and "_ctypes" in trace.culprit and "strlen" not in trace.culprit, trace
        assert trace.python_frame is not None and trace.python_frame.endswith("in string_at")
        assert trace.app_frame == "app.wsgi:7 in application"
        assert crash.signature == f"{trace.culprit} | SIGSEGV"
        assert trace.file and "ctypes.string_at(0)" in (folder / trace.file).read_text()
    assert len(run.signatures) == 1 and run.signatures[0].crashes == len(run.crashes)
    # Every core is its own: distinct pids, none overwritten by the next crash.
    assert len({c.core for c in run.crashes}) == len(run.crashes) == len(list((folder / "cores").iterdir()))
    # gdb, the fallback, reads the same core to the same culprit.
    crash = run.crashes[0]
    assert crash.core is not None and crash.backtrace is not None
    found = stacks.core_stacks(folder / crash.core, "/usr/sbin/apache2", lambda t: None, None, tools=("gdb",))
    assert found.tool == "gdb", found.tried
    culprit = signature.culprit(found.threads, crash.backtrace.faulting_thread, None)
    assert culprit.describe() is not None and "_ctypes" in (culprit.describe() or ""), culprit
    report = (folder.parent / "report.md").read_text()
    assert "## Crashes" in report and "app.wsgi:7 in application" in report
    assert crash.signature is not None and crash.signature.replace("|", "\\|") in report  # a Markdown table cell


def test_embedded_worker_crash_is_found_in_the_faulting_thread(tmp_path: Path) -> None:
    """In an embedded worker's core the first thread is the idle main thread; the faulting one is the
    thread that was handling the signal."""
    done = run_once(tmp_path, "segfault", "script-touch-embedded", cycles=1)
    assert done.returncode == 0, done.stderr
    crashes = only_run(tmp_path).crashes
    assert crashes and all(c.backtrace and c.backtrace.app_frame == "app.wsgi:7 in application" for c in crashes)


def test_hung_daemon_is_dumped_before_it_is_killed(tmp_path: Path) -> None:
    done = run_once(tmp_path, "block", "sigusr1", cycles=1)
    assert done.returncode == 0, done.stderr
    run = only_run(tmp_path)
    assert run.verdict is Outcome.HUNG and run.hangs
    records = {r.cycle: r for r in cycles(tmp_path, run.folder)}
    for dump in run.hangs:
        assert dump.tool == "pystack", dump.tried
        assert dump.app_frames == ("app.wsgi:9 in application",)  # _never.wait(): the blocking line
        assert dump.native_frames and "PyThread_acquire_lock" in dump.native_frames[0], dump.native_frames
        assert "_never.wait()" in (session_dir(tmp_path) / run.folder / dump.file).read_text()
        assert records[dump.cycle].phase is not Phase.STOP, "killed after its stacks: the stop finds a fresh daemon"


def test_live_stacks_fall_back_to_py_spy_and_gdb_with_the_same_app_line(tmp_path: Path) -> None:
    """Each tool of the chain on its own names the app's line a stuck thread is on."""
    import subprocess
    import sys

    script = tmp_path / "stuck.py"
    script.write_text("import threading\nevent = threading.Event()\nevent.wait()  # stuck here\n")
    process = subprocess.Popen([sys.executable, str(script)])
    try:
        import time

        time.sleep(1.0)
        for tool in ("pystack", "py-spy", "gdb"):
            found = stacks.live_stacks(process.pid, lambda t: None, None, tools=(tool,))
            lines = [f for t in found.threads for f in t.frames if f.kind == "Python" and f.file == str(script)]
            if tool == "gdb" and not lines:  # no python-gdb script for the harness's own Python here
                assert any(f.named for t in found.threads for f in t.frames), found.text[:500]
                continue
            assert lines and lines[0].line == 3, (tool, found.tried, found.text[:800])
    finally:
        process.kill()
        process.wait()


def test_alternating_crashes_are_flaky_with_an_interval(tmp_path: Path) -> None:
    done = run_once(tmp_path, "alternate", "sigusr1", cycles=4)
    assert done.returncode == 0, done.stderr
    run = only_run(tmp_path)
    assert run.stability == "flaky" and run.trials == 4
    crashed = next(r for r in run.rates if r.outcome is Outcome.CRASHED)
    assert (crashed.count, crashed.trials) == (2, 4)
    assert crashed.ci95 == pytest.approx((0.15, 0.85), abs=0.005)
    assert "crashed 2/4 (15%-85%)" in (session_dir(tmp_path) / "report.md").read_text()


def test_until_crash_stops_at_the_first_crash(tmp_path: Path) -> None:
    done = run_once(tmp_path, "alternate", "sigusr1", "--until-crash", cycles=10)
    assert done.returncode == 0, done.stderr
    run = only_run(tmp_path)
    assert run.first_crash_cycle == 1  # the load is request 1 (clean), the first reload request 2
    assert [r.phase for r in cycles(tmp_path, run.folder)] == [Phase.LOAD, Phase.RELOAD, Phase.STOP]
    assert any("not run: stopped at the first crash" in line for line in run.not_run)


def test_controls_baseline_holds_and_an_edited_verdict_fails_by_name(tmp_path: Path) -> None:
    done = harness("run", "--cycles", "1", "--results", str(tmp_path / "a"), "--baseline", str(CONTROLS_BASELINE))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no change" in done.stdout
    suite = ET.parse(session_dir(tmp_path / "a") / "junit.xml").getroot()
    xfails = [case for case in suite.iter("testcase") if case.find("skipped") is not None]
    assert suite.get("failures") == "0" and len(xfails) == 12  # every non-clean control is a known failure

    edited = tmp_path / "edited.toml"
    text = CONTROLS_BASELINE.read_text()
    edited.write_text(text.replace('"hello.sigusr1.global" = "clean"', '"hello.sigusr1.global" = "crashed"'))
    assert edited.read_text() != text
    done = harness("run", "--scenario", "hello", "--mechanism", "sigusr1", "--cycles", "1", "--no-controls",
                   "--results", str(tmp_path / "b"), "--baseline", str(edited))  # fmt: skip
    assert done.returncode == 1
    assert "fix: hello.sigusr1.global was crashed, now clean" in done.stdout


def test_pystack_thread_output_parses_the_recorded_remote_dump() -> None:
    """The recorded `pystack remote --native` dump of a blocked daemon reads back to the blocking line."""
    text = (REPO / "tests" / "data" / "pystack-remote-block.txt").read_text()
    threads = frames.pystack(text)
    stuck = [t for t in threads if any(f.function == "application" for f in t.frames)]
    assert stuck and signature.blocking_frame(stuck[0]) is not None


@pytest.mark.parametrize("python", ["3.8", "3.9", "3.10"])
def test_a_hang_in_a_named_sub_interpreter_before_311_names_the_app_line_and_the_lock(
    tmp_path: Path, python: str
) -> None:
    """pystack skips sub-interpreters before 3.11 ("pystack can only handle subinterpreters for Python
    3.11+"): py-spy names the app's line, and gdb adds the native function the thread waits in."""
    done = run_once(tmp_path, "block", "sigusr1", "--layout", "named", "--python", python, "--mod-wsgi", "5.0.2")
    assert done.returncode == 0, done.stderr[-2000:]
    run = only_run(tmp_path)
    assert run.verdict is Outcome.HUNG and run.hangs, run.evidence
    for dump in run.hangs:
        assert dump.app_frames == ("app.wsgi:9 in application",), dump
        assert dump.native_frames and dump.native_frames[0].startswith("PyThread_acquire_lock_timed"), dump
        assert dump.tool == "py-spy+gdb", dump.tried
        text = (session_dir(tmp_path) / run.folder / dump.file).read_text()
        assert "pystack can only handle subinterpreters for Python 3.11+" in text, "why pystack was not enough"
