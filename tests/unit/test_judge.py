"""The per-cycle decision rules on recorded observations (each is also met live in tests/live)."""

from __future__ import annotations

import signal
from collections.abc import Sequence

from harness.engines.classify import classify
from harness.model.outcome import Outcome, worst
from harness.model.records import Confirmation, Death, DeathSource, Fired, ProbeResult
from harness.run.judge import EVIDENCE_LINES, Judgement, decide

OK = Confirmation(Fired.CONFIRMED, "daemon [1] -> [2]")
SEGV = (
    "[Wed Nov 25 00:17:22.9 2026] [core:notice] [pid 3:tid 3] AH00052: child pid 4 exit signal Segmentation fault (11)"
)
PREFIX = "[Wed Nov 25 00:26:27.686117 2026] [wsgi:error] [pid 5:tid 6] [client 127.0.0.1:1] "
TRACEBACK = [
    PREFIX + "mod_wsgi (pid=5): Exception occurred processing WSGI script '/a.wsgi'.",
    PREFIX + "Traceback (most recent call last):",
    PREFIX + '  File "/a.wsgi", line 3, in application',
    PREFIX + '    raise ControlError("boom")',
    PREFIX + "ControlError: boom",
]


def answer(status: int | None, body: str = "ok", error: str | None = None, mismatch: str | None = None) -> ProbeResult:
    return ProbeResult("/app/", status, body, error, mismatch, 0.01, 0.0)


def judgement(
    confirmation: Confirmation,
    probes: Sequence[ProbeResult],
    lines: Sequence[str],
    deaths: Sequence[Death] = (),
    app_loaded: bool = True,
) -> Judgement:
    return decide(confirmation, probes, list(classify(lines)), lines, deaths, app_loaded)


def judge(confirmation: Confirmation, probes: list[ProbeResult], lines: list[str]) -> Outcome:
    return judgement(confirmation, probes, lines).outcome


def test_clean_needs_a_confirmed_reload_and_a_right_answer() -> None:
    found = judgement(OK, [answer(200)], [])
    assert (found.outcome, found.trial, found.evidence) == (Outcome.CLEAN, True, ())


def test_a_reload_that_did_not_fire_is_never_clean_and_no_trial() -> None:
    found = judgement(Confirmation(Fired.NOT_FIRED, "daemon [1] still serving"), [answer(200)], [])
    assert found.outcome is Outcome.HARNESS_ERROR and not found.trial
    assert "did not fire" in found.evidence[0] and found.why_not_trial and "did not fire" in found.why_not_trial


def test_death_by_signal_outranks_the_502_it_caused() -> None:
    assert judge(OK, [answer(502)], [SEGV]) is Outcome.CRASHED


def test_a_crash_explains_a_reload_that_did_not_complete_but_is_no_trial() -> None:
    found = judgement(Confirmation(Fired.NOT_FIRED, "x"), [answer(502)], [SEGV])
    assert found.outcome is Outcome.CRASHED and not found.trial
    assert found.why_not_trial and "did not happen" in found.why_not_trial


def test_a_death_seen_at_the_source_is_a_crash_without_any_log_line() -> None:
    death = Death(4, int(signal.SIGSEGV), DeathSource.EXIT_STATUS, 0.0, "")
    found = judgement(OK, [answer(200)], [], deaths=[death])
    assert found.outcome is Outcome.CRASHED
    assert found.evidence[0] == "pid 4 died by SIGSEGV"


def test_a_death_by_a_stop_signal_is_not_a_crash() -> None:
    """SIGTERM/SIGKILL deaths are what a reload or the harness's own kill do: never a crash by themselves."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        death = Death(4, int(signum), DeathSource.EXIT_STATUS, 0.0, "")
        assert judgement(OK, [answer(200)], [], deaths=[death]).outcome is Outcome.CLEAN


def test_timeout_is_hung_and_dropped_connection_is_raised() -> None:
    assert judge(OK, [answer(None, error="timeout")], []) is Outcome.HUNG
    assert judge(OK, [answer(None, error="connection dropped: RemoteDisconnected")], []) is Outcome.RAISED


def test_wrong_body_is_wrong_result_and_5xx_is_raised() -> None:
    assert judge(OK, [answer(200, mismatch="body 'a', expected 'b'")], []) is Outcome.WRONG_RESULT
    assert judge(OK, [answer(500)], []) is Outcome.RAISED


def test_stuck_shutdown_is_hung_and_missing_daemon_is_start_failed() -> None:
    assert judge(Confirmation(Fired.STUCK, "x"), [], []) is Outcome.HUNG
    assert judge(Confirmation(Fired.NO_NEW_DAEMON, "x"), [], []) is Outcome.START_FAILED
    assert judge(Confirmation(Fired.SERVER_GONE, "x"), [], []) is Outcome.START_FAILED


def test_a_crash_explains_a_daemon_that_did_not_come_back() -> None:
    found = judgement(Confirmation(Fired.NO_NEW_DAEMON, "no daemon"), [], [SEGV])
    assert found.outcome is Outcome.CRASHED and not any("reload failed" in line for line in found.evidence)


def test_an_app_that_never_loaded_fails_each_request_as_raised() -> None:
    """mod_wsgi does not reload a script that never loaded: each request is a new load, and its error the app's."""
    found = judgement(Confirmation(Fired.NOT_FIRED, "x"), [answer(500)], TRACEBACK, app_loaded=False)
    assert found.outcome is Outcome.RAISED and found.trial and found.why_not_trial is None


def test_the_first_exception_and_its_traceback_are_the_evidence() -> None:
    found = judgement(OK, [answer(500)], [*TRACEBACK, "[Wed Nov 25 00:26:28 2026] [wsgi:info] [pid 9:tid 9] other"])
    assert found.outcome is Outcome.RAISED and found.first_exception == "ControlError: boom"
    # The exception's own line leads (the first evidence says what was raised), then the request, then its traceback.
    assert found.evidence[:2] == ("ControlError: boom", "GET /app/: HTTP 500")
    assert list(found.evidence[2:]) == TRACEBACK


def test_a_long_traceback_keeps_its_first_line_and_the_exception() -> None:
    frames = [PREFIX + f'  File "/lib/m{i}.py", line {i}, in f{i}' for i in range(40)]
    lines = [*TRACEBACK[:2], *frames, TRACEBACK[-1]]
    found = judgement(OK, [answer(500)], lines)
    assert len(found.evidence) <= EVIDENCE_LINES
    assert lines[0] in found.evidence and found.evidence[-1] == TRACEBACK[-1]
    assert any("traceback lines in the error_log" in line for line in found.evidence)


def test_a_crash_after_an_exception_keeps_the_exception() -> None:
    found = judgement(OK, [answer(502)], [*TRACEBACK, SEGV])
    assert found.outcome is Outcome.CRASHED and found.first_exception == "ControlError: boom"
    assert SEGV in found.evidence


def test_run_verdict_is_the_worst_cycle() -> None:
    assert worst([Outcome.CLEAN, Outcome.CRASHED, Outcome.RAISED]) is Outcome.CRASHED
    assert worst([]) is Outcome.HARNESS_ERROR
