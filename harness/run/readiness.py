"""Readiness: one package through every way a production server runs it, on every interpreter.

The modes are the interpreter arrangements mod_wsgi gives an app (the main interpreter, a named
sub-interpreter, two applications in one daemon, a GIL of its own per interpreter) and the transitions the
embedding driver makes (destroy and re-create, overlap, two isolated interpreters at once, finalize and
re-initialize). Each package gets a generated scenario that imports it (or runs --probe code) on every
request; each (mode, Python) slot gets the clean controls, so a failure of CPython itself is not blamed
on the package.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from packaging.version import Version

from harness.cells import generated
from harness.cells.apache import ApacheInfo
from harness.cells.build import PythonInfo
from harness.cells.setup import cell_spec
from harness.model.scenario import LoadPlan
from harness.model.spec import CellSpec, PackageProbe, RunSpec, ScenarioRef
from harness.run.plan import Selection, controls_for, driver_cell, scenario_ref


@dataclass(frozen=True)
class Mode:
    name: str
    mechanism: str
    layout: str
    summary: str

    @property
    def apache(self) -> bool:
        return self.mechanism == "sigusr1"


MODES = (
    Mode("global", "sigusr1", "global", "mod_wsgi, the main interpreter (WSGIApplicationGroup %{GLOBAL})"),
    Mode("named", "sigusr1", "named", "mod_wsgi, a named sub-interpreter (its default)"),
    Mode("two-groups", "sigusr1", "two-groups", "mod_wsgi, two applications' sub-interpreters in one daemon"),
    Mode("own-gil", "sigusr1", "own-gil", "mod_wsgi 6, WSGIPerInterpreterGIL On (Python >= 3.12)"),
    Mode("recreate", "interpreter-cycle", "named", "a sub-interpreter destroyed and made again (mod_wsgi 1.x)"),
    Mode("overlap", "interpreter-overlap", "named", "the next sub-interpreter loads while the previous lives"),
    Mode("isolated", "interpreter-cycle", "isolated", "PEP 684 isolated interpreters (Python >= 3.12)"),
    Mode("parallel", "interpreter-parallel", "isolated", "two isolated interpreters serving at once (3.12+)"),
    Mode("finalize", "finalize-reinit", "global", "Py_Finalize and Py_Initialize in one process"),
)
MODE_NAMES = tuple(mode.name for mode in MODES)


def mod_wsgi_for(python: str) -> str:
    """The newest mod_wsgi release for an interpreter: 6.1.1 from 3.10, 5.0.2 on 3.8-3.9, else 4.9.4."""
    version = Version(python)
    if version >= Version("3.10"):
        return "6.1.1"
    if version >= Version("3.8"):
        return "5.0.2"
    return "4.9.4"


def mode_of(spec: RunSpec) -> str | None:
    return next((m.name for m in MODES if (m.mechanism, m.layout) == (spec.mechanism, spec.layout)), None)


def plan(packages: Sequence[PackageProbe], pythons: Sequence[PythonInfo], apache: ApacheInfo, cycles: int,
         modes: Sequence[Mode] = MODES, mod_wsgi: str | None = None) -> list[RunSpec]:  # fmt: skip
    """Every package in every mode on every interpreter, with the clean controls of each slot."""
    specs: list[RunSpec] = []
    for package in packages:
        ref = scenario_ref(generated.make(package), package)
        for python in pythons:
            cell = cell_spec(python, mod_wsgi or mod_wsgi_for(python.version), apache)
            for mode in modes:
                specs.append(_spec(ref, mode, cell if mode.apache else driver_cell(cell), cycles))
    return specs + controls_for(specs, Selection([], [], [], cycles))


def _spec(ref: ScenarioRef, mode: Mode, cell: CellSpec, cycles: int) -> RunSpec:
    return RunSpec(
        scenario=ref, mechanism=mode.mechanism, layout=mode.layout, cell=cell, cycles=cycles, load=LoadPlan()
    )
