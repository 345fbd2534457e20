"""RunSpec: the one description of a run, and the only input a run has.

Everything that decides what a run does is here: the scenario (by path and content hash, or the
requirement and probe code it was generated from), the mechanism and layout, the cell (the exact
Python, the mod_wsgi requirement and the Apache), the number of cycles, blocked modules, hand-in
packages (by sha256), how the app's interpreters first load, and who the server runs as. The CLI,
the pytest plugin, matrix, bisect, isolate and bundles all make RunSpecs; ``harness run --spec
FILE`` runs one exactly as written, so any recorded run can be run again anywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness.model import serial
from harness.model.scenario import LoadPlan

SPEC_SCHEMA = "1.0"
SPEC_FILE = "spec.json"


@dataclass(frozen=True)
class PackageProbe:
    """A scenario generated from pip requirements and a few lines of probe code (--package/--probe)."""

    requirements: tuple[str, ...]
    code: str | None = None  # None: import each package's module


@dataclass(frozen=True)
class ScenarioRef:
    name: str
    path: str  # its scenario.toml: absolute, or relative to the folder of the spec file
    sha256: str  # of the scenario folder's files, so a spec knows whether it still names the same app
    package: PackageProbe | None = None  # generated: made again from this wherever the spec runs
    control: bool = False


@dataclass(frozen=True)
class HandIn:
    """A package on no index, handed in by the user as a file or folder."""

    name: str  # the distribution name it was matched by
    version: str  # from its file name ('' for a folder)
    filename: str
    sha256: str
    path: str  # where it was when the spec was made (relative to the spec file inside a bundle)


@dataclass(frozen=True)
class ApacheRef:
    version: str
    origin: str  # "debian", "bundled:<httpd version>" or "apxs:<path>"
    apxs: str  # where it was found when the spec was made


@dataclass(frozen=True)
class CellSpec:
    """Which environment the app runs in. A driver run has no mod_wsgi and no Apache."""

    python: str  # exact version, e.g. 3.11.7: found again by it on another machine
    python_executable: str  # where it was on the machine that made the spec (a hint)
    mod_wsgi: str | None = None  # release or pip requirement as given
    apache: ApacheRef | None = None
    mod_wsgi_version: str | None = None  # what that requirement resolved to, once built

    @property
    def label(self) -> str:
        """A short name, unique per environment: py3.11.7-modwsgi6.1.1-apache2.4.71 or py3.11.7-driver."""
        if self.mod_wsgi is None:
            return f"py{self.python}-driver"
        spec = re.sub(r"[^A-Za-z0-9.]+", "_", self.mod_wsgi).strip("_")[-40:]
        apache = ""
        if self.apache is not None:
            apache = f"-apache{self.apache.version}"
            if not self.apache.origin.startswith("debian"):
                apache += "-" + re.sub(r"[^A-Za-z0-9.]+", "_", self.apache.origin.split(":", 1)[0])
        return f"py{self.python}-modwsgi{spec}{apache}"


@dataclass(frozen=True)
class RunSpec:
    scenario: ScenarioRef
    mechanism: str
    layout: str
    cell: CellSpec
    cycles: int
    until_crash: bool = False  # stop reloading at the first crashed cycle
    blocked: tuple[str, ...] = ()  # modules made unimportable before the app loads (their packages fall back)
    hand_ins: tuple[HandIn, ...] = ()
    load: LoadPlan = field(default_factory=LoadPlan)
    threads: int | None = None  # daemon threads, from the scenario
    server_user: str | None = None  # as root: who the server runs as (None: www-data or nobody)
    private_view: bool = True  # as root: show an unreadable interpreter to that user in a mount namespace
    port: int | None = None  # None: a free loopback port
    added_control: bool = False  # a clean control the harness added to judge this slot's health
    schema_version: str = SPEC_SCHEMA

    @property
    def run_id(self) -> str:
        return f"{self.scenario.name}.{self.mechanism}.{self.layout}"

    @property
    def slot(self) -> tuple[str, str, str]:
        """Where a clean control vouches for the cell: (cell, mechanism, layout)."""
        return (self.cell.label, self.mechanism, self.layout)

    def with_cell(self, cell: CellSpec) -> RunSpec:
        return replace(self, cell=cell)

    def unresolved(self) -> RunSpec:
        """The spec as asked for, without what its cell resolved to (for comparing a rerun with a result)."""
        return replace(self, cell=replace(self.cell, mod_wsgi_version=None))

    def to_json(self) -> dict[str, object]:
        return serial.dump(self)

    @staticmethod
    def from_json(data: object, source: str | Path) -> RunSpec:
        return serial.load(RunSpec, data, source, SPEC_SCHEMA)
