"""Turn Apache/mod_wsgi error_log lines into events.

One table of rules covers mod_wsgi 4.x, 5.x and 6.x: 6.0 dropped the ``mod_wsgi (pid=N): `` prefix
and added ``WSGI####`` codes, so rules match the message text after any prefix. Apache's own
``AH00051``/``AH00052`` (NOTICE, always logged) are the truth for deaths by signal; mod_wsgi's
INFO line "terminated by signal N" is deliberately ignored because it misreads exit codes.
Lines with no Apache prefix are raw stderr of a dying process: ``Fatal Python error``,
faulthandler stacks, glibc aborts.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from harness.model.outcome import Outcome
from harness.model.records import EventKind, LogEvent

EFFECT: dict[EventKind, Outcome] = {
    EventKind.SIGNAL_DEATH: Outcome.CRASHED,
    EventKind.FATAL_ERROR: Outcome.CRASHED,
    EventKind.NATIVE_ABORT: Outcome.CRASHED,
    EventKind.KILLED: Outcome.HUNG,
    EventKind.SHUTDOWN_TIMEOUT: Outcome.HUNG,
    EventKind.TRACEBACK: Outcome.RAISED,
    EventKind.SCRIPT_FAILED: Outcome.RAISED,
    EventKind.START_FAILURE: Outcome.START_FAILED,
    EventKind.EXITED: Outcome.RAISED,
    EventKind.HARNESS_FAULT: Outcome.HARNESS_ERROR,
}
DEATH_KINDS = frozenset({EventKind.SIGNAL_DEATH, EventKind.KILLED, EventKind.SIGNAL_EXIT})


def effect(event: LogEvent) -> Outcome | None:
    """The outcome an event implies, if any."""
    return EFFECT.get(event.kind)


CRASH_SIGNALS = frozenset(
    int(s)
    for s in (
        signal.SIGSEGV,
        signal.SIGABRT,
        signal.SIGBUS,
        signal.SIGILL,
        signal.SIGFPE,
        signal.SIGSYS,
        signal.SIGTRAP,
        signal.SIGXCPU,
        signal.SIGXFSZ,
    )
)

_APACHE_PREFIX = re.compile(
    r"^\[(?P<time>[^\]]*)\] \[(?P<module>[^:\]\s]*):(?P<level>[^\]\s]+)\] "
    r"\[pid (?P<pid>\d+)(?::tid \d+)?\]"
    r"(?: \[(?:client|remote|script) [^\]]*\])*"
    r" ?(?P<message>.*)$"
)
# mod_wsgi 4.x/5.x put "mod_wsgi (pid=N): " or "mod_wsgi (pid=N, process='..', application='..'): " first.
_MOD_WSGI_PREFIX = re.compile(r"^mod_wsgi \(pid=\d+(?:, [^)]*)?\): ")
_SIGNAL_LINE = re.compile(
    r"AH0005[12]: child pid (?P<pid>\d+) exit signal (?P<name>[^(]*?) \((?P<number>\d+)\)"
    r"(?:, possible coredump in (?P<core_dir>\S+))?"
)


@dataclass(frozen=True)
class LogLine:
    """One error_log line, split into Apache's prefix (absent on raw stderr lines) and message."""

    text: str
    message: str
    level: str | None = None
    module: str | None = None
    pid: int | None = None

    @property
    def raw(self) -> bool:
        return self.level is None


def parse_line(text: str) -> LogLine:
    text = text.rstrip("\n")
    match = _APACHE_PREFIX.match(text)
    if not match:
        return LogLine(text=text, message=text.strip())
    message = _MOD_WSGI_PREFIX.sub("", match["message"])
    return LogLine(text=text, message=message, level=match["level"], module=match["module"], pid=int(match["pid"]))


