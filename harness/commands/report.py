"""harness report: merge result folders (sessions, matrices, shards, other machines') into one report."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from harness.commands import common, options
from harness.output import report


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "report", help="merge result folders into grids (Markdown, HTML, PNG)", parents=[options.results()]
    )
    parser.add_argument(
        "folders", nargs="+", type=Path, help="sessions, matrix folders, shards, or folders holding them"
    )
    parser.add_argument("--out", type=Path, help="where report.md/.html/.png go (default: results/report-<time>)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    out = args.out or common.results_dir(args) / f"report-{time.strftime('%Y%m%dT%H%M%S')}"
    files, problem = report.write(args.folders, out)
    print(f"report: {', '.join(str(f) for f in files)}" + (f" (no PNG: {problem})" if problem else ""))
    return 0
