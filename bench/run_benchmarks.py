"""Benchmarks of the harness against hand-made baselines, every figure measured in one invocation.

Run from the checkout (as root, like the harness here; Apache runs as www-data):

    .venv/bin/python bench/run_benchmarks.py           # about 4-5 minutes on 2 cores (budget: 15)
    .venv/bin/python bench/run_benchmarks.py --quick   # about 2 minutes, fewer cycles and rounds

It writes BENCHMARKS.md: a table of figures with their goals, whether each is met (and by how much it
misses, with why), the machine's facts and the command that produced it. Everything runs against
real servers: the harness as a user runs it, a hand-written touch-and-curl shell loop
(bench/loop/touch_and_curl.sh) on a server of the same cell as the same user, the bare embedding
driver, and pytest with the harness's plugin. Everything started here is stopped and removed again,
also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import pwd
import re
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

import psutil

from harness.cell import DEFAULT_MOD_WSGI, base_interpreter, describe_python, ensure_cell, find_apache

REPO = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO / "bench"
LOOP_DIR = BENCH_DIR / "loop"
CRASH_SCENARIO = BENCH_DIR / "scenarios" / "crash_stamp"
HELLO_SCENARIO = REPO / "scenarios" / "hello"
HARNESS_PYTHON = REPO / ".venv" / "bin" / "python"
DRIVER_HOST = REPO / "harness" / "embed" / "driver_host.py"
SERVER_USER = "www-data"
HELLO_BODY = "hello from mod_wsgi\n"
THROUGHPUT_MECHANISMS = "script-touch,sigusr1,apache-graceful,maximum-requests"
DEATH_LINE = re.compile(r"BENCH-DEATH pid=(\d+) t=([0-9.]+)")
APACHE_TIME = re.compile(r"^\[(\w{3} \w{3} +\d{1,2} \d{2}:\d{2}:\d{2}\.\d{6} \d{4})\]")
CHILD_STOP_WAIT = 30.0  # a harness asked to stop stops its servers first: give it time to


class BenchError(Exception):
    """A benchmark could not produce its figure; the message says why, and the report shows it."""


# --- profile and shared state ----------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    """How much of each benchmark to run: --quick trades precision for a ~3 minute run."""

    name: str
    loop_cycles: int  # reloads of each shell loop and of each harness run in benchmarks 1 and 2
    overhead_rounds: int  # shell loop / harness pairs, interleaved so that drift hits both alike
    crash_cycles: int  # reloads of the Apache crash run (its first load crashes too)
    driver_crash_runs: int  # one crash each: a driver process dies at its first crash
    driver_cycles: int
    driver_rounds: int
    wide_jobs: bool  # also 8 runs with --jobs 8: reloads wait on Apache's tick, not on the 2 cores
    pip_warm_cold: bool  # also a cold cell with pip's own wheel cache left in place
    pytest_mechanisms: str
    pytest_cycles: int  # reloads per pytest item: pytest's and xdist's fixed start-up cost weighs less with more


QUICK = Profile("quick", 10, 1, 9, 10, 100, 1, False, False, "sigusr1,script-touch", 1)
FULL = Profile("full", 20, 2, 11, 12, 300, 2, True, True, "sigusr1,script-touch", 4)


@dataclass
class Bench:
    """What every benchmark shares, and everything that must be cleaned up at the end."""

    profile: Profile
    work: Path  # scratch folder under /var/tmp (0755: the server user walks through it)
    runtime: Path  # MOD_WSGI_HARNESS_RUNTIME of every harness run started here
    user: pwd.struct_passwd
    express: Path  # the cell's mod_wsgi-express, the same cell the harness runs use
    children: set[subprocess.Popen[str]] = field(default_factory=set)
    loop_dirs: list[Path] = field(default_factory=list)  # shell-loop folders: their servers are stopped at the end
    caches: list[Path] = field(default_factory=list)  # cold cell caches, always removed (hundreds of MB)
    extra_runtimes: set[Path] = field(default_factory=set)  # the pytest plugin's, one per worker
    cell_info: dict[str, Any] = field(default_factory=dict)


@dataclass
class Figure:
    """One row of the table in BENCHMARKS.md."""

    number: str
    name: str
    value: str
    goal: str = "-"
    met: bool | None = None  # None: reported only, no goal
    note: str = ""


@dataclass
class Section:
    """A benchmark's figures and the details behind them."""

    title: str
    figures: list[Figure] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    seconds: float = 0.0


# --- processes -----------------------------------------------------------------------------------


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str
    wall: float  # seconds from launch to exit
    launched: float  # time.time() at launch, to compare with the harness's own timestamps
    cpu: float = 0.0  # user + system seconds of the child and every descendant it (or they) reaped


def run_child(
    bench: Bench, argv: Sequence[str], *, timeout: float, env: dict[str, str] | None = None, cwd: Path = REPO
) -> Finished:
    """Run one command in a session of its own and wait for it. Ctrl-C at this script reaches only
    this script; the child is then asked to stop with SIGTERM (a harness stops its servers on it) and
    killed only if it does not."""
    launched = time.time()
    started = time.monotonic()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen(
        list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
        env=env, cwd=cwd, start_new_session=True,
    )  # fmt: skip
    bench.children.add(proc)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_child(proc)
        raise BenchError(f"{Path(argv[0]).name} ... took more than {timeout:.0f}s and was stopped") from None
    except BaseException:
        stop_child(proc)
        raise
    finally:
        bench.children.discard(proc)
    return Finished(proc.returncode, stdout, stderr, time.monotonic() - started, launched, children_cpu(usage))


def children_cpu(since: resource.struct_rusage) -> float:
    """User + system seconds of reaped descendants since `since`."""
    now = resource.getrusage(resource.RUSAGE_CHILDREN)
    return now.ru_utime - since.ru_utime + now.ru_stime - since.ru_stime


def cpu_text(done: Finished, busy: float) -> str:
    """How busy the machine was and how much of that was this child: the machine is shared, and
    another user's load changes every figure that waits on a CPU."""
    cores = os.cpu_count() or 1
    ours = done.cpu / done.wall
    others = max(0.0, busy * cores - ours)
    return f"CPU: machine {busy:.0%} busy of {cores} cores, this run {ours:.2f} cores, other processes ~{others:.2f}"


def stop_child(proc: subprocess.Popen[str]) -> None:
    """SIGTERM to the child's process group, then SIGKILL if it is still there after CHILD_STOP_WAIT.
    SIGTERM, not SIGINT: the harness stops its servers on either, and a shell started from a
    background job ignores SIGINT."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=CHILD_STOP_WAIT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def as_server_user(user: pwd.struct_passwd) -> list[str]:
    """The prefix that runs a command as the server user, as the harness runs its servers (as root)."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups"]


