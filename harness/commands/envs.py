"""harness envs: the cached cell environments, and pruning them."""

from __future__ import annotations

import argparse

from harness.cells import build


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("envs", help="list the cached cell environments, or prune them")
    parser.add_argument("--prune", action="store_true", help="remove cells whose interpreter is gone, and failures")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    for label, status, detail in build.list_cells():
        print(f"  {label:64} {status:12} {detail}")
    if args.prune:
        removed = build.prune_cells()
        print(f"pruned {len(removed)}: {', '.join(removed) or 'nothing'}")
    return 0
