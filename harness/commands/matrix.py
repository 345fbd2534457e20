"""harness matrix: the same runs in every cell (interpreters x mod_wsgi x Apache), side by side in one session."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.commands import common, options
from harness.output import baseline, locate, report
from harness.run import matrix
from harness.run.plan import plan
from harness.run.session import SessionPlan, new_session_dir, run_session

MATRIX_SCENARIOS = "hello,segfault"
MATRIX_MECHANISMS = "sigusr1"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "matrix",
        help="the same runs in every cell: interpreters x mod_wsgi versions x Apache",
        parents=[options.selection(), options.cell(), options.server(), options.results(), options.jobs()],
    )
    parser.set_defaults(mechanism=MATRIX_MECHANISMS, cycles=2, handler=run)
    parser.add_argument("--resume", help="a matrix folder (or 'latest') to finish: its finished runs are kept")
    parser.add_argument(
        "--shard", metavar="K/N", help="run only the K-th of N deterministic shards (merge with 'report')"
    )
    parser.add_argument("--baseline", type=Path, help="compare verdicts with this baseline file")


def run(args: argparse.Namespace) -> int:
    base_dir = common.results_dir(args)
    chosen = common.selection(args, MATRIX_SCENARIOS)
    cells = common.cells(
        args.python, args.mod_wsgi, args.apache, every_python=True, mod_wsgi_default=matrix.DEFAULT_MOD_WSGI
    )
    planned = plan(chosen, cells)
    common.say_plan(planned)
    specs = planned.specs
    label = ""
    if args.shard:
        k, n = matrix.parse_shard(args.shard)
        specs = matrix.shard(specs, k, n)
        label = f"-shard{k}of{n}"
    if args.resume:
        folder = locate.session(args.resume, base_dir, prefix="matrix-")
    else:
        folder = new_session_dir(base_dir, prefix=f"matrix{label}-")
    pythons = sorted({c.python for c in cells})
    print(
        f"{len({c.label for c in cells})} cells ({len(pythons)} interpreters), {len(specs)} runs, into {folder}",
        file=sys.stderr,
    )
    base = baseline.load(args.baseline) if args.baseline else None
    session_plan = SessionPlan(
        tuple(specs), base_dir, args.jobs, session_dir=folder, baseline=base, skipped=tuple(planned.skipped)
    )
    session_dir, record = run_session(session_plan, progress=common.progress)
    for cell in record.cells:
        print(f"  {cell.label}: {cell.status}" + (f" ({(cell.reason or '')[:150]})" if cell.reason else ""))
    print(f"compilations: {record.compilations} (cells built by this run; the rest came from the cache)")
    files, problem = report.write([session_dir], session_dir)
    print(f"report: {', '.join(str(f) for f in files)}" + (f" (no PNG: {problem})" if problem else ""))
    return common.conclude(session_dir, record)
