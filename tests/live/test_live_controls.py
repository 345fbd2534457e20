"""Every control under every mechanism, and hello under every layout, against live servers.

This is the issue's own acceptance command; each outcome class and each mechanism is met here for
real: the assertions read what the harness recorded, cycle by cycle.
"""

from __future__ import annotations

import os
import re
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.mechanisms import MECHANISM_NAMES, MECHANISMS

from .conftest import cycles, harness, require_apache, run_once, runs_by_id, server_processes_under, session_summary

pytestmark = pytest.mark.live
CONTROLS = ("hello", "segfault", "raise", "wrong", "block")
EXPECTED = {"hello": "clean", "segfault": "crashed", "raise": "raised", "wrong": "wrong-result", "block": "hung"}


@pytest.fixture(scope="session")
def runtime_for_session() -> Iterator[Path]:
    path = Path(f"/tmp/mwh-s{os.getpid()}")
    path.mkdir(mode=0o711, exist_ok=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def control_matrix(tmp_path_factory: pytest.TempPathFactory, runtime_for_session: Path) -> dict[str, Any]:
    require_apache()
    results = tmp_path_factory.mktemp("controls")
    done = harness(
        "run",
        "--scenario",
        ",".join(CONTROLS),
        "--mechanism",
        "all",
        "--layout",
        "global",
        "--cycles",
        "3",
        "--results",
        str(results),
        env={"MOD_WSGI_HARNESS_RUNTIME": str(runtime_for_session / "controls")},
    )
    return {
        "done": done,
        "results": results,
        "summary": session_summary(results),
        "leftovers": server_processes_under(runtime_for_session / "controls"),
    }


def _layout(mechanism: str) -> str:
    """The layout a run of `--layout global` has: the driver mechanisms keep their own."""
    return (MECHANISMS[mechanism].layouts or ("global",))[0]


def test_acceptance_command_exits_zero(control_matrix: dict[str, Any]) -> None:
    done = control_matrix["done"]
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert len(control_matrix["summary"]["runs"]) == len(CONTROLS) * len(MECHANISM_NAMES) == 5 * (11 + 3)


@pytest.mark.parametrize("mechanism", MECHANISM_NAMES)
@pytest.mark.parametrize("control", CONTROLS)
def test_control_verdict(control_matrix: dict[str, Any], control: str, mechanism: str) -> None:
    run = runs_by_id(control_matrix["summary"])[f"{control}.{mechanism}.{_layout(mechanism)}"]
    assert (run["verdict"], run["matches"]) == (EXPECTED[control], True), run["evidence"]
    assert run["counts"][EXPECTED[control]] >= 1
    if MECHANISMS[mechanism].driver and EXPECTED[control] in ("crashed", "hung"):
        assert run["cycles_recorded"] == 1  # the driver's one process ends there: nothing comes after
    else:
        assert run["cycles_recorded"] == 3 + 2  # first load, three reloads, the stop


@pytest.mark.parametrize("mechanism", MECHANISM_NAMES)
def test_every_mechanism_fires_and_hello_stays_clean(control_matrix: dict[str, Any], mechanism: str) -> None:
    records = cycles(control_matrix["results"], f"hello.{mechanism}.{_layout(mechanism)}")
    reloads = [r for r in records if r["phase"] == "reload"]
    assert [r["confirmation"]["fired"] for r in reloads] == ["confirmed"] * 3
    assert all(r["outcome"] == "clean" for r in records)
    for record in reloads:
        stamps = record["timestamps"]
        assert stamps["trigger_sent"] <= stamps["reload_confirmed"] <= stamps["outcome_recorded"]
        assert stamps["probe_answered"] is not None
        if mechanism != "script-touch-embedded" and not MECHANISMS[mechanism].driver:  # those reload in place
            assert set(record["daemon_pids_before"]).isdisjoint(record["daemon_pids_after"])


def test_crash_evidence_is_apaches_signal_line_and_faulthandler(control_matrix: dict[str, Any]) -> None:
    run = runs_by_id(control_matrix["summary"])["segfault.sigusr1.global"]
    evidence = "\n".join(run["evidence"]["crashed"])
    # AH00051 when a core was written (the harness raises the core limit), AH00052 when not.
    assert re.search(r"AH0005[12]: child pid \d+ exit signal Segmentation fault \(11\)", evidence)
    assert "Fatal Python error: Segmentation fault" in evidence  # PYTHONFAULTHANDLER=1 reached the daemon
    assert 'app.wsgi", line' in evidence  # the Python line that crashed


def test_embedded_crash_is_a_dead_worker(control_matrix: dict[str, Any]) -> None:
    records = cycles(control_matrix["results"], "segfault.script-touch-embedded.global")
    first = records[0]
    assert first["outcome"] == "crashed"
    assert any(e["kind"] == "signal-death" and e["signal"] == 11 for e in first["events"])
    assert first["probes"][0]["error"].startswith("connection dropped")


def test_in_flight_request_of_dying_daemon_gets_502(control_matrix: dict[str, Any]) -> None:
    records = cycles(control_matrix["results"], "segfault.script-touch.global")
    assert {p["status"] for r in records for p in r["probes"]} == {502}
    assert any(e["kind"] == "lost-response" for r in records for e in r["events"])


def test_raise_evidence_names_the_exception(control_matrix: dict[str, Any]) -> None:
    run = runs_by_id(control_matrix["summary"])["raise.script-touch.global"]
    evidence = "\n".join(run["evidence"]["raised"])
    assert "HTTP 500" in evidence and "ControlError: raised on purpose" in evidence


def test_hang_is_a_probe_deadline_and_shutdown_abort(control_matrix: dict[str, Any]) -> None:
    records = cycles(control_matrix["results"], "block.sigusr1.global")
    assert all(p["error"] == "timeout" for r in records for p in r["probes"])
    assert records[-1]["phase"] == "stop" and records[-1]["outcome"] == "hung"
    assert any(e["kind"] == "shutdown-timeout" for e in records[-1]["events"])


def test_results_files(control_matrix: dict[str, Any]) -> None:
    (session,) = [p for p in control_matrix["results"].iterdir() if p.is_dir()]
    suite = ET.parse(session / "junit.xml").getroot()
    total = len(CONTROLS) * len(MECHANISM_NAMES)
    assert (suite.get("tests"), suite.get("failures")) == (str(total), "0")
    assert f"{total} runs, all as expected." in (session / "report.md").read_text()
    run_dir = session / "hello.apache-graceful.global"
    for name in ("cycles.jsonl", "summary.json", "error_log", "httpd.conf", "harness-include.conf"):
        assert (run_dir / name).is_file(), name
    assert "WSGIScriptAlias /app" in (run_dir / "harness-include.conf").read_text()
    assert "Listen 127.0.0.1:" in (run_dir / "httpd.conf").read_text()  # loopback only


def test_nothing_left_running(control_matrix: dict[str, Any]) -> None:
    assert control_matrix["leftovers"] == []


def test_hello_clean_under_every_layout(tmp_path: Path, private_runtime: Path) -> None:
    require_apache()
    done = run_once(tmp_path, "hello", "script-touch,sigusr1", "--layout", "all", cycles=2)
    assert done.returncode == 0, done.stdout + done.stderr
    runs = runs_by_id(session_summary(tmp_path))
    assert {r["verdict"] for r in runs.values()} == {"clean"} and len(runs) == 2 * 5  # five layouts
    (session,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    log = (session / "hello.sigusr1.two-groups" / "error_log").read_text()
    assert "into sub-interpreter 'app-a'" in log and "into sub-interpreter 'app-b'" in log
    log = (session / "hello.script-touch.global+named" / "error_log").read_text()
    assert "app.wsgi' into main interpreter" in log and "into sub-interpreter 'app-b'" in log
    assert server_processes_under(private_runtime) == []
