"""Where each run stands (passed, failed, broken, n/a, interrupted) and the exit status that follows:
a slot whose clean control failed blames nothing on its scenarios, and only a failure elsewhere fails
the session."""

from __future__ import annotations

import contextlib
import io
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.commands.common import conclude
from harness.model.assessment import (
    Standing,
    broken_slots,
    evidence_lines,
    expected_verdict,
    failure_message,
    is_clean_control,
    standing,
)
from harness.model.outcome import Outcome
from harness.model.records import BaselineNote, BrokenSlot, RunResult, SessionRecord
from tests.unit.builders import CELL, OTHER_CELL, result

C, X = Outcome.CLEAN, Outcome.CRASHED
SESSION = Path("results/20261129T080000")


def session(*runs: RunResult) -> SessionRecord:
    """A session record as the session writes it: its broken slots worked out from its runs."""
    return SessionRecord("20261129T080000", tuple(runs), broken=tuple(broken_slots(runs)), started=1.0)


def concluded(record: SessionRecord) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = conclude(SESSION, record)
    return status, out.getvalue()


# sigusr1/global in CELL: hello crashed there, so the slot is broken
BROKEN_HELLO = result("hello", verdict=X, expected=C)
SAME_SLOT_FAIL = result("pyramid_pyrex", verdict=Outcome.RAISED, expected=C)
SAME_SLOT_PASS = result("segfault", verdict=X, expected=X)
OTHER_MECHANISM_FAIL = result("pyramid_pyrex", "script-touch", verdict=Outcome.RAISED, expected=C)
OTHER_LAYOUT_FAIL = result("pyramid_pyrex", layout="named", verdict=Outcome.RAISED, expected=C)
OTHER_CELL_FAIL = result("pyramid_pyrex", verdict=Outcome.RAISED, expected=C, cell=OTHER_CELL,
                         folder=f"{OTHER_CELL.label}/pyramid_pyrex.sigusr1.global")  # fmt: skip


def test_a_clean_control_that_failed_breaks_its_slot_and_only_it() -> None:
    runs = [BROKEN_HELLO, SAME_SLOT_FAIL, SAME_SLOT_PASS, OTHER_MECHANISM_FAIL, OTHER_LAYOUT_FAIL, OTHER_CELL_FAIL]
    assert broken_slots(runs) == [
        BrokenSlot(CELL.label, "sigusr1", "global", "clean control hello was crashed", ("hello.sigusr1.global",))
    ]


def test_every_run_in_a_broken_slot_stands_broken() -> None:
    broken = broken_slots([BROKEN_HELLO])
    assert [standing(r, broken) for r in (BROKEN_HELLO, SAME_SLOT_FAIL, SAME_SLOT_PASS)] == [Standing.BROKEN] * 3


def test_a_failure_in_another_slot_is_failed() -> None:
    broken = broken_slots([BROKEN_HELLO])
    for run in (OTHER_MECHANISM_FAIL, OTHER_LAYOUT_FAIL, OTHER_CELL_FAIL):
        assert standing(run, broken) is Standing.FAILED, run.slot
    assert standing(SAME_SLOT_FAIL) is Standing.FAILED  # the same run where no control failed


def test_the_stdlib_control_breaks_a_slot_too_and_both_are_named() -> None:
    stdlib = result("stdlib", "finalize-reinit", verdict=X, expected=C)
    hello = result("hello", "finalize-reinit", verdict=Outcome.RAISED, expected=C)
    (slot,) = broken_slots([stdlib, hello])
    assert slot.reason == "clean control stdlib was crashed; clean control hello was raised"
    assert slot.controls == ("stdlib.finalize-reinit.global", "hello.finalize-reinit.global")


@pytest.mark.parametrize(
    "run",
    [
        result("hello", verdict=C, expected=C),  # the control is clean
        result("hello", verdict=Outcome.UNSUPPORTED, expected=C),  # says nothing about the cell's health
        result("hello", verdict=Outcome.HARNESS_ERROR, expected=C),
        result("hello", verdict=X, expected=C, interrupted=True),  # stopped: says nothing
        result("hello", verdict=X, expected=C, control=False),  # a scenario named hello, not the control
        result("segfault", verdict=C, expected=X),  # a control, but not a clean one
    ],
    ids=["clean", "unsupported", "harness-error", "interrupted", "not-a-control", "crash-control"],
)
def test_what_does_not_break_a_slot(run: RunResult) -> None:
    assert broken_slots([run]) == []


def test_only_controls_expected_clean_are_clean_controls() -> None:
    assert is_clean_control(result("hello")) and is_clean_control(result("stdlib"))
    assert not is_clean_control(result("segfault", verdict=X, expected=X))
    assert not is_clean_control(result("hello", control=False))


def test_unsupported_is_not_applicable_unless_expected() -> None:
    unsupported = result("pylons_basic", verdict=Outcome.UNSUPPORTED, expected=C)
    assert standing(unsupported) is Standing.NOT_APPLICABLE
    assert standing(unsupported, broken_slots([BROKEN_HELLO])) is Standing.NOT_APPLICABLE
    assert standing(result("x", verdict=Outcome.UNSUPPORTED, expected=Outcome.UNSUPPORTED)) is Standing.PASSED


