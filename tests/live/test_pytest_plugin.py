"""The pytest plugin, run as a user would: pytest-xdist with --dist load, the controls as tests, known
crashers as strict expected failures, verdicts and counts in the JUnit XML."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import REPO, require_apache

pytestmark = pytest.mark.live
FIXTURES = Path(__file__).parent / "data" / "scenarios"


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
    assert int(verdicts["segfault[sigusr1-global]"]["count.crashed"]) >= 1
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
    assert done.returncode == 4 and "wsgi-harness: unknown mechanism nope" in done.stderr
    assert "Traceback" not in done.stderr
