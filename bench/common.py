"""What every benchmark shares: running a command in a session of its own, running the harness and
reading its records, the machine's busy share, and the figures and sections the report is made of."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from harness.model.records import CycleRecord, SessionRecord

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
PYTHON = REPO / ".venv" / "bin" / "python"
CELL_PYTHON = "/usr/bin/python3.11"  # Debian's: no private mount view, the same cell as the live tests
STOP_WAIT = 30.0


class BenchError(Exception):
    """A benchmark that could not measure what it measures (said in one line, the rest go on)."""


@dataclass(frozen=True)
class Finished:
    returncode: int
    stdout: str
    stderr: str
    wall: float
    own_cpu: float  # the started process's own CPU seconds (its threads, not its children)


@dataclass(frozen=True)
class Figure:
    number: str
    name: str
    measured: str
    goal: str
    met: bool | None  # None: reported, no goal
    note: str = ""


@dataclass
class Section:
    title: str
    figures: list[Figure] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class Bench:
    work: Path
    quick: bool
    children: set[subprocess.Popen[str]] = field(default_factory=set)

    def folder(self, label: str) -> Path:
        path = self.work / label
        path.mkdir(parents=True, exist_ok=True)
        return path


def run(
    bench: Bench, argv: Sequence[str], timeout: float, cwd: Path = REPO, env: dict[str, str] | None = None
) -> Finished:
    """One command in a session of its own, its own CPU sampled until it ends (SIGTERM to its group
    on timeout or interrupt: a harness stops its servers on it)."""
    started = time.monotonic()
    child = subprocess.Popen(
        list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, cwd=cwd,
        env=env, start_new_session=True,
    )  # fmt: skip
    bench.children.add(child)
    sampler = _OwnCpu(child.pid)
    sampler.start()
    try:
        stdout, stderr = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(child)
        raise BenchError(f"{' '.join(argv[:4])} ... took more than {timeout:.0f} s and was stopped") from None
    except BaseException:
        stop(child)
        raise
    finally:
        sampler.done.set()
        sampler.join()
        bench.children.discard(child)
    return Finished(child.returncode, stdout, stderr, time.monotonic() - started, sampler.seconds)


class _OwnCpu(threading.Thread):
    """The process's own user+system seconds, read every 0.1 s until it exits (the last read before exit
    is the figure: children are not included, so Apache's and Python's start-up are not ours)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.seconds, self.done = pid, 0.0, threading.Event()

    def run(self) -> None:
        with contextlib.suppress(psutil.Error):
            process = psutil.Process(self.pid)
            while not self.done.is_set():
                times = process.cpu_times()
                self.seconds = times.user + times.system
                time.sleep(0.1)


def stop(child: subprocess.Popen[str]) -> None:
    if child.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGTERM)
    try:
        child.wait(timeout=STOP_WAIT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=10)


@dataclass(frozen=True)
class HarnessRun:
    """One ``python -m harness ...`` invocation and the session it wrote, as typed records."""

    finished: Finished
    session: Path
    record: SessionRecord
    busy: float  # share of all cores busy while it ran (anyone's work)

    def cycles(self, folder: str) -> list[CycleRecord]:
        path = self.session / folder / "cycles.jsonl"
        return [CycleRecord.from_json(json.loads(line), path) for line in path.read_text().splitlines() if line]

    @property
    def reloads(self) -> int:
        return sum(run.trials for run in self.record.runs)


def harness(bench: Bench, label: str, *args: str, timeout: float = 3600) -> HarnessRun:
    """The harness as a user runs it; its results go to a folder of their own."""
    results = bench.folder(label)
    meter = CpuMeter()
    done = run(bench, [str(PYTHON), "-m", "harness", *args, "--results", str(results)], timeout)
    busy = meter.stop()
    if done.returncode not in (0, 1):
        raise BenchError(f"{label}: harness exited {done.returncode}: {done.stderr.strip().splitlines()[-1:]}")
    sessions = sorted(p for p in results.iterdir() if (p / "summary.json").is_file())
    if not sessions:
        raise BenchError(f"{label}: the harness wrote no session under {results}")
    session = sessions[-1]
    record = SessionRecord.from_json(json.loads((session / "summary.json").read_text()), session)
    return HarnessRun(done, session, record, busy)


def copies(bench: Bench, source: Path, stem: str, count: int) -> list[Path]:
    """Copies of a scenario under distinct names: runs of one invocation need distinct run ids."""
    paths = []
    for index in range(count):
        target = bench.folder("scenarios") / f"{stem}_{index:02d}"
        if not target.exists():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        paths.append(target)
    return paths


class CpuMeter:
    """Share of all cores busy (any process) between start and stop, from /proc/stat."""

    def __init__(self) -> None:
        self._start = self._read()

    @staticmethod
    def _read() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return sum(fields) - idle, sum(fields)

    def stop(self) -> float:
        busy, total = self._read()
        return (busy - self._start[0]) / max(1, total - self._start[1])


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(head: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]


@contextlib.contextmanager
def timed(section: Section) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        section.seconds = time.monotonic() - started


def output(argv: Sequence[str]) -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=30, check=False)
        return (done.stdout or done.stderr).strip()
    return "unknown"


def machine_facts() -> list[str]:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")), "unknown")  # fmt: skip
    head = output(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    dirty = output(["git", "-C", str(REPO), "status", "--porcelain", "--", "harness", "bench"])
    load = os.getloadavg()
    return [
        f"- Cores: {os.cpu_count()} ({cpu}); {psutil.virtual_memory().total / 2**30:.0f} GiB memory",
        f"- Kernel: {platform.release()}",
        f"- Harness Python: {platform.python_version()} ({sys.executable})",
        f"- Apache: {output(['apache2', '-v']).splitlines()[0]}",
        f"- Checkout: commit {head}" + (", with uncommitted changes" if dirty else ""),
        f"- Load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
    ]
