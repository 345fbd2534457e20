"""The Pyrex pattern and its descendants, under the driver mechanisms and under Apache, on every interpreter of
the default matrix: what really happens, recorded as it is and held to the scenarios' per-version
expectations (which say what was measured).

- pyrex_plain under interpreter-cycle: NameError (or a crash) on 2.7 and 3.13, clean on 3.8-3.12 where
  CPython runs PyInit again in each new interpreter; under interpreter-overlap: crashed everywhere, with a
  signature naming the fixture's own C function and shared object.
- The Pyramid apps over the fixtures: clean under every Apache mechanism with the global layout.
- shutdown_atexit: two application groups in one daemon; the atexit hook of the group destroyed second calls
  the fixture and the daemon dies at every shutdown; with --orphan-interpreter, clean.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.model.mechanisms import APACHE_MECHANISM_NAMES
from harness.model.outcome import Outcome
from harness.model.records import RunResult
from tests.conftest import harness, require_apache, runs_by_id, session_record
from tests.live.test_matrix import need_interpreters

pytestmark = pytest.mark.live
PYTHONS = "2.7,3.8,/usr/bin/python3.11,3.12,3.13"


@pytest.fixture(autouse=True)
def _apache() -> None:
    require_apache()


def _run(results: Path, *args: str, command: str = "run") -> dict[str, RunResult]:
    done = harness(command, "--no-controls", "--results", str(results), *args, timeout=2400)
    assert done.returncode in (0, 1), done.stderr[-3000:]
    return runs_by_id(session_record(results))


def test_pyrex_pattern_under_the_driver_on_every_python(tmp_path: Path) -> None:
    need_interpreters()
    runs = _run(tmp_path, "--scenario", "pyrex_plain", "--mechanism", "interpreter-cycle,interpreter-overlap",
                "--python", PYTHONS, "--mod-wsgi", "6.1.1", "--cycles", "3", command="matrix")  # fmt: skip
    assert len(runs) == 10
    for run in runs.values():
        assert run.matches, (run.folder, run.verdict, run.expected, run.evidence)
        assert run.load_outcome is Outcome.CLEAN, run.evidence  # the first interpreter is always right
        assert run.trials == 3, (run.folder, run.not_run)
        if run.mechanism == "interpreter-overlap":
            assert run.verdict is Outcome.CRASHED and run.counts[Outcome.CRASHED] >= 1
            signature = run.signatures[0].signature
            assert signature.startswith("__Pyx_GetName (pyrex_pattern.c:"), signature
            assert " in pyrex_pattern" in signature, signature  # the fixture's own shared object
            assert signature.endswith("| SIGSEGV"), run.signatures
        if run.cell.python.startswith("2.7") and run.mechanism == "interpreter-cycle":
            wrong = run.evidence.get(Outcome.WRONG_RESULT, ())
            assert not wrong or "NameError: VERSION" in wrong[0], wrong
            crashes = [c for c in run.crashes if c.backtrace]
            assert all(c.backtrace and c.backtrace.python_frame for c in crashes), "a 2.7 crash has a Python line"


def test_fixture_apps_clean_under_every_apache_mechanism(tmp_path: Path) -> None:
    runs = _run(tmp_path, "--python", "/usr/bin/python3.11", "--scenario", "pyramid_pyrex,pyramid_cython,pyrex_plain",
                "--mechanism", ",".join(APACHE_MECHANISM_NAMES), "--layout", "global", "--cycles", "2")  # fmt: skip
    assert len(runs) == 3 * len(APACHE_MECHANISM_NAMES)
    apaches_own = {k for k, r in runs.items() if r.verdict is Outcome.CRASHED and _apache_worker_at_stop(r)}
    others = {k: r.verdict for k, r in runs.items() if k not in apaches_own}
    assert set(others.values()) == {Outcome.CLEAN}, others
    assert len(apaches_own) <= 1, apaches_own  # measured once in about 40 such runs


def _apache_worker_at_stop(run: RunResult) -> bool:
    """Debian's httpd 2.4 event MPM: a worker process (no Python in it) now and then dies in APR while the
    server shuts down (apr_os_sock_get, called from mod_mpm_event). The harness says crashed, and its
    signature names APR; it is Apache's, not the app's, so the app's verdict here is whatever else ran."""
    return (
        run.counts.get(Outcome.CRASHED) == 1
        and run.stop_outcome is Outcome.CRASHED
        and all(
            c.backtrace is not None
            and c.backtrace.culprit is None
            and c.backtrace.python_frame is None
            and (c.signature or "").split(" | ")[0].endswith(("libapr-1.so.0", "mod_mpm_event.so"))
            for c in run.crashes
        )
    )


def test_shutdown_crash_in_two_groups_and_the_orphan_control(tmp_path: Path) -> None:
    runs = _run(tmp_path, "--python", "/usr/bin/python3.11", "--scenario", "shutdown_atexit", "--mechanism", "sigterm",
                "--layout", "two-groups,two-groups-orphan", "--cycles", "2")  # fmt: skip
    crashing, control = runs["shutdown_atexit.sigterm.two-groups"], runs["shutdown_atexit.sigterm.two-groups-orphan"]
    assert crashing.verdict is Outcome.CRASHED and crashing.matches, crashing.evidence
    assert crashing.load_outcome is Outcome.CLEAN, "requests are answered right; the crash comes at shutdown"
    assert crashing.stop_outcome is Outcome.CRASHED
    assert len(crashing.crashes) >= 2, crashing.crashes
    frames = [c.backtrace.app_frame or "" for c in crashing.crashes if c.backtrace]
    assert any(frame.startswith("app.wsgi:") for frame in frames), crashing.crashes
    assert control.verdict is Outcome.CLEAN and control.matches, control.evidence
