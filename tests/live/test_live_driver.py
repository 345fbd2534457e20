"""The embedding driver's mechanisms (interpreter-cycle, finalize-reinit) against real interpreters:
every outcome class produced by a control, crash evidence from a real core, the clean controls on
every interpreter of the default matrix (and a cell reported broken where CPython itself fails), a
compile failure reported as unsupported, and the generated --package/--probe scenario."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import harness, require_apache, run_once, runs_by_id, session_summary

pytestmark = pytest.mark.live
DRIVERS = "interpreter-cycle,interpreter-overlap,finalize-reinit"
PYTHONS = "2.7,3.8,/usr/bin/python3.11,3.12,3.13"


@pytest.fixture(autouse=True)
def _apache() -> None:
    require_apache()  # a cell (mod_wsgi built against Apache) is what every run, driver or not, belongs to


@pytest.fixture(scope="module")
def controls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    results = tmp_path_factory.mktemp("driver-controls")
    done = run_once(results, "hello,segfault,raise,wrong,block", DRIVERS, cycles=3)
    assert done.returncode == 0, done.stderr[-3000:]
    return runs_by_id(session_summary(results)) | {"_folder": {"path": str(next(results.iterdir()))}}


@pytest.mark.parametrize(
    "mechanism,layout",
    [("interpreter-cycle", "named"), ("interpreter-overlap", "named"), ("finalize-reinit", "global")],
)
@pytest.mark.parametrize(
    "scenario,verdict", [("hello", "clean"), ("segfault", "crashed"), ("raise", "raised"), ("wrong", "wrong-result"),
                         ("block", "hung")]
)  # fmt: skip
def test_control_verdicts(controls: dict[str, Any], scenario: str, verdict: str, mechanism: str, layout: str) -> None:
    run = controls[f"{scenario}.{mechanism}.{layout}"]
    assert run["verdict"] == verdict, run["evidence"]
    assert mechanism in run["server"]["driver_command"]


def test_hello_reloads_are_real(controls: dict[str, Any]) -> None:
    """Every reload made a new interpreter (or re-initialized Python) in the same process."""
    folder = Path(controls["_folder"]["path"])
    for run_id, step in (
        ("hello.interpreter-cycle.named", "new-interpreter"),
        ("hello.finalize-reinit.global", "initialize"),
    ):
        records = [json.loads(line) for line in (folder / run_id / "cycles.jsonl").read_text().splitlines()]
        assert [r["phase"] for r in records] == ["load", "reload", "reload", "reload", "stop"]
        pids = {pid for r in records for pid in r["daemon_pids_before"]}
        assert len(pids) == 1, "one process for all cycles"
        for record in records[1:4]:
            assert record["confirmation"]["fired"] == "confirmed"
            assert step in record["confirmation"]["detail"]
        log = (folder / run_id / "error_log").read_text()
        assert log.count(f": {step}\n") == 4  # the first load and three reloads


def test_segfault_has_core_and_app_frame(controls: dict[str, Any]) -> None:
    run = controls["segfault.interpreter-cycle.named"]
    (crash,) = run["crashes"]
    assert crash["signal"] == 11 and crash["cycle"] == 0
    assert crash["core"], crash
    assert crash["backtrace"]["app_frame"] == "app.wsgi:7 in application", crash["backtrace"]
    assert run["cycles_recorded"] == 1, "a crash ends the driver's process: nothing after it"


def test_block_dumped_before_kill(controls: dict[str, Any]) -> None:
    run = controls["block.interpreter-cycle.named"]
    (hang,) = run["hangs"]
    assert hang["app_frames"] and "app.wsgi:9" in hang["app_frames"][0], hang
    assert any("no answer within" in line for line in run["evidence"]["hung"]), run["evidence"]


def test_raise_names_the_exception(controls: dict[str, Any]) -> None:
    evidence = controls["raise.finalize-reinit.global"]["evidence"]["raised"]
    assert any("ControlError" in line for line in evidence), evidence


@pytest.fixture(scope="module")
def clean_everywhere(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The clean controls under both driver mechanisms on every interpreter of the default matrix."""
    from tests.test_live_matrix import _need_interpreters

    _need_interpreters()
    results = tmp_path_factory.mktemp("driver-matrix")
    done = harness("matrix", "--scenario", "hello,stdlib", "--mechanism", DRIVERS, "--cycles", "3",
                   "--python", PYTHONS, "--mod-wsgi", "4.9.4", "--results", str(results), timeout=2400)  # fmt: skip
    assert done.returncode in (0, 1), done.stderr[-3000:]
    (folder,) = list(results.glob("matrix-*"))
    return folder


