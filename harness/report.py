"""The merged report: any set of result folders (runs, matrices, other machines' CI artefacts) as one
table, scenario x mechanism x layout rows against cell columns, in Markdown, in a self-contained HTML
page coloured as a heatmap, and as a PNG of that page taken by headless Chromium.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.outcome import OUTCOME_NAMES
from harness.results import SUMMARY

COLOURS = {
    "clean": "#2e7d32",
    "wrong-result": "#f9a825",
    "raised": "#ef6c00",
    "hung": "#6a1b9a",
    "crashed": "#c62828",
    "start-failed": "#455a64",
    "unsupported": "#bdbdbd",
    "harness-error": "#212121",
}
BROKEN_COLOUR = "#8d6e63"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


@dataclass
class Table:
    rows: list[tuple[str, str, str]] = field(default_factory=list)  # (scenario, mechanism, layout)
    columns: list[str] = field(default_factory=list)  # cell labels
    entries: dict[tuple[tuple[str, str, str], str], dict[str, Any]] = field(default_factory=dict)
    broken: set[tuple[str, str, str]] = field(default_factory=set)  # (cell, mechanism, layout)


def cell_label(cell: Mapping[str, Any]) -> str:
    return f"Python {cell.get('python')} / mod_wsgi {cell.get('mod_wsgi')} / Apache {cell.get('apache')}"


def _version_key(label: str) -> tuple[Any, ...]:
    return tuple(int(n) if n.isdigit() else n for n in re.findall(r"\d+|[a-z]+", label))


def collect(folders: Iterable[Path]) -> list[dict[str, Any]]:
    """Every run in the session summaries found under the folders; the newest wins when the same run
    of the same cell appears twice."""
    newest: dict[tuple[str, str], dict[str, Any]] = {}
    for folder in folders:
        if not folder.is_dir():
            raise HarnessError(f"{folder}: no such folder; give result folders (sessions, matrices, or their parents)")
        for file in sorted(folder.rglob(SUMMARY)):
            try:
                data = json.loads(file.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                continue
            if not isinstance(data, dict) or not isinstance(data.get("runs"), list):
                continue
            for run in data["runs"]:
                run = {**run, "_folder": str(file.parent / run["run"])}
                key = (cell_label(run["cell"]), run["run"])
                if key not in newest or run.get("finished", 0) >= newest[key].get("finished", 0):
                    newest[key] = run
    if not newest:
        raise HarnessError("no runs found in those folders; give results/<session> or a matrix folder")
    return list(newest.values())


def build(runs: Sequence[dict[str, Any]]) -> Table:
    table = Table()
    for run in runs:
        row = (run["scenario"], run["mechanism"], run["layout"])
        column = cell_label(run["cell"])
        table.entries[(row, column)] = run
        if run.get("control") and run.get("expected") == "clean" and run["verdict"] not in ("clean", "unsupported"):
            table.broken.add((column, run["mechanism"], run["layout"]))
    table.rows = sorted({key[0] for key in table.entries})
    table.columns = sorted({key[1] for key in table.entries}, key=_version_key)
    return table


def _entry_text(run: Mapping[str, Any]) -> str:
    counts = run.get("counts", {})
    cycles = run.get("cycles_recorded", 0)
    if run["verdict"] in ("unsupported", "start-failed", "harness-error") or not cycles:
        return str(run["verdict"])
    return f"{run['verdict']} {counts.get(run['verdict'], 0)}/{cycles}"


@dataclass(frozen=True)
class Entry:
    run: dict[str, Any]
    link: str  # the run's folder, relative to the report
    broken: bool  # its cell's clean control was not clean under the same mechanism and layout


def _entries(table: Table, row: tuple[str, str, str], out_dir: Path) -> list[Entry | None]:
    """One row of the table, a column at a time (None where that cell has no such run)."""
    found: list[Entry | None] = []
    for column in table.columns:
        run = table.entries.get((row, column))
        if run is None:
            found.append(None)
            continue
        broken = not run.get("control") and (column, row[1], row[2]) in table.broken
        found.append(Entry(run, os.path.relpath(run["_folder"], out_dir), broken))
    return found


def markdown(table: Table, out_dir: Path) -> str:
    lines = [
        "# Harness results",
        "",
        f"{len(table.rows)} scenario x mechanism x layout rows, {len(table.columns)} cells. "
        "Each entry: verdict, then how many cycles had it. *broken*: the cell's clean control was not clean "
        "there, so nothing is blamed on the scenario.",
        "",
        "| scenario | mechanism | layout | " + " | ".join(table.columns) + " |",
        "|---|---|---|" + "---|" * len(table.columns),
    ]
    for row in table.rows:
        entries = [
            f"[{_entry_text(e.run)}{' *broken*' if e.broken else ''}]({e.link})" if e else ""
            for e in _entries(table, row, out_dir)
        ]
        lines.append(f"| {row[0]} | {row[1]} | {row[2]} | " + " | ".join(entries) + " |")
    unsupported = sorted(
        {(column, run["reason"]) for (_, column), run in table.entries.items() if run["verdict"] == "unsupported"}
    )
    if unsupported:
        lines += ["", "Unsupported cells:", ""]
        lines += [f"- {column}: {reason}" for column, reason in unsupported]
    return "\n".join(lines) + "\n"


def page(table: Table, out_dir: Path) -> str:
    """The HTML heatmap: one coloured square per run, linking to its evidence; no outside resources."""
    legend = (
        "".join(f'<span class="key" style="background:{COLOURS[name]}">{name}</span>' for name in OUTCOME_NAMES)
        + f'<span class="key" style="background:{BROKEN_COLOUR}">broken cell</span>'
    )
    head = "".join(f"<th>{html.escape(c).replace(' / ', '<br>')}</th>" for c in table.columns)
    body = []
    for row in table.rows:
        cells = []
        for entry in _entries(table, row, out_dir):
            if entry is None:
                cells.append('<td class="none"></td>')
                continue
            run = entry.run
            colour = BROKEN_COLOUR if entry.broken else COLOURS.get(run["verdict"], "#000")
            title = html.escape(run.get("reason") or "; ".join(next(iter(run.get("evidence", {}).values()), []))[:300])
            link = html.escape(entry.link)
            text = html.escape(_entry_text(run)) + ("<br><i>broken cell</i>" if entry.broken else "")
            cells.append(
                f'<td class="run" data-verdict="{run["verdict"]}" style="background:{colour}" title="{title}">'
                f'<a href="{link}">{text}</a></td>'
            )
        label = " ".join(html.escape(part) for part in row)
        body.append(f"<tr><th class='row'>{label}</th>{''.join(cells)}</tr>")
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Harness results</title>
<style>
body {{ font: 14px sans-serif; margin: 16px; background: #fff; }}
table {{ border-collapse: collapse; }}
th, td {{ border: 1px solid #fff; padding: 6px 8px; text-align: center; }}
th {{ background: #eceff1; font-weight: 600; }}
th.row {{ text-align: left; white-space: nowrap; }}
td.run a {{ color: #fff; text-decoration: none; display: block; min-width: 110px; }}
td.none {{ background: #fafafa; }}
.key {{ display: inline-block; color: #fff; padding: 3px 8px; margin: 0 4px 8px 0; }}
</style></head><body>
<h1>Harness results</h1>
<div class="legend">{legend}</div>
<table id="heatmap"><tr><th>scenario mechanism layout</th>{head}</tr>
{chr(10).join(body)}
</table></body></html>
"""


def chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def screenshot(page_file: Path, png: Path, size: tuple[int, int]) -> str | None:
    """A PNG of the page by headless Chromium; returns why not, when it cannot."""
    browser = chromium()
    if browser is None:
        return "no Chromium found (apt-get install chromium)"
    with tempfile.TemporaryDirectory(prefix="harness-chromium-") as profile:
        done = subprocess.run(
            [
                browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--hide-scrollbars", f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}",
                f"--screenshot={png}", page_file.resolve().as_uri(),
            ],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    if done.returncode != 0 or not png.is_file():
        return f"Chromium failed: {(done.stderr or done.stdout).strip()[-200:]}"
    return None


def write(folders: Sequence[Path], out_dir: Path) -> tuple[list[Path], str | None]:
    """report.md, report.html and report.png in out_dir; returns the files and why the PNG is missing."""
    table = build(collect(folders))
    out_dir.mkdir(parents=True, exist_ok=True)
    md, page_file, png = out_dir / "report.md", out_dir / "report.html", out_dir / "report.png"
    md.write_text(markdown(table, out_dir))
    page_file.write_text(page(table, out_dir))
    size = (420 + 150 * len(table.columns), 200 + 44 * len(table.rows))
    problem = screenshot(page_file, png, size)
    return [md, page_file, *([png] if problem is None else [])], problem
