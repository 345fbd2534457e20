"""Wilson intervals against published values, and the deterministic/flaky label."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.model.outcome import Outcome
from harness.model.rates import Rate, reload_rates, stability, wilson_interval


@pytest.mark.parametrize(
    ("successes", "trials", "low", "high"),
    [
        # Reference values: Newcombe (1998), Statistics in Medicine 17:857, table I, method 3.
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
        # n = 3, all crashed: the interval an unlucky flaky crash could still hide in.
        (3, 3, 0.4385, 1.0),
    ],
)
def test_wilson_matches_published_intervals(successes: int, trials: int, low: float, high: float) -> None:
    got_low, got_high = wilson_interval(successes, trials)
    assert got_low == pytest.approx(low, abs=6e-4)
    assert got_high == pytest.approx(high, abs=6e-4)


@given(st.integers(min_value=1, max_value=500).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_interval_contains_the_observed_rate(pair: tuple[int, int]) -> None:
    successes, trials = pair
    low, high = wilson_interval(successes, trials)
    assert 0.0 <= low <= successes / trials <= high <= 1.0


def test_no_trials_says_nothing() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(4, 3)


def test_a_rate_over_no_trials_claims_nothing() -> None:
    """A run stopped before any reload has a rate of 0 with the widest interval, not a division by zero."""
    rate = Rate.of(Outcome.CRASHED, 0, 0)
    assert (rate.rate, rate.ci95) == (0.0, (0.0, 1.0))


def test_rate_of_rounds_and_carries_its_interval() -> None:
    rate = Rate.of(Outcome.CRASHED, 1, 3)
    assert rate.rate == 0.3333 and rate.ci95 == (round(wilson_interval(1, 3)[0], 4), round(wilson_interval(1, 3)[1], 4))
    assert rate.short() == "crashed 1/3 (6%-79%)"


def test_stability_labels() -> None:
    crash, clean = Outcome.CRASHED, Outcome.CLEAN
    assert stability([crash, crash, crash]) == "deterministic"
    assert stability([crash, clean, crash]) == "flaky"
    assert stability([crash]) == "single"
    assert stability([]) == "none"


def test_rates_cover_each_class_seen() -> None:
    rates = {r.outcome: r for r in reload_rates([Outcome.CRASHED, Outcome.CLEAN, Outcome.CRASHED, Outcome.CRASHED])}
    assert set(rates) == {Outcome.CRASHED, Outcome.CLEAN}
    assert (rates[Outcome.CRASHED].count, rates[Outcome.CRASHED].trials) == (3, 4)
    assert str(rates[Outcome.CLEAN]).startswith("clean 1/4 (25%")


def test_rates_come_in_severity_order() -> None:
    """Tables list classes in one order everywhere: the outcome order, not the order first seen."""
    rates = reload_rates([Outcome.HUNG, Outcome.CLEAN, Outcome.RAISED])
    assert [r.outcome for r in rates] == [Outcome.CLEAN, Outcome.RAISED, Outcome.HUNG]
