"""Bug-report evidence against live servers: cores and backtraces of real crashes, stack dumps of real
hangs taken before the kill, rates over alternating crashes, --until-crash, baselines and bundles."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from harness import stacks
from tests.conftest import REPO, cycles, harness, require_apache, run_once, session_summary

pytestmark = pytest.mark.live
CONTROLS_BASELINE = REPO / "results" / "baselines" / "controls.toml"


@pytest.fixture(autouse=True)
def _apache() -> None:
    require_apache()


def only_run(results: Path) -> dict[str, Any]:
    (run,) = session_summary(results)["runs"]
    return run


def run_folder(results: Path, run_id: str) -> Path:
    (session,) = [p for p in results.iterdir() if p.is_dir()]
    return session / run_id


def test_segfault_leaves_a_core_and_a_backtrace_naming_the_c_function_and_python_line(tmp_path: Path) -> None:
    done = run_once(tmp_path, "segfault", "sigusr1", cycles=2)
    assert done.returncode == 0, done.stderr
    run = only_run(tmp_path)
    folder = run_folder(tmp_path, run["run"])
    if os.geteuid() == 0:  # mod_wsgi 6.x as root writes no core: the whole tree must have run unprivileged
        assert run["server"]["user"] != "root"
    log = (folder / "error_log").read_text()
    deaths = {int(pid) for pid in re.findall(r"AH0005[12]: child pid (\d+) exit signal Segmentation fault", log)}
    crashes = run["crashes"]
    assert deaths and {c["pid"] for c in crashes} == deaths  # one event per death Apache logged
    for crash in crashes:
        assert crash["signal"] == 11
        core = folder / crash["core"]
        assert core.is_file() and core.read_bytes()[:4] == b"\x7fELF"
        trace = crash["backtrace"]
        assert trace["tool"] == "pystack", trace["problems"]
        assert "strlen" in trace["crashing_function"]  # libc's strlen, reached from ctypes.string_at(0)
        assert trace["python_frame"].endswith("in string_at")
        assert trace["app_frame"] == "app.wsgi:7 in application"
        assert "ctypes.string_at(0)" in (folder / trace["file"]).read_text()
        assert any("app.wsgi" in line for line in crash["faulthandler"])
    # gdb, the fallback, reads the same core to the same function.
    fallback = stacks.gdb_backtrace(folder / crashes[0]["core"], "/usr/sbin/apache2", None)
    assert fallback.tool == "gdb" and "strlen" in (fallback.crashing_function or ""), fallback.problems
    # Every core is its own: distinct pids, none overwritten by the next crash.
    assert len({c["core"] for c in crashes}) == len(crashes) == len(list((folder / "cores").iterdir()))
    report = (folder.parent / "report.md").read_text()
    assert "## Crashes" in report and "app.wsgi:7 in application" in report


def test_embedded_worker_crash_is_found_in_the_right_thread(tmp_path: Path) -> None:
    """In an embedded worker's core the first thread is the idle main thread; the crashing one is
    the thread that was handling the signal."""
    done = run_once(tmp_path, "segfault", "script-touch-embedded", cycles=1)
    assert done.returncode == 0, done.stderr
    crashes = only_run(tmp_path)["crashes"]
    assert crashes and all(c["backtrace"]["app_frame"] == "app.wsgi:7 in application" for c in crashes)


def test_block_is_dumped_before_it_is_killed(tmp_path: Path) -> None:
    done = run_once(tmp_path, "block", "sigusr1", cycles=1)
    assert done.returncode == 0, done.stderr
    run = only_run(tmp_path)
    assert run["verdict"] == "hung" and run["hangs"]
    records = {r["cycle"]: r for r in cycles(tmp_path, run["run"])}
    for dump in run["hangs"]:
        assert dump["tool"] == "pystack"
        assert dump["app_frames"] == ["app.wsgi:9 in application"]  # _never.wait(): the blocking line
        text = (run_folder(tmp_path, run["run"]) / dump["file"]).read_text()
        assert "_never.wait()" in text
        # The process table is read after the dump: the dumped process was still there, not yet killed.
        if records[dump["cycle"]]["phase"] != "stop":
            alive = {row["pid"] for row in records[dump["cycle"]]["processes"]}
            assert dump["pid"] in alive
    # At the server's stop the blocked daemon outlives the stop request: dumped before Apache kills it.
    stop = records[max(records)]
    assert (
        stop["phase"] == "stop" and stop["stacks"] and stop["stacks"][0]["app_frames"] == ["app.wsgi:9 in application"]
    )
    assert any(
        ("AH00051" not in line and "SIGKILL" in line) or "Shutdown timeout" in line
        for line in (run_folder(tmp_path, run["run"]) / "error_log").read_text().splitlines()
    )


def test_alternating_crashes_are_flaky_with_an_interval(tmp_path: Path) -> None:
    done = run_once(tmp_path, "alternate", "sigusr1", cycles=4)
    assert done.returncode == 0, done.stderr
    run = only_run(tmp_path)
    assert run["stability"] == "flaky"
    assert run["rates"]["crashed"]["count"] == 2 and run["rates"]["crashed"]["trials"] == 4
    assert run["rates"]["crashed"]["ci95"] == pytest.approx([0.15, 0.85], abs=0.005)
    assert "crashed 2/4 (15%-85%)" in (run_folder(tmp_path, run["run"]).parent / "report.md").read_text()


def test_until_crash_stops_at_the_first_crash(tmp_path: Path) -> None:
    done = run_once(tmp_path, "alternate", "sigusr1", "--until-crash", cycles=10)
    assert done.returncode == 0, done.stderr
    run = only_run(tmp_path)
    assert run["first_crash_cycle"] == 1  # the load is request 1 (clean), the first reload request 2
    assert [r["phase"] for r in cycles(tmp_path, run["run"])] == ["load", "reload", "stop"]


def test_controls_baseline_holds_and_an_edited_verdict_fails_by_name(tmp_path: Path) -> None:
    done = harness("run", "--cycles", "1", "--results", str(tmp_path / "a"), "--baseline", str(CONTROLS_BASELINE))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no change" in done.stdout
    suite = ET.parse(next((tmp_path / "a").iterdir()) / "junit.xml").getroot()
    xfails = [case for case in suite.iter("testcase") if case.find("skipped") is not None]
    assert suite.get("failures") == "0" and len(xfails) == 12  # every non-clean control is a known failure

    edited = tmp_path / "edited.toml"
    text = CONTROLS_BASELINE.read_text()
    edited.write_text(text.replace('"hello.sigusr1.global" = "clean"', '"hello.sigusr1.global" = "crashed"'))
    assert edited.read_text() != text
    done = harness("run", "--scenario", "hello", "--mechanism", "sigusr1", "--cycles", "1",
                   "--results", str(tmp_path / "b"), "--baseline", str(edited))  # fmt: skip
    assert done.returncode == 1
    assert "fix: hello.sigusr1.global was crashed, now clean" in done.stdout


def test_bundle_reproduces_the_verdict_from_a_fresh_checkout(tmp_path: Path) -> None:
    results = tmp_path / "results"
    assert run_once(results, "segfault", "script-touch", cycles=1).returncode == 0
    made = harness("bundle", "segfault.script-touch.global", "--results", str(results), "--out", str(tmp_path / "out"))
    assert made.returncode == 0, made.stderr
    (tarball,) = (tmp_path / "out").glob("*.tar.gz")
    with tarfile.open(tarball) as archive:
        names = archive.getnames()
    bundle_name = tarball.name.removesuffix(".tar.gz")
    for part in ("ISSUE.md", "reproduce.sh", "versions.json", "expected.toml", "config/httpd.conf",
                 "config/harness-include.conf", "scenario/segfault/app.wsgi", "error_log_by_cycle"):  # fmt: skip
        assert f"{bundle_name}/{part}" in names, part
    assert any(n.startswith(f"{bundle_name}/backtraces/core.") for n in names)
    issue = (tmp_path / "out" / bundle_name / "ISSUE.md").read_text()
    for heading in ("## Reproducer", "## Versions", "## Configuration", "## Error log", "## Backtrace"):
        assert heading in issue
    versions = json.loads((tmp_path / "out" / bundle_name / "versions.json").read_text())
    assert versions["apache_mpm"] and versions["mod_wsgi_installed"].lower().startswith("mod")

    checkout = fresh_checkout(tmp_path / "checkout")
    incoming = checkout / "incoming"
    incoming.mkdir()
    with tarfile.open(tarball) as archive:
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        archive.extractall(incoming, **safe)  # type: ignore[arg-type]
    replay = subprocess.run(
        ["bash", str(incoming / bundle_name / "reproduce.sh")],
        capture_output=True, text=True, timeout=900, check=False, env={**os.environ, "PIP_QUIET": "1"},
    )  # fmt: skip
    assert replay.returncode == 0, replay.stdout[-2000:] + replay.stderr[-2000:]
    (session,) = (incoming / bundle_name / "reproduced").iterdir()
    (run,) = json.loads((session / "summary.json").read_text())["runs"]
    assert run["verdict"] == "crashed" and run["baseline"]["change"] is None


def fresh_checkout(target: Path) -> Path:
    """The repository's files as a fresh clone would have them (tracked and new, not ignored), with
    its own .venv made by .ci/setup when reproduce.sh runs."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target
