"""harness bisect: the first mod_wsgi release where a scenario's verdict changes."""

from __future__ import annotations

import argparse
import time

from packaging.version import Version

from harness.commands import common, options
from harness.errors import HarnessError
from harness.run import bisect
from harness.run.plan import plan


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "bisect",
        help="the first mod_wsgi release where a scenario's verdict changes",
        parents=[options.selection(), options.cell(), options.server(), options.results()],
    )
    parser.add_argument("--good", required=True, help="a mod_wsgi release with the expected verdict")
    parser.add_argument("--bad", required=True, help="a mod_wsgi release with another verdict")
    parser.set_defaults(handler=run, no_controls=True)


def run(args: argparse.Namespace) -> int:
    chosen = common.selection(args, "")
    planned = plan(chosen, common.cells(args.python, None, args.apache))
    common.say_plan(planned)
    if len(planned.specs) != 1:
        raise HarnessError("bisect needs exactly one scenario, one mechanism and one layout (with --scenario)")
    folder = common.results_dir(args) / f"bisect-{time.strftime('%Y%m%dT%H%M%S')}"
    last_good, first_bad, seen = bisect.run(planned.specs[0], args.good, args.bad, folder)
    print(f"last release with '{seen[last_good].value}': {last_good}")
    print(f"first release with '{seen[first_bad].value}': {first_bad}")
    order = sorted(seen, key=Version)
    print(f"probed: {', '.join(f'{v}={seen[v].value}' for v in order)}; runs in {folder}")
    return 0
