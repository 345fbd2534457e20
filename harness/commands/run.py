"""harness run: scenarios x mechanisms x layouts in one cell (or a recorded RunSpec, exactly as written)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from harness import storage
from harness.commands import common, options
from harness.errors import HarnessError
from harness.model.records import RunResult
from harness.model.spec import RunSpec
from harness.output import baseline, bundle
from harness.run.admission import Admission
from harness.run.plan import plan
from harness.run.session import SessionPlan, run_session


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "run",
        help="run scenarios x mechanisms x layouts against real servers (or a recorded spec)",
        parents=[options.selection(), options.cell(), options.server(), options.results(), options.jobs()],
    )
    parser.add_argument("--port", type=int, help="fixed loopback port, 1024-65535 (implies --jobs 1)")
    parser.add_argument("--baseline", type=Path, help="compare verdicts with this baseline file; exit 1 lists changes")
    parser.add_argument(
        "--spec",
        type=Path,
        metavar="FILE",
        help="run this RunSpec (a run's spec.json) exactly as written; --python overrides its interpreter",
    )
    parser.add_argument(
        "--same-as",
        type=Path,
        metavar="SUMMARY",
        help="with --spec: exit 0 only when the verdict and crash signatures equal this run's",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.port is not None and not 1024 <= args.port <= 65535:
        raise HarnessError("--port: give an unprivileged port, 1024-65535")
    if args.spec is not None:
        return run_spec(args)
    if args.same_as is not None:
        raise HarnessError("--same-as needs --spec FILE (it compares a rerun of that spec with a recorded run)")
    chosen = common.selection(args, options.DEFAULT_SCENARIOS)
    if not chosen.scenarios:
        raise HarnessError("--scenario: nothing to run")
    cells = common.cells(args.python, args.mod_wsgi, args.apache)
    if len(cells) > 1:
        raise HarnessError("run takes one cell: give one --python, --mod-wsgi and --apache (or use 'harness matrix')")
    planned = plan(chosen, cells)
    common.say_plan(planned)
    if not planned.specs:
        reasons = "; ".join(f"{name} {why}" for name, why in planned.skipped) or "no scenario supports those layouts"
        raise HarnessError(f"nothing to run: {reasons}")
    base = baseline.load(args.baseline) if args.baseline else None
    jobs = 1 if args.port is not None else args.jobs
    print(f"{len(planned.specs)} runs, {args.cycles} cycles each, {Admission(jobs).describe()}", file=sys.stderr)
    session_plan = SessionPlan(
        tuple(planned.specs), common.results_dir(args), jobs, baseline=base, skipped=tuple(planned.skipped)
    )
    session_dir, record = run_session(session_plan, progress=common.progress)
    status = common.conclude(session_dir, record)
    if base is not None:
        status = max(status, _baseline_changes(base, record.runs))
    return status


def run_spec(args: argparse.Namespace) -> int:
    """One recorded spec, as written: the interpreter found by its version, the scenario and hand-ins by hash."""
    spec = RunSpec.from_json(storage.read_json(args.spec), args.spec)
    if args.python:
        found = common.pythons(args.python, every=False)
        spec = spec.with_cell(replace(spec.cell, python=found[0].version, python_executable=found[0].executable))
    session_plan = SessionPlan((spec,), common.results_dir(args), 1, spec_base=args.spec.resolve().parent)
    session_dir, record = run_session(session_plan, progress=common.progress)
    status = common.conclude(session_dir, record)
    if args.same_as is None:
        return status
    reference = RunResult.from_json(storage.read_json(args.same_as), args.same_as)
    differences = bundle.same(reference, record.runs[0])
    for line in differences:
        print(f"  {line}")
    print("same verdict and signatures" if not differences else "NOT the same: see the lines above")
    return 1 if differences else 0


def _baseline_changes(base: baseline.Baseline, runs: tuple[RunResult, ...]) -> int:
    """Print every verdict that moved since the baseline; 1 if any did."""
    if runs:
        differences = baseline.cell_differences(base, runs[0].cell)
        if differences:
            print(f"note: cell differs from the baseline's ({'; '.join(differences)})")
    changes = baseline.compare(base, runs)
    for change in changes:
        print(f"  {change}")
    new = sorted(baseline.key(r) for r in runs if baseline.key(r) not in base.verdicts)
    if new:
        print(f"  not in the baseline (not compared): {', '.join(new)}")
    print(f"baseline {base.file}: " + (f"{len(changes)} verdict(s) changed" if changes else "no change"))
    return 1 if changes else 0
