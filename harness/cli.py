"""Command line: parse, dispatch, and turn every user-fixable problem into one line on stderr.

Exit status: 0 every verdict as expected; 1 some verdict differs; 2 bad input or set-up;
130 interrupted.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import baseline, layouts, local, mechanisms, package_probe, registry, scenario
from harness.errors import HarnessError
from harness.results import expected_verdict, passed

if TYPE_CHECKING:
    from harness.session import Selection

DEFAULT_SCENARIOS = "hello,segfault,raise,wrong,block"
DEFAULT_MECHANISMS = "script-touch,sigusr1,apache-graceful"
DEFAULT_LAYOUTS = "global"
DEFAULT_CYCLES = 3
MATRIX_SCENARIOS = "hello,segfault"
MATRIX_MECHANISMS = "sigusr1"
PACKAGE_HELP = (
    "test any pip requirement without writing a scenario: a generated app imports it and runs --probe on every "
    "request (added to --scenario when that is given, else run alone)"
)
PROBE_HELP = (
    "Python run in the app with --package; set 'result' to a value that must be the same in every interpreter "
    "(default: import the package's module)"
)
LOCAL_HELP = (
    "an sdist, wheel or source folder of a package on no index (PyProtocols, RuleDispatch) that a scenario's "
    "local_packages names; repeatable, or list them in $MOD_WSGI_HARNESS_LOCAL_PACKAGES"
)


def _python_arg(value: str) -> Path:
    """A path, or a version ('2.7', '3.12.1') looked up among the interpreters found (the newest match)."""
    if "/" in value or Path(value).exists():
        return Path(value)
    from harness import interpreters

    try:
        return Path(interpreters.select(interpreters.discover(), value)[-1].executable)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--python: ")) from None


def _parser() -> argparse.ArgumentParser:
    from harness.session import default_jobs

    parser = argparse.ArgumentParser(
        prog="python -m harness",
        description="Reload Python web apps under Apache/mod_wsgi again and again and record every crash.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run scenarios x mechanisms x layouts against real servers")
    run.add_argument("--scenario", help=f"comma list, 'all', or paths (default: {DEFAULT_SCENARIOS})")
    run.add_argument(
        "--mechanism", default=DEFAULT_MECHANISMS, help=f"comma list or 'all' (default: {DEFAULT_MECHANISMS})"
    )
    run.add_argument("--layout", default=DEFAULT_LAYOUTS, help=f"comma list or 'all' (default: {DEFAULT_LAYOUTS})")
    run.add_argument("--cycles", type=int, default=DEFAULT_CYCLES, help=f"reloads per run (default: {DEFAULT_CYCLES})")
    run.add_argument(
        "--jobs", "-j", type=int, default=default_jobs(), help=f"runs side by side (default: {default_jobs()})"
    )
    run.add_argument(
        "--python", type=_python_arg, help="target interpreter: a path or a version (default: the harness's own)"
    )
    run.add_argument("--mod-wsgi", default=None, help="mod_wsgi version or pip requirement (default: 6.1.1)")
    run.add_argument("--apache", help="the apxs of the Apache to build against (default: $APXS, else apxs on the PATH)")
    run.add_argument("--server-user", help="when run as root: the unprivileged user Apache runs as (default: www-data)")
    run.add_argument("--port", type=int, help="fixed loopback port (implies --jobs 1; default: a free one per run)")
    run.add_argument("--results", type=Path, help="results folder (default: results/ in the checkout)")
    run.add_argument(
        "--no-private-view",
        action="store_true",
        help="as root, refuse (instead of showing it in a private mount namespace) an interpreter the server "
        "user cannot read",
    )
    run.add_argument("--until-crash", action="store_true", help="stop reloading a run at its first crashed cycle")
    run.add_argument(
        "--baseline", type=Path, help="compare verdicts with this baseline file; exit 1 listing every change"
    )
    run.add_argument("--local-package", action="append", metavar="PATH", help=LOCAL_HELP)
    run.add_argument("--package", metavar="REQUIREMENT", help=PACKAGE_HELP)
    run.add_argument("--probe", metavar="CODE", help=PROBE_HELP)
    run.add_argument(
        "--block",
        default="",
        metavar="MODULES",
        help="comma list of (C extension) modules made unimportable before the app loads, so packages fall back "
        "to pure Python (e.g. simplejson._speedups,markupsafe._speedups)",
    )

    sub.add_parser("list", help="show scenarios, mechanisms and layouts")
    matrix = sub.add_parser("matrix", help="the same runs in every cell: interpreters x mod_wsgi versions x Apache")
    matrix.add_argument("--scenario", help=f"(default: {MATRIX_SCENARIOS})")
    matrix.add_argument("--mechanism", default=MATRIX_MECHANISMS, help=f"(default: {MATRIX_MECHANISMS})")
    matrix.add_argument("--layout", default=DEFAULT_LAYOUTS, help=f"(default: {DEFAULT_LAYOUTS})")
    matrix.add_argument("--cycles", type=int, default=2, help="reloads per run (default: 2)")
    matrix.add_argument("--python", help="comma list of versions (3.8, 3.11.7) or paths (default: every one found)")
    matrix.add_argument("--mod-wsgi", help="comma list of versions or pip requirements (default: 4.9.4,5.0.2,6.1.1)")
    matrix.add_argument(
        "--apache",
        help="comma list of apxs paths (default: $APXS, else apxs on the PATH)",
    )
    matrix.add_argument("--resume", help="a matrix folder (or 'latest') to finish: its finished runs are kept")
    matrix.add_argument("--jobs", "-j", type=int, default=default_jobs(), help="runs side by side in a cell")
    matrix.add_argument("--server-user", help="as root: the unprivileged user Apache runs as")
    matrix.add_argument("--results", type=Path, help="where matrix folders go (default: results/)")
    matrix.add_argument("--baseline", type=Path, help="compare verdicts with this baseline file")
    matrix.add_argument("--no-private-view", action="store_true", help="see run --help")
    matrix.add_argument("--local-package", action="append", metavar="PATH", help=LOCAL_HELP)
    matrix.add_argument("--package", metavar="REQUIREMENT", help=PACKAGE_HELP)
    matrix.add_argument("--probe", metavar="CODE", help=PROBE_HELP)

    report = sub.add_parser("report", help="merge result folders into one table (Markdown, HTML heatmap, PNG)")
    report.add_argument("folders", nargs="+", type=Path, help="sessions, matrix folders, or folders holding them")
    report.add_argument("--out", type=Path, help="where report.md/.html/.png go (default: results/report-<time>)")

    bis = sub.add_parser("bisect", help="the first mod_wsgi release where a scenario's verdict changes")
    bis.add_argument("--scenario", required=True, help="one scenario name or path")
    bis.add_argument("--mechanism", required=True, help="one mechanism")
    bis.add_argument("--layout", default=DEFAULT_LAYOUTS, help=f"one layout (default: {DEFAULT_LAYOUTS})")
    bis.add_argument("--good", required=True, help="a mod_wsgi release with the expected verdict")
    bis.add_argument("--bad", required=True, help="a mod_wsgi release with another verdict")
    bis.add_argument(
        "--python", type=_python_arg, help="target interpreter: a path or a version (default: the harness's own)"
    )
    bis.add_argument("--cycles", type=int, default=DEFAULT_CYCLES, help=f"reloads per run (default: {DEFAULT_CYCLES})")
    bis.add_argument("--results", type=Path, help="where bisect folders go (default: results/)")

    iso = sub.add_parser("isolate", help="the smallest set of C extension modules a failing run needs to fail")
    iso.add_argument("run", help="a failing run: its folder, SESSION/RUN_ID under results/, or a run id of the newest")
    iso.add_argument("--cycles", type=int, help="reloads per trial (default: the run's own)")
    iso.add_argument("--include-stdlib", action="store_true", help="also try the standard library's C modules")
    iso.add_argument("--server-user", help="as root: the unprivileged user Apache runs as")
    iso.add_argument("--no-private-view", action="store_true", help="see run --help")
    iso.add_argument("--results", type=Path, help="where runs are looked up and trials go (default: results/)")

    envs = sub.add_parser("envs", help="list the cached cell environments, or prune them")
    envs.add_argument("--prune", action="store_true", help="remove cells whose interpreter is gone, and failures")

    base = sub.add_parser("baseline", help="manage regression baselines")
    base_sub = base.add_subparsers(dest="baseline_command", required=True)
    update = base_sub.add_parser("update", help="write a baseline from a session's verdicts")
    update.add_argument("session", help="a session folder, its name under results/, or 'latest'")
    update.add_argument("--file", type=Path, required=True, help="the baseline file (e.g. results/baselines/X.toml)")
    update.add_argument("--replace", action="store_true", help="drop runs the session did not run (default: keep)")
    update.add_argument("--results", type=Path, help="where session names are looked up (default: results/)")

    bundle = sub.add_parser("bundle", help="make a bug-report bundle (folder + .tar.gz, with ISSUE.md) of one run")
    bundle.add_argument("run", help="a run folder, SESSION/RUN_ID under results/, or a run id of the newest session")
    bundle.add_argument("--out", type=Path, help="where the bundle goes (default: results/bundles/)")
    bundle.add_argument("--with-cores", action="store_true", help="include the core files (large)")
    bundle.add_argument("--results", type=Path, help="where run names are looked up (default: results/)")

    clean = sub.add_parser("clean", help="stop servers and remove server roots that killed runs left behind")
    clean.add_argument("--all", action="store_true", help="also those of harness processes still running")
    return parser


def _selection(args: argparse.Namespace, **fields: Any) -> Selection:
    """What to run, from --scenario/--mechanism/--layout/--cycles; a bad name or count is one line."""
    from harness.session import Selection

    if args.cycles < 1:
        raise HarnessError("--cycles: give at least 1")
    package = getattr(args, "package", None)
    if getattr(args, "probe", None) is not None and not package:
        raise HarnessError("--probe needs --package REQUIREMENT (the code runs in an app that imports it)")
    try:
        default = MATRIX_SCENARIOS if args.command == "matrix" else DEFAULT_SCENARIOS
        names = args.scenario or (None if package else default)
        chosen = scenario.resolve(names) if names else []
        mechanism_list = mechanisms.select(args.mechanism)
        layout_list = layouts.select(args.layout)
    except ValueError as exc:
        raise HarnessError(str(exc)) from None
    if package:
        chosen = [*chosen, package_probe.make(package, args.probe)]
    runnable, skipped = _with_local_packages(chosen, getattr(args, "local_package", None) or [])
    if not runnable:
        raise HarnessError("nothing to run: " + "; ".join(f"{name} {why}" for name, why in skipped.items()))
    return Selection(
        scenarios=runnable,
        mechanisms=mechanism_list,
        layouts=layout_list,
        cycles=args.cycles,
        skipped=skipped,
        **fields,
    )


def _module_names(text: str, option: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    for name in names:
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$", name):
            raise HarnessError(f"{option}: {name!r} is not a module name; give dotted names like markupsafe._speedups")
    return names


def _with_local_packages(
    chosen: Sequence[scenario.Scenario], given: Sequence[str]
) -> tuple[list[scenario.Scenario], dict[str, str]]:
    """Scenarios whose hand-in packages are all here get them as requirements; the others are
    skipped, each with the reason said once on stderr."""
    supplied = local.supplied(given)
    runnable: list[scenario.Scenario] = []
    skipped: dict[str, str] = {}
    for item in chosen:
        if item.local_packages:
            found = local.match(item.local_packages, supplied)
            if found.missing:
                skipped[item.name] = found.skip_reason()
                print(f"skipped {item.name}: {skipped[item.name]}", file=sys.stderr)
                continue
            extra = tuple(str(path) for path in found.found.values())
            item = dataclasses.replace(item, requirements=(*item.requirements, *extra))
        runnable.append(item)
    return runnable, skipped


def cmd_run(args: argparse.Namespace) -> int:
    from harness.cell import DEFAULT_MOD_WSGI
    from harness.session import RESULTS_DIR, print_progress, run_session

    if args.port is not None and not 1024 <= args.port <= 65535:
        raise HarnessError("--port: give an unprivileged port, 1024-65535")
    selection = _selection(
        args,
        jobs=args.jobs,
        python=args.python,
        mod_wsgi=args.mod_wsgi or DEFAULT_MOD_WSGI,
        server_user=args.server_user,
        port=args.port,
        results_dir=args.results or RESULTS_DIR,
        until_crash=args.until_crash,
        private_view=not args.no_private_view,
        apxs=args.apache,
        baseline=baseline.load(args.baseline) if args.baseline else None,
        blocked=_module_names(args.block, "--block"),
    )
    print(f"{len(selection.specs())} runs, {selection.cycles} cycles each, {selection.jobs} at a time", file=sys.stderr)
    session_dir, summaries = run_session(selection, progress=print_progress)
    bad = [s for s in summaries if not passed(s)]
    print(f"results: {session_dir}  ({len(summaries) - len(bad)}/{len(summaries)} as expected)")
    if selection.baseline is not None:
        return _baseline_verdict(selection.baseline, summaries, bad)
    for s in bad:
        print(f"  {s['run']}: {s['verdict']}, expected {s['expected']}")
    return 1 if bad else 0


def _baseline_verdict(base: baseline.Baseline, summaries: list[dict[str, Any]], bad: list[dict[str, Any]]) -> int:
    """Print every verdict that moved since the baseline; exit 1 if any did."""
    differences = baseline.cell_differences(base, summaries[0]["cell"]) if summaries else []
    if differences:
        print(f"note: cell differs from the baseline's ({'; '.join(differences)})")
    changes = baseline.compare(base, summaries)
    for change in changes:
        print(f"  {change}")
    new = [s["run"] for s in summaries if s["run"] not in base.verdicts]
    if new:
        print(f"  not in the baseline (not compared): {', '.join(sorted(new))}")
    print(f"baseline {base.file}: " + (f"{len(changes)} verdict(s) changed" if changes else "no change"))
    unexpected_new = [s for s in bad if s["run"] in new]
    for s in unexpected_new:
        print(f"  {s['run']}: {s['verdict']}, expected {s['expected']} (scenario)")
    return 1 if changes or unexpected_new else 0


def cmd_matrix(args: argparse.Namespace) -> int:
    import time

    from harness import interpreters, locate, matrix, report
    from harness.session import RESULTS_DIR

    base_dir = args.results or RESULTS_DIR
    selection = _selection(
        args,
        jobs=args.jobs,
        server_user=args.server_user,
        results_dir=base_dir,
        baseline=baseline.load(args.baseline) if args.baseline else None,
        private_view=not args.no_private_view,
    )
    found = interpreters.discover()
    try:
        pythons = interpreters.select(found, args.python) if args.python else found
    except ValueError as exc:
        raise HarnessError(str(exc)) from None
    versions = [v.strip() for v in (args.mod_wsgi or ",".join(matrix.DEFAULT_MOD_WSGI)).split(",") if v.strip()]
    apaches = [a.strip() for a in args.apache.split(",") if a.strip()] if args.apache else [None]
    if not pythons:
        raise HarnessError("no Python interpreters found; give --python with versions or paths")
    if args.resume:
        folder = locate.matrix(args.resume, base_dir)
    else:
        folder = base_dir / f"matrix-{time.strftime('%Y%m%dT%H%M%S')}"
    cells = matrix.cells(pythons, versions, apaches)
    print(
        f"{len(cells)} cells ({len(pythons)} interpreters x {len(versions)} mod_wsgi), "
        f"{len(selection.specs())} runs each, into {folder}",
        file=sys.stderr,
    )
    record = matrix.run_matrix(selection, cells, folder)
    files, problem = report.write([folder], folder)
    statuses = {label: cell["status"] for label, cell in record["cells"].items()}
    for label, cell in record["cells"].items():
        print(f"  {label}: {cell['status']}" + (f" ({cell['reason'][:150]})" if cell.get("reason") else ""))
    print(f"compilations: {record['compilations']} (cells built by this run; the rest came from the cache)")
    print(f"report: {', '.join(str(f) for f in files)}" + (f" (no PNG: {problem})" if problem else ""))
    # Mismatches count only in cells that work: unsupported and broken cells are reported above, not failed.
    runs = [(Path(run["_folder"]).parent.name, run) for run in report.collect([folder])]
    bad = [(label, run) for label, run in runs if not passed(run) and statuses.get(label) == "ok"]
    for label, run in bad:
        print(f"  FAIL {label} {run['run']}: {run['verdict']}, expected {expected_verdict(run)}")
    return 1 if bad else 0


def cmd_bisect(args: argparse.Namespace) -> int:
    import time

    from harness import bisect
    from harness.session import RESULTS_DIR, default_jobs

    selection = _selection(args, jobs=default_jobs())
    folder = (args.results or RESULTS_DIR) / f"bisect-{time.strftime('%Y%m%dT%H%M%S')}"
    last_good, first_bad, seen = bisect.run(selection, args.python, args.good, args.bad, folder)
    print(f"last release with '{seen[last_good]}': {last_good}")
    print(f"first release with '{seen[first_bad]}': {first_bad}")
    print(f"probed: {', '.join(f'{v}={seen[v]}' for v in sorted(seen, key=bisect.version_key))}; runs in {folder}")
    return 0


def cmd_isolate(args: argparse.Namespace) -> int:
    import json
    import time

    from harness import isolate, locate
    from harness.session import RESULTS_DIR, Selection

    base_dir = args.results or RESULTS_DIR
    run_dir = locate.run(args.run, base_dir)
    summary = locate.read_summary(run_dir)
    if summary.get("verdict") == "clean":
        raise HarnessError(f"{run_dir}: this run is clean; isolate needs a failing run")
    try:
        item = scenario.load(Path(summary["scenario_file"]))
        item = dataclasses.replace(item, requirements=tuple(summary.get("requirements") or item.requirements))
        mechanism = mechanisms.MECHANISMS[summary["mechanism"]]
        layout = layouts.LAYOUTS[summary["layout"]]
        cell = summary["cell"]
        apxs = json.loads((Path(cell["env_dir"]) / "cell.json").read_text()).get("apache_info", {}).get("apxs")
    except (KeyError, OSError, ValueError) as exc:
        raise HarnessError(f"{run_dir / 'summary.json'}: cannot rebuild the run from it ({exc})") from None
    folder = base_dir / f"isolate-{time.strftime('%Y%m%dT%H%M%S')}"
    selection = Selection(
        scenarios=[item],
        mechanisms=[mechanism],
        layouts=[layout],
        cycles=args.cycles or int(summary.get("cycles") or DEFAULT_CYCLES),
        jobs=1,
        python=Path(cell["python_executable"]),
        mod_wsgi=cell["mod_wsgi"],
        server_user=args.server_user,
        private_view=not args.no_private_view,
        apxs=apxs,
    )
    print(f"isolating {summary['run']} ({summary['verdict']}) from {run_dir}; trials in {folder}", file=sys.stderr)
    record = isolate.isolate(selection, folder, cell["python_executable"], include_stdlib=args.include_stdlib)
    print(isolate.table(record), end="")
    print(f"details: {folder / 'isolate.json'}")
    return 0 if record["culprits"] else 1


def cmd_report(args: argparse.Namespace) -> int:
    import time

    from harness import report
    from harness.session import RESULTS_DIR

    out = args.out or RESULTS_DIR / f"report-{time.strftime('%Y%m%dT%H%M%S')}"
    files, problem = report.write(args.folders, out)
    print(f"report: {', '.join(str(f) for f in files)}" + (f" (no PNG: {problem})" if problem else ""))
    return 0


def cmd_envs(args: argparse.Namespace) -> int:
    from harness import cell

    for entry in cell.list_cells():
        print(f"  {entry['label']:60} {entry['status']:12} {entry.get('detail', '')}")
    if args.prune:
        removed = cell.prune_cells()
        print(f"pruned {len(removed)}: {', '.join(removed) or 'nothing'}")
    return 0


def cmd_baseline(args: argparse.Namespace) -> int:
    from harness import locate
    from harness.results import write_atomic
    from harness.session import RESULTS_DIR

    session_dir = locate.session(args.session, args.results or RESULTS_DIR)
    runs = locate.read_summary(session_dir)["runs"]
    text, changes, added = baseline.updated(args.file, runs, replace=args.replace)
    args.file.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(args.file, text)
    for change in changes:
        print(f"  {change}")
    print(f"wrote {args.file} from {session_dir.name}: {len(changes)} changed, {len(added)} added")
    return 0


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


def cmd_bundle(args: argparse.Namespace) -> int:
    from harness import bundle, locate
    from harness.session import RESULTS_DIR

    base = args.results or RESULTS_DIR
    run_dir = locate.run(args.run, base)
    folder, tarball = bundle.make(run_dir, args.out or base / "bundles", with_cores=args.with_cores)
    print(f"bundle: {folder}\narchive: {tarball}\nreport: {folder / 'ISSUE.md'}")
    return 0


def cmd_clean(args: argparse.Namespace) -> int:
    report = registry.clean(include_live=args.all)
    print(
        f"removed {report.roots} server roots, killed {report.processes} processes"
        + (f"; kept {report.skipped_live} of harness runs still alive (--all to remove)" if report.skipped_live else "")
    )
    return 0


COMMANDS = {
    "run": cmd_run,
    "list": cmd_list,
    "clean": cmd_clean,
    "baseline": cmd_baseline,
    "bundle": cmd_bundle,
    "isolate": cmd_isolate,
    "matrix": cmd_matrix,
    "report": cmd_report,
    "envs": cmd_envs,
    "bisect": cmd_bisect,
}


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