# (kind, pattern, where): where is "apache" (only prefixed lines), "raw" (only bare lines), "any".
_RULES: list[tuple[EventKind, re.Pattern[str], str]] = [
    (EventKind.FATAL_ERROR, re.compile(r"^Fatal Python error: "), "any"),
    (EventKind.FAULTHANDLER, re.compile(r"^(?:Current thread|Thread) 0x[0-9a-f]+ "), "raw"),
    (EventKind.FAULTHANDLER, re.compile(r"^File \".*\", line \d+ in \S+$"), "raw"),
    (
        EventKind.NATIVE_ABORT,
        re.compile(
            r"^\*\*\* .* \*\*\*: terminated$"
            r"|^(?:free|malloc|realloc|munmap_chunk|malloc_consolidate)\(\): "
            r"|^(?:double free or corruption|corrupted (?:size|double-linked list))"
            r"|: Assertion [`'].*' failed\.$"
        ),
        "raw",
    ),
    (EventKind.TRACEBACK, re.compile(r"^Traceback \(most recent call last\):"), "any"),
    (
        EventKind.SCRIPT_FAILED,
        re.compile(
            r"^Exception occurred (?:processing WSGI script |within exit functions|within threading\._shutdown)"
            r"|exception raised processing WSGI script "  # 6.x WSGI0174, absent from the 6.1.1 catalogue
            r"|^WSGI01(?:07|08|30|31|94): "
            r"|^Failed to exec Python script file "
            r"|^WSGI01(?:09|10): Unable to execute Python script file "
            r"|^Target WSGI script .* does not contain WSGI application"
        ),
        "apache",
    ),
    (
        EventKind.LOST_RESPONSE,
        re.compile(
            r"^WSGI014[67]: "
            r"|Truncated or oversized response headers received from daemon process"
            r"|End of script output before headers"
        ),
        "apache",
    ),
    (
        EventKind.SHUTDOWN_TIMEOUT,
        re.compile(r"^Shutdown timeout expired; aborting daemon process|^Aborting process '"),
        "apache",
    ),
    (
        EventKind.START_FAILURE,
        re.compile(
            r"AH00072: make_sock: could not bind"
            r"|AH00451: no listening sockets available"
            r"|AH00015: Unable to open logs"
            r"|AH00016: Configuration Failed"
            r"|^Cannot create interpreter "
            r"|Daemon process will exit"
            r"|^Failure to configure the daemon process correctly"
            r"|^WSGI00(?:0[3-9]|1[01]): "
        ),
        "apache",
    ),
    (
        EventKind.SCRIPT_LOADED,
        re.compile(r"^(?:Reloading|Loading) WSGI script '|^Loading Python script file '"),
        "apache",
    ),
    (
        EventKind.RELOAD_REQUESTED,
        re.compile(
            r"^Forcing restart of daemon process"
            r"|^Graceful restart requested"
            r"|^Shutdown requested"
            r"|^Maximum requests reached"
            r"|^Application restart timer expired"
            r"|^Daemon process idle inactivity timer expired"
            r"|^Daemon process restart timer expired"
            r"|^Process eviction requested"
            r"|^AH0049[34]: SIG(?:USR1|HUP|WINCH) received"
        ),
        "apache",
    ),
    (EventKind.RELOAD_REQUESTED, re.compile(r"^monitor \(pid=\d+\): Change detected to "), "any"),
    (EventKind.DAEMON_STARTED, re.compile(r"^Starting (?:daemon )?process '"), "apache"),
]
# 4.x/5.x "Destroy interpreter 'app-a'."; 6.x "Destroying interpreter 'app-a' in process 'harness'." (the
# catalogue's "Destroying %s in %s"): the order of these lines is the order mod_wsgi destroyed them in.
_DESTROY = re.compile(r"^Destroy(?:ing)? (?:sub-)?interpreter '(?P<group>[^']*)'")


def classify_line(line: LogLine) -> LogEvent | None:
    """The event one line records, or None for the many lines that record nothing of interest."""
    if not line.raw:
        signal_match = _SIGNAL_LINE.search(line.message)
        if signal_match:
            number = int(signal_match["number"])
            if number in CRASH_SIGNALS:
                kind = EventKind.SIGNAL_DEATH
            elif number == signal.SIGKILL:
                kind = EventKind.KILLED
            else:
                kind = EventKind.SIGNAL_EXIT
            return LogEvent(kind, line.text, pid=int(signal_match["pid"]), signal=number)
    if not line.raw:
        destroyed = _DESTROY.search(line.message)
        if destroyed:
            return LogEvent(EventKind.INTERPRETER_DESTROYED, line.text, pid=line.pid, group=destroyed["group"])
    for kind, pattern, where in _RULES:
        if (where == "apache" and line.raw) or (where == "raw" and not line.raw):
            continue
        if pattern.search(line.message):
            return LogEvent(kind, line.text, pid=line.pid)
    return None


def classify(lines: Iterable[str]) -> Iterator[LogEvent]:
    for text in lines:
        event = classify_line(parse_line(text))
        if event is not None:
            yield event
