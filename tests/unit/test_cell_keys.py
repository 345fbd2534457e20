"""Cell keys: a release is one cell; a local checkout or sdist is a new cell whenever its content changes."""

from __future__ import annotations

import subprocess
from pathlib import Path

from harness.cells.apache import ApacheInfo
from harness.cells.build import PythonInfo, cell_key, source_state

PYTHON = PythonInfo("3.11.2", "/usr/bin/python3.11")
APACHE = ApacheInfo("2.4.71", "debian", "/usr/bin/apxs", "/usr/sbin/apache2")


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


def test_an_edited_sdist_is_a_new_cell_and_a_release_keeps_its_key(tmp_path: Path) -> None:
    """The cache is keyed by cell_key: the same key for the same content, a new one after an edit."""
    sdist = tmp_path / "mod_wsgi-9.9.tar.gz"
    sdist.write_bytes(b"one")
    first = cell_key(PYTHON, str(sdist), APACHE)
    assert cell_key(PYTHON, str(sdist), APACHE) == first
    sdist.write_bytes(b"two")
    assert cell_key(PYTHON, str(sdist), APACHE) != first
    assert cell_key(PYTHON, "6.1.1", APACHE) == cell_key(PYTHON, "6.1.1", APACHE)
    assert cell_key(PYTHON, "6.1.1", APACHE).startswith("py3.11.2-modwsgi6.1.1-apache2.4.71-")


def test_cells_differ_by_interpreter_apache_and_release() -> None:
    keys = {
        cell_key(PYTHON, "6.1.1", APACHE),
        cell_key(PYTHON, "5.0.2", APACHE),
        cell_key(PythonInfo("3.11.2", "/opt/python/bin/python3.11"), "6.1.1", APACHE),
        cell_key(PYTHON, "6.1.1", ApacheInfo("2.4.71", "apxs:/opt/httpd/bin/apxs", "/opt/httpd/bin/apxs", "")),
        cell_key(PYTHON, None, None),
    }
    assert len(keys) == 5
    assert cell_key(PYTHON, None, APACHE).startswith("py3.11.2-driver-")
