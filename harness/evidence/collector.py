"""A run's crash and hang evidence: cores kept per crash, backtraces and signatures from them, stack
dumps of hung processes taken before anything kills them.

Files go into the run's folder (``cores/``, ``backtraces/``, ``stacks/``); the records returned here go
into the cycle records and the run's summary.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from harness import storage
from harness.engines.procs import signal_name
from harness.evidence import signature
from harness.evidence.cores import CoreCollector, CoreFile
from harness.evidence.frames import Frame, Thread
from harness.evidence.stacks import Stacks, core_stacks, live_stacks, python_gdb_script
from harness.model.records import (
    Backtrace,
    CoreRecord,
    CrashEvent,
    CycleRecord,
    Death,
    DeathSource,
    EventKind,
    StackDump,
)

FRAMES_IN_SUMMARY = 8
_FAULTHANDLER_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+) in (?P<function>\S+)')


@dataclass(frozen=True)
class EvidencePlan:
    run_dir: Path
    core_dirs: tuple[Path, ...]  # empty: cores cannot be collected here (the reason is in core_note)
    core_note: str | None
    executable: str  # the program whose cores these are (httpd, wsgi_driver)
    python_executable: str
    app_dir: str


class RunEvidence:
    def __init__(self, plan: EvidencePlan) -> None:
        self.plan = plan
        self.collector = CoreCollector(plan.core_dirs, plan.run_dir / "cores") if plan.core_dirs else None
        self.kept: dict[int | None, CoreFile] = {}
        self.python_gdb = python_gdb_script(plan.python_executable)

    def start(self) -> None:
        if self.collector is not None:
            self.collector.start()

    def collect_cores(self, wait: float = 0.0) -> list[CoreRecord]:
        """Cores of processes that died by now (the file complete), moved into the run's folder."""
        if self.collector is None:
            return []
        return self._keep(self.collector.collect(wait=wait))

    def close(self) -> list[CoreRecord]:
        """Stop watching; every core written so far is collected (waiting for those still being written)."""
        if self.collector is None:
            return []
        return self._keep(self.collector.close())

    def _keep(self, found: Sequence[CoreFile]) -> list[CoreRecord]:
        records = []
        for core in found:
            self.kept.setdefault(core.identity.pid, core)
            who = core.identity
            records.append(
                CoreRecord(
                    str(core.path.relative_to(self.plan.run_dir)),
                    who.pid,
                    who.thread,
                    who.signal,
                    who.arguments,
                    core.size,
                )
            )
        return records

    # --- hangs ---------------------------------------------------------------------------------
    def _stuck_thread_named(self, threads: list[Thread]) -> str | None:
        app = self.plan.app_dir
        if any(f.kind == "Python" and f.file.startswith(app) for t in threads for f in t.frames):
            return None
        return "names no frame of the app in any thread"

    def _app_frame(self, thread: Thread) -> Frame | None:
        app = self.plan.app_dir
        return next((f for f in thread.frames if f.kind == "Python" and f.file.startswith(app)), None)

    def _with_native_stacks(self, pid: int, stacks: Stacks) -> Stacks:
        """The tool that named the app's line saw no native frame of the stuck thread (py-spy without
        --native, pystack skipping a sub-interpreter before 3.11): gdb adds where each thread blocks."""
        native = live_stacks(pid, lambda threads: None, self.python_gdb, tools=("gdb",))
        if native.tool != "gdb":
            return replace(stacks, tried=[*stacks.tried, *native.tried])
        return replace(
            stacks,
            tool=f"{stacks.tool}+gdb",
            text=f"{stacks.text.rstrip()}\n{native.text}",
            tried=[*stacks.tried, "gdb: native frames"],
            native=native.threads,
        )

    def dump_hung(self, cycle: int, pids: Collection[int], reason: str) -> list[StackDump]:
        """Stacks of every thread (every interpreter) of the processes that may be hung, now."""
        folder = self.plan.run_dir / "stacks"
        dumps: list[StackDump] = []
        if pids:
            folder.mkdir(exist_ok=True)
        for pid in sorted(pids):
            stacks = live_stacks(pid, self._stuck_thread_named, self.python_gdb)
            stuck = [t for t in stacks.threads if self._app_frame(t) is not None]
            if any(signature.blocking_frame(t) is None for t in stuck) and stacks.tool != "gdb":
                stacks = self._with_native_stacks(pid, stacks)
            file = folder / f"cycle-{cycle:03d}-pid-{pid}.txt"
            header = f"# {reason}\n# {stacks.tool} dump of pid {pid}; tried: {'; '.join(stacks.tried)}\n"
            storage.write_atomic(file, header + stacks.text)
            app_frames, native = [], []
            for thread in stacks.threads:
                app = self._app_frame(thread)
                if app is None:
                    continue
                app_frames.append(app.within(self.plan.app_dir))
                blocking = signature.blocking_frame(thread) or next(
                    (signature.blocking_frame(t) for t in stacks.native if t.same_as(thread)), None
                )
                if blocking is not None:
                    native.append(signature.describe(blocking))
            dumps.append(
                StackDump(
                    cycle,
                    pid,
                    stacks.tool,
                    str(file.relative_to(self.plan.run_dir)),
                    tuple(app_frames[:FRAMES_IN_SUMMARY]),
                    tuple(native[:FRAMES_IN_SUMMARY]),
                    tuple(stacks.tried),
                )
            )
        return dumps

    # --- crashes -------------------------------------------------------------------------------
    def crash_events(self, records: Sequence[CycleRecord]) -> list[CrashEvent]:
        """One event per process that died by a signal, in the cycle it was first seen, with every source
        that saw it, its core, backtrace and signature."""
        first: dict[int | None, tuple[CycleRecord, list[Death]]] = {}
        for record in records:
            for death in record.deaths:
                if death.pid is None:
                    continue
                if death.pid in first:
                    first[death.pid][1].append(death)
                else:
                    first[death.pid] = (record, [death])
        # A death is recorded once, in the cycle it was first seen (mostly from its exit status); what a later
        # cycle sees of it only confirms it and is no death of that cycle: Apache's AH00051 line on its next
        # maintenance tick, a core finished after the cycle ended. Those are sources of the same crash.
        for record in records:
            confirming = [
                Death(e.pid, e.signal, DeathSource.LOG, None, e.line)
                for e in record.events
                if e.kind is EventKind.SIGNAL_DEATH and e.pid is not None and e.signal is not None
            ]
            confirming += [
                Death(c.pid, c.signal, DeathSource.CORE, None, f"core of pid {c.pid}: {c.file}")
                for c in record.cores
                if c.pid is not None and c.signal is not None
            ]
            for death in confirming:
                seen = first.get(death.pid)
                if seen is not None and seen[1][0].signal == death.signal:
                    seen[1].append(death)
        return [self._event(record, deaths) for record, deaths in first.values()]

    def _event(self, record: CycleRecord, deaths: list[Death]) -> CrashEvent:
        pid, number = deaths[0].pid, deaths[0].signal
        sources = tuple(dict.fromkeys(d.source for d in deaths))
        log_line = next((d.line for d in deaths if d.source is DeathSource.LOG), deaths[0].line or None)
        core = self.kept.get(pid)
        abort = next((e.line for e in record.events if e.kind in (EventKind.NATIVE_ABORT, EventKind.FATAL_ERROR)), None)
        if core is None:
            python = _faulthandler_frame(record.faulthandler)
            sig = f"{python} (Python; no core) | {signal_name(number)}" if python else None
            return CrashEvent(
                record.cycle,
                pid,
                number,
                sources,
                log_line,
                record.faulthandler,
                no_core=self.plan.core_note or "no core was written for this pid",
                signature=sig,
            )
        trace = self._backtrace(core, abort)
        found = trace.culprit or trace.python_frame or trace.runtime_frame
        sig = f"{found} | {signal_name(number)}" if found else None
        return CrashEvent(
            record.cycle,
            pid,
            number,
            sources,
            log_line,
            record.faulthandler,
            core=str(core.path.relative_to(self.plan.run_dir)),
            backtrace=trace,
            signature=sig,
        )

    def _backtrace(self, core: CoreFile, abort: str | None) -> Backtrace:
        app = self.plan.app_dir

        def names_a_frame(threads: list[Thread]) -> str | None:
            found = signature.culprit(threads, core.identity.thread, app)
            named = found.frame or found.python_frame or found.runtime_frame
            return None if named else "names no frame of the faulting thread"

        stacks = core_stacks(core.path, self.plan.executable, names_a_frame, self.python_gdb)
        folder = self.plan.run_dir / "backtraces"
        folder.mkdir(exist_ok=True)
        file = folder / f"{core.path.name}.txt"
        storage.write_atomic(file, f"# {stacks.tool}; tried: {'; '.join(stacks.tried)}\n{stacks.text}")
        found = signature.culprit(stacks.threads, core.identity.thread, app)
        return Backtrace(
            tool=stacks.tool,
            file=str(file.relative_to(self.plan.run_dir)),
            faulting_thread=found.thread,
            culprit=found.describe(),
            runtime_frame=found.runtime(),
            culprit_object=found.frame.obj or None if found.frame else None,
            python_frame=found.python_frame.within(app) if found.python_frame else None,
            app_frame=found.app_frame.within(app) if found.app_frame else None,
            abort_message=abort,
            problems=tuple(stacks.tried),
        )


def _faulthandler_frame(lines: Sequence[str]) -> str | None:
    """The innermost Python frame faulthandler printed (it prints the most recent call first)."""
    for line in lines:
        match = _FAULTHANDLER_FRAME.match(line)
        if match:
            return f"{match['file'].rsplit('/', 1)[-1]}:{match['line']} in {match['function']}"
    return None
