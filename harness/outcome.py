"""The outcome classes, their order of severity, and how a run's verdict is drawn from its cycles."""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable


class Outcome(str, enum.Enum):
    """What one reload cycle (or a whole run) came to.

    The order of declaration is the order of severity: a run's verdict is its worst cycle.
    ``harness-error`` (a mechanism that did not fire, a probe the harness could not send) ranks
    above everything, so that a broken harness is never mistaken for a clean app.
    """

    CLEAN = "clean"
    WRONG_RESULT = "wrong-result"
    RAISED = "raised"
    HUNG = "hung"
    CRASHED = "crashed"
    START_FAILED = "start-failed"
    UNSUPPORTED = "unsupported"
    HARNESS_ERROR = "harness-error"

    @property
    def severity(self) -> int:
        return list(Outcome).index(self)

    def __str__(self) -> str:
        return self.value


OUTCOME_NAMES = tuple(o.value for o in Outcome)


def parse_outcome(text: str) -> Outcome:
    """Outcome from its name; ValueError names the valid ones."""
    try:
        return Outcome(text)
    except ValueError:
        raise ValueError(f"unknown outcome '{text}' (one of: {', '.join(OUTCOME_NAMES)})") from None


def worst(outcomes: Iterable[Outcome]) -> Outcome:
    """The most severe outcome; an empty run has not shown anything and is a harness error."""
    return max(outcomes, key=lambda o: o.severity, default=Outcome.HARNESS_ERROR)


def count(outcomes: Iterable[Outcome]) -> dict[str, int]:
    """Counts per outcome class, every class present (zeros included) so tables line up."""
    tally = Counter(o.value for o in outcomes)
    return {name: tally.get(name, 0) for name in OUTCOME_NAMES}
