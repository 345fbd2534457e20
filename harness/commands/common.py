"""What several commands do with their options: turn them into a Selection and cells, and a session's
record into lines on the terminal and an exit status."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.cells import generated, handins, interpreters
from harness.cells.apache import ApacheInfo, find_apache
from harness.cells.build import DEFAULT_MOD_WSGI, PythonInfo, base_interpreter, describe_python
from harness.cells.bundled import bundled_apache
from harness.cells.setup import cell_spec
from harness.commands import options
from harness.errors import HarnessError
from harness.model import layouts, mechanisms
from harness.model import scenario as scenarios
from harness.model.assessment import Standing, expected_verdict, standing, verdicts_text
from harness.model.records import RunResult, SessionRecord
from harness.model.spec import CellSpec, PackageProbe
from harness.places import default_results
from harness.run.plan import Planned, Selection


def results_dir(args: argparse.Namespace) -> Path:
    return Path(args.results) if getattr(args, "results", None) else default_results()


def selection(args: argparse.Namespace, default_scenarios: str) -> Selection:
    """What to run, from the selection options; every bad name or value is one line."""
    packages = [p for p in (args.package or []) if p is not None]
    if args.probe is not None and not packages:
        raise HarnessError("--probe needs --package REQUIREMENT (the code runs in an app that imports it)")
    try:
        # An empty --scenario is refused like an empty --mechanism, not taken for "the default set".
        names = args.scenario if args.scenario is not None else (None if packages else default_scenarios or None)
        chosen = scenarios.resolve(names) if names is not None else []
        chosen_mechanisms = mechanisms.select(args.mechanism)
        chosen_layouts = [layout.name for layout in layouts.select(args.layout)]
    except ValueError as exc:
        raise HarnessError(str(exc)) from None
    made: dict[str, PackageProbe] = {}
    if packages:
        probe = PackageProbe(tuple(packages), args.probe)
        found = generated.make(probe)
        made[found.name] = probe
        chosen = [*chosen, found]
    return Selection(
        scenarios=chosen,
        mechanisms=chosen_mechanisms,
        layouts=chosen_layouts,
        cycles=args.cycles,
        until_crash=args.until_crash,
        blocked=options.module_names(args.block, "--block"),
        hand_in_paths=handins.supplied(args.local_package or []),
        load_order=options.group_names(args.load_order, "--load-order"),
        preload=False if args.lazy_load else None,
        server_user=getattr(args, "server_user", None),
        private_view=not getattr(args, "no_private_view", False),
        port=getattr(args, "port", None),
        controls=not args.no_controls,
        packages=made,
    )


def pythons(text: str | None, every: bool) -> list[PythonInfo]:
    """The interpreters named (versions or paths), or the harness's own, or (for a matrix) every one found."""
    if not text:
        return interpreters.discover() if every else [describe_python(base_interpreter())]
    try:
        return interpreters.select(interpreters.discover(), text)
    except ValueError as exc:
        raise HarnessError(str(exc)) from None


def apaches(text: str | None) -> list[ApacheInfo]:
    items: list[str | None] = [a.strip() for a in (text or "").split(",") if a.strip()] or [None]
    found = []
    for item in items:
        if item is not None and item.startswith("bundled"):
            found.append(bundled_apache(item.partition(":")[2] or None))
        else:
            found.append(find_apache(item))
    return found


def versions(text: str | None, default: tuple[str, ...]) -> list[str]:
    found = [v.strip() for v in (text or "").split(",") if v.strip()] or list(default)
    for version in found:
        if len(version) > 500 or "\n" in version:
            raise HarnessError(f"--mod-wsgi: {version[:60]!r} is not a release or requirement")
    return found


def cells(
    python: str | None,
    mod_wsgi: str | None,
    apache: str | None,
    every_python: bool = False,
    mod_wsgi_default: tuple[str, ...] = (DEFAULT_MOD_WSGI,),
) -> list[CellSpec]:
    """Interpreters x mod_wsgi releases x Apaches, from the cell options' text."""
    found_pythons = pythons(python, every_python)
    if not found_pythons:
        raise HarnessError("no Python interpreters found; give --python with versions or paths")
    found_versions = versions(mod_wsgi, mod_wsgi_default)
    return [cell_spec(p, v, a) for a in apaches(apache) for p in found_pythons for v in found_versions]


def say_plan(planned: Planned) -> None:
    for note in planned.notes:
        print(f"note: {note}", file=sys.stderr)
    for name, why in planned.skipped:
        print(f"skipped {name}: {why}", file=sys.stderr)


def progress(result: RunResult, done: int, total: int) -> None:
    mark = {
        Standing.PASSED: "ok  ",
        Standing.FAILED: "FAIL",
        Standing.BROKEN: "brkn",
        Standing.NOT_APPLICABLE: "n/a ",
        Standing.INTERRUPTED: "intr",
    }[standing(result)]
    expected = expected_verdict(result)
    print(
        f"[{done}/{total}] {mark} {result.folder}: {result.verdict.value} "
        f"(expected {verdicts_text(expected)}) in {result.duration:.1f}s",
        file=sys.stderr,
        flush=True,
    )


def conclude(session_dir: Path, record: SessionRecord) -> int:
    """The terminal summary and the exit status: 1 when any run outside a broken slot is not as expected."""
    where = [(r, standing(r, record.broken)) for r in record.runs]
    failed = [r for r, s in where if s is Standing.FAILED]
    passed = sum(1 for _, s in where if s is Standing.PASSED)
    print(f"results: {session_dir}  ({passed}/{len(where)} as expected)")
    for slot in record.broken:
        print(
            f"  broken slot {slot.cell} / {slot.mechanism} / {slot.layout}: {slot.reason}; nothing there is blamed "
            "on its scenarios"
        )
    for result in failed:
        expected = expected_verdict(result)
        signature = f" [{result.signatures[0].signature}]" if result.signatures else ""
        print(f"  FAIL {result.folder}: {result.verdict.value}, expected {verdicts_text(expected)}{signature}")
    unsupported = [r for r, s in where if s is Standing.NOT_APPLICABLE]
    if unsupported:
        print(
            f"  {len(unsupported)} run(s) unsupported in their cell (not failures): "
            f"{'; '.join(sorted({r.reason or '' for r in unsupported}))[:300]}"
        )
    return 1 if failed else 0
