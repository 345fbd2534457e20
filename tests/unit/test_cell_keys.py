"""Cell keys: a release is one cell; a local checkout or sdist is a new cell whenever its content changes."""

from __future__ import annotations

import subprocess
from pathlib import Path

from harness.cell import source_state


def git(folder: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True)


def test_release_has_no_source_state() -> None:
    assert source_state("6.1.1") == "" and source_state("mod_wsgi>=5") == ""


def test_checkout_state_follows_commits_and_edits(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    (tmp_path / "setup.py").write_text("version = 1\n")
    git(tmp_path, "add", ".")
    git(tmp_path, "-c", "user.email=h@example.invalid", "-c", "user.name=h", "commit", "-qm", "one")
    committed = source_state(str(tmp_path))
    (tmp_path / "setup.py").write_text("version = 2\n")
    edited = source_state(str(tmp_path))
    assert committed and edited and committed != edited
    git(tmp_path, "checkout", "-q", "setup.py")
    assert source_state(str(tmp_path)) == committed


def test_sdist_state_is_its_content(tmp_path: Path) -> None:
    sdist = tmp_path / "mod_wsgi-9.9.tar.gz"
    sdist.write_bytes(b"one")
    first = source_state(str(sdist))
    sdist.write_bytes(b"two")
    assert first != source_state(str(sdist))
