"""The outcome classes that come from the server or the cell rather than the controls, met live:
start-failed (port taken), unsupported (a cell pip refuses), harness-error (a mechanism that cannot
fire), a glibc abort, a load-time traceback, and the server user who cannot read the Python.

A run that cannot get going (start-failed, unsupported) leaves exactly one cycle record, phase
"setup", saying why; a reload that never fired is no trial and never counts for or against the app."""

from __future__ import annotations

import glob
import json
import os
import socket
from pathlib import Path

import pytest

from harness.model.outcome import Outcome
from harness.model.records import DeathSource, Phase, RunResult
from tests.conftest import REPO, cycles, require_apache, run_once, server_processes_under, session_record

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


def _only_run(results: Path) -> RunResult:
    (run,) = session_record(results).runs
    return run


def _pyenv_python(version_prefix: str) -> str | None:
    found = sorted(glob.glob(str(Path.home() / f".pyenv/versions/{version_prefix}*/bin/python3")))
    return found[0] if found else None


def _one_setup_cycle(results: Path, run: RunResult, outcome: Outcome) -> None:
    """A run that could not get going: one cycle record, phase setup, no trial, the reason as its evidence."""
    (record,) = cycles(results, run.folder)
    assert record.phase is Phase.SETUP and record.outcome is outcome and not record.trial, record
    assert run.cycles_recorded == 1 and run.trials == 0 and run.counts[outcome] == 1
    assert run.reason is not None and record.evidence[0] == run.reason == record.why_not_trial


def test_port_taken_is_start_failed(tmp_path: Path, private_runtime: Path) -> None:
    """A run that cannot start is start-failed and fails the exit status. (The app is a copy of hello that
    is no clean control: a failing control marks its own slot broken, and nothing in a broken slot
    counts against the exit status.)"""
    require_apache()
    folder = _scenario(tmp_path / "portapp", HELLO, "clean", "hello from mod_wsgi\n")
    results = tmp_path / "results"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        done = run_once(results, str(folder), "sigusr1", "--port", str(taken.getsockname()[1]))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAIL portapp.sigusr1.global: start-failed, expected clean" in done.stdout, done.stdout
    run = _only_run(results)
    assert run.verdict is Outcome.START_FAILED and not run.matches
    assert any("AH00072" in line or "Address already in use" in line for line in run.evidence[Outcome.START_FAILED])
    _one_setup_cycle(results, run, Outcome.START_FAILED)
    assert run.load_outcome is None and run.stop_outcome is None  # nothing loaded, nothing to stop
    assert server_processes_under(private_runtime) == []


def test_mechanism_that_cannot_fire_is_a_harness_error(tmp_path: Path, private_runtime: Path) -> None:
    """reload-on-changes watching a file the app never imports: the monitor never sees the edit. The
    reload is no trial (it never happened), so it counts neither for nor against the app."""
    require_apache()
    folder = _scenario(tmp_path / "unwatched", HELLO, "clean", "hello from mod_wsgi\n", 'watch = "notes.txt"\n')
    (folder / "notes.txt").write_text("not a module\n")
    results = tmp_path / "results"
    done = run_once(results, str(folder), "reload-on-changes")
    assert done.returncode == 1, done.stdout + done.stderr
    run = _only_run(results)
    assert run.verdict is Outcome.HARNESS_ERROR and not run.matches
    assert "mechanism did not fire" in run.evidence[Outcome.HARNESS_ERROR][0]
    assert run.trials == 0 and run.rates == ()
    (reload,) = [c for c in cycles(results, run.folder) if c.phase is Phase.RELOAD]
    assert reload.outcome is Outcome.HARNESS_ERROR and not reload.trial
    assert reload.why_not_trial is not None and reload.why_not_trial.startswith("mechanism did not fire")
    assert any("was no trial: mechanism did not fire" in line for line in run.not_run), run.not_run
    assert run.load_outcome is Outcome.CLEAN and run.stop_outcome is Outcome.CLEAN
    assert server_processes_under(private_runtime) == []


