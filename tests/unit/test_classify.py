"""Classifier rules on lines rendered from the message catalogues of mod_wsgi 4.9.4, 5.0.2 and 6.1.1,
and on lines recorded from live servers. The live tests prove the same rules against real servers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.engines.apache.engine import script_loaders
from harness.engines.classify import classify, classify_line, effect, parse_line
from harness.model.outcome import Outcome
from harness.model.records import EventKind
from tests.conftest import DATA

CATALOGUES = sorted(DATA.glob("mod_wsgi-*-log-messages.tsv"))
LEVELS = {
    "EMERG": "emerg",
    "ALERT": "alert",
    "CRIT": "crit",
    "ERR": "error",
    "WARNING": "warn",
    "NOTICE": "notice",
    "INFO": "info",
    "DEBUG": "debug",
    "TRACE1": "trace1",
    "": "error",
}


def render(fmt: str) -> str:
    """A printf format filled in the way mod_wsgi would: numbers for %d/%ld/%u, text for %s."""
    fmt = re.sub(r"%\.?\d*l?[du]", "4242", fmt)
    fmt = re.sub(r"%\.?\d*s", "harness", fmt)
    return fmt.replace("%%", "%")


def catalogue(path: Path) -> list[tuple[str, str, str, str]]:
    """(source, level, code, apache line) for every message of one catalogue."""
    rows = []
    for raw in path.read_text().splitlines():
        source, level, code, fmt = ([*raw.split("\t"), "", "", ""])[:4]
        message = render(fmt)
        if code:
            message = f"{code}: {message}"
        line = f"[Wed Nov 25 00:00:00.000000 2026] [wsgi:{LEVELS.get(level, 'error')}] [pid 4242:tid 4242] {message}"
        rows.append((source, level, code, line))
    return rows


def kinds_for(path: Path, text: str) -> set[EventKind | None]:
    found = {
        (e.kind if (e := classify_line(parse_line(line))) else None)
        for _, _, _, line in catalogue(path)
        if text in line
    }
    assert found, f"{path.name} has no message containing {text!r}"
    return found


def test_all_three_catalogues_are_present() -> None:
    assert [p.name for p in CATALOGUES] == [
        "mod_wsgi-4.9.4-log-messages.tsv",
        "mod_wsgi-5.0.2-log-messages.tsv",
        "mod_wsgi-6.1.1-log-messages.tsv",
    ]


@pytest.mark.parametrize("path", CATALOGUES, ids=lambda p: p.name.split("-")[1])
@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Reloading WSGI script", EventKind.SCRIPT_LOADED),
        ("Maximum requests reached", EventKind.RELOAD_REQUESTED),
        ("Shutdown requested", EventKind.RELOAD_REQUESTED),
        ("idle inactivity timer expired", EventKind.RELOAD_REQUESTED),
        ("Application restart timer expired", EventKind.RELOAD_REQUESTED),
        ("Process eviction requested", EventKind.RELOAD_REQUESTED),
    ],
)
def test_lines_every_version_logs(path: Path, text: str, kind: EventKind) -> None:
    assert kinds_for(path, text) == {kind}


@pytest.mark.parametrize(
    ("version", "text", "kind"),
    [
        ("4.9.4", "Exception occurred processing WSGI script", EventKind.SCRIPT_FAILED),
        ("5.0.2", "Exception occurred processing WSGI script", EventKind.SCRIPT_FAILED),
        ("4.9.4", "Exception occurred within exit functions", EventKind.SCRIPT_FAILED),
        ("4.9.4", "Failed to exec Python script file", EventKind.SCRIPT_FAILED),
        ("6.1.1", "WSGI0109: Unable to execute Python script file", EventKind.SCRIPT_FAILED),
        ("6.1.1", "WSGI0131: Exception occurred within Python atexit", EventKind.SCRIPT_FAILED),
        ("4.9.4", "Cannot create interpreter", EventKind.START_FAILURE),
        ("5.0.2", "Cannot create interpreter", EventKind.START_FAILURE),
        ("4.9.4", "Starting process", EventKind.DAEMON_STARTED),
        ("6.1.1", "Starting daemon process", EventKind.DAEMON_STARTED),
        ("4.9.4", "Aborting process", EventKind.SHUTDOWN_TIMEOUT),
        ("6.1.1", "Shutdown timeout expired", EventKind.SHUTDOWN_TIMEOUT),
        ("6.1.1", "WSGI0146", EventKind.LOST_RESPONSE),
        ("6.1.1", "WSGI0147", EventKind.LOST_RESPONSE),
        ("6.1.1", "Forcing restart of daemon process", EventKind.RELOAD_REQUESTED),
        ("6.1.1", "Graceful restart requested", EventKind.RELOAD_REQUESTED),
        ("6.1.1", "WSGI0007: Unable to change to uid", EventKind.START_FAILURE),
        ("4.9.4", "Failure to configure the daemon process", EventKind.START_FAILURE),
    ],
)
def test_version_specific_lines(version: str, text: str, kind: EventKind) -> None:
    (path,) = [p for p in CATALOGUES if f"-{version}-" in p.name]
    assert kinds_for(path, text) == {kind}


@pytest.mark.parametrize("path", CATALOGUES, ids=lambda p: p.name.split("-")[1])
def test_no_informational_line_implies_an_outcome(path: Path) -> None:
    """INFO/DEBUG/TRACE lines never make a cycle crashed, raised or start-failed. The one INFO
    message with a verdict is the shutdown-timeout abort: a daemon that hung in shutdown."""
    for _source, level, _code, line in catalogue(path):
        if level in ("INFO", "DEBUG", "TRACE1"):
            event = classify_line(parse_line(line))
            if event is not None and event.kind is EventKind.SHUTDOWN_TIMEOUT:
                assert effect(event) is Outcome.HUNG
                continue
            assert event is None or effect(event) is None, line


@pytest.mark.parametrize("path", CATALOGUES, ids=lambda p: p.name.split("-")[1])
def test_mod_wsgi_terminated_by_signal_line_is_not_trusted(path: Path) -> None:
    """mod_wsgi's own 'terminated by signal N' (INFO) misreads exit codes: Apache's AH00052 decides."""
    assert kinds_for(path, "terminated by signal") == {None}


def test_old_prefix_is_stripped() -> None:
    line = parse_line(
        "[Wed Nov 25 00:00:00.1 2026] [wsgi:error] [pid 7:tid 8] [client 127.0.0.1:5] "
        "mod_wsgi (pid=7): Exception occurred processing WSGI script '/a.wsgi'."
    )
    assert line.pid == 7 and line.message.startswith("Exception occurred")


# Recorded from live servers on this machine (Apache 2.4, mod_wsgi 6.1.1); the live tests
# produce each of them again.
RECORDED = {
    "[Wed Nov 25 00:17:22.956148 2026] [core:notice] [pid 3289:tid 3289] AH00052: child pid 3291 exit signal "
    "Segmentation fault (11)": (EventKind.SIGNAL_DEATH, Outcome.CRASHED),
    "[Wed Nov 25 00:17:22.956148 2026] [core:notice] [pid 3289:tid 3289] AH00051: child pid 3291 exit signal "
    "Aborted (6), possible coredump in /tmp/x": (EventKind.SIGNAL_DEATH, Outcome.CRASHED),
    "[Wed Nov 25 00:17:22.956148 2026] [core:notice] [pid 3289:tid 3289] AH00052: child pid 3291 exit signal "
    "Killed (9)": (EventKind.KILLED, Outcome.HUNG),
    "[Wed Nov 25 00:17:22.956148 2026] [core:notice] [pid 3289:tid 3289] AH00052: child pid 3291 exit signal "
    "Terminated (15)": (EventKind.SIGNAL_EXIT, None),
    "Fatal Python error: Segmentation fault": (EventKind.FATAL_ERROR, Outcome.CRASHED),
    '  File "/usr/lib/python3.11/ctypes/__init__.py", line 519 in string_at': (EventKind.FAULTHANDLER, None),
    "Current thread 0x00007fb97e5fc6c0 (most recent call first):": (EventKind.FAULTHANDLER, None),
    "free(): invalid pointer": (EventKind.NATIVE_ABORT, Outcome.CRASHED),
    "*** stack smashing detected ***: terminated": (EventKind.NATIVE_ABORT, Outcome.CRASHED),
    "python3: Objects/obj.c:10: f: Assertion `x' failed.": (EventKind.NATIVE_ABORT, Outcome.CRASHED),
    "[Wed Nov 25 00:17:22.460154 2026] [wsgi:error] [pid 3292:tid 3297] [client 127.0.0.1:57762] [script /a.wsgi] "
    "WSGI0147: Error reading response headers from daemon process 'harness' (Connection reset by peer).": (
        EventKind.LOST_RESPONSE,
        None,
    ),
    "[Wed Nov 25 00:26:27.686117 2026] [wsgi:error] [pid 6120:tid 6137] [remote 127.0.0.1:38138] WSGI0174: "
    "[script /a.wsgi] ControlError exception raised processing WSGI script '/a.wsgi' for main interpreter of "
    "daemon process 'harness'.": (EventKind.SCRIPT_FAILED, Outcome.RAISED),
    "[Wed Nov 25 00:00:00.1 2026] [wsgi:error] [pid 9:tid 9] [client 127.0.0.1:1] Truncated or oversized "
    "response headers received from daemon process 'x': /a.wsgi": (EventKind.LOST_RESPONSE, None),
    "[Wed Nov 25 00:30:41.765327 2026] [wsgi:error] [pid 8237:tid 8331] monitor (pid=8237): Change detected to "
    '"/a.wsgi".': (EventKind.RELOAD_REQUESTED, None),
    "[Wed Nov 25 00:00:00.1 2026] [core:error] [pid 9:tid 9] (98)Address already in use: AH00072: make_sock: could "
    "not bind to address 127.0.0.1:8000": (EventKind.START_FAILURE, Outcome.START_FAILED),
}


@pytest.mark.parametrize("line", RECORDED)
def test_recorded_lines(line: str) -> None:
    kind, outcome = RECORDED[line]
    (event,) = classify([line])
    assert (event.kind, effect(event)) == (kind, outcome)


def test_ordinary_lines_are_not_events() -> None:
    quiet = [
        "[Wed Nov 25 00:17:16.949494 2026] [mpm_event:notice] [pid 3289:tid 3289] AH00489: Apache/2.4.71 (Debian) "
        "mod_wsgi/6.1.1 Python/3.11 configured -- resuming normal operations",
        "[Wed Nov 25 00:17:24.959191 2026] [wsgi:info] [pid 3289:tid 3289] Process 'harness' (pid=3378) terminated "
        "normally, exit code 0",
        "",
        "Thread-less text that means nothing",
    ]
    assert list(classify(quiet)) == []


def test_a_death_names_the_child_that_died_not_the_parent_that_logged_it() -> None:
    """Deaths are matched by pid with what the harness saw at the source: the child's pid, not Apache's."""
    (event,) = classify(
        [
            "[Wed Nov 25 00:17:22.956148 2026] [core:notice] [pid 3289:tid 3289] AH00051: child pid 3291 exit "
            "signal Aborted (6), possible coredump in /tmp/x"
        ]
    )
    assert (event.kind, event.pid, event.signal) == (EventKind.SIGNAL_DEATH, 3291, 6)


@pytest.mark.parametrize(
    ("line", "group"),
    [
        # 4.x/5.x wording (the catalogue's "Destroy interpreter '%s'.")
        (
            "[Wed Nov 25 00:00:00.1 2026] [wsgi:info] [pid 7:tid 7] mod_wsgi (pid=7): Destroy interpreter 'app-a'.",
            "app-a",
        ),
        # 6.x wording ("Destroying %s in %s.")
        (
            "[Wed Nov 25 00:00:00.1 2026] [wsgi:info] [pid 7:tid 7] Destroying interpreter 'app-b' in process "
            "'harness'.",
            "app-b",
        ),
    ],
)
def test_interpreter_destruction_names_its_group(line: str, group: str) -> None:
    """The order of these lines is the destroy order a shutdown crash depends on."""
    (event,) = classify([line])
    assert (event.kind, event.group, event.pid, effect(event)) == (EventKind.INTERPRETER_DESTROYED, group, 7, None)


def test_destroying_every_interpreter_is_not_one_groups_destruction() -> None:
    lines = [
        "[Wed Nov 25 00:00:00.1 2026] [wsgi:info] [pid 7:tid 7] mod_wsgi (pid=7): Destroying interpreters.",
        "[Wed Nov 25 00:00:00.1 2026] [wsgi:info] [pid 7:tid 7] Destroying Python sub-interpreters in harness.",
    ]
    assert list(classify(lines)) == []


def test_a_raw_line_that_looks_like_apaches_words_is_not_read_as_apache() -> None:
    """Apache-only rules need Apache's prefix: an app printing 'Shutdown requested' to stderr reloads nothing."""
    assert list(classify(["Shutdown requested"])) == []
    (event,) = classify(["[Wed Nov 25 00:00:00.1 2026] [wsgi:info] [pid 7:tid 7] Shutdown requested 'harness'."])
    assert event.kind is EventKind.RELOAD_REQUESTED


@pytest.mark.parametrize(
    "line",
    [
        "[Sun Nov 29 09:14:39.001667 2026] [wsgi:info] [pid 27297:tid 27297] mod_wsgi (pid=27297, "
        "process='127.0.0.1:47997', application=''): Loading Python script file '/srv/app/app.wsgi'.",
        "[Sun Nov 29 09:14:39.001667 2026] [wsgi:info] [pid 27297:tid 27297] Loading WSGI script "
        "'/srv/app/app.wsgi' into ''.",
    ],
    ids=["4.x-5.x", "6.x"],
)
def test_the_preload_wait_sees_every_versions_script_load(line: str) -> None:
    """A missed load line made every daemon start of 4.9.4 and 5.0.2 wait the whole preload timeout."""
    handler = line.replace("/srv/app/app.wsgi", "/srv/handler.wsgi")
    assert script_loaders([handler, line], Path("/srv/app/app.wsgi")) == {27297}
    assert script_loaders([handler], Path("/srv/app/app.wsgi")) == set()
