"""Every kind of contradiction between a run's summary and its cycles is found, and a consistent run
has none: a summary that contradicts itself would mislead whoever gates CI on it."""

from __future__ import annotations

import argparse
from dataclasses import replace

import pytest

from harness.commands import check as check_command
from harness.model import invariants
from harness.model.invariants import InvariantError, violations
from harness.model.outcome import Outcome
from harness.model.rates import Rate
from harness.model.records import CrashEvent, CycleRecord, DeathSource, RunResult
from tests.unit import builders
from tests.unit.cli import cli

C, X, H = Outcome.CLEAN, Outcome.CRASHED, Outcome.HUNG


@pytest.fixture
def flaky() -> tuple[RunResult, list[CycleRecord]]:
    """load clean, reloads clean/crashed/hung/clean, stop clean: crashed, where clean was expected."""
    return builders.run("alternate", reloads=(C, X, H, C), expected=C)


@pytest.mark.parametrize(
    "made",
    [
        builders.run(),
        builders.run("segfault", reloads=(X, X, X), expected=X),
        builders.run("hello", setup=Outcome.UNSUPPORTED, expected=C),
        builders.run("hello", reloads=(C, Outcome.HARNESS_ERROR, C)),
        builders.run("block", reloads=(H,), stop=X, expected=None),
        builders.run("pylons_basic", reloads=(Outcome.RAISED, X), expected=(Outcome.RAISED, X)),
        builders.run("hello", reloads=(C, C), interrupted=True),
    ],
    ids=["clean", "crashed", "unsupported", "no-trial", "no-expectation", "either-of-two", "interrupted"],
)
def test_a_consistent_run_has_no_violations(made: tuple[RunResult, list[CycleRecord]]) -> None:
    result, cycles = made
    assert violations(result, cycles) == []
    invariants.check(result, cycles, "results/x")  # does not raise


def test_the_fixture_is_consistent(flaky: tuple[RunResult, list[CycleRecord]]) -> None:
    result, cycles = flaky
    assert violations(result, cycles) == [] and result.verdict is X and not result.matches


def test_a_count_that_is_not_the_cycles(flaky: tuple[RunResult, list[CycleRecord]]) -> None:
    result, cycles = flaky
    counts = {**result.counts, X: 2}
    assert violations(replace(result, counts=counts), cycles) == ["counts[crashed] is 2, cycles show 1"]
    missing = {o: n for o, n in result.counts.items() if o is not C}
    assert violations(replace(result, counts=missing), cycles) == ["counts[clean] is 0, cycles show 4"]


def test_a_number_of_cycles_that_is_not_the_records(flaky: tuple[RunResult, list[CycleRecord]]) -> None:
    result, cycles = flaky
    found = violations(result, cycles[:-1])
    assert found[0] == "cycles_recorded 6, but 5 cycle records" and "counts[clean] is 4, cycles show 3" in found


def test_a_verdict_that_is_not_the_worst_cycle(flaky: tuple[RunResult, list[CycleRecord]]) -> None:
    result, cycles = flaky
    assert violations(replace(result, verdict=H), cycles) == ["verdict hung is not the worst cycle (crashed)"]


def test_a_crash_event_in_a_cycle_that_did_not_crash(flaky: tuple[RunResult, list[CycleRecord]]) -> None:
    result, cycles = flaky
    stray = CrashEvent(3, 4242, 11, (DeathSource.LOG,))
    assert violations(replace(result, crashes=(*result.crashes, stray)), cycles) == [
        "crash of pid 4242 belongs to cycle 3, which is hung, not crashed"
    ]
    lost = CrashEvent(9, 4343, 11, (DeathSource.CORE,))
    assert violations(replace(result, crashes=(lost,)), cycles) == [
        "crash of pid 4343 belongs to cycle 9, which is missing, not crashed"
    ]


