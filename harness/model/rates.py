"""Rates over repeated reload cycles, each with a 95% Wilson score interval.

A crash can be nondeterministic (5 of 20 cycles on one version, 20 of 20 on another), so a run
reports how often each outcome class happened per reload that really happened, with an interval that
stays honest for small counts and for 0 or n successes, and labels the run deterministic or flaky.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from harness.model.outcome import Outcome

Z_95 = 1.959963984540054  # two-sided 95% normal quantile


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval for a binomial proportion; (0, 1) when nothing was observed."""
    if trials <= 0:
        return 0.0, 1.0
    if not 0 <= successes <= trials:
        raise ValueError(f"successes {successes} outside 0..{trials}")
    p = successes / trials
    z2 = z * z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / (1 + z2 / trials)
    # At p = 0 and p = 1 the bounds are exactly 0 and 1; say so rather than trust the rounding.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


@dataclass(frozen=True)
class Rate:
    outcome: Outcome
    count: int
    trials: int
    rate: float
    ci95: tuple[float, float]

    @classmethod
    def of(cls, outcome: Outcome, count: int, trials: int) -> Rate:
        low, high = wilson_interval(count, trials)
        return cls(outcome, count, trials, round(count / trials, 4) if trials else 0.0, (round(low, 4), round(high, 4)))

    def short(self) -> str:
        low, high = self.ci95
        return f"{self.outcome.value} {self.count}/{self.trials} ({low:.0%}-{high:.0%})"

    def __str__(self) -> str:
        low, high = self.ci95
        return f"{self.outcome.value} {self.count}/{self.trials} ({self.rate:.0%}, 95% CI {low:.0%}-{high:.0%})"


def stability(outcomes: Sequence[Outcome]) -> str:
    """'deterministic' when every reload came to the same outcome, 'flaky' when they differ,
    'single' when one reload cannot tell, 'none' when there were no reloads."""
    if not outcomes:
        return "none"
    if len(outcomes) == 1:
        return "single"
    return "deterministic" if len(set(outcomes)) == 1 else "flaky"


def reload_rates(outcomes: Sequence[Outcome]) -> list[Rate]:
    """Per outcome class that happened at least once: its rate over the reload trials."""
    trials = len(outcomes)
    return [Rate.of(o, outcomes.count(o), trials) for o in Outcome if o in outcomes]
