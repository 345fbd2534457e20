"""harness baseline update: write a baseline from a session's verdicts."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness import storage
from harness.commands import common, options
from harness.output import baseline, locate


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("baseline", help="manage regression baselines")
    commands = parser.add_subparsers(dest="baseline_command", required=True)
    update = commands.add_parser(
        "update", help="write a baseline from a session's verdicts", parents=[options.results()]
    )
    update.add_argument("session", help="a session folder, its name under results/, or 'latest'")
    update.add_argument("--file", type=Path, required=True, help="the baseline file (e.g. results/baselines/X.toml)")
    update.add_argument("--replace", action="store_true", help="drop runs the session did not run (default: keep)")
    update.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    session_dir = locate.session(args.session, common.results_dir(args))
    record = locate.read_session(session_dir)
    text, changes, added = baseline.updated(args.file, record.runs, replace_all=args.replace)
    try:
        args.file.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise storage.disk_error(args.file.parent, exc) from None
    storage.write_atomic(args.file, text)
    for change in changes:
        print(f"  {change}")
    print(f"wrote {args.file} from {session_dir.name}: {len(changes)} changed, {len(added)} added")
    return 0
