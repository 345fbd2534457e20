"""Command line: parse, dispatch, and turn every user-fixable problem into one line on stderr.

Exit status: 0 every verdict as expected; 1 some verdict differs; 2 bad input or set-up;
130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from harness import layouts, mechanisms, registry, scenario
from harness.errors import HarnessError

DEFAULT_SCENARIOS = "hello,segfault,raise,wrong,block"
DEFAULT_MECHANISMS = "script-touch,sigusr1,apache-graceful"
DEFAULT_LAYOUTS = "global"
DEFAULT_CYCLES = 3


def _parser() -> argparse.ArgumentParser:
    from harness.session import default_jobs

    parser = argparse.ArgumentParser(
        prog="python -m harness",
        description="Reload Python web apps under Apache/mod_wsgi again and again and record every crash.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run scenarios x mechanisms x layouts against real servers")
    run.add_argument(
        "--scenario", default=DEFAULT_SCENARIOS, help=f"comma list, 'all', or paths (default: {DEFAULT_SCENARIOS})"
    )
    run.add_argument(
        "--mechanism", default=DEFAULT_MECHANISMS, help=f"comma list or 'all' (default: {DEFAULT_MECHANISMS})"
    )
    run.add_argument("--layout", default=DEFAULT_LAYOUTS, help=f"comma list or 'all' (default: {DEFAULT_LAYOUTS})")
    run.add_argument("--cycles", type=int, default=DEFAULT_CYCLES, help=f"reloads per run (default: {DEFAULT_CYCLES})")
    run.add_argument(
        "--jobs", "-j", type=int, default=default_jobs(), help=f"runs side by side (default: {default_jobs()})"
    )
    run.add_argument("--python", type=Path, help="target interpreter (default: the one running the harness)")
    run.add_argument("--mod-wsgi", default=None, help="mod_wsgi version or pip requirement (default: 6.1.1)")
    run.add_argument("--server-user", help="when run as root: the unprivileged user Apache runs as (default: www-data)")
    run.add_argument("--port", type=int, help="fixed loopback port (implies --jobs 1; default: a free one per run)")
    run.add_argument("--results", type=Path, help="results folder (default: results/ in the checkout)")

    sub.add_parser("list", help="show scenarios, mechanisms and layouts")
    clean = sub.add_parser("clean", help="stop servers and remove server roots that killed runs left behind")
    clean.add_argument("--all", action="store_true", help="also those of harness processes still running")
    return parser


def cmd_run(args: argparse.Namespace) -> int:
    from harness.cell import DEFAULT_MOD_WSGI
    from harness.session import RESULTS_DIR, Selection, print_progress, run_session

    if args.cycles < 1:
        raise HarnessError("--cycles: give at least 1")
    if args.port is not None and not 1024 <= args.port <= 65535:
        raise HarnessError("--port: give an unprivileged port, 1024-65535")
    try:
        selection = Selection(
            scenarios=scenario.resolve(args.scenario),
            mechanisms=mechanisms.select(args.mechanism),
            layouts=layouts.select(args.layout),
            cycles=args.cycles,
            jobs=args.jobs,
            python=args.python,
            mod_wsgi=args.mod_wsgi or DEFAULT_MOD_WSGI,
            server_user=args.server_user,
            port=args.port,
            results_dir=args.results or RESULTS_DIR,
        )
    except ValueError as exc:
        raise HarnessError(str(exc)) from None
    print(f"{len(selection.specs())} runs, {selection.cycles} cycles each, {selection.jobs} at a time", file=sys.stderr)
    session_dir, summaries = run_session(selection, progress=print_progress)
    bad = [s for s in summaries if not s["matches"]]
    print(f"results: {session_dir}  ({len(summaries) - len(bad)}/{len(summaries)} as expected)")
    for s in bad:
        print(f"  {s['run']}: {s['verdict']}, expected {s['expected']}")
    return 1 if bad else 0


def cmd_list(args: argparse.Namespace) -> int:
    print("scenarios:")
    for name, path in scenario.discover().items():
        try:
            loaded = scenario.load(path)
        except HarnessError as exc:
            print(f"  {name:14} (invalid: {exc})")
            continue
        expect = ", ".join(f"{k}={v.value}" for k, v in loaded.expect.items())
        kind = "control " if loaded.control else ""
        print(f"  {name:14} {kind}{loaded.description} [{expect}]")
    print("mechanisms:")
    for mechanism in mechanisms.MECHANISMS.values():
        print(f"  {mechanism.name:22} {mechanism.summary}")
    print("layouts:")
    for layout in layouts.LAYOUTS.values():
        print(f"  {layout.name:14} {layout.summary}")
    return 0


def cmd_clean(args: argparse.Namespace) -> int:
    report = registry.clean(include_live=args.all)
    print(
        f"removed {report.roots} server roots, killed {report.processes} processes"
        + (f"; kept {report.skipped_live} of harness runs still alive (--all to remove)" if report.skipped_live else "")
    )
    return 0


COMMANDS = {"run": cmd_run, "list": cmd_list, "clean": cmd_clean}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: servers stopped; finished cycles are in the results folder", file=sys.stderr)
        return 130
