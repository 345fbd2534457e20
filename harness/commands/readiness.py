"""harness readiness: packages through every mode a production server uses, on every interpreter, as a one-page
report per package (Markdown and HTML) ready for its issue tracker."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from harness.cells import generated
from harness.commands import common, options
from harness.errors import HarnessError
from harness.model.spec import PackageProbe
from harness.output import readiness as report
from harness.run import readiness
from harness.run.admission import Admission
from harness.run.session import SessionPlan, new_session_dir, run_session


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "readiness",
        help="a package through every mode a production server uses, on every interpreter: a readiness report",
        parents=[options.server(), options.results(), options.jobs()],
    )
    parser.add_argument("requirements", nargs="+", metavar="REQUIREMENT", help="pip requirements, one report each")
    parser.add_argument("--probe", metavar="CODE",
                        help="Python run on every request (with environ); set 'result' to a value that must stay the "
                             "same (default: import the package); with one requirement only")  # fmt: skip
    parser.add_argument("--python", help="comma list of versions or paths (default: every interpreter found)")
    parser.add_argument(
        "--mod-wsgi", help="one mod_wsgi release for every Python (default: the newest each Python has)"
    )
    parser.add_argument("--apache", help="the apxs of the Apache to build against, or bundled[:VERSION]")
    parser.add_argument("--cycles", type=int, default=3, help="reloads per run (default: 3)")
    parser.add_argument("--modes", help=f"comma list of modes (default: all: {', '.join(readiness.MODE_NAMES)})")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.probe is not None and len(args.requirements) != 1:
        raise HarnessError("--probe: give one requirement with it (each package is probed by its own import otherwise)")
    if not 1 <= args.cycles <= options.MAX_CYCLES:
        raise HarnessError(f"--cycles: give 1 to {options.MAX_CYCLES}")
    packages = [PackageProbe((generated.check_requirement(r),), args.probe) for r in args.requirements]
    modes: tuple[readiness.Mode, ...] = readiness.MODES
    if args.modes:
        wanted = [m.strip() for m in args.modes.split(",") if m.strip()]
        unknown = [m for m in wanted if m not in readiness.MODE_NAMES]
        if unknown or not wanted:
            raise HarnessError(
                f"--modes: unknown {', '.join(unknown) or '(none)'}; use {', '.join(readiness.MODE_NAMES)}"
            )
        modes = tuple(m for m in readiness.MODES if m.name in wanted)
    pythons = common.pythons(args.python, every=True)
    apache = common.apaches(args.apache)[0]
    specs = readiness.plan(packages, pythons, apache, args.cycles, modes, args.mod_wsgi)
    specs = [replace(s, server_user=args.server_user, private_view=not args.no_private_view) for s in specs]
    folder = new_session_dir(common.results_dir(args), prefix="readiness-")
    print(f"{len(packages)} package(s) x {len(modes)} modes x {len(pythons)} interpreters: {len(specs)} runs with the "
          f"clean controls, {Admission(args.jobs).describe()}, into {folder}", file=sys.stderr)  # fmt: skip
    session_dir, record = run_session(SessionPlan(tuple(specs), folder.parent, args.jobs, session_dir=folder),
                                      progress=common.progress)  # fmt: skip
    files, problem = report.write(record.runs, record.broken, session_dir)
    for page in report.pages(record.runs, record.broken, session_dir):
        clean = ", ".join(page.clean_everywhere) or "no mode"
        print(f"{page.package}: clean everywhere in {clean}; fails in {', '.join(page.failing) or 'no mode'}")
    print(f"report: {', '.join(str(f) for f in files)}" + (f" (no PNG: {problem})" if problem else ""))
    return 0
