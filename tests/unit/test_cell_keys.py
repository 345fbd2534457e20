"""Cell keys: a release is one cell; a local checkout or sdist is a new cell whenever its content changes; a
cached cell whose mod_wsgi was compiled for another Apache is not that cell."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness.cells.apache import ApacheInfo
from harness.cells.build import PythonInfo, cell_key, cell_known, compiled_for_other_apache, source_state

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


BUNDLED = ApacheInfo("2.4.69", "bundled:2.4.69", "", "")


def _compiled(env_dir: Path, with_package: bool) -> Path:
    """The apxs_config.py mod_wsgi's build writes, reduced to the line that says which Apache it was built for."""
    server = env_dir / "lib" / "python3.11" / "site-packages" / "mod_wsgi" / "server"
    server.mkdir(parents=True)
    (server / "apxs_config.py").write_text(f"import os\n\nWITH_HTTPD_PACKAGE = {with_package}\n")
    return server / "apxs_config.py"


def test_a_mod_wsgi_compiled_for_another_apache_is_named(tmp_path: Path) -> None:
    # pip's wheel cache once gave a Debian-Apache cell the wheel built in a bundled-httpd cell (and the reverse),
    # so a result would have named an Apache that never ran.
    _compiled(tmp_path / "system", with_package=False)
    _compiled(tmp_path / "bundled", with_package=True)
    assert compiled_for_other_apache(tmp_path / "system", APACHE) is None
    assert compiled_for_other_apache(tmp_path / "bundled", BUNDLED) is None
    wrong = compiled_for_other_apache(tmp_path / "bundled", APACHE)
    assert wrong is not None and "compiled for a bundled httpd" in wrong and "2.4.71 (debian)" in wrong
    wrong = compiled_for_other_apache(tmp_path / "system", BUNDLED)
    assert wrong is not None and "compiled for the system's Apache" in wrong and "bundled:2.4.69" in wrong


def test_a_driver_cell_or_an_unknown_build_makes_no_claim(tmp_path: Path) -> None:
    assert compiled_for_other_apache(tmp_path, None) is None
    assert compiled_for_other_apache(tmp_path, APACHE) is None  # no apxs_config.py: nothing says


def test_a_cached_cell_compiled_for_another_apache_is_not_known(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Not known means: built again, and counted among the run's compilations.
    monkeypatch.setenv("MOD_WSGI_HARNESS_CACHE", str(tmp_path))
    env_dir = tmp_path / "cells" / cell_key(PYTHON, "6.1.1", APACHE)
    config = _compiled(env_dir, with_package=True)
    (env_dir / "cell.json").write_text("{}")
    assert not cell_known(PYTHON, "6.1.1", APACHE)
    config.write_text("WITH_HTTPD_PACKAGE = False\n")
    assert cell_known(PYTHON, "6.1.1", APACHE)