def test_cell_pip_refuses_is_unsupported(tmp_path: Path, private_runtime: Path) -> None:
    """A cell that cannot exist (mod_wsgi 6.1.1 refuses Python 3.8) is 'unsupported': never a crash,
    and not a failure of the app, so it does not fail the exit status (the summary says why)."""
    require_apache()
    python38 = _pyenv_python("3.8")
    if python38 is None:
        pytest.skip("no pyenv Python 3.8 on this machine")
    results = tmp_path / "results"
    done = run_once(results, "hello", "sigusr1", "--python", python38, env={"MOD_WSGI_HARNESS_CACHE": str(tmp_path)})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 run(s) unsupported in their cell (not failures)" in done.stdout, done.stdout
    run = _only_run(results)
    assert run.verdict is Outcome.UNSUPPORTED and run.counts[Outcome.CRASHED] == 0 and not run.matches
    assert run.reason is not None and "mod_wsgi 6.1.1 does not build for Python 3.8" in run.reason
    assert run.cell.python.startswith("3.8.")
    _one_setup_cycle(results, run, Outcome.UNSUPPORTED)
    (status,) = session_record(results).cells
    assert status.status == "unsupported" and status.reason == run.reason
    assert server_processes_under(private_runtime) == []


def _unreadable_pyenv_python(version_prefix: str) -> str:
    python = _pyenv_python(version_prefix)
    if os.geteuid() != 0 or python is None or (Path.home().stat().st_mode & 0o001):
        pytest.skip("needs root and a pyenv Python under a home others cannot enter")
    return python


def test_unreadable_python_is_one_clear_line(tmp_path: Path, private_runtime: Path) -> None:
    """As root, a pyenv under a 0700 home cannot be read by the server user: with the private view
    refused, say exactly that, before any results folder or server root exists."""
    require_apache()
    python311 = _unreadable_pyenv_python("3.11")
    done = run_once(tmp_path / "results", "hello", "sigusr1", "--python", python311, "--no-private-view")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.splitlines()[-1].startswith("error: server user")  # the error itself is one line
    assert f"{Path.home()} is mode 0700" in done.stderr and "cannot read" in done.stderr
    assert not (tmp_path / "results").exists()
    assert server_processes_under(private_runtime) == []


def test_unreadable_python_runs_in_a_private_view(tmp_path: Path) -> None:
    """By default the servers see that interpreter in a mount namespace of their own; nothing on the
    machine changes (the home stays 0700) and the controls keep their verdicts."""
    require_apache()
    python311 = _unreadable_pyenv_python("3.11")
    mode = Path.home().stat().st_mode
    done = run_once(tmp_path, "hello,segfault", "sigusr1", "--python", python311)
    assert done.returncode == 0, done.stderr
    assert "shown read-only over an empty" in done.stderr
    runs = {run.scenario: run for run in session_record(tmp_path).runs}
    assert runs["hello"].verdict is Outcome.CLEAN and runs["segfault"].verdict is Outcome.CRASHED
    assert runs["hello"].cell.python.startswith("3.11.") and runs["hello"].engine.user != "root"
    assert runs["hello"].cell.private_view is not None
    backtrace = runs["segfault"].crashes[0].backtrace
    assert backtrace is not None and backtrace.app_frame == "app.wsgi:7 in application"
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
    run = _only_run(tmp_path / "results")
    evidence = "\n".join(run.evidence[Outcome.CRASHED])
    # The death is seen at the source (the daemon's exit status) in the cycle it happens; Apache's own line
    # comes on its next maintenance tick and confirms the same crash.
    assert "free(): double free detected" in evidence and "ended by signal 6" in evidence, evidence
    crash = run.crashes[0]
    assert crash.signal == 6 and DeathSource.EXIT_STATUS in crash.sources, crash
    assert crash.log_line is not None and "exit signal Abort (6)" in crash.log_line, crash
    assert DeathSource.LOG in crash.sources, crash.sources
    if crash.backtrace is not None:  # a core was written (core dumps are enabled here)
        assert crash.backtrace.abort_message == "free(): double free detected in tcache 2", crash.backtrace


def test_import_error_at_load_is_raised_with_its_traceback(tmp_path: Path, private_runtime: Path) -> None:
    require_apache()
    folder = _scenario(tmp_path / "badimport", "import module_that_is_not_there\n", "raised")
    # Not script-touch: a script that never loaded has nothing to reload, so mod_wsgi does not restart
    # the daemon for it, and the harness rightly calls that a mechanism that did not fire.
    done = run_once(tmp_path / "results", str(folder), "sigusr1")
    assert done.returncode == 0, done.stdout + done.stderr
    run = _only_run(tmp_path / "results")
    evidence = "\n".join(run.evidence[Outcome.RAISED])
    assert "Traceback (most recent call last):" in evidence
    assert "ModuleNotFoundError: No module named 'module_that_is_not_there'" in evidence
    assert run.first_exception == "ModuleNotFoundError: No module named 'module_that_is_not_there'"
