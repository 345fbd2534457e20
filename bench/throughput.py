"""Reloads per second: the harness at --jobs 4, 8 and auto against the hand-written serial loop
(bench/loop/touch_and_curl.sh: one server, touch the script, curl until a new daemon answers), the
verdicts at auto against those at --jobs 1, and the harness's own CPU per reload."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

from bench.common import (
    BENCH,
    CELL_PYTHON,
    REPO,
    Bench,
    BenchError,
    Figure,
    HarnessRun,
    Section,
    copies,
    harness,
    run,
    table,
    timed,
)
from harness.model.outcome import Outcome

HELLO = REPO / "scenarios" / "hello"
LOOP = BENCH / "loop"
SERVER_USER = "www-data"
RATE_GOAL = 15.0  # reloads/s at --jobs auto
CPU_GOAL = 0.020  # harness CPU seconds per reload


@dataclass(frozen=True)
class Loop:
    reloads: int
    wall: float  # first touch to last new daemon

    @property
    def rate(self) -> float:
        return self.reloads / self.wall


def shell_loop(bench: Bench, express: Path, cycles: int) -> Loop:
    """The baseline, as the server user on a server of its own, with the cell's mod_wsgi-express."""
    folder = bench.folder("loop")
    (folder / "app").mkdir(exist_ok=True)
    shutil.copyfile(LOOP / "pid_app.wsgi", folder / "app" / "app.wsgi")
    user = pwd.getpwnam(SERVER_USER)
    for path in (folder, *folder.rglob("*")):
        os.chown(path, user.pw_uid, user.pw_gid)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    argv = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups",
            "bash", str(LOOP / "touch_and_curl.sh"), str(express), str(folder), str(port), str(cycles)]  # fmt: skip
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(folder), "LANG": "C.UTF-8"}
    done = run(bench, argv, timeout=60 + 25 * cycles, cwd=folder, env=env)
    began = [float(line.split()[2]) for line in done.stdout.splitlines() if line.startswith("cycle ")]
    ended = [float(line.split()[3]) for line in done.stdout.splitlines() if line.startswith("cycle ")]
    if done.returncode != 0 or len(began) != cycles:
        raise BenchError(
            f"shell loop: exit {done.returncode} after {len(began)} of {cycles} cycles: {done.stdout[-200:]}"
        )
    return Loop(cycles, ended[-1] - began[0])


def _verdicts(done: HarnessRun) -> dict[str, Outcome]:
    return {run.run: run.verdict for run in done.record.runs}


def measure(bench: Bench) -> Section:
    section = Section("Throughput and the harness's own CPU")
    runs, cycles = (16, 8) if bench.quick else (40, 15)
    with timed(section):
        warm = harness(bench, "warm", "run", "--scenario", str(HELLO), "--mechanism", "script-touch", "--cycles", "1",
                       "--python", CELL_PYTHON, "--no-controls")  # fmt: skip
        env_dir = warm.record.runs[0].cell.env_dir
        if not env_dir:
            raise BenchError("the warm-up run names no cell environment")
        express = Path(env_dir) / "bin" / "mod_wsgi-express"
        loop = shell_loop(bench, express, 10)
        scenario = ",".join(str(p) for p in copies(bench, HELLO, "hello", runs))
        common = [
            "run",
            "--scenario",
            scenario,
            "--mechanism",
            "script-touch",
            "--python",
            CELL_PYTHON,
            "--no-controls",
        ]
        rows = [("serial shell loop", 1, 10, f"{loop.wall:.1f} s", f"{loop.rate:.2f}", "1.00x", "-", "-")]
        measured: dict[str, HarnessRun] = {}
        for jobs in ("4", "8", "auto"):
            done = harness(bench, f"jobs-{jobs}", *common, "--cycles", str(cycles), "--jobs", jobs)
            measured[jobs] = done
            rate = done.reloads / done.finished.wall
            rows.append((f"harness --jobs {jobs}", runs, done.reloads, f"{done.finished.wall:.1f} s", f"{rate:.2f}",
                         f"{rate / loop.rate:.2f}x", f"{done.busy:.0%}",
                         f"{done.finished.own_cpu / max(1, done.reloads) * 1000:.1f} ms"))  # fmt: skip
        serial = harness(bench, "jobs-1", *common, "--cycles", "2", "--jobs", "1")
        auto = measured["auto"]
        rate = auto.reloads / auto.finished.wall
        differ = {k: (v, _verdicts(serial).get(k)) for k, v in _verdicts(auto).items() if _verdicts(serial).get(k) != v}
        section.figures.append(Figure(
            "3", "Throughput, hello x script-touch at --jobs auto (start and stop included)", f"{rate:.1f} reloads/s",
            f">= {RATE_GOAL:.0f} reloads/s", rate >= RATE_GOAL and not differ,
            f"{rate / loop.rate:.1f}x the serial loop ({loop.rate:.2f}/s); {auto.reloads} reloads by {runs} runs in "
            f"{auto.finished.wall:.1f} s, machine {auto.busy:.0%} busy; verdicts the same as at --jobs 1 "
            f"({runs} runs x 2 cycles): " + ("yes" if not differ else f"no: {differ}"),
        ))  # fmt: skip
        cpu = auto.finished.own_cpu / max(1, auto.reloads)
        section.figures.append(Figure(
            "4", "The harness's own CPU per reload (its process, not Apache or Python)", f"{cpu * 1000:.1f} ms",
            f"<= {CPU_GOAL * 1000:.0f} ms", cpu <= CPU_GOAL,
            f"{auto.finished.own_cpu:.1f} s of CPU for {auto.reloads} reloads at --jobs auto",
        ))  # fmt: skip
        section.details += table(["what", "runs", "reloads", "wall", "reloads/s", "vs loop", "machine busy",
                                  "harness CPU/reload"], rows)  # fmt: skip
    return section
