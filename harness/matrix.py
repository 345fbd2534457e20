"""The version matrix: the same runs in every cell (interpreter x mod_wsgi x Apache), one session folder
per cell inside one matrix folder, resumable, with a progress line and an estimate of the time left.

Cells go one after another (each cell's runs go side by side); a cell that cannot be built gives
unsupported runs with the reason, and a cell whose clean control is not clean is marked broken, so
nothing in it is blamed on the scenario.
"""

from __future__ import annotations

import dataclasses
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import locate, results
from harness.cell import PythonInfo
from harness.errors import HarnessError
from harness.session import Selection, run_session

MATRIX_FILE = locate.MATRIX_FILE
DEFAULT_MOD_WSGI = ("4.9.4", "5.0.2", "6.1.1")


@dataclass(frozen=True)
class CellSpec:
    python: PythonInfo
    mod_wsgi: str
    apxs: str | None = None  # None: the default Apache
    apache_tag: str = ""  # set when the matrix has more than one Apache

    @property
    def label(self) -> str:
        return f"py{self.python.version}-modwsgi{self.mod_wsgi}{self.apache_tag}"


def cells(
    pythons: Sequence[PythonInfo], mod_wsgi: Sequence[str], apaches: Sequence[str | None] = (None,)
) -> list[CellSpec]:
    def tag(apxs: str | None) -> str:
        if len(apaches) == 1 or apxs is None:
            return ""
        return "-apache-" + re.sub(r"[^A-Za-z0-9.]+", "_", apxs).strip("_")[-40:]

    return [CellSpec(p, v, a, tag(a)) for a in apaches for p in pythons for v in mod_wsgi]


class Progress:
    """One line per finished run: where the matrix is, and the time left at the pace so far."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.started = time.monotonic()

    def __call__(self, label: str, summary: dict[str, Any]) -> None:
        self.done += 1
        elapsed = time.monotonic() - self.started
        left = elapsed / self.done * (self.total - self.done)
        width = 20
        bar = "#" * (width * self.done // self.total) + "." * (width - width * self.done // self.total)
        mark = "ok  " if results.passed(summary) else "n/a " if summary["verdict"] == "unsupported" else "FAIL"
        print(
            f"[{bar}] {self.done}/{self.total} ETA {_duration(left)}  {mark} {label} {summary['run']}: "
            f"{summary['verdict']}",
            file=sys.stderr,
            flush=True,
        )

    def skip(self, count: int) -> None:
        """Runs a resumed matrix already has: they count as done but not towards the pace."""
        self.total -= count


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds + 0.5), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def run_matrix(base: Selection, specs: Sequence[CellSpec], folder: Path) -> dict[str, Any]:
    """Every cell's session under `folder`; returns (and writes) the matrix summary."""
    folder.mkdir(parents=True, exist_ok=True)
    per_cell = len(base.specs())
    progress = Progress(per_cell * len(specs))
    record: dict[str, Any] = {"folder": str(folder), "cells": {}, "compilations": 0, "started": time.time()}
    for spec in specs:
        selection = dataclasses.replace(
            base,
            python=Path(spec.python.executable),
            mod_wsgi=spec.mod_wsgi,
            session_dir=folder / spec.label,
            apxs=spec.apxs or base.apxs,
        )
        before = progress.done

        def report(summary: dict[str, Any], _done: int, _total: int, label: str = spec.label) -> None:
            progress(label, summary)

        try:
            _, summaries = run_session(selection, progress=report)
        except HarnessError as exc:  # this cell cannot even be set up here: say so, go on with the rest
            record["cells"][spec.label] = {"status": "error", "reason": str(exc)}
            progress.skip(per_cell)
            print(f"cell {spec.label}: {exc}", file=sys.stderr)
            _write(folder, record)
            continue
        progress.skip(per_cell - (progress.done - before))  # the runs a resumed matrix had already
        record["cells"][spec.label] = cell_status(summaries)
        fresh = [s for s in summaries if s.get("started", 0) >= record["started"]]  # not those resumed
        record["compilations"] += int(any(s["cell"].get("compiled_now") for s in fresh[:1]))
        _write(folder, record)
    record["finished"] = time.time()
    _write(folder, record)
    return record


def cell_status(summaries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """ok, unsupported (with the reason), or broken: a clean control that was not clean."""
    if not summaries:
        return {"status": "error", "reason": "no runs"}
    cell = summaries[0]["cell"]
    if cell.get("unsupported"):
        return {"status": "unsupported", "reason": cell["unsupported"], "cell": cell}
    broken = [
        s["run"]
        for s in summaries
        if s.get("control") and s.get("expected") == "clean" and s["verdict"] != "clean" and not s.get("interrupted")
    ]
    if broken:
        return {"status": "broken", "reason": f"clean control not clean: {', '.join(broken)}", "cell": cell}
    return {"status": "ok", "cell": cell}


def _write(folder: Path, record: dict[str, Any]) -> None:
    results.write_json(folder / MATRIX_FILE, record)
