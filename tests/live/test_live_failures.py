"""The outcome classes that come from the server or the cell rather than the controls, met live:
start-failed (port taken), unsupported (a cell pip refuses), harness-error (a mechanism that cannot
fire), a glibc abort, a load-time traceback, and the server user who cannot read the Python."""

from __future__ import annotations

import glob
import json
import os
import socket
from pathlib import Path

import pytest

from .conftest import REPO, require_apache, run_once, server_processes_under, session_summary

pytestmark = pytest.mark.live
HELLO = (REPO / "scenarios/hello/app.wsgi").read_text()


def _scenario(folder: Path, app: str, expect: str, body: str = "ok", app_fields: str = "") -> Path:
    folder.mkdir()
    (folder / "app.wsgi").write_text(app)
    (folder / "scenario.toml").write_text(
        f'[app]\nscript = "app.wsgi"\n{app_fields}[[probe]]\npath = "/"\nbody_equals = {json.dumps(body)}\n'
        f'[expect]\ndefault = "{expect}"\n'
    )
    return folder


def _only_run(results: Path) -> dict[str, object]:
    (run,) = session_summary(results)["runs"]
    return run


def _pyenv_python(version_prefix: str) -> str | None:
    found = sorted(glob.glob(str(Path.home() / f".pyenv/versions/{version_prefix}*/bin/python3")))
    return found[0] if found else None


def test_port_taken_is_start_failed(tmp_path: Path, private_runtime: Path) -> None:
    require_apache()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        done = run_once(tmp_path, "hello", "sigusr1", "--port", str(taken.getsockname()[1]))
    assert done.returncode == 1
    run = _only_run(tmp_path)
    assert run["verdict"] == "start-failed"
    assert any("AH00072" in line or "Address already in use" in line for line in run["evidence"]["start-failed"])
    assert server_processes_under(private_runtime) == []


def test_mechanism_that_cannot_fire_is_a_harness_error(tmp_path: Path, private_runtime: Path) -> None:
    """reload-on-changes watching a file the app never imports: the monitor never sees the edit."""
    require_apache()
    folder = _scenario(tmp_path / "unwatched", HELLO, "clean", "hello from mod_wsgi\n", 'watch = "notes.txt"\n')
    (folder / "notes.txt").write_text("not a module\n")
    done = run_once(tmp_path / "results", str(folder), "reload-on-changes")
    assert done.returncode == 1
    run = _only_run(tmp_path / "results")
    assert run["verdict"] == "harness-error"
    assert "mechanism did not fire" in run["evidence"]["harness-error"][0]


def test_cell_pip_refuses_is_unsupported(tmp_path: Path, private_runtime: Path) -> None:
    require_apache()
    python38 = _pyenv_python("3.8")
    if python38 is None:
        pytest.skip("no pyenv Python 3.8 on this machine")
    done = run_once(
        tmp_path / "results", "hello", "sigusr1", "--python", python38, env={"MOD_WSGI_HARNESS_CACHE": str(tmp_path)}
    )
    assert done.returncode == 1, done.stderr
    run = _only_run(tmp_path / "results")
    assert run["verdict"] == "unsupported" and run["counts"]["crashed"] == 0
    assert "mod_wsgi 6.1.1 does not build for Python 3.8" in run["reason"]
    assert run["cell"]["python"].startswith("3.8.")


def _unreadable_pyenv_python(version_prefix: str) -> str:
    python = _pyenv_python(version_prefix)
    if os.geteuid() != 0 or python is None or (Path.home().stat().st_mode & 0o001):
        pytest.skip("needs root and a pyenv Python under a home others cannot enter")
    return python


def test_unreadable_python_is_one_clear_line(tmp_path: Path) -> None:
    """As root, a pyenv under a 0700 home cannot be read by the server user: with the private view
    refused, say exactly that."""
    require_apache()
    python311 = _unreadable_pyenv_python("3.11")
    done = run_once(tmp_path, "hello", "sigusr1", "--python", python311, "--no-private-view")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1].startswith("error: server user")  # the error itself is one line
    assert f"{Path.home()} is mode 0700" in done.stderr and "cannot read" in done.stderr


def test_unreadable_python_runs_in_a_private_view(tmp_path: Path) -> None:
    """By default the servers see that interpreter in a mount namespace of their own; nothing on the
    machine changes (the home stays 0700) and the controls keep their verdicts."""
    require_apache()
    python311 = _unreadable_pyenv_python("3.11")
    mode = Path.home().stat().st_mode
    done = run_once(tmp_path, "hello,segfault", "sigusr1", "--python", python311)
    assert done.returncode == 0, done.stderr
    assert "shown read-only over an empty" in done.stderr
    runs = {run["scenario"]: run for run in session_summary(tmp_path)["runs"]}
    assert runs["hello"]["verdict"] == "clean" and runs["segfault"]["verdict"] == "crashed"
    assert runs["hello"]["cell"]["python"].startswith("3.11.") and runs["hello"]["server"]["user"] != "root"
    assert runs["segfault"]["crashes"][0]["backtrace"]["app_frame"] == "app.wsgi:7 in application"
    assert Path.home().stat().st_mode == mode


def test_glibc_abort_is_crashed_with_its_line(tmp_path: Path, private_runtime: Path) -> None:
    """A real double free: glibc prints its own line on the daemon's stderr and aborts."""
    require_apache()
    app = (
        "import ctypes\n"
        "libc = ctypes.CDLL(None)\n"
        "libc.malloc.restype = ctypes.c_void_p\n"
        "libc.free.argtypes = [ctypes.c_void_p]\n"
        "def application(environ, start_response):\n"
        "    block = libc.malloc(64)\n"
        "    libc.free(block)\n"
        "    libc.free(block)\n"
        "    start_response('200 OK', [])\n"
        "    return [b'ok']\n"
    )
    folder = _scenario(tmp_path / "doublefree", app, "crashed")
    done = run_once(tmp_path / "results", str(folder), "sigusr1")
    assert done.returncode == 0, done.stdout + done.stderr
    evidence = "\n".join(_only_run(tmp_path / "results")["evidence"]["crashed"])
    assert "free(): double free detected" in evidence and "exit signal Abort (6)" in evidence


def test_import_error_at_load_is_raised_with_its_traceback(tmp_path: Path, private_runtime: Path) -> None:
    require_apache()
    folder = _scenario(tmp_path / "badimport", "import module_that_is_not_there\n", "raised")
    # Not script-touch: a script that never loaded has nothing to reload, so mod_wsgi does not restart
    # the daemon for it, and the harness rightly calls that a mechanism that did not fire.
    done = run_once(tmp_path / "results", str(folder), "sigusr1")
    assert done.returncode == 0, done.stdout + done.stderr
    evidence = "\n".join(_only_run(tmp_path / "results")["evidence"]["raised"])
    assert "Traceback (most recent call last):" in evidence
    assert "ModuleNotFoundError: No module named 'module_that_is_not_there'" in evidence