def test_trials_that_did_not_happen(flaky: tuple[RunResult, list[CycleRecord]]) -> None:
    result, cycles = flaky
    assert violations(replace(result, trials=5), cycles) == ["trials 5, but 4 reload cycles really happened"]
    no_trial = replace(cycles[2], trial=False, why_not_trial="the mechanism did not fire")
    found = violations(result, [*cycles[:2], no_trial, *cycles[3:]])
    assert "trials 4, but 3 reload cycles really happened" in found
    assert "rate of crashed is over 4 trials, not 3" in found


def test_rates_over_other_trials_or_counts(flaky: tuple[RunResult, list[CycleRecord]]) -> None:
    result, cycles = flaky
    wrong_base = tuple(Rate.of(r.outcome, r.count, 5) for r in result.rates)
    assert violations(replace(result, rates=wrong_base), cycles) == [
        f"rate of {r.outcome.value} is over 5 trials, not 4" for r in result.rates
    ]
    dropped = tuple(r for r in result.rates if r.outcome is not H)
    assert violations(replace(result, rates=dropped), cycles) == ["rates count 3 reloads, not 4"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"matches": True}, "matches is True for verdict crashed, expected clean"),
        ({"expected": (X,)}, "matches is False for verdict crashed, expected crashed"),
        ({"expected": (), "matches": True}, "matches is True for verdict crashed, expected none"),
        ({"expected": (Outcome.RAISED, X)}, "matches is False for verdict crashed, expected raised or crashed"),
        (
            {"expected": (X,), "matches": True, "interrupted": True},
            "matches is True for verdict crashed, expected crashed",
        ),
    ],
    ids=[
        "matches-wrong-verdict",
        "misses-right-verdict",
        "matches-no-expectation",
        "misses-one-of-two",
        "matches-interrupted",
    ],
)
def test_matches_must_follow_verdict_expectation_and_interruption(
    flaky: tuple[RunResult, list[CycleRecord]], changes: dict[str, object], message: str
) -> None:
    result, cycles = flaky
    assert violations(replace(result, **changes), cycles) == [message]  # type: ignore[arg-type]


def test_several_contradictions_are_all_said_in_one_line(flaky: tuple[RunResult, list[CycleRecord]]) -> None:
    result, cycles = flaky
    bad = replace(result, verdict=C, trials=9)
    assert violations(bad, cycles) == [
        "verdict clean is not the worst cycle (crashed)",
        "trials 9, but 4 reload cycles really happened",
        "matches is False for verdict clean, expected clean",
    ]
    with pytest.raises(InvariantError) as caught:
        invariants.check(bad, cycles, "results/s/alternate.sigusr1.global")
    message = str(caught.value)
    assert message.startswith("results/s/alternate.sigusr1.global: the result contradicts itself (")
    assert message.endswith("; this is a harness bug") and "\n" not in message


def test_the_cli_exits_3_on_a_result_that_contradicts_itself(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], flaky: tuple[RunResult, list[CycleRecord]]
) -> None:
    """A harness bug is not the user's bad input (2) nor the app's failure (1)."""
    result, cycles = flaky

    def contradicts(args: argparse.Namespace) -> int:
        invariants.check(replace(result, trials=9), cycles, "results/s/run")
        return 0

    monkeypatch.setattr(check_command, "run", contradicts)
    done = cli(capsys, "check", "anything")
    assert done.status == 3 and done.stderr.startswith("internal error: results/s/run: the result contradicts itself")
    assert done.stderr.count("\n") == 1


def test_an_apache_that_is_not_the_cells(flaky: tuple[RunResult, list[CycleRecord]]) -> None:
    # A cell built from a wheel compiled for another Apache ran that Apache: the result must not name the cell's.
    result, cycles = flaky
    cell = replace(result.cell, apache="2.4.69", apache_origin="bundled:2.4.69")
    ran = replace(result, cell=cell, engine=replace(result.engine, apache="2.4.71"))
    assert violations(ran, cycles) == ["Apache 2.4.71 ran, but the cell is recorded as Apache 2.4.69 (bundled:2.4.69)"]
    same = replace(result, cell=cell, engine=replace(result.engine, apache="2.4.69"))
    assert violations(same, cycles) == []
