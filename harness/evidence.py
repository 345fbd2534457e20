"""A run's crash and hang evidence: cores kept per crash, backtraces from them, stack dumps of hung
processes taken before anything kills them, and the faulthandler lines the crash left in the log.

Files go into the run's folder (``cores/``, ``backtraces/``, ``stacks/``); the records returned here
go into the cycle records and the run's summary, so a report can name the crashing function.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import results, stacks
from harness.cores import CoreCollector, CoreFile

STACK_LINES_IN_SUMMARY = 8


@dataclass(frozen=True)
class EvidencePlan:
    run_dir: Path
    core_dirs: tuple[Path, ...]  # empty: cores cannot be collected here (the reason is in core_note)
    core_note: str | None
    httpd: str
    python_executable: str
    app_dir: str


class RunEvidence:
    def __init__(self, plan: EvidencePlan) -> None:
        self.plan = plan
        self.collector = CoreCollector(plan.core_dirs, plan.run_dir / "cores") if plan.core_dirs else None
        self.core_cycle: dict[str, int] = {}  # kept core file name -> cycle it was collected in
        self.cores: list[CoreFile] = []

    def start(self) -> None:
        if self.collector is not None:
            self.collector.start()

    def collect_cores(self, cycle: int) -> list[dict[str, object]]:
        """Cores of processes that died by now, moved into the run's folder; attributed to `cycle`."""
        if self.collector is None:
            return []
        found = self.collector.collect()
        return self._keep(found, cycle)

    def _keep(self, found: Sequence[CoreFile], cycle: int) -> list[dict[str, object]]:
        for core in found:
            self.core_cycle[core.path.name] = cycle
            self.cores.append(core)
        return [core.to_json() for core in found]

    def dump_hung(self, cycle: int, pids: Collection[int], reason: str) -> list[dict[str, object]]:
        """Stacks of every thread (every interpreter) of the processes that may be hung, now."""
        folder = self.plan.run_dir / "stacks"
        dumps: list[dict[str, object]] = []
        if pids:
            folder.mkdir(exist_ok=True)
        for pid in sorted(pids):
            tool, text = stacks.live_stacks(pid)
            file = folder / f"cycle-{cycle:03d}-pid-{pid}.txt"
            results.write_atomic(file, f"# {reason}\n# {tool} dump of pid {pid}\n{text}")
            app = app_frames(text, self.plan.app_dir)
            dumps.append(
                {"pid": pid, "tool": tool, "file": str(file.relative_to(self.plan.run_dir)), "app_frames": app}
            )
        return dumps

    def finish(self, last_cycle: int, signal_deaths: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """After the server stopped: the remaining cores, a backtrace for each, and one crash event
        per death by signal (with its core and backtrace when there is one)."""
        if self.collector is not None:
            self._keep(self.collector.close(), last_cycle)
        by_pid = {core.identity.pid: core for core in self.cores}
        events: list[dict[str, Any]] = []
        seen: set[int | None] = set()
        for death in signal_deaths:
            pid = death.get("pid")
            if pid in seen:
                continue
            seen.add(pid)
            events.append(self._event(death, by_pid.pop(pid, None)))
        for core in by_pid.values():  # a core with no death line (a process of the tree Apache never reaped)
            events.append(self._event({"pid": core.identity.pid, "signal": core.identity.signal,
                                       "cycle": self.core_cycle.get(core.path.name)}, core))  # fmt: skip
        return events

    def _event(self, death: dict[str, Any], core: CoreFile | None) -> dict[str, Any]:
        event: dict[str, Any] = {
            "cycle": death.get("cycle"),
            "pid": death.get("pid"),
            "signal": death.get("signal"),
            "log_line": death.get("line"),
            "faulthandler": death.get("faulthandler", []),
            "core": None,
            "backtrace": None,
        }
        if core is None:
            event["no_core"] = self.plan.core_note or "no core was written for this pid"
            return event
        event["core"] = str(core.path.relative_to(self.plan.run_dir))
        trace = stacks.core_backtrace(
            core.path,
            self.plan.httpd,
            core.identity.thread,
            self.plan.app_dir,
            stacks.python_gdb_script(self.plan.python_executable),
        )
        folder = self.plan.run_dir / "backtraces"
        folder.mkdir(exist_ok=True)
        file = folder / f"{core.path.name}.txt"
        results.write_atomic(file, trace.text or "\n".join(trace.problems))
        event["backtrace"] = {**trace.to_json(), "file": str(file.relative_to(self.plan.run_dir))}
        return event


def app_frames(text: str, app_dir: str) -> list[str]:
    """The innermost frame in the app's own files, per thread of a stack dump (pystack or py-spy)."""
    found = []
    for frames in stacks.threads(text).values():
        mine = [f for f in frames if f.kind == "Python" and f.file.startswith(app_dir)]
        if mine:
            found.append(mine[-1].within(app_dir))
    if not found:  # py-spy's format: "    function (file:line)", innermost first
        for line in text.splitlines():
            if app_dir in line:
                found.append(line.strip().replace(app_dir + "/", ""))
                break
    return found[:STACK_LINES_IN_SUMMARY]