def chown_tree(folder: Path, user: pwd.struct_passwd) -> None:
    """Hand a folder to the server user, as the harness hands it each server root."""
    if os.geteuid() != 0:
        return
    for path in (folder, *folder.rglob("*")):
        os.chown(path, user.pw_uid, user.pw_gid, follow_symlinks=False)


def server_env(home: Path, **extra: str) -> dict[str, str]:
    """The clean environment the harness gives its servers (harness/server.py _env)."""
    return {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONFAULTHANDLER": "1",
        **extra,
    }


def free_port() -> int:
    """A free loopback port, chosen the way the harness chooses one."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def kill_by_argument(needle: str) -> int:
    """Stop the processes whose command line names `needle` (a server root of ours): SIGTERM, then
    SIGKILL. Used for shell-loop servers left running by an interrupted loop."""
    procs = []
    for proc in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if any(needle in arg for arg in proc.info["cmdline"] or ()):
                procs.append(proc)
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=10)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=5)
    return len(procs)


class CpuMeter:
    """Share of all cores busy (any process, ours or not) between start and stop, from /proc/stat:
    tells waiting (idle CPUs) from contention (busy CPUs) when a figure misses."""

    def __init__(self) -> None:
        self.busy = 0.0
        self._start = self._read()

    @staticmethod
    def _read() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return sum(fields) - idle, sum(fields)

    def stop(self) -> float:
        busy, total = self._read()
        self.busy = (busy - self._start[0]) / max(1, total - self._start[1])
        return self.busy


# --- the harness -----------------------------------------------------------------------------------


@dataclass
class HarnessRun:
    """One `python -m harness run` invocation and what it wrote."""

    session: Path
    runs: dict[str, dict[str, Any]]
    finished: Finished
    cpu_busy: float

    def cycles(self, run_id: str) -> list[dict[str, Any]]:
        path = self.session / run_id / "cycles.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def reloads(self, run_id: str) -> list[dict[str, Any]]:
        return [c for c in self.cycles(run_id) if c["phase"] == "reload"]

    def first(self) -> dict[str, Any]:
        return next(iter(self.runs.values()))


def harness_argv(args: Sequence[str], results: Path) -> list[str]:
    return [str(HARNESS_PYTHON), "-m", "harness", "run", *args, "--results", str(results)]


def run_harness(
    bench: Bench, label: str, args: Sequence[str], env: dict[str, str] | None = None, want: str | None = None
) -> HarnessRun:
    """Run the harness as a user would, with its results and server roots in our scratch space;
    `want` is the verdict every run must have (a benchmark of a broken run means nothing)."""
    results = bench.work / "results" / label
    full_env = {**os.environ, "MOD_WSGI_HARNESS_RUNTIME": str(bench.runtime), **(env or {})}
    meter = CpuMeter()
    done = run_child(bench, harness_argv(args, results), timeout=1200, env=full_env)
    busy = meter.stop()
    sessions = sorted(p.parent for p in results.glob("*/summary.json"))
    if done.returncode not in (0, 1) or not sessions:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise BenchError(f"harness run ({label}) exited {done.returncode}: {tail}")
    summary = json.loads((sessions[-1] / "summary.json").read_text())
    runs = {r["run"]: r for r in summary["runs"]}
    wrong = [f"{r['run']}: {r['verdict']}" for r in runs.values() if want is not None and r["verdict"] != want]
    if wrong:
        raise BenchError(f"harness run ({label}) gave unexpected verdicts ({', '.join(wrong)}), expected {want}")
    if not bench.cell_info:
        bench.cell_info = dict(next(iter(runs.values()))["cell"])
    return HarnessRun(sessions[-1], runs, done, busy)


def harness_cell_env() -> Path:
    """The cell the harness uses by default (its own interpreter, default mod_wsgi, Apache on the
    PATH), found or built the way the harness finds or builds it."""
    cell = ensure_cell(describe_python(base_interpreter()), DEFAULT_MOD_WSGI, find_apache())
    env_dir = getattr(cell, "env_dir", None)
    if env_dir is None:
        raise BenchError(f"the harness's default cell cannot be built here: {getattr(cell, 'reason', cell)}")
    return Path(env_dir)


def clean_runtime(runtime: Path) -> None:
    """`harness clean` for one runtime folder (ours only: roots of live harnesses elsewhere are not
    in it), then the folder itself."""
    if not runtime.exists():
        return
    env = {**os.environ, "MOD_WSGI_HARNESS_RUNTIME": str(runtime)}
    argv = [str(HARNESS_PYTHON), "-m", "harness", "clean"]
    subprocess.run(argv, env=env, cwd=REPO, capture_output=True, check=False, timeout=120)
    shutil.rmtree(runtime, ignore_errors=True)


# --- statistics ------------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


def ratio_note(value: float, limit: float, lower_is_better: bool) -> str:
    """'misses by N%' for a figure past its goal."""
    miss = value / limit - 1 if lower_is_better else 1 - value / limit
    return f"misses by {abs(miss) * 100:.0f}%"


def apache_time(line: str) -> float | None:
    """Epoch seconds of an Apache error_log line's own timestamp (local time, microseconds)."""
    found = APACHE_TIME.match(line)
    if not found:
        return None
    return datetime.strptime(re.sub(" +", " ", found.group(1)), "%a %b %d %H:%M:%S.%f %Y").timestamp()


def deaths(error_log: Path) -> dict[int, float]:
    """pid -> the moment the crash_stamp app stamped just before it crashed."""
    found = {}
    for line in error_log.read_text(errors="replace").splitlines():
        match = DEATH_LINE.search(line)
        if match:
            found[int(match.group(1))] = float(match.group(2))
    return found


# --- 1 and 2: the shell loop, harness overhead, throughput -------------------------------------


@dataclass
class LoopResult:
    """One touch-and-curl loop: its timestamps as the loop itself took them."""

    cycles: int
    start: float
    ready: float
    loop_end: float
    end: float
    per_cycle: list[float]  # touch to confirmed reload, each cycle
    polls: int  # extra requests needed until a new daemon answered


def shell_loop(bench: Bench, cycles: int) -> LoopResult:
    """Set up and run bench/loop/touch_and_curl.sh as the server user on a server of its own."""
    folder = Path(tempfile.mkdtemp(prefix="loop-", dir=bench.work))
    (folder / "app").mkdir()
    shutil.copyfile(LOOP_DIR / "pid_app.wsgi", folder / "app" / "app.wsgi")
    shutil.copyfile(LOOP_DIR / "touch_and_curl.sh", folder / "touch_and_curl.sh")
    folder.chmod(0o755)
    chown_tree(folder, bench.user)
    bench.loop_dirs.append(folder)
    argv = [*as_server_user(bench.user), "bash", str(folder / "touch_and_curl.sh"), str(bench.express), str(folder),
            str(free_port()), str(cycles)]  # fmt: skip
    done = run_child(bench, argv, timeout=60 + 25 * cycles, env=server_env(folder), cwd=folder)
    return parse_loop(done, cycles)


