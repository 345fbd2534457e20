"""Installable for real: `pip install .` (not editable) into a fresh virtualenv outside the checkout, then a run
from an empty folder with the console script: templates, shipped scenarios and the driver's sources come
from the installed package, and the results land in ./results of that folder."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO, require_apache

pytestmark = pytest.mark.live


def test_a_non_editable_install_runs_from_an_empty_folder(tmp_path: Path) -> None:
    require_apache()
    venv = tmp_path / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", str(venv)], check=True, timeout=300)
    installed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(REPO)],
        capture_output=True, text=True, timeout=1200, check=False,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stdout[-2000:] + installed.stderr[-2000:]
    package = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import harness, pathlib; print(pathlib.Path(harness.__file__).parent)"],
        capture_output=True, text=True, check=True, cwd=tmp_path,
    ).stdout.strip()  # fmt: skip
    assert package.startswith(str(venv)), f"the installed copy, not the checkout: {package}"
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    done = subprocess.run(
        [str(venv / "bin" / "wsgi-crash-harness"), "run", "--scenario", "hello", "--mechanism", "sigusr1",
         "--cycles", "1"],
        cwd=empty, capture_output=True, text=True, timeout=900, check=False, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    (session,) = [p for p in (empty / "results").iterdir() if p.is_dir()]
    record = json.loads((session / "summary.json").read_text())
    verdicts = {run["run"]: run["verdict"] for run in record["runs"]}
    assert verdicts == {"hello.sigusr1.global": "clean", "stdlib.sigusr1.global": "clean"}, verdicts
    assert (session / "hello.sigusr1.global" / "harness-include.conf").is_file()
    # The driver's sources are package data too.
    driver = subprocess.run(
        [str(venv / "bin" / "wsgi-crash-harness"), "run", "--scenario", "hello", "--mechanism", "interpreter-cycle",
         "--cycles", "1", "--no-controls"],
        cwd=empty, capture_output=True, text=True, timeout=900, check=False, env=env,
    )  # fmt: skip
    assert driver.returncode == 0, driver.stderr[-3000:]
