"""Processes of a run as the kernel sees them: which are alive, and how a dead one ended.

Apache reaps its children on a one-second maintenance tick and only then logs AH00051/AH00052. Until
it does, a child that died is a zombie whose exit status the kernel keeps in /proc/PID/stat (field 52,
readable by the same user or root), so a death by a signal is known the moment it happens, with its
signal, long before the log line that confirms it.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import psutil

from harness.model.records import Death, DeathSource


def _tasks(pid: int) -> list[str]:
    try:
        return os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []


def _state_in(stat_file: str) -> str | None:
    try:
        with open(stat_file, "rb") as handle:
            text = handle.read().decode("ascii", errors="replace")
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()
    return fields[0] if fields else None


def children(pid: int) -> list[int]:
    """The direct children of a process, from /proc/PID/task/*/children: one small read per thread of the
    parent, where psutil's children() reads the stat file of every process on the machine (a cost every
    run's 50 ms polls would pay for every other run's processes)."""
    found: list[int] = []
    for task in _tasks(pid):
        try:
            with open(f"/proc/{pid}/task/{task}/children", "rb") as handle:
                found += [int(part) for part in handle.read().split()]
        except (OSError, ValueError):
            continue
    return found


def state(pid: int) -> str | None:
    """The one-letter state of a process (R, S, D, Z...), None once it is gone."""
    return _state_in(f"/proc/{pid}/stat")


def still_exiting(pid: int) -> bool:
    """Whether any thread of the process is still at work: a crashed process's leader shows as a zombie
    while the faulting thread is still writing the core, so the leader's state alone does not say the
    core is complete."""
    return any(_state_in(f"/proc/{pid}/task/{task}/stat") not in (None, "Z", "X", "x") for task in _tasks(pid))


def command_line(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().split(b"\0", 1)[0].decode("utf-8", errors="replace")
    except OSError:
        return ""


def alive(pids: Iterable[int]) -> set[int]:
    """Those of `pids` still running (a zombie has finished: only its parent has yet to reap it)."""
    return {pid for pid in pids if state(pid) not in (None, "Z", "X")}


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
