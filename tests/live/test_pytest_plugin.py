"""The pytest plugin, run as a user would: pytest-xdist with --dist load, the controls as tests, known
crashers as strict expected failures, verdicts and counts in the JUnit XML; and the wsgi_harness fixture
in a user's own test, with the run's folder in the report when the test fails."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import REPO, require_apache

pytestmark = pytest.mark.live
FIXTURES = REPO / "tests" / "data" / "scenarios"


def plugin_pytest(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], ET.Element]:
    junit = tmp_path / "junit.xml"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--wsgi-harness", "-n", "2", "--dist", "load", "-p", "no:cacheprovider",
         "-rA", f"--junitxml={junit}", "--rootdir", str(tmp_path), *args, str(REPO / "scenarios")],
        cwd=tmp_path, capture_output=True, text=True, timeout=900, check=False,
        env={k: v for k, v in os.environ.items() if k != "PYTEST_XDIST_WORKER"},
    )  # fmt: skip
    return done, ET.parse(junit).getroot()


def test_controls_run_in_parallel_with_verdicts_in_junit(tmp_path: Path) -> None:
    require_apache()
    done, root = plugin_pytest(tmp_path, "--wh-scenario", "hello,segfault,raise,wrong", "--wh-cycles", "1")
    assert done.returncode == 0, done.stdout[-3000:]
    assert "1 passed, 3 xfailed" in done.stdout
    assert "[gw0]" in done.stdout or "gw1" in done.stdout or "2 workers" in done.stdout
    verdicts = {
        case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
        for case in root.iter("testcase")
    }
    assert verdicts["hello[sigusr1-global]"]["verdict"] == "clean"
    assert verdicts["segfault[sigusr1-global]"]["verdict"] == "crashed"
    assert int(verdicts["segfault[sigusr1-global]"]["count.crashed"] or 0) >= 1
    assert verdicts["raise[sigusr1-global]"]["verdict"] == "raised"
    classes = {case.get("name"): case.get("classname") for case in root.iter("testcase")}
    assert classes["hello[sigusr1-global]"] == "wsgi-harness.hello", classes


def test_driver_mechanism_and_a_skipped_scenario(tmp_path: Path) -> None:
    """A driver mechanism runs in its own layout; a scenario whose hand-in packages are absent is
    skipped with the reason, not failed."""
    require_apache()
    done, _ = plugin_pytest(tmp_path, "--wh-scenario", "hello,pylons_pyprotocols",
                               "--wh-mechanism", "interpreter-cycle", "--wh-cycles", "2")  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:]
    assert "1 passed, 1 skipped" in done.stdout, done.stdout[-2000:]
    assert "hello[interpreter-cycle-named]" in done.stdout
    assert "needs PyProtocols, RuleDispatch" in done.stdout


def test_a_fixed_known_crasher_fails_the_suite(tmp_path: Path) -> None:
    """Strict xfail: a scenario still listed as crashing that runs clean is an XPASS, and fails."""
    require_apache()
    done, _ = plugin_pytest(tmp_path, "--wh-scenario", str(FIXTURES / "stale_crasher"), "--wh-cycles", "1")
    assert done.returncode == 1
    assert "XPASS(strict)" in done.stdout or "1 failed" in done.stdout


def test_bad_option_is_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--wsgi-harness", "--wh-mechanism", "nope", "-p", "no:cacheprovider",
         str(REPO / "scenarios")],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 4 and "wsgi-harness: --mechanism: unknown mechanism nope" in done.stderr
    assert "Traceback" not in done.stderr


USER_TEST = """
from pathlib import Path

APP = Path(__file__).with_name("myapp.wsgi")


def test_my_app_survives_sigusr1_reloads(wsgi_harness):
    result = wsgi_harness.run(app=APP, mechanism="sigusr1", cycles=3)
    assert result.verdict == "clean"
    assert result.result.trials == 3


def test_my_crashing_app_is_caught(wsgi_harness):
    result = wsgi_harness.run(app=Path(__file__).with_name("crashing.wsgi"), mechanism="sigusr1", cycles=2)
    assert result.verdict == "clean"  # fails: the report shows the run's folder and its evidence
"""
APP = """def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"mine\\n"]
"""
CRASHING = """import ctypes


def application(environ, start_response):
    ctypes.string_at(0)
"""


def test_a_users_own_test_with_the_wsgi_harness_fixture(tmp_path: Path) -> None:
    """Written as a user would: a plain pytest file in the user's project, the fixture from the plugin."""
    require_apache()
    (tmp_path / "myapp.wsgi").write_text(APP)
    (tmp_path / "crashing.wsgi").write_text(CRASHING)
    (tmp_path / "test_myapp.py").write_text(USER_TEST)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", str(tmp_path / "test_myapp.py")],
        cwd=tmp_path, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout[-3000:]
    assert "1 failed, 1 passed" in done.stdout, done.stdout[-3000:]
    assert "wsgi_harness run" in done.stdout and "verdict crashed" in done.stdout, done.stdout[-3000:]
