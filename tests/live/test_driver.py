"""The embedding driver against real interpreters: a crash or a hang ends only that process and the next
cycle gets a fresh one, so N cycles are N trials; the clean controls on every interpreter found (and a
slot reported broken where CPython itself fails); a compile failure is unsupported; the generated
--package/--probe scenario; a process that ends without a signal is never clean."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.cells.build import PythonInfo, Unsupported
from harness.engines.driver import build
from harness.model.assessment import Standing, broken_slots, standing
from harness.model.outcome import Outcome
from harness.model.records import Phase
from tests.conftest import DATA, cycles, harness, require_apache, run_once, runs_by_id, session_record

pytestmark = pytest.mark.live
DRIVERS = "interpreter-cycle,interpreter-overlap,finalize-reinit"
PYTHONS = "2.7,3.8,/usr/bin/python3.11,3.12,3.13"


@pytest.fixture(autouse=True)
def _apache() -> None:
    require_apache()  # the harness finds an Apache for every session, driver runs included


def test_a_crash_ends_one_process_and_the_next_cycle_gets_a_fresh_one(tmp_path: Path) -> None:
    done = run_once(tmp_path, "segfault", "interpreter-cycle", cycles=4)
    assert done.returncode == 0, done.stderr[-2000:]
    (run,) = session_record(tmp_path).runs
    records = cycles(tmp_path, run.folder)
    assert run.trials == 4 and run.counts[Outcome.CRASHED] == 5  # the first load and every reload
    assert len({c.pid for c in run.crashes}) == 5, "a fresh driver process per crash"
    assert all(r.trial for r in records if r.phase is Phase.RELOAD)
    crash = run.crashes[0]
    assert crash.core and crash.backtrace is not None
    assert crash.backtrace.app_frame == "app.wsgi:7 in application", crash.backtrace
    assert crash.signature is not None and "_ctypes" in crash.signature and "SIGSEGV" in crash.signature
    assert [s.crashes for s in run.signatures] == [5], "five crashes, one signature"


def test_a_hang_is_killed_after_its_stacks_and_the_run_goes_on(tmp_path: Path) -> None:
    done = run_once(tmp_path, "block", "interpreter-overlap", cycles=2)
    assert done.returncode == 0, done.stderr[-2000:]
    (run,) = session_record(tmp_path).runs
    assert run.trials == 2 and run.counts[Outcome.HUNG] == 3
    assert all(h.app_frames and "app.wsgi:9" in h.app_frames[0] for h in run.hangs), run.hangs


def test_raise_names_the_exception_before_its_traceback(tmp_path: Path) -> None:
    done = run_once(tmp_path, "raise", "finalize-reinit", cycles=1)
    assert done.returncode == 0, done.stderr[-2000:]
    (run,) = session_record(tmp_path).runs
    assert run.first_exception is not None and "ControlError: raised on purpose" in run.first_exception


@pytest.fixture(scope="module")
def clean_everywhere(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The clean controls under the three driver mechanisms on every interpreter of the default matrix."""
    results = tmp_path_factory.mktemp("driver-matrix")
    done = harness("matrix", "--scenario", "hello,stdlib", "--mechanism", DRIVERS, "--cycles", "3",
                   "--python", PYTHONS, "--results", str(results), timeout=2400)  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    (folder,) = list(results.glob("matrix-*"))
    return folder


def test_hello_clean_on_every_python(clean_everywhere: Path) -> None:
    record = session_record(clean_everywhere.parent)
    assert len({r.cell.python for r in record.runs}) == 5
    hello = [r for r in record.runs if r.scenario == "hello"]
    assert len(hello) == 5 * 3 and {r.verdict for r in hello} == {Outcome.CLEAN}, [(r.folder, r.verdict) for r in hello]


