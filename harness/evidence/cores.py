"""Core files: one kept per crash event, renamed the moment it appears, identified by pid and signal.

The kernel writes a core into the crashing process's working directory under a fixed name (here
``core``) and replaces any file already there, so a second crash would overwrite the first. Apache's
fatal-signal handler changes to CoreDumpDirectory first, but the daemons started with Apache die
before that handler is theirs and dump into their working directory (measured: the first daemon's
core lands in the app folder, later ones in CoreDumpDirectory). So a watcher thread looks in both and
renames every new core within milliseconds. Once the process has gone, the core is complete: it is
moved into the run's results and named by pid.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import shutil
import struct
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from harness.engines import procs
from harness.storage import disk_error

CORE_PATTERN = Path("/proc/sys/kernel/core_pattern")
_CORE_NAME = re.compile(r"^core(?:\.\d+)?$")  # "core", or "core.PID" with kernel.core_uses_pid
WATCH_INTERVAL = 0.1  # a core is renamed within this; one daemon per run does not crash twice as fast
COMPLETE_WAIT = 10.0


def enable() -> str | None:
    """Raise this process's soft core limit to its hard limit (servers inherit it); returns why cores
    cannot be collected here, or None when they can. Kernel settings are reported, never changed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    if hard == 0:
        return "the hard core-size limit is 0 (ulimit -Hc); raise it to collect cores"
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))
    pattern = kernel_pattern()
    if pattern.startswith("|"):
        return f"kernel.core_pattern pipes cores to {pattern[1:].split()[0]}; set it to 'core' to collect them here"
    if pattern.startswith("/"):
        return f"kernel.core_pattern writes cores to {pattern}; set it to 'core' to collect them per run"
    return None


def kernel_pattern() -> str:
    try:
        return CORE_PATTERN.read_text().strip()
    except OSError:
        return "core"


def kernel_settings() -> dict[str, str]:
    """What decides whether and where cores are written, for bug reports."""
    found = {"core_pattern": kernel_pattern(), "rlimit_core": str(resource.getrlimit(resource.RLIMIT_CORE))}
    for name in ("core_uses_pid", "yama/ptrace_scope"):
        with contextlib.suppress(OSError):
            found[name] = Path(f"/proc/sys/kernel/{name}").read_text().strip()
    with contextlib.suppress(OSError):
        found["suid_dumpable"] = Path("/proc/sys/fs/suid_dumpable").read_text().strip()
    return found


@dataclass(frozen=True)
class CoreIdentity:
    pid: int | None  # the process (NT_PRPSINFO)
    thread: int | None  # the signalled thread: the kernel writes its NT_PRSTATUS first
    signal: int | None
    arguments: str


@dataclass(frozen=True)
class CoreFile:
    path: Path
    identity: CoreIdentity
    size: int

    def to_json(self) -> dict[str, object]:
        who = self.identity
        return {
            "file": self.path.name,
            "pid": who.pid,
            "thread": who.thread,
            "signal": who.signal,
            "process": who.arguments,
            "size": self.size,
        }


def identify(path: Path) -> CoreIdentity:
    """Who dumped this core, from its notes; raises ELFError/OSError while it is still incomplete."""
    pid = thread = signo = None
    args = ""
    with open(path, "rb") as handle:
        for segment in ELFFile(handle).iter_segments():
            if segment["p_type"] != "PT_NOTE":
                continue
            for note in segment.iter_notes():  # type: ignore[attr-defined]  # a NoteSegment
                desc = note["n_desc"]
                if note["n_type"] == "NT_PRSTATUS" and thread is None:
                    raw = desc if isinstance(desc, bytes) else desc.encode("latin-1")
                    # struct elf_prstatus (64-bit Linux): si_signo at 0, pr_pid (the thread) at 32.
                    signo, thread = struct.unpack_from("<i", raw, 0)[0], struct.unpack_from("<i", raw, 32)[0]
                elif note["n_type"] == "NT_PRPSINFO":
                    pid = int(desc["pr_pid"])
                    psargs = desc["pr_psargs"]
                    args = (psargs.decode(errors="replace") if isinstance(psargs, bytes) else str(psargs)).strip("\0 ")
    return CoreIdentity(pid, thread, signo, args)


class CoreCollector:
    """Watches one server's cores folder from start to stop and hands each complete core over."""

    def __init__(self, watch_dirs: Sequence[Path], keep_dir: Path) -> None:
        self.watch_dirs = list(watch_dirs)
        self.keep_dir = keep_dir
        self._existing: set[Path] = set()  # a file named like a core that was there before the server
        self._pending: list[Path] = []
        self._seq = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name=f"cores:{keep_dir.parent.name}", daemon=True)

    def start(self) -> None:
        self._existing = set(self._fresh())
        self._thread.start()

    def close(self) -> list[CoreFile]:
        """Stop watching; every core written so far is collected."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._sweep()
        return self.collect(wait=COMPLETE_WAIT)

    def _watch(self) -> None:
        while not self._stop.wait(WATCH_INTERVAL):
            self._sweep()

    def _fresh(self) -> list[Path]:
        found = []
        for folder in self.watch_dirs:
            try:
                names = os.listdir(folder)
            except OSError:
                continue
            found += [folder / n for n in names if _CORE_NAME.match(n) and folder / n not in self._existing]
        return found

    def _sweep(self) -> None:
        """Rename every fresh core in place (same folder, so atomic even while it is being written)."""
        with self._lock:
            for path in self._fresh():
                self._seq += 1
                target = path.with_name(f"crash-{self._seq:03d}.core")
                with contextlib.suppress(OSError):
                    os.rename(path, target)
                    self._pending.append(target)

    def collect(self, wait: float = 0.0) -> list[CoreFile]:
        """Move the cores whose process has gone (so the file is complete) into the run's folder."""
        deadline = time.monotonic() + wait
        done: list[CoreFile] = []
        while True:
            with self._lock:
                pending = list(self._pending)
            for path in pending:
                core = self._complete(path)
                if core is not None:
                    done.append(core)
                    with self._lock:
                        self._pending.remove(path)
            if not self._pending or time.monotonic() >= deadline:
                return done
            time.sleep(0.1)

    def _complete(self, path: Path) -> CoreFile | None:
        try:
            identity = identify(path)
        except (ELFError, OSError, struct.error, ValueError, KeyError):
            return None  # still being written: the notes come first, but may not be there yet
        pid = identity.pid
        if pid is not None and procs.still_exiting(pid):
            return None  # a thread of it is still writing this core
        self.keep_dir.mkdir(parents=True, exist_ok=True)
        target = self.keep_dir / (f"core.{pid}" if pid else path.name)
        if target.exists():
            target = self.keep_dir / f"{target.name}.{path.stem}"
        try:
            shutil.move(str(path), target)
        except OSError as exc:  # the results disk is full: no half core is kept, the source goes too
            for leftover in (target, path):
                with contextlib.suppress(OSError):
                    leftover.unlink()
            raise disk_error(target, exc) from None
        return CoreFile(target, identity, target.stat().st_size)
