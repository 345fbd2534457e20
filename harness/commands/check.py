"""harness check: validate scenario files without starting anything."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.errors import HarnessError
from harness.model import scenario as scenarios


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("check", help="validate scenario files (or folders) without starting anything")
    parser.add_argument("paths", nargs="+", type=Path, help="scenario.toml files or scenario folders")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    bad = 0
    for path in args.paths:
        try:
            file = path / scenarios.SCENARIO_FILE if path.is_dir() else path
        except OSError:  # a name too long to stat: load() says so in one line
            file = path
        try:
            found = scenarios.load(file)
        except HarnessError as exc:
            print(f"error: {exc}", file=sys.stderr)
            bad += 1
            continue
        print(f"ok: {file} ({found.name}: {len(found.probes)} probe(s), {len(found.expectations)} expectation(s))")
    return 2 if bad else 0
