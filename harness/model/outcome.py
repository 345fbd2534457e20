"""The outcome classes and everything that depends on which one a cycle or run came to.

Every rule about an outcome lives here, in one table: its severity (a run's verdict is its worst
cycle), whether it says anything about the app at all, whether a JUnit report treats an expected one
as a known failure, and its colour and label in reports. No other module spells an outcome's name.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass


class Outcome(str, enum.Enum):
    """What one reload cycle (or a whole run) came to, in order of severity."""

    CLEAN = "clean"
    WRONG_RESULT = "wrong-result"
    RAISED = "raised"
    HUNG = "hung"
    CRASHED = "crashed"
    START_FAILED = "start-failed"
    UNSUPPORTED = "unsupported"
    HARNESS_ERROR = "harness-error"

    @property
    def policy(self) -> OutcomePolicy:
        return POLICY[self]

    @property
    def severity(self) -> int:
        return list(Outcome).index(self)

    @property
    def about_app(self) -> bool:
        """False when the outcome says nothing about the app (the cell or the harness was the limit)."""
        return self.policy.about_app

    @property
    def is_failure(self) -> bool:
        """The app misbehaved: anything but clean that says something about the app."""
        return self is not Outcome.CLEAN and self.about_app

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class OutcomePolicy:
    label: str  # one line for legends and tables
    colour: str  # report background
    about_app: bool  # counts for or against the app
    known_failure: bool  # when expected: a JUnit expected failure (xfail) rather than a plain pass


POLICY: dict[Outcome, OutcomePolicy] = {
    Outcome.CLEAN: OutcomePolicy("every request answered right", "#2e7d32", True, False),
    Outcome.WRONG_RESULT: OutcomePolicy("an answer differed from the expected one", "#f9a825", True, True),
    Outcome.RAISED: OutcomePolicy("a Python exception, a 5xx or a dropped request", "#ef6c00", True, True),
    Outcome.HUNG: OutcomePolicy("no answer within the deadline", "#6a1b9a", True, True),
    Outcome.CRASHED: OutcomePolicy("a process died by a signal", "#c62828", True, True),
    Outcome.START_FAILED: OutcomePolicy("the server or a daemon could not start", "#455a64", True, True),
    Outcome.UNSUPPORTED: OutcomePolicy("the cell cannot run this (never a crash)", "#bdbdbd", False, False),
    Outcome.HARNESS_ERROR: OutcomePolicy("the harness could not observe the app", "#212121", False, False),
}
BROKEN_COLOUR = "#8d6e63"  # a slot whose clean control failed: nothing there is blamed on the scenario
INTERRUPTED_COLOUR = "#90a4ae"

OUTCOME_NAMES = tuple(o.value for o in Outcome)


def parse_outcome(text: str) -> Outcome:
    """Outcome from its name; ValueError names the valid ones."""
    try:
        return Outcome(text)
    except ValueError:
        raise ValueError(f"unknown outcome '{text}' (one of: {', '.join(OUTCOME_NAMES)})") from None


def worst(outcomes: Iterable[Outcome]) -> Outcome:
    """The most severe outcome; nothing observed is a harness error (never clean)."""
    return max(outcomes, key=lambda o: o.severity, default=Outcome.HARNESS_ERROR)


def count(outcomes: Iterable[Outcome]) -> dict[Outcome, int]:
    """Counts per outcome class, every class present (zeros included) so tables line up."""
    tally = Counter(outcomes)
    return {outcome: tally.get(outcome, 0) for outcome in Outcome}
