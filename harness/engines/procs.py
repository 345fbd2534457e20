"""Processes of a run as the kernel sees them: which are alive, and how a dead one ended.

Apache reaps its children on a one-second maintenance tick and only then logs AH00051/AH00052. Until
it does, a child that died is a zombie whose exit status the kernel keeps in /proc/PID/stat (field 52,
readable by the same user or root), so a death by a signal is known the moment it happens, with its
signal, long before the log line that confirms it.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import psutil

from harness.model.records import Death, DeathSource


def alive(pids: Iterable[int]) -> set[int]:
    """Those of `pids` still running (a zombie has finished: only its parent has yet to reap it)."""
    found = set()
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                found.add(pid)
    return found


@dataclass(frozen=True)
class ExitStatus:
    signal: int | None  # the signal it died of
    code: int | None  # its exit code, when it exited


def zombie_status(pid: int) -> ExitStatus | None:
    """How a finished, not yet reaped process ended; None while it runs, once it is reaped, or unreadable."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            text = handle.read().decode("ascii", errors="replace")
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()
    if not fields or fields[0] != "Z" or len(fields) < 50:
        return None
    status = int(fields[49])  # field 52, in the form waitpid(2) reports it
    if status & 0x7F:
        return ExitStatus(signal=status & 0x7F, code=None)
    return ExitStatus(signal=None, code=(status >> 8) & 0xFF)


@dataclass
class DeathWatch:
    """Remembers the processes it was shown and reports each one's death by a signal once."""

    watched: set[int] = field(default_factory=set)
    reported: set[int] = field(default_factory=set)
    exits: dict[int, int] = field(default_factory=dict)  # pid -> exit code, for ends without a signal

    def watch(self, pids: Iterable[int]) -> None:
        self.watched |= set(pids) - self.reported

    def take(self) -> list[Death]:
        deaths = []
        for pid in sorted(self.watched):
            status = zombie_status(pid)
            if status is None:
                if not psutil.pid_exists(pid):
                    self.watched.discard(pid)  # reaped before we looked: the log line will say how it ended
                continue
            self.watched.discard(pid)
            self.reported.add(pid)
            if status.signal is not None:
                deaths.append(
                    Death(
                        pid,
                        status.signal,
                        DeathSource.EXIT_STATUS,
                        time.time(),
                        f"[harness] pid {pid} ended by signal {status.signal} (its exit status)",
                    )
                )
            elif status.code is not None:
                self.exits[pid] = status.code
        return deaths


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)
