"""The per-cycle decision rules on recorded observations (each is also met live in test_live_*)."""

from __future__ import annotations

from harness.classify import classify
from harness.judge import Confirmation, Fired, decide
from harness.outcome import Outcome, worst
from harness.probe import ProbeResult

OK = Confirmation(Fired.CONFIRMED, "daemon [1] -> [2]")
SEGV = (
    "[Wed Nov 25 00:17:22.9 2026] [core:notice] [pid 3:tid 3] AH00052: child pid 4 exit signal Segmentation fault (11)"
)


def answer(status: int | None, body: str = "ok", error: str | None = None, mismatch: str | None = None) -> ProbeResult:
    return ProbeResult("/app/", status, body, error, mismatch, 0.01, 0.0)


def judge(confirmation: Confirmation, probes: list[ProbeResult], lines: list[str]) -> Outcome:
    return decide(confirmation, probes, list(classify(lines)), lines)[0]


def test_clean_needs_a_confirmed_reload_and_a_right_answer() -> None:
    assert judge(OK, [answer(200)], []) is Outcome.CLEAN


def test_a_reload_that_did_not_fire_is_never_clean() -> None:
    outcome, evidence = decide(Confirmation(Fired.NOT_FIRED, "daemon [1] still serving"), [answer(200)], [], [])
    assert outcome is Outcome.HARNESS_ERROR and "did not fire" in evidence[0]


def test_death_by_signal_outranks_the_502_it_caused() -> None:
    assert judge(OK, [answer(502)], [SEGV]) is Outcome.CRASHED


def test_a_crash_explains_a_reload_that_did_not_complete() -> None:
    assert judge(Confirmation(Fired.NOT_FIRED, "x"), [answer(502)], [SEGV]) is Outcome.CRASHED


def test_timeout_is_hung_and_dropped_connection_is_raised() -> None:
    assert judge(OK, [answer(None, error="timeout")], []) is Outcome.HUNG
    assert judge(OK, [answer(None, error="connection dropped: RemoteDisconnected")], []) is Outcome.RAISED


def test_wrong_body_is_wrong_result_and_5xx_is_raised() -> None:
    assert judge(OK, [answer(200, mismatch="body 'a', expected 'b'")], []) is Outcome.WRONG_RESULT
    assert judge(OK, [answer(500)], []) is Outcome.RAISED


def test_stuck_shutdown_is_hung_and_missing_daemon_is_start_failed() -> None:
    assert judge(Confirmation(Fired.STUCK, "x"), [], []) is Outcome.HUNG
    assert judge(Confirmation(Fired.NO_NEW_DAEMON, "x"), [], []) is Outcome.START_FAILED


def test_run_verdict_is_the_worst_cycle() -> None:
    assert worst([Outcome.CLEAN, Outcome.CRASHED, Outcome.RAISED]) is Outcome.CRASHED
    assert worst([]) is Outcome.HARNESS_ERROR