def parse_loop(done: Finished, cycles: int) -> LoopResult:
    """The loop's stdout: one 'cycle I BEGAN CONFIRMED PID' line per reload, then 'result k=v ...'."""
    per_cycle = []
    result: dict[str, float] = {}
    for line in done.stdout.splitlines():
        parts = line.split()
        if parts[:1] == ["cycle"]:
            per_cycle.append(float(parts[3]) - float(parts[2]))
        elif parts[:1] == ["result"]:
            result = {k: float(v) for k, v in (p.split("=", 1) for p in parts[1:])}
        elif line.startswith("error="):
            raise BenchError(f"shell loop failed: {line[6:]}")
    if done.returncode != 0 or not result or len(per_cycle) != cycles:
        raise BenchError(f"shell loop exited {done.returncode} after {len(per_cycle)} of {cycles} cycles")
    return LoopResult(cycles, result["start"], result["ready"], result["loop_end"], result["end"], per_cycle,
                      int(result["polls"]))  # fmt: skip


@dataclass
class HarnessTiming:
    """Per-cycle times of one single-run harness invocation, from its own cycle timestamps."""

    cycles: int
    in_cycle: list[float]  # trigger_sent -> outcome_recorded, each reload
    cycle_to_cycle: float  # (last reload's outcome_recorded - load's outcome_recorded) / N
    whole: float  # invocation wall time / N (start-up, cell check, server start and stop included)


def harness_timing(run: HarnessRun) -> HarnessTiming:
    run_id = next(iter(run.runs))
    records = run.cycles(run_id)
    load = next(c for c in records if c["phase"] == "load")
    reloads = [c for c in records if c["phase"] == "reload"]
    stamps = [c["timestamps"] for c in reloads]
    in_cycle = [s["outcome_recorded"] - s["trigger_sent"] for s in stamps]
    span = stamps[-1]["outcome_recorded"] - load["timestamps"]["outcome_recorded"]
    return HarnessTiming(len(reloads), in_cycle, span / len(reloads), run.finished.wall / len(reloads))


@dataclass
class OverheadData:
    loops: list[LoopResult]
    runs: list[HarnessTiming]

    def loop_in_cycle(self) -> float:
        return mean([t for loop in self.loops for t in loop.per_cycle])

    def loop_c2c(self) -> float:
        return sum(lp.loop_end - lp.ready for lp in self.loops) / sum(lp.cycles for lp in self.loops)

    def loop_whole(self) -> float:
        return sum(lp.end - lp.start for lp in self.loops) / sum(lp.cycles for lp in self.loops)

    def loop_rate_whole(self) -> float:
        return 1 / self.loop_whole()

    def harness_in_cycle(self) -> float:
        return mean([t for run in self.runs for t in run.in_cycle])

    def harness_c2c(self) -> float:
        return sum(r.cycle_to_cycle * r.cycles for r in self.runs) / sum(r.cycles for r in self.runs)

    def harness_whole(self) -> float:
        return sum(r.whole * r.cycles for r in self.runs) / sum(r.cycles for r in self.runs)


def bench_overhead(bench: Bench, section: Section) -> OverheadData:
    """1: the harness's time per reload cycle against the shell loop doing the same reloads, in
    alternating pairs so that a change in the machine's load hits both."""
    cycles = bench.profile.loop_cycles
    data = OverheadData([], [])
    for index in range(bench.profile.overhead_rounds):
        data.loops.append(shell_loop(bench, cycles))
        args = ["--scenario", "hello", "--mechanism", "script-touch", "--cycles", str(cycles), "--jobs", "1"]
        data.runs.append(harness_timing(run_harness(bench, f"overhead-{index}", args, want="clean")))
    rows = [
        ("per reload, trigger to outcome (mean)", data.harness_in_cycle(), data.loop_in_cycle(), "1a"),
        ("per reload, cycle to cycle", data.harness_c2c(), data.loop_c2c(), "1b"),
        ("whole run / N, start and stop included", data.harness_whole(), data.loop_whole(), "1c"),
    ]
    for name, harness_s, loop_s, number in rows:
        value = harness_s / loop_s
        met = value <= 1.10
        note = f"harness {harness_s:.3f} s, shell loop {loop_s:.3f} s"
        if not met:
            note += f"; {ratio_note(value, 1.10, True)}: " + overhead_why(number, data)
        section.figures.append(Figure(number, f"Harness overhead: {name}", f"{value:.3f}x", "<= 1.10x", met, note))
    section.details += overhead_details(data)
    return data


def overhead_why(number: str, data: OverheadData) -> str:
    """Where the harness's extra time goes, for a missed overhead figure."""
    if number == "1c":
        fixed = (data.harness_whole() - data.harness_c2c()) * data.runs[0].cycles
        loop_fixed = (data.loop_whole() - data.loop_c2c()) * data.loops[0].cycles
        return (
            f"fixed cost per invocation {fixed:.1f} s against the loop's {loop_fixed:.1f} s (Python start-up, cell "
            "check, setup-server, evidence and report writing), spread over only "
            f"{data.runs[0].cycles} cycles"
        )
    return "the harness reads and classifies the log, takes the process table and writes a record per cycle"


