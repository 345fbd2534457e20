"""What a reproduction compares with the run it reproduces: the verdict, the crash signatures and the
exception signatures, each said in one line when it differs."""

from __future__ import annotations

from dataclasses import replace

from harness.model.outcome import Outcome
from harness.model.records import ExceptionCount, SignatureCount
from harness.output.bundle import same
from harness.run.judge import exception_signature
from harness.run.runner import exception_counts
from tests.unit.builders import result, run

SCANNER = "scanner_traverse (_speedups.c:2248) in _speedups.so | SIGSEGV"


def test_the_same_verdict_and_signatures_reproduce() -> None:
    before = replace(result(verdict=Outcome.CRASHED), signatures=(SignatureCount(SCANNER, 3, (1, 2, 3)),))
    now = replace(result(verdict=Outcome.CRASHED), signatures=(SignatureCount(SCANNER, 1, (2,)),))
    assert same(before, now) == [], "how often it crashes is not the signature"


def test_a_different_verdict_and_a_different_signature_are_both_said() -> None:
    before = replace(result(verdict=Outcome.CRASHED), signatures=(SignatureCount(SCANNER, 3, (1, 2, 3)),))
    now = result(verdict=Outcome.RAISED)
    assert same(before, now) == [
        "verdict differs: crashed before, raised now",
        f"signature differs: {SCANNER} before, none now",
    ]


def test_a_new_exception_beside_the_same_crash_differs() -> None:
    """Unblocking a speedups module that raises, in a run that crashes in another one: same worst verdict,
    same crash signature, but not the same failure."""
    crash = (SignatureCount(SCANNER, 1, (2,)),)
    before = replace(result(verdict=Outcome.CRASHED), signatures=crash)
    error = ExceptionCount("TypeError: 'NoneType' object is not callable", (1, 3))
    now = replace(result(verdict=Outcome.CRASHED), signatures=crash, exceptions=(error,))
    assert same(before, now) == [
        "exception signature differs: none before, TypeError: 'NoneType' object is not callable now"
    ]


def test_exception_signatures_mask_addresses_and_group_cycles() -> None:
    _, records = run(reloads=(Outcome.RAISED, Outcome.RAISED, Outcome.CLEAN))
    texts = ["AttributeError: <object at 0x7f3a2c> has no x", "AttributeError: <object at 0x55e0aa> has no x"]
    records = [replace(r, first_exception=texts[r.cycle - 1]) if r.cycle in (1, 2) else r for r in records]
    assert exception_signature(texts[0]) == "AttributeError: <object at 0x…> has no x"
    assert exception_counts(records) == (ExceptionCount("AttributeError: <object at 0x…> has no x", (1, 2)),)