def test_cpython_failure_marks_its_slot_broken(clean_everywhere: Path) -> None:
    """Where the stdlib control is not clean, CPython is at fault: that slot is broken, and nothing in it
    is blamed on a scenario. CPython 3.12.1 crashes on 'import decimal' after Py_Finalize + Py_Initialize."""
    record = session_record(clean_everywhere.parent)
    broken = broken_slots(record.runs)
    assert broken == list(record.broken)
    failing = [r for r in record.runs if r.verdict.is_failure]
    assert {r.slot for r in failing} == {(b.cell, b.mechanism, b.layout) for b in broken}
    assert all(standing(r, broken) is Standing.BROKEN for r in failing)
    stdlib = runs_by_id(record).get("py3.12.1-driver/stdlib.finalize-reinit.global")
    if stdlib is not None:  # the image's 3.12.1
        assert stdlib.verdict is Outcome.CRASHED and stdlib.crashes
        assert stdlib.crashes[0].signal in (6, 11)  # SIGSEGV, or an abort from a heap check
        app_frame = stdlib.crashes[0].backtrace.app_frame if stdlib.crashes[0].backtrace else None
        assert app_frame == "app.wsgi:4 in <module>", stdlib.crashes[0]  # import decimal


def test_driver_compile_failure_is_unsupported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An interpreter the driver cannot be linked against (here: its headers hidden) is 'unsupported' with
    the compiler's words, not a crash."""
    fake = tmp_path / "python"
    fake.write_text(
        '#!/bin/sh\necho \'{"INCLUDEPY": "/nonexistent", "LIBDIR": "/nonexistent", "LIBPL": "/x", '
        '"LDLIBRARY": "libpython9.9.so", "VERSION": "9.9", "Py_ENABLE_SHARED": 1, "LIBS": "", '
        '"SYSLIBS": "", "LINKFORSHARED": ""}\'\n'
    )
    fake.chmod(0o755)
    monkeypatch.setenv("MOD_WSGI_HARNESS_CACHE", str(tmp_path / "cache"))
    result = build.ensure_driver(PythonInfo("9.9.0", str(fake)))
    assert isinstance(result, Unsupported)
    assert "does not compile against Python 9.9.0" in result.reason and "Python.h" in result.log


def test_package_probe_clean_and_wrong(tmp_path: Path) -> None:
    """The generated scenario: a result that is the same in every interpreter is clean; one that changes with
    the process (the pid) is wrong-result once a reload replaces the process. The probe sees the environ."""
    probe = "import os, six; result = (six.PY3, os.getpid(), environ.get('PATH_INFO', '-'))"
    done = harness("run", "--package", "six==1.16.0", "--probe", probe, "--mechanism", "interpreter-cycle,sigusr1",
                   "--cycles", "2", "--no-controls", "--results", str(tmp_path))  # fmt: skip
    assert done.returncode == 1, done.stderr[-2000:]
    runs = runs_by_id(session_record(tmp_path))
    assert runs["package-six.interpreter-cycle.named"].verdict is Outcome.CLEAN
    wrong = runs["package-six.sigusr1.global"]
    assert wrong.verdict is Outcome.WRONG_RESULT
    assert any(re.search(r"result changed: \(True, \d+, '/'\), first \(True, \d+, '/'\)", line)
               for line in wrong.evidence[Outcome.WRONG_RESULT]), wrong.evidence  # fmt: skip


def test_package_probe_bad_input_is_one_line(tmp_path: Path) -> None:
    for args, message in (
        (["--probe", "import six"], "--probe needs --package"),
        (["--package", "six", "--probe", "x = ("], "--probe: not valid Python"),
        (["--package=--index-url=http://x"], "is not a pip requirement"),
        (["--package", "no-such-package-anywhere-4711==1.0"], "no-such-package-anywhere-4711"),
    ):
        done = harness("run", *args, "--mechanism", "interpreter-cycle", "--results", str(tmp_path))
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr
        errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and message in errors[0] and done.stderr.strip().endswith(errors[0]), done.stderr


def test_process_ending_without_a_signal_is_never_clean(tmp_path: Path) -> None:
    """An app that ends the driver's process with status 0 while loading: no probe answered, no signal, and
    the cycle is raised (the app ended it), not clean."""
    fixture = DATA / "scenarios" / "exits_at_load"
    done = run_once(tmp_path, str(fixture), "interpreter-cycle,finalize-reinit", cycles=2)
    assert done.returncode == 0, done.stderr[-2000:]
    for run in session_record(tmp_path).runs:
        assert run.verdict is Outcome.RAISED and run.load_outcome is Outcome.RAISED, run.evidence
        assert any("ended in cycle 0, step 'load': exit status 0" in line for line in run.evidence[Outcome.RAISED])