def overhead_details(data: OverheadData) -> list[str]:
    lines = [
        "| round | shell loop s/cycle (touch->new pid) | harness s/cycle (trigger->outcome) | shell loop wall "
        "| harness wall | extra polls in loop |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for index, (loop, run) in enumerate(zip(data.loops, data.runs)):
        lines.append(
            f"| {index + 1} | {spread(loop.per_cycle)} | {spread(run.in_cycle)} | {loop.end - loop.start:.2f} s "
            f"| {run.whole * run.cycles:.2f} s | {loop.polls} |"
        )
    return lines


def spread(values: Sequence[float]) -> str:
    return f"{mean(values):.3f} (min {min(values):.3f}, max {max(values):.3f})"


def bench_throughput(bench: Bench, section: Section, overhead: OverheadData | None) -> None:
    """2: reload cycles per second with --jobs 4 against the serial shell loop's. Like for like first:
    four copies of hello under script-touch, the loop's own mechanism. Then the mixed set (hello under
    four mechanisms), whose apache-graceful reloads take a tenth of a tick and so flatter the figure."""
    if overhead is None:
        raise BenchError("needs the shell loop of benchmark 1, which failed")
    cycles = str(bench.profile.loop_cycles)
    copies = ",".join(map(str, scenario_copies(bench, HELLO_SCENARIO, "hello", 4)))
    like = ["--scenario", copies, "--mechanism", "script-touch", "--cycles", cycles, "--jobs", "4"]
    mixed = ["--scenario", "hello", "--mechanism", THROUGHPUT_MECHANISMS, "--cycles", cycles, "--jobs", "4"]
    cases = [("2a", "throughput-j4", like, "--jobs 4, 4 script-touch runs", True),
             ("2b", "throughput-mixed", mixed, "--jobs 4, hello x " + THROUGHPUT_MECHANISMS, True)]  # fmt: skip
    if bench.profile.wide_jobs:
        wide = ",".join(map(str, scenario_copies(bench, HELLO_SCENARIO, "hello_w", 8)))
        args = ["--scenario", wide, "--mechanism", "script-touch", "--cycles", cycles, "--jobs", "8"]
        cases.append(("2c", "throughput-j8", args, "--jobs 8, 8 script-touch runs", True))
    for number, label, args, name, goal in cases:
        run = run_harness(bench, label, args, want="clean")
        figure, lines = throughput_figure(run, overhead, number, name)
        if not goal:
            figure.goal, figure.met = "-", None
        section.figures.append(figure)
        section.details += [*lines, ""]


@dataclass
class RunRate:
    run_id: str
    reloads: int
    seconds_per_cycle: float  # mean trigger -> outcome
    duration: float


def run_rates(run: HarnessRun) -> list[RunRate]:
    rates = []
    for run_id, summary in sorted(run.runs.items()):
        reloads = run.reloads(run_id)
        times = [c["timestamps"]["outcome_recorded"] - c["timestamps"]["trigger_sent"] for c in reloads]
        rates.append(RunRate(run_id, len(reloads), mean(times), float(summary["duration"])))
    return rates


def steady_rate(run: HarnessRun) -> float:
    """Reloads per second between the first reload's trigger and the last reload's outcome, over all runs."""
    stamps = [c["timestamps"] for run_id in run.runs for c in run.reloads(run_id)]
    span = max(s["outcome_recorded"] for s in stamps) - min(s["trigger_sent"] for s in stamps)
    return len(stamps) / span


def throughput_figure(run: HarnessRun, overhead: OverheadData, number: str, label: str) -> tuple[Figure, list[str]]:
    rates = run_rates(run)
    total = sum(r.reloads for r in rates)
    whole = total / run.finished.wall
    loop_whole = overhead.loop_rate_whole()
    loop_steady = 1 / overhead.loop_c2c()
    value = whole / loop_whole
    steady = steady_rate(run) / loop_steady
    ceiling = sum(1 / r.seconds_per_cycle for r in rates) / loop_steady
    met = value >= 4.0
    note = (
        f"{whole:.2f} reloads/s over the whole invocation vs the loop's {loop_whole:.2f}/s (start and stop "
        f"included); steady state {steady:.2f}x; {cpu_text(run.finished, run.cpu_busy)}"
    )
    fast = [r for r in rates if r.seconds_per_cycle < overhead.loop_c2c() / 2]
    if fast:
        names = ", ".join(f"{r.run_id} {r.seconds_per_cycle:.2f} s" for r in fast)
        note += f"; not like for like: some reloads do not wait for Apache's tick ({names} per reload)"
    if not met:
        note += (
            f"; {ratio_note(value, 4.0, False)}: a reload is Apache's ~1 s maintenance tick (the loop's own cycle "
            f"is {overhead.loop_c2c():.2f} s), so N runs side by side give at most Nx; these runs' own cycle times "
            f"cap it at {ceiling:.2f}x, and start-up/stop ({run.finished.wall - total / steady_rate(run):.1f} s of "
            f"{run.finished.wall:.1f} s) is not overlapped with reloads"
        )
    lines = [
        f"Throughput ({label}): {total} reload cycles in {run.finished.wall:.2f} s; "
        f"{cpu_text(run.finished, run.cpu_busy)}.",
        "",
        "| run | reloads | s per reload (trigger->outcome) | run duration |",
        "| --- | --- | --- | --- |",
        *[f"| {r.run_id} | {r.reloads} | {r.seconds_per_cycle:.3f} | {r.duration:.2f} s |" for r in rates],
    ]
    figure = Figure(number, f"Throughput, {label}, vs the serial shell loop", f"{value:.2f}x", ">= 4x", met, note)
    return figure, lines


# --- 3: crash detection latency ------------------------------------------------------------------


@dataclass
class Crash:
    pid: int
    died: float  # the app's own stamp, a few microseconds before SIGSEGV
    recorded: float  # the cycle's outcome_recorded
    noticed: float | None  # Apache's AH00051/AH00052 line, by its own timestamp
    first_sign: float | None  # the failed probe came back

    @property
    def latency(self) -> float:
        return self.recorded - self.died


def bench_crash_latency(bench: Bench, section: Section) -> None:
    """3: from a process's death to the recorded crash, under Apache and under the embedding driver."""
    apache = apache_crashes(bench)
    section.figures.append(crash_figure("3a", "Crash detection latency, Apache daemon (sigusr1)", apache, True))
    driver = driver_crashes(bench)
    section.figures.append(crash_figure("3b", "Crash detection latency, interpreter-cycle driver", driver, False))
    section.details += crash_details(apache, driver)


def apache_crashes(bench: Bench) -> list[Crash]:
    """The crash_stamp app under sigusr1: the first load and every reload cycle crash once."""
    args = ["--scenario", str(CRASH_SCENARIO), "--mechanism", "sigusr1", "--cycles", str(bench.profile.crash_cycles),
            "--jobs", "1"]  # fmt: skip
    run = run_harness(bench, "crash-apache", args, want="crashed")
    run_id = next(iter(run.runs))
    stamps = {c["cycle"]: c["timestamps"] for c in run.cycles(run_id)}
    died = deaths(run.session / run_id / "error_log")
    crashes = []
    for crash in run.runs[run_id]["crashes"]:
        pid = int(crash["pid"])
        if pid not in died:
            continue
        cycle = stamps[int(crash["cycle"])]
        crashes.append(Crash(pid, died[pid], cycle["outcome_recorded"], apache_time(crash["log_line"]),
                             cycle["probe_answered"]))  # fmt: skip
    if len(crashes) < 10:
        raise BenchError(f"only {len(crashes)} crashes matched a death stamp (of {len(died)} stamps)")
    return crashes


def scenario_copies(bench: Bench, source: Path, stem: str, count: int) -> list[Path]:
    """Copies of a scenario under distinct names (runs of one invocation need distinct names): the
    driver stops at its first crash, so each driver crash is a run of its own, and parallel runs of
    one mechanism need one scenario each."""
    folder = bench.work / "copies"
    paths = []
    for index in range(count):
        name = f"{stem}_{index:02d}"
        target = folder / name
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        toml = target / "scenario.toml"
        toml.write_text(f'name = "{name}"\n' + toml.read_text())
        paths.append(target)
    return paths


def driver_crashes(bench: Bench) -> list[Crash]:
    """One interpreter-cycle run per copy, one at a time (the latency, not the throughput, is measured)."""
    paths = scenario_copies(bench, CRASH_SCENARIO, "crash_stamp", bench.profile.driver_crash_runs)
    args = ["--scenario", ",".join(map(str, paths)), "--mechanism", "interpreter-cycle", "--cycles", "1",
            "--jobs", "1"]  # fmt: skip
    run = run_harness(bench, "crash-driver", args, want="crashed")
    crashes = []
    for run_id in run.runs:
        died = deaths(run.session / run_id / "error_log")
        crashed = [c for c in run.cycles(run_id) if c["outcome"] == "crashed"]
        if len(died) == 1 and crashed:
            (pid, moment), stamps = next(iter(died.items())), crashed[0]["timestamps"]
            crashes.append(Crash(pid, moment, stamps["outcome_recorded"], None, stamps["probe_answered"]))
    if len(crashes) < 10:
        raise BenchError(f"only {len(crashes)} of {len(run.runs)} driver runs gave one death stamp and a crash")
    return crashes


def crash_figure(number: str, name: str, crashes: list[Crash], apache: bool) -> Figure:
    latencies = [c.latency for c in crashes]
    value = median(latencies)
    met = value <= 0.5
    note = f"max {max(latencies):.3f} s over {len(crashes)} crashes"
    if apache:
        notice = [c.noticed - c.died for c in crashes if c.noticed is not None]
        after = [c.recorded - c.noticed for c in crashes if c.noticed is not None]
        sign = [c.first_sign - c.died for c in crashes if c.first_sign is not None and c.first_sign >= c.died]
        note += (
            f"; death -> Apache's AH00051/52 line: median {median(notice):.3f} s (the parent reaps its daemons on its "
            f"1 s maintenance tick), AH00051 -> recorded: median {median(after):.3f} s; the failed probe is back "
            f"{median(sign):.3f} s after the death"
        )
        if not met:
            note += (
                f"; {ratio_note(value, 0.5, True)}: the harness waits for Apache's line to tell a signal death "
                "(crashed) from a dropped connection (raised), and Apache writes it on its tick"
            )
    elif not met:
        note += f"; {ratio_note(value, 0.5, True)}"
    return Figure(number, f"{name}, median", f"{value:.3f} s", "median <= 0.5 s", met, note)


def crash_details(apache: list[Crash], driver: list[Crash]) -> list[str]:
    lines = ["| where | pid | death -> recorded | death -> Apache's line | death -> failed probe back |",
             "| --- | --- | --- | --- | --- |"]  # fmt: skip
    for where, crashes in (("apache", apache), ("driver", driver)):
        for c in crashes:
            noticed = f"{c.noticed - c.died:.3f} s" if c.noticed is not None else "-"
            sign = f"{c.first_sign - c.died:.3f} s" if c.first_sign is not None and c.first_sign >= c.died else "-"
            lines.append(f"| {where} | {c.pid} | {c.latency:.3f} s | {noticed} | {sign} |")
    return lines


# --- 4: interpreter-cycle against the bare driver ----------------------------------------------


@dataclass
class DriverPair:
    cycles: int
    harness_wall: float
    harness_run: float  # the run's own duration (summary), without the invocation's start-up
    bare_wall: float


def bench_driver(bench: Bench, section: Section) -> None:
    """4: the harness's interpreter-cycle run against the same binary, host and config run directly."""
    cycles = bench.profile.driver_cycles
    pairs = []
    for index in range(bench.profile.driver_rounds):
        args = ["--scenario", "hello", "--mechanism", "interpreter-cycle", "--cycles", str(cycles), "--jobs", "1"]
        run = run_harness(bench, f"driver-{index}", args, want="clean")
        summary = run.first()
        command = summary["server"]["driver_command"]
        config = json.loads((run.session / summary["run"] / "driver.json").read_text())
        bare = bare_driver(bench, Path(command[0]), Path(command[3]), config, cycles)
        pairs.append(DriverPair(cycles, run.finished.wall, float(summary["duration"]), bare))
    total = sum(p.cycles for p in pairs)
    harness_rate = total / sum(p.harness_wall for p in pairs)
    run_rate = total / sum(p.harness_run for p in pairs)
    bare_rate = total / sum(p.bare_wall for p in pairs)
    note = (
        f"harness {harness_rate:.1f} cycles/s for the whole invocation ({run_rate:.1f}/s for the run itself), "
        f"bare driver {bare_rate:.1f} cycles/s; the driver does the same work either way, the difference is the "
        "harness's start-up, cell check and evidence (and CPU it takes from the driver on 2 cores)"
    )
    value = f"{bare_rate / harness_rate:.2f}x"
    section.figures.append(Figure("4", "interpreter-cycle: bare driver rate / harness rate", value, note=note))
    section.details += [
        "| round | cycles | harness invocation | harness run (summary) | bare driver |",
        "| --- | --- | --- | --- | --- |",
        *[
            f"| {i + 1} | {p.cycles} | {p.harness_wall:.2f} s | {p.harness_run:.2f} s | {p.bare_wall:.2f} s |"
            for i, p in enumerate(pairs)
        ],
    ]


def bare_driver(bench: Bench, binary: Path, program: Path, harness_config: dict[str, Any], cycles: int) -> float:
    """Lay out a root as harness/driver_run.py prepare() does, with the harness run's own driver.json
    (its root swapped for ours), run the binary as the server user with the environment
    EmbeddedDriver.start() gives it, check every answer, and return the wall time."""
    root = Path(tempfile.mkdtemp(prefix="driver-", dir=bench.work))
    app_dir = root / "app"
    shutil.copytree(HELLO_SCENARIO, app_dir, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copyfile(DRIVER_HOST, root / "driver_host.py")
    (root / "cores").mkdir()
    config = moved(harness_config, str(Path(harness_config["progress"]).parent), str(root))
    progress = Path(config["progress"])
    if Path(config["app_dir"]) != app_dir:
        raise BenchError(f"the harness's driver.json does not have the layout this copies: {harness_config}")
    (root / "driver.json").write_text(json.dumps(config, indent=2))
    progress.touch()
    root.chmod(0o700)
    chown_tree(root, bench.user)
    env = server_env(root, PYTHONDONTWRITEBYTECODE="1", WH_DRIVER_CONFIG=str(root / "driver.json"))
    argv = [*as_server_user(bench.user), str(binary), "interpreter-cycle", str(cycles), str(program),
            str(root / "driver_host.py"), str(progress)]  # fmt: skip
    done = run_child(bench, argv, timeout=600, env=env, cwd=app_dir)
    check_bare(done, progress, cycles)
    return done.wall


def moved(value: Any, old: str, new: str) -> Any:
    """A JSON value with every path under `old` moved under `new`."""
    if isinstance(value, str):
        return new + value[len(old) :] if value == old or value.startswith(old + "/") else value
    if isinstance(value, list):
        return [moved(item, old, new) for item in value]
    if isinstance(value, dict):
        return {key: moved(item, old, new) for key, item in value.items()}
    return value


def check_bare(done: Finished, progress: Path, cycles: int) -> None:
    """The bare driver must have done every cycle and answered right, or its time means nothing."""
    records = [json.loads(line) for line in progress.read_text().splitlines() if line.strip()]
    answers = [r for r in records if r.get("step") == "done"]
    good = [r for r in answers if [p.get("body") for p in r["probes"]] == [HELLO_BODY]]
    if done.returncode != 0 or len(good) != cycles + 1:
        raise BenchError(f"bare driver exited {done.returncode} with {len(good)} good answers of {cycles + 1}")


# --- 5: cell set-up, cold and warm -------------------------------------------------------------------


def bench_cell(bench: Bench, section: Section) -> None:
    """5: preparing the cell with an empty cache (mod_wsgi compiled) and again with it filled."""
    cache = Path(tempfile.mkdtemp(prefix="whb-cache-", dir="/var/tmp"))
    cache.chmod(0o755)
    bench.caches.append(cache)
    no_pip_cache = {"MOD_WSGI_HARNESS_CACHE": str(cache), "PIP_NO_CACHE_DIR": "1"}
    cold = cell_run(bench, "cell-cold", no_pip_cache, True)
    built = build_evidence(cache)
    warm = cell_run(bench, "cell-warm", no_pip_cache, False)
    note = (
        f"cold {cold[0]:.1f} s (no pip cache either: pip downloads the sdist and compiles mod_wsgi; its log says "
        f"'{built}'), warm {warm[0]:.2f} s; whole run cold {cold[1]:.1f} s, warm {warm[1]:.1f} s"
    )
    rows = [f"| cold, no pip cache | {cold[0]:.2f} s | {cold[1]:.2f} s |",
            f"| warm | {warm[0]:.2f} s | {warm[1]:.2f} s |"]  # fmt: skip
    if bench.profile.pip_warm_cold:
        other = Path(tempfile.mkdtemp(prefix="whb-cache-", dir="/var/tmp"))
        other.chmod(0o755)
        bench.caches.append(other)
        wheel = cell_run(bench, "cell-cold-wheel", {"MOD_WSGI_HARNESS_CACHE": str(other)}, True)
        note += f"; cold with pip's wheel cache in place {wheel[0]:.1f} s ('{build_evidence(other)}')"
        rows.append(f"| cold, pip's wheel cache in place | {wheel[0]:.2f} s | {wheel[1]:.2f} s |")
    section.figures.append(Figure("5", "Cell set-up: cold / warm", f"{cold[0] / warm[0]:.0f}x", note=note))
    section.details += [
        "Cell preparation = the run's own start (summary `started`) minus the invocation's launch: Python start-up, "
        "cleaning, finding Apache and the interpreter, building or finding the cell, checking the server user.",
        "",
        "| cache | cell preparation | whole run (hello, sigusr1, 1 cycle) |",
        "| --- | --- | --- |",
        *rows,
    ]


def build_evidence(cache: Path) -> str:
    """The lines of the cell's build log that show whether pip compiled mod_wsgi or took a built wheel."""
    marks = ("Downloading", "Running setup.py install", "Building wheel", "Using cached", "Processing")
    found = [
        line.strip()[:90]
        for log in cache.glob("cells/*/build.log")
        for line in log.read_text(errors="replace").splitlines()
        if "mod_wsgi" in line and any(mark in line for mark in marks) and "started" not in line
    ]
    return " / ".join(found[:2]) or "no build line found"


def cell_run(bench: Bench, label: str, env: dict[str, str], compiled: bool) -> tuple[float, float]:
    """(cell preparation seconds, whole invocation seconds) of one hello/sigusr1/1-cycle run."""
    args = ["--scenario", "hello", "--mechanism", "sigusr1", "--cycles", "1", "--jobs", "1"]
    run = run_harness(bench, label, args, env=env, want="clean")
    summary = run.first()
    if bool(summary["cell"].get("compiled_now")) is not compiled:
        raise BenchError(f"{label}: the cell was {'not ' if compiled else ''}compiled, which this figure needs")
    return float(summary["started"]) - run.finished.launched, run.finished.wall


# --- 6: pytest-xdist ---------------------------------------------------------------------------------


@dataclass
class PytestRun:
    finished: Finished
    outcome: str  # pytest's own last line, e.g. "2 passed, 6 xfailed in 40.12s"
    items: int
    busy: float
    durations: dict[str, float]  # node id -> seconds of its call (--durations=0)
    workers: dict[str, str]  # node id -> xdist worker that ran it (-v)

    def worker_busy(self) -> dict[str, float]:
        busy: dict[str, float] = {}
        for node, seconds in self.durations.items():
            worker = self.workers.get(node, "main")
            busy[worker] = busy.get(worker, 0.0) + seconds
        return busy


def best_split(durations: Sequence[float], workers: int = 2) -> float:
    """The shortest possible makespan of these items over `workers` workers (exhaustive for two)."""
    if workers != 2 or len(durations) > 16:
        return sum(durations) / workers
    total = sum(durations)
    best = total
    for mask in range(1 << len(durations)):
        part = sum(d for i, d in enumerate(durations) if mask >> i & 1)
        best = min(best, max(part, total - part))
    return best


def bench_pytest(bench: Bench, section: Section) -> None:
    """6: the same selection through the pytest plugin with -n 0 and with -n 2."""
    serial = pytest_run(bench, ["-n", "0"], "n0")
    parallel = pytest_run(bench, ["-n", "2", "--dist", "load"], "n2")
    value = serial.finished.wall / parallel.finished.wall
    met = value >= 1.7
    items = sorted(serial.durations.values(), reverse=True)
    split = best_split(items)
    busy = parallel.worker_busy()
    fixed = parallel.finished.wall - max(busy.values(), default=0.0)
    note = f"-n 0 {serial.finished.wall:.1f} s, -n 2 {parallel.finished.wall:.1f} s, {parallel.items} items"
    if not met:
        note += (
            f"; {ratio_note(value, 1.7, False)}: the items take {sum(items):.1f} s in all but unevenly "
            f"({', '.join(f'{d:.1f}' for d in items)} s), so the best split over 2 workers is {split:.1f} s; "
            f"-n 2 kept its workers busy {', '.join(f'{w} {t:.1f} s' for w, t in sorted(busy.items()))}, and "
            f"{fixed:.1f} s went to pytest's and xdist's start-up, collection and hand-offs (-n 0: "
            f"{serial.finished.wall - sum(items):.1f} s): ceiling here "
            f"{serial.finished.wall / (split + fixed):.2f}x; with -n 2 "
            + cpu_text(parallel.finished, parallel.busy).replace("CPU: ", "")
        )
    section.figures.append(Figure("6", "pytest plugin: -n 0 time / -n 2 time", f"{value:.2f}x", ">= 1.7x", met, note))
    section.details += [
        f"Selection: `--wh-scenario hello,segfault,raise,wrong --wh-mechanism {bench.profile.pytest_mechanisms} "
        f"--wh-cycles {bench.profile.pytest_cycles}` on `scenarios/`, each item a harness subprocess with --jobs 1.",
        "",
        "| workers | wall | pytest says | items' own time per worker | CPU |",
        "| --- | --- | --- | --- | --- |",
        *[
            f"| {label} | {run.finished.wall:.2f} s | {run.outcome} | "
            f"{', '.join(f'{w} {t:.1f} s' for w, t in sorted(run.worker_busy().items()))} | "
            f"{cpu_text(run.finished, run.busy)} |"
            for label, run in (("-n 0", serial), ("-n 2", parallel))
        ],
    ]


def pytest_run(bench: Bench, workers: list[str], label: str) -> PytestRun:
    """One pytest run of the plugin's selection; any failure makes the figure void."""
    folder = bench.work / f"pytest-{label}"
    folder.mkdir()
    argv = [str(HARNESS_PYTHON), "-m", "pytest", "--wsgi-harness", *workers, "-p", "no:cacheprovider", "-v",
            "--durations=0", "--rootdir", str(folder), "--wh-scenario", "hello,segfault,raise,wrong",
            "--wh-mechanism", bench.profile.pytest_mechanisms, "--wh-cycles", str(bench.profile.pytest_cycles),
            str(REPO / "scenarios")]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_XDIST_WORKER"}
    meter = CpuMeter()
    with track_runtimes(bench):
        done = run_child(bench, argv, timeout=1200, env=env, cwd=folder)
    busy = meter.stop()
    last = (done.stdout.strip().splitlines() or [""])[-1].strip("= ")  # "2 passed, 6 xfailed in 40.1s"
    counts = {kind: int(n) for n, kind in re.findall(r"(\d+) (passed|failed|xfailed|xpassed|errors?)", last)}
    if done.returncode != 0 or counts.get("failed") or counts.get("error") or counts.get("errors"):
        raise BenchError(f"pytest {' '.join(workers)} exited {done.returncode}: {last or 'no output'}")
    durations = {node: float(t) for t, node in re.findall(r"^([0-9.]+)s call +(\S+)", done.stdout, re.M)}
    placed = {node: w for w, node in re.findall(r"^\[(gw\d+)\] \[ *\d+%\] \w+ (\S+)", done.stdout, re.M)}
    return PytestRun(done, last, sum(counts.values()), busy, durations, placed)


@contextlib.contextmanager
def track_runtimes(bench: Bench) -> Iterator[None]:
    """Record the runtime folders the plugin makes (/tmp/mwh-<worker>-<pid>) for our pytest's own
    processes, so that the clean-up removes exactly those, and none of another user's pytest."""
    before = set(Path("/tmp").glob("mwh-*"))
    mine: set[int] = set()
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.2):
            for child in list(bench.children):
                with contextlib.suppress(psutil.Error):
                    mine.update(p.pid for p in psutil.Process(child.pid).children(recursive=True))
                    mine.add(child.pid)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        for path in set(Path("/tmp").glob("mwh-*")) - before:
            pid = path.name.rsplit("-", 1)[-1]
            if pid.isdigit() and int(pid) in mine:
                bench.extra_runtimes.add(path)


# --- the machine ---------------------------------------------------------------------------------------


def command_output(argv: Sequence[str]) -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=30, check=False)
        return (done.stdout or done.stderr).strip()
    return "unknown"


