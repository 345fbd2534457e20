"""harness isolate: the smallest set of C extension modules a failing run needs to fail."""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

from harness import storage
from harness.commands import common, options
from harness.errors import HarnessError
from harness.evidence import isolate
from harness.model import serial
from harness.output import locate
from harness.run.trials import isolate_run


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "isolate",
        help="the smallest set of C extension modules a failing run needs to fail",
        parents=[options.server(), options.results()],
    )
    parser.add_argument("run", help="a failing run: its folder, SESSION/RUN under results/, or a run id of the newest")
    parser.add_argument("--cycles", type=int, help="reloads per trial (default: the run's own)")
    parser.add_argument("--include-stdlib", action="store_true", help="also try the standard library's C modules")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    base_dir = common.results_dir(args)
    run_dir = locate.run(args.run, base_dir)
    result = locate.read_run(run_dir)
    if not result.verdict.is_failure:
        raise HarnessError(f"{run_dir}: this run is {result.verdict.value}; isolate needs a run that failed")
    spec = replace(
        result.spec,
        server_user=args.server_user or result.spec.server_user,
        private_view=not args.no_private_view and result.spec.private_view,
    )
    folder = base_dir / f"isolate-{time.strftime('%Y%m%dT%H%M%S')}"
    print(f"isolating {result.run} ({result.verdict.value}) from {run_dir}; trials in {folder}")
    found = isolate_run(spec, folder, result.cell.python_executable, args.cycles or spec.cycles, args.include_stdlib)
    storage.write_json(folder / "isolate.json", serial.dump(found))
    storage.write_atomic(folder / "isolate.md", isolate.table(found))
    print(isolate.table(found), end="")
    print(f"details: {folder / 'isolate.json'}")
    return 0 if found.culprits else 1
