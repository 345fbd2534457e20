"""The free-threaded layout needs a Python built without the GIL. No interpreter on this machine is one (pyenv
has 3.13.0, not 3.13.0t), so the live suite can show only the refusal; here both sides of the rule."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from harness.cells import interpreters
from harness.cells.build import PythonInfo
from harness.engines.apache.engine import refuse_free_threaded
from harness.engines.base import EngineSetup
from harness.model import scenario
from harness.model.layouts import LAYOUTS
from harness.model.mechanisms import MECHANISMS
from tests.conftest import REPO
from tests.unit.builders import run_spec
from tests.unit.fakes import CELL, prepared


def _setup(layout: str, free_threaded: bool) -> EngineSetup:
    cell = prepared(CELL)
    assert cell.cell is not None
    python = PythonInfo("3.13.0", "/opt/python/bin/python3.13t", free_threaded)
    cell = replace(cell, cell=replace(cell.cell, python=python))
    hello = scenario.load(REPO / "scenarios" / "hello" / scenario.SCENARIO_FILE)
    spec = run_spec("hello", "sigusr1", layout, CELL, 1, None)
    return EngineSetup(spec, hello, MECHANISMS["sigusr1"], LAYOUTS[layout], cell, Path("/nonexistent"), (),
                       Path("/nonexistent/log"))  # fmt: skip


def test_a_build_with_the_gil_is_refused_in_words() -> None:
    why = refuse_free_threaded(_setup("free-threaded", free_threaded=False))
    assert why is not None and "needs a free-threaded build of Python" in why and "built with the GIL" in why


def test_a_free_threaded_build_is_taken() -> None:
    assert refuse_free_threaded(_setup("free-threaded", free_threaded=True)) is None
    assert refuse_free_threaded(_setup("global", free_threaded=False)) is None


def test_free_threaded_executables_are_candidates() -> None:
    assert interpreters._is_plain("/opt/bin/python3.13t") and interpreters._is_plain("/usr/bin/python3.11")
    assert not interpreters._is_plain("/usr/bin/python3.11-config")
