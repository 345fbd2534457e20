"""harness clean: stop servers and remove server roots that killed runs left behind."""

from __future__ import annotations

import argparse

from harness.engines import roots


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("clean", help="stop servers and remove server roots that killed runs left behind")
    parser.add_argument("--all", action="store_true", help="also those of harness processes still running")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    found = roots.clean(include_live=args.all)
    print(
        f"removed {found.roots} server roots, killed {found.processes} processes"
        + (f"; kept {found.skipped_live} of harness runs still alive (--all to remove)" if found.skipped_live else "")
    )
    return 0
