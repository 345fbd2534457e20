"""Interpreters with a GIL of their own, and two interpreters at once.

- Layout own-gil (mod_wsgi 6.x's WSGIPerInterpreterGIL) on 3.12 and 3.13: hello is clean; the Pyrex-shaped
  fixture, a single-phase module, is refused there with CPython's ImportError (raised) while the same package is
  clean in an ordinary named sub-interpreter.
- The driver's isolated interpreters (Py_NewInterpreterFromConfig, own GIL, check_multi_interp_extensions): the
  same refusal; hello clean; two isolated interpreters serving at once on two threads that take two file locks in
  opposite orders deadlock: hung, with the stacks of both threads naming the app's line and the lock call.
- The free-threaded layout: no free-threaded build on this machine, so it is refused, in words.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cells import interpreters
from harness.model.outcome import Outcome
from harness.model.records import RunResult
from tests.conftest import DATA, harness, require_apache, runs_by_id, session_record

pytestmark = pytest.mark.live
REFUSED = "ImportError: module pyrex_pattern does not support loading in subinterpreters"


@pytest.fixture(autouse=True)
def _apache() -> None:
    require_apache()


def _run(results: Path, *args: str) -> dict[str, RunResult]:
    done = harness("run", "--no-controls", "--cycles", "1", "--results", str(results), *args, timeout=1800)
    assert done.returncode in (0, 1), done.stderr[-3000:]
    return runs_by_id(session_record(results))


@pytest.mark.parametrize("python", ["3.12", "3.13"])
def test_own_gil_runs_hello_and_refuses_a_single_phase_module(tmp_path: Path, python: str) -> None:
    runs = _run(tmp_path, "--scenario", "hello,pyrex_plain", "--layout", "own-gil,named", "--mechanism", "sigusr1",
                "--python", python, "--mod-wsgi", "6.1.1")  # fmt: skip
    assert runs["hello.sigusr1.own-gil"].verdict is Outcome.CLEAN, runs["hello.sigusr1.own-gil"].evidence
    refused = runs["pyrex_plain.sigusr1.own-gil"]
    assert refused.verdict is Outcome.RAISED and refused.first_exception == REFUSED, refused.evidence
    assert runs["pyrex_plain.sigusr1.named"].verdict is Outcome.CLEAN, "the same package, shared GIL: fine"


@pytest.mark.parametrize("python", ["3.12", "3.13"])
def test_isolated_driver_interpreters_refuse_it_too_and_run_hello(tmp_path: Path, python: str) -> None:
    runs = _run(tmp_path, "--scenario", "hello,pyrex_plain", "--layout", "isolated", "--mechanism",
                "interpreter-cycle", "--python", python)  # fmt: skip
    assert runs["hello.interpreter-cycle.isolated"].verdict is Outcome.CLEAN
    refused = runs["pyrex_plain.interpreter-cycle.isolated"]
    assert refused.verdict is Outcome.RAISED and refused.first_exception is not None, refused.evidence
    assert "does not support loading in subinterpreters" in refused.first_exception


def test_two_isolated_interpreters_at_once_deadlock_and_both_stacks_say_where(tmp_path: Path) -> None:
    runs = _run(tmp_path, "--scenario", str(DATA / "scenarios" / "parallel_deadlock"), "--layout", "isolated",
                "--mechanism", "interpreter-parallel,interpreter-cycle", "--python", "3.12")  # fmt: skip
    assert runs["parallel_deadlock.interpreter-cycle.isolated"].verdict is Outcome.CLEAN, "one at a time is fine"
    run = runs["parallel_deadlock.interpreter-parallel.isolated"]
    assert run.verdict is Outcome.HUNG and run.matches and run.hangs, run.evidence
    for dump in run.hangs:
        assert len(dump.app_frames) == 2 and all(f.startswith("app.wsgi:") for f in dump.app_frames), dump
        assert len(dump.native_frames) == 2 and all("flock" in f for f in dump.native_frames), dump


def test_the_free_threaded_layout_is_refused_without_a_free_threaded_build(tmp_path: Path) -> None:
    assert not any(p.free_threaded for p in interpreters.discover()), "a free-threaded build is here: test it"
    runs = _run(tmp_path, "--scenario", "hello", "--layout", "free-threaded", "--mechanism", "sigusr1")
    run = runs["hello.sigusr1.free-threaded"]
    assert run.verdict is Outcome.UNSUPPORTED and run.reason and "needs a free-threaded build" in run.reason
