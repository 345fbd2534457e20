"""From what the user chose to RunSpecs: scenarios x mechanisms x layouts x cells, with the clean controls
each slot needs.

A driver mechanism runs in its own kind of interpreter and in an environment without mod_wsgi, so it
gets the driver cell of each Python; a layout it cannot have is said once, never silently changed.
Every slot (cell, mechanism, layout) a scenario runs in also gets the clean controls (``hello``,
``stdlib``) unless they are already there or ``--no-controls`` was given: where one of them fails, the
slot is broken and nothing in it is blamed on the scenario.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.cells import handins
from harness.model import scenario as scenarios
from harness.model.mechanisms import MECHANISMS, Mechanism, layouts_for
from harness.model.scenario import LoadPlan, Scenario
from harness.model.spec import CellSpec, PackageProbe, RunSpec, ScenarioRef

CLEAN_CONTROLS = ("hello", "stdlib")
CONTROL_CYCLES = 3


@dataclass(frozen=True)
class Selection:
    scenarios: Sequence[Scenario]
    mechanisms: Sequence[Mechanism]
    layouts: Sequence[str]
    cycles: int
    until_crash: bool = False
    blocked: tuple[str, ...] = ()
    hand_in_paths: Sequence[Path] = ()
    load_order: tuple[str, ...] | None = None  # overrides the scenarios' own
    preload: bool | None = None
    server_user: str | None = None
    private_view: bool = True
    port: int | None = None
    controls: bool = True
    packages: dict[str, PackageProbe] = field(default_factory=dict)  # generated scenario name -> what made it


@dataclass(frozen=True)
class Planned:
    specs: list[RunSpec]
    notes: list[str]  # what the user should know: layouts a mechanism ignores, controls added
    skipped: list[tuple[str, str]]  # scenarios that cannot run here, and why


def scenario_ref(found: Scenario, package: PackageProbe | None = None) -> ScenarioRef:
    return ScenarioRef(
        name=found.name,
        path=str(found.file.resolve()),
        sha256=scenarios.content_hash(found.directory),
        package=package,
        control=found.control,
    )


def driver_cell(cell: CellSpec) -> CellSpec:
    """The environment a driver mechanism runs in: the same Python, no mod_wsgi, no Apache."""
    return CellSpec(python=cell.python, python_executable=cell.python_executable)


def plan(selection: Selection, cells: Sequence[CellSpec]) -> Planned:
    notes: list[str] = []
    skipped: list[tuple[str, str]] = []
    specs: list[RunSpec] = []
    supplied = [Path(p) for p in selection.hand_in_paths]
    for mechanism in selection.mechanisms:
        own, ignored = layouts_for(mechanism, list(selection.layouts))
        if ignored and mechanism.driver:
            notes.append(
                f"{mechanism.name} runs in layout {', '.join(own)} (the driver's kind of interpreter); "
                f"--layout {', '.join(ignored)} does not apply to it"
            )
        elif ignored:
            notes.append(f"layout {', '.join(ignored)} is made only by the embedding driver; {mechanism.name} skips it")
    for found in selection.scenarios:
        match = handins.match(found.local_packages, supplied)
        if match.missing:
            skipped.append((found.name, match.skip_reason()))
            continue
        hand_ins = tuple(handins.record(path) for path in match.found.values())
        ref = scenario_ref(found, selection.packages.get(found.name))
        load = LoadPlan(
            order=found.load.order if selection.load_order is None else selection.load_order,
            preload=found.load.preload if selection.preload is None else selection.preload,
        )
        for mechanism in selection.mechanisms:
            own, _ = layouts_for(mechanism, list(selection.layouts))
            for layout in own:
                if layout not in found.layouts:
                    continue
                for cell in cells:
                    specs.append(
                        RunSpec(
                            scenario=ref,
                            mechanism=mechanism.name,
                            layout=layout,
                            cell=driver_cell(cell) if mechanism.driver else cell,
                            cycles=selection.cycles,
                            until_crash=selection.until_crash,
                            blocked=selection.blocked,
                            hand_ins=hand_ins,
                            load=load,
                            threads=found.threads,
                            server_user=selection.server_user,
                            private_view=selection.private_view,
                            port=selection.port,
                        )
                    )
    specs = list(dict.fromkeys(specs))
    if selection.controls:
        added = controls_for(specs, selection)
        if added:
            slots = len({s.slot for s in added})
            notes.append(
                f"clean controls {', '.join(CLEAN_CONTROLS)} added in {slots} slot(s) to judge the cell there "
                "(--no-controls to skip)"
            )
        specs += added
    return Planned(specs, notes, skipped)


def controls_for(specs: Sequence[RunSpec], selection: Selection) -> list[RunSpec]:
    """Clean controls for every slot the specs use that does not have them yet."""
    known = scenarios.discover()
    have = {(s.slot, s.scenario.name) for s in specs}
    added: list[RunSpec] = []
    seen_slots: set[tuple[str, str, str]] = set()
    for spec in specs:
        if spec.slot in seen_slots:
            continue
        seen_slots.add(spec.slot)
        for name in CLEAN_CONTROLS:
            if (spec.slot, name) in have or name not in known:
                continue
            control = scenarios.load(known[name])
            if spec.layout not in control.layouts:
                continue
            added.append(
                RunSpec(
                    scenario=scenario_ref(control),
                    mechanism=spec.mechanism,
                    layout=spec.layout,
                    cell=spec.cell,
                    cycles=min(spec.cycles, CONTROL_CYCLES),
                    server_user=spec.server_user,
                    private_view=spec.private_view,
                    port=spec.port,
                    added_control=True,
                )
            )
    return added


def mechanisms_named(names: Sequence[str]) -> list[Mechanism]:
    return [MECHANISMS[n] for n in names]
