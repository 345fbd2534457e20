"""python -m bench: measure, then write BENCHMARKS.md (every figure from this one invocation).

    .venv/bin/python -m bench                      # all of it: about 40 minutes on 2 cores
    .venv/bin/python -m bench --only crash,hung    # some of it
    .venv/bin/python -m bench --quick              # fewer runs and cycles, a 2-minute soak, no test suite

Run it as root (as the harness is run here; Apache runs as www-data) on a machine doing nothing else:
every figure that waits on a CPU moves with other load, so the machine's busy share is reported too.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType

from bench import crash_latency, hung_cost, matrix, soak, suite, throughput
from bench.common import REPO, Bench, BenchError, Figure, Section, machine_facts, stop

MEASURES: dict[str, Callable[[Bench, argparse.Namespace], Section]] = {
    "crash": lambda bench, _: crash_latency.measure(bench),
    "hung": lambda bench, _: hung_cost.measure(bench),
    "throughput": lambda bench, _: throughput.measure(bench),
    "matrix": lambda bench, _: matrix.measure(bench),
    "soak": lambda bench, args: soak.measure(bench, args.soak_minutes),
    "suite": lambda bench, _: suite.measure(bench),
}


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=",".join(MEASURES), help=f"comma list of: {', '.join(MEASURES)}")
    parser.add_argument("--quick", action="store_true", help="fewer runs and cycles, a 2-minute soak, no test suite")
    parser.add_argument("--soak-minutes", type=float, default=None, help="minutes of soak (default 10; quick 2)")
    parser.add_argument("--output", type=Path, default=REPO / "BENCHMARKS.md")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in MEASURES]
    if unknown:
        parser.error(f"--only: no benchmark {', '.join(unknown)}; choose from {', '.join(MEASURES)}")
    if args.quick and "--only" not in " ".join(argv):
        chosen = [name for name in chosen if name != "suite"]
    args.chosen = chosen
    args.soak_minutes = args.soak_minutes if args.soak_minutes is not None else (2.0 if args.quick else 10.0)
    return args


def _interrupt(number: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def render(sections: Sequence[Section], command: str, took: float, facts: Sequence[str]) -> str:
    figures = sorted((f for s in sections for f in s.figures), key=lambda f: f.number)
    status = {True: "met", False: "**missed**", None: "reported"}
    lines = [
        "# Benchmarks",
        "",
        f"Produced by `{command}` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC in {took / 60:.1f} min. Every "
        "figure comes from this one invocation on this machine, against real servers (no mocks); the code is in "
        "`bench/`, one module per family of figures.",
        "",
        "| # | figure | measured | goal | status | notes |",
        "| --- | --- | --- | --- | --- | --- |",
        *(f"| {f.number} | {f.name} | {f.measured} | {f.goal} | {status[f.met]} | {f.note} |" for f in figures),
        "",
        "## Machine",
        "",
        *facts,
    ]
    for section in sections:
        lines += ["", f"## {section.title}", "", f"Took {section.seconds:.0f} s.", "", *section.details]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, _interrupt)
    work = Path(tempfile.mkdtemp(prefix="whb-", dir="/var/tmp"))
    work.chmod(0o755)
    bench = Bench(work, args.quick)
    started = time.monotonic()
    sections: list[Section] = []
    try:
        for name in args.chosen:
            print(f"[bench] {name} ...", file=sys.stderr, flush=True)
            begun = time.monotonic()
            try:
                section = MEASURES[name](bench, args)
            except BenchError as exc:
                section = Section(name, [Figure("-", name, "not measured", "-", False, str(exc))])
            section.seconds = section.seconds or time.monotonic() - begun
            sections.append(section)
            for figure in section.figures:
                print(f"[bench]   {figure.number} {figure.name}: {figure.measured} ({figure.goal})", file=sys.stderr)
        command = "python -m bench " + " ".join(sys.argv[1:] if argv is None else argv)
        text = render(sections, command.strip(), time.monotonic() - started, machine_facts())
        args.output.write_text(text)
        print(f"[bench] wrote {args.output}", file=sys.stderr)
    except KeyboardInterrupt:
        print("[bench] interrupted: stopping what was started", file=sys.stderr)
        return 130
    finally:
        for child in list(bench.children):
            stop(child)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main())