def test_hello_clean_on_every_python(clean_everywhere: Path) -> None:
    record = json.loads((clean_everywhere / "matrix.json").read_text())
    assert len(record["cells"]) == 5
    for label in record["cells"]:
        summary = json.loads((clean_everywhere / label / "summary.json").read_text())
        verdicts = {r["run"]: r["verdict"] for r in summary["runs"]}
        assert verdicts["hello.interpreter-cycle.named"] == "clean", (label, verdicts)
        assert verdicts["hello.finalize-reinit.global"] == "clean", (label, verdicts)
        assert verdicts["hello.interpreter-overlap.named"] == "clean", (label, verdicts)


def test_cpython_failure_marks_the_cell_broken(clean_everywhere: Path) -> None:
    """Where the stdlib control is not clean, CPython is at fault: the cell says broken and names the run.
    CPython 3.12.1 crashes on 'import decimal' after Py_Finalize + Py_Initialize."""
    record = json.loads((clean_everywhere / "matrix.json").read_text())
    for label, cell in record["cells"].items():
        summary = json.loads((clean_everywhere / label / "summary.json").read_text())
        bad = [r for r in summary["runs"] if r["verdict"] != "clean"]
        if bad:
            assert cell["status"] == "broken", (label, cell)
            assert all(r["run"] in cell["reason"] for r in bad)
        else:
            assert cell["status"] == "ok", (label, cell)
        if label.startswith("py3.12.1-"):
            (crash,) = next(r for r in bad if r["run"] == "stdlib.finalize-reinit.global")["crashes"]
            assert crash["cycle"] == 1 and crash["signal"] in (6, 11)  # SIGSEGV, or an abort from a check
            assert crash["backtrace"]["app_frame"] == "app.wsgi:4 in <module>", crash["backtrace"]  # import decimal


def test_driver_compile_failure_is_unsupported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An interpreter the driver cannot be linked against (here: its headers hidden) is 'unsupported'
    with the compiler's words, not a crash."""
    from harness import driver
    from harness.cell import PythonInfo, Unsupported

    fake = tmp_path / "python"
    fake.write_text(
        '#!/bin/sh\necho \'{"INCLUDEPY": "/nonexistent", "LIBDIR": "/nonexistent", "LIBPL": "/x", '
        '"LDLIBRARY": "libpython9.9.so", "VERSION": "9.9", "Py_ENABLE_SHARED": 1, "LIBS": "", '
        '"SYSLIBS": "", "LINKFORSHARED": ""}\'\n'
    )
    fake.chmod(0o755)
    monkeypatch.setenv("MOD_WSGI_HARNESS_CACHE", str(tmp_path / "cache"))
    result = driver.ensure_driver(PythonInfo("9.9.0", str(fake)))
    assert isinstance(result, Unsupported)
    assert "does not compile against Python 9.9.0" in result.reason and "Python.h" in result.log


def test_package_probe_clean_and_wrong(tmp_path: Path) -> None:
    """The generated scenario: a result that is the same in every interpreter is clean; one that
    changes with the process (the pid) is wrong-result once a reload replaces the process."""
    probe = "import os, six; result = (six.PY3, os.getpid())"
    done = harness("run", "--package", "six==1.16.0", "--probe", probe, "--mechanism", "interpreter-cycle,sigusr1",
                   "--cycles", "2", "--results", str(tmp_path))  # fmt: skip
    assert done.returncode == 1, done.stderr[-2000:]
    runs = runs_by_id(session_summary(tmp_path))
    assert runs["package-six-1.16.0.interpreter-cycle.named"]["verdict"] == "clean"
    wrong = runs["package-six-1.16.0.sigusr1.global"]
    assert wrong["verdict"] == "wrong-result"
    assert any(re.search(r"result changed: \(True, \d+\), first \(True, \d+\)", line)
               for line in wrong["evidence"]["wrong-result"]), wrong["evidence"]  # fmt: skip


def test_package_probe_bad_input_is_one_line(tmp_path: Path) -> None:
    for args, message in (
        (["--probe", "import six"], "--probe needs --package"),
        (["--package", "six", "--probe", "x = ("], "--probe: not valid Python"),
        (["--package=--index-url=http://x"], "is not a pip requirement"),
    ):
        done = harness("run", *args, "--results", str(tmp_path))
        assert done.returncode == 2, done.stderr
        assert message in done.stderr and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_process_ending_without_a_signal_is_never_clean(tmp_path: Path) -> None:
    """An app that ends the driver's process with status 0 while loading: no probe answered, no signal,
    and the cycle is raised (the app ended it), not clean."""
    fixture = Path(__file__).parent / "data" / "scenarios" / "exits_at_load"
    done = run_once(tmp_path, str(fixture), "interpreter-cycle,finalize-reinit", cycles=2)
    assert done.returncode == 0, done.stderr[-2000:]
    for run in runs_by_id(session_summary(tmp_path)).values():
        assert run["verdict"] == "raised" and run["load_outcome"] == "raised", run["evidence"]
        assert any("driver ended in step 'load': exit status 0" in line for line in run["evidence"]["raised"])