def background_load(seconds: float = 2.0) -> tuple[float, list[str]]:
    """CPU busy share with nothing of ours running, and the processes that used it: benchmarks on a
    shared machine must say what else was running."""
    procs = list(psutil.process_iter(["pid", "name", "cmdline", "username"]))
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.cpu_percent(None)
    meter = CpuMeter()
    time.sleep(seconds)
    busy = meter.stop()
    users = []
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            share = proc.cpu_percent(None)
            if share >= 10 and proc.pid != os.getpid():
                command = " ".join(proc.info["cmdline"] or [proc.info["name"] or "?"])[:90]
                users.append((share, f"{share:.0f}% `{command}` ({proc.info['username']})"))
    return busy, [text for _, text in sorted(users, reverse=True)[:5]]


def checkout_state() -> str:
    """The commit measured, and whether the harness's files had uncommitted changes at the time."""
    head = command_output(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    changed = command_output(["git", "-C", str(REPO), "status", "--porcelain", "--", "harness"]).splitlines()
    names = ", ".join(line.split(maxsplit=1)[-1] for line in changed if line.strip())
    return f"commit {head}" + (f", with uncommitted changes in {names}" if names else ", harness/ unchanged")


def machine_facts(bench: Bench, before: tuple[float, list[str]], after: tuple[float, list[str]]) -> list[str]:
    cpu_model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")), "unknown")  # fmt: skip
    cell = bench.cell_info
    express = command_output([str(bench.express.parent / "python"), "-c",
                              "import importlib.metadata as m; print(m.version('mod_wsgi'))"])  # fmt: skip
    load = os.getloadavg()
    return [
        f"- Cores: {os.cpu_count()} ({cpu_model}); kernel {platform.release()}",
        f"- Harness Python: {platform.python_version()} ({sys.executable})",
        f"- Cell Python (the servers'): {cell.get('python', '?')} ({cell.get('python_executable', '?')})",
        f"- Apache: {command_output(['apache2', '-v']).splitlines()[0]} ({cell.get('apache_origin', '?')})",
        f"- mod_wsgi: {express} (cell {cell.get('env_dir', bench.express.parent.parent)})",
        f"- Server user: {bench.user.pw_name}; the benchmark ran as uid {os.geteuid()}",
        f"- Checkout: {checkout_state()}",
        f"- Load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        f"- CPU busy with none of our work running: {before[0]:.0%} before, {after[0]:.0%} after "
        f"(other processes: {'; '.join(before[1] + after[1]) or 'none above 10%'})",
    ]


# --- report --------------------------------------------------------------------------------------------


def render(sections: list[Section], facts: list[str], command: str, mode: str, seconds: float) -> str:
    figures = [f for s in sections for f in s.figures]
    met = {True: "met", False: "**missed**", None: "reported"}
    lines = [
        "# Benchmarks",
        "",
        f"Produced by `{command}` ({mode} mode) on {time.strftime('%Y-%m-%d %H:%M %Z')}, in {seconds / 60:.1f} min. "
        "Every figure comes from this one invocation on this machine, against real servers (no mocks). "
        "The baseline for 1 and 2 is `bench/loop/touch_and_curl.sh`: one mod_wsgi-express server of the same cell, "
        "as the same user, with the harness's timing options, touching the script and curling until a new daemon pid "
        "answers with the right body.",
        "",
        "| # | figure | measured | goal | status | notes |",
        "| --- | --- | --- | --- | --- | --- |",
        *[f"| {f.number} | {f.name} | {f.value} | {f.goal} | {met[f.met]} | {f.note} |" for f in figures],
        "",
        "## Machine",
        "",
        *facts,
        "",
    ]
    for section in sections:
        lines += [f"## {section.title}", "", f"Took {section.seconds:.0f} s.", "", *section.details, ""]
    return "\n".join(lines).rstrip() + "\n"


# --- main ------------------------------------------------------------------------------------------------


def attempt(sections: list[Section], title: str, number: str, job: Callable[[Section], Any]) -> Any:
    """Run one benchmark; a failure becomes a row that says so instead of ending the others."""
    section = Section(title)
    sections.append(section)
    started = time.monotonic()
    print(f"[bench] {title} ...", file=sys.stderr, flush=True)
    try:
        return job(section)
    except BenchError as exc:
        section.figures.append(Figure(number, title, "error", met=False, note=str(exc)))
        return None
    finally:
        section.seconds = time.monotonic() - started
        print(f"[bench] {title}: {section.seconds:.0f} s", file=sys.stderr, flush=True)


def run_all(bench: Bench, only: set[str]) -> list[Section]:
    sections: list[Section] = []

    def wanted(key: str) -> bool:
        return not only or key in only

    overhead = None
    if wanted("1") or wanted("2"):
        overhead = attempt(sections, "1. Harness overhead per reload cycle", "1", lambda s: bench_overhead(bench, s))
    if wanted("2"):
        attempt(sections, "2. Throughput with --jobs 4", "2", lambda s: bench_throughput(bench, s, overhead))
    if wanted("3"):
        attempt(sections, "3. Crash detection latency", "3", lambda s: bench_crash_latency(bench, s))
    if wanted("4"):
        attempt(sections, "4. interpreter-cycle against the bare driver", "4", lambda s: bench_driver(bench, s))
    if wanted("5"):
        attempt(sections, "5. Cell set-up, cold and warm", "5", lambda s: bench_cell(bench, s))
    if wanted("6"):
        attempt(sections, "6. pytest-xdist -n 2 against -n 0", "6", lambda s: bench_pytest(bench, s))
    return sections


def cleanup(bench: Bench, keep: bool) -> None:
    """Stop whatever is still running and remove what we made; runs on success, error and Ctrl-C."""
    for proc in list(bench.children):
        stop_child(proc)
    for folder in bench.loop_dirs:
        kill_by_argument(f"{folder}/")
    for runtime in (bench.runtime, *sorted(bench.extra_runtimes)):
        clean_runtime(runtime)
    if bench.extra_runtimes:
        names = ", ".join(p.name for p in sorted(bench.extra_runtimes))
        print(f"[bench] removed the pytest plugin's runtime folders of our workers: {names}", file=sys.stderr)
    for cache in bench.caches:
        shutil.rmtree(cache, ignore_errors=True)
    if not keep:
        shutil.rmtree(bench.work, ignore_errors=True)


def interrupt_on_signals() -> None:
    """SIGTERM and SIGHUP end the run like Ctrl-C does, so the clean-up in main's finally runs."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="fewer cycles and rounds: about 2 minutes")
    parser.add_argument("--output", type=Path, default=REPO / "BENCHMARKS.md", help="where the report goes")
    parser.add_argument("--only", default="", help="comma list of benchmark numbers (1-6) to run; default all")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (harness results) for a look")
    return parser.parse_args(argv)


def the_command(argv: Sequence[str]) -> str:
    script = Path(__file__).resolve().relative_to(REPO)
    python = HARNESS_PYTHON.relative_to(REPO)
    return f"cd {REPO} && {shlex.join([str(python), str(script), *argv])}"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    profile = QUICK if args.quick else FULL
    interrupt_on_signals()
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="whb-", dir="/var/tmp"))
    work.chmod(0o755)
    runtime = Path(f"/tmp/whb-rt-{os.getpid()}")  # short: unix socket paths under it are limited to 108 bytes
    user = pwd.getpwnam(SERVER_USER) if os.geteuid() == 0 else pwd.getpwuid(os.geteuid())
    bench = Bench(profile, work, runtime, user, express=Path("/nonexistent"))
    try:
        bench.express = harness_cell_env() / "bin" / "mod_wsgi-express"
        before = background_load()
        meter = CpuMeter()
        ours = resource.getrusage(resource.RUSAGE_CHILDREN)
        measured = time.monotonic()
        sections = run_all(bench, {k.strip() for k in args.only.split(",") if k.strip()})
        overall = Finished(0, "", "", time.monotonic() - measured, 0.0, children_cpu(ours))
        busy = meter.stop()
        after = background_load()
        facts = [*machine_facts(bench, before, after), f"- While measuring: {cpu_text(overall, busy)} (on average)"]
        text = render(sections, facts, the_command(sys.argv[1:] if argv is None else argv), profile.name,
                      time.monotonic() - started)  # fmt: skip
        args.output.write_text(text)
        print(text)
        print(f"[bench] wrote {args.output}", file=sys.stderr)
    except KeyboardInterrupt:
        print("[bench] interrupted: stopping what was started", file=sys.stderr)
        return 130
    finally:
        cleanup(bench, args.keep)
        if args.keep:
            print(f"[bench] kept {work}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