def test_interrupted_is_interrupted_even_in_a_broken_slot() -> None:
    stopped = result("pyramid_pyrex", verdict=Outcome.HARNESS_ERROR, expected=C, interrupted=True)
    assert standing(stopped) is Standing.INTERRUPTED
    assert standing(stopped, broken_slots([BROKEN_HELLO])) is Standing.INTERRUPTED


def test_a_baseline_decides_where_it_has_a_verdict() -> None:
    """Held to the baseline: a run that misses the scenario's expectation but keeps the baseline's passes."""
    kept = replace(SAME_SLOT_FAIL, baseline=BaselineNote("base.toml", Outcome.RAISED, None))
    moved = replace(SAME_SLOT_PASS, baseline=BaselineNote("base.toml", C, "regression"))
    new = replace(SAME_SLOT_PASS, baseline=BaselineNote("base.toml", None, "new"))
    assert [standing(r) for r in (kept, moved, new)] == [Standing.PASSED, Standing.FAILED, Standing.PASSED]
    assert expected_verdict(kept) == (Outcome.RAISED,) and expected_verdict(new) == (X,)
    assert failure_message(moved) == "regression: verdict crashed, baseline clean (base.toml)"
    assert failure_message(SAME_SLOT_FAIL) == "verdict raised, expected clean"
    assert failure_message(result("x", verdict=X, expected=None)) == "verdict crashed, expected none"
    either = result("pylons_basic", "interpreter-cycle", "named", verdict=C, expected=(Outcome.RAISED, X))
    assert failure_message(either) == "verdict clean, expected raised or crashed"


def test_evidence_starts_with_the_reason_then_the_worst_outcome() -> None:
    run = replace(
        result("x", verdict=X),
        reason="the Apache parent exited",
        evidence={Outcome.RAISED: ("raised line", "shared line"), X: ("crash line", "shared line")},
    )
    assert evidence_lines(run) == ["the Apache parent exited", "crash line", "shared line", "raised line"]
    assert evidence_lines(run, limit=2) == ["the Apache parent exited", "crash line"]


def test_conclude_is_0_when_the_only_failures_are_in_a_broken_slot() -> None:
    status, out = concluded(session(BROKEN_HELLO, SAME_SLOT_FAIL, SAME_SLOT_PASS))
    assert status == 0
    assert out.splitlines()[0] == f"results: {SESSION}  (0/3 as expected)"
    assert f"  broken slot {CELL.label} / sigusr1 / global: clean control hello was crashed" in out
    assert "FAIL" not in out


def test_conclude_is_1_for_a_failure_outside_broken_slots_and_names_it() -> None:
    status, out = concluded(session(BROKEN_HELLO, SAME_SLOT_FAIL, OTHER_MECHANISM_FAIL))
    assert status == 1
    assert "  FAIL pyramid_pyrex.script-touch.global: raised, expected clean\n" in out
    assert "FAIL pyramid_pyrex.sigusr1.global" not in out  # the broken slot's failure is not listed


def test_conclude_names_the_crash_signature_of_a_failure() -> None:
    crashed = result("pyramid_pyrex", verdict=X, expected=C)
    status, out = concluded(session(crashed))
    assert (
        status == 1 and "  FAIL pyramid_pyrex.sigusr1.global: crashed, expected clean [strlen in libc | SIGSEGV]" in out
    )


def test_conclude_is_0_for_passes_unsupported_and_interrupted_runs() -> None:
    runs = (
        result("hello"),
        result("segfault", verdict=X, expected=X),
        result("pylons_basic", verdict=Outcome.UNSUPPORTED, expected=C),
        result("pyramid_pyrex", verdict=Outcome.HARNESS_ERROR, expected=C, interrupted=True),
    )
    status, out = concluded(session(*runs))
    assert status == 0 and out.splitlines()[0] == f"results: {SESSION}  (2/4 as expected)"
    assert "  1 run(s) unsupported in their cell (not failures): set-up: unsupported" in out


RUNS = st.builds(
    lambda scenario, mechanism, verdict, expected, interrupted: result(
        scenario, mechanism, verdict=verdict, expected=expected, interrupted=interrupted
    ),
    st.sampled_from(["hello", "stdlib", "segfault", "pyramid_pyrex"]),
    st.sampled_from(["sigusr1", "script-touch", "finalize-reinit"]),
    st.sampled_from(list(Outcome)),
    st.sampled_from([C, X, Outcome.RAISED, None, (Outcome.RAISED, X), (C, Outcome.UNSUPPORTED)]),
    st.booleans(),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(RUNS, max_size=8, unique_by=lambda r: r.run))
def test_conclude_fails_exactly_when_a_run_outside_broken_slots_missed_its_expectation(runs: list[RunResult]) -> None:
    """The rule written out independently of `standing`: which slots a failed clean control broke, and
    which finished runs elsewhere missed their expectation (unsupported ones excepted)."""
    broken = {r.slot for r in runs if r.control and r.expected == (C,) and r.verdict.is_failure and not r.interrupted}
    missed = [
        r
        for r in runs
        if r.slot not in broken
        and not r.interrupted
        and not (r.verdict is Outcome.UNSUPPORTED and Outcome.UNSUPPORTED not in r.expected)
        and r.verdict not in r.expected
    ]
    status, out = concluded(session(*runs))
    assert status == (1 if missed else 0)
    assert sorted(line.split(":")[0] for line in out.splitlines() if line.startswith("  FAIL ")) == sorted(
        f"  FAIL {r.folder}" for r in missed
    )
