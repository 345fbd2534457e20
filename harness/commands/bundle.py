"""harness bundle: a bug-report bundle (folder + .tar.gz, with ISSUE.md and reproduce.sh) of one run."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.commands import common, options
from harness.output import bundle, locate


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "bundle",
        help="make a bug-report bundle (folder + .tar.gz, with ISSUE.md) of one run",
        parents=[options.results()],
    )
    parser.add_argument("run", help="a run folder, SESSION/RUN under results/, or a run id of the newest session")
    parser.add_argument("--out", type=Path, help="where the bundle goes (default: results/bundles/)")
    parser.add_argument("--with-cores", action="store_true", help="include the core files (large)")
    parser.add_argument(
        "--no-packages",
        action="store_true",
        help="leave the hand-in packages out (their names and sha256 say what to put where)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    base = common.results_dir(args)
    run_dir = locate.run(args.run, base)
    folder, tarball = bundle.make(
        run_dir, args.out or base / "bundles", with_cores=args.with_cores, with_packages=not args.no_packages
    )
    print(f"bundle: {folder}\narchive: {tarball}\nreport: {folder / 'ISSUE.md'}")
    return 0
