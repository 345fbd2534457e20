"""The merged report: any result folders (sessions, matrices, shards, other machines' CI artefacts) as
grids a person reads at a glance. One grid per scenario x mechanism x layout, Python versions down,
mod_wsgi versions across (one grid per Apache when there is more than one), each entry the verdict
with its count ("crashed 4/20") and a link to the run; in Markdown, in a self-contained HTML page, and
as a PNG of that page taken by headless Chromium.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from packaging.version import InvalidVersion, Version

from harness import storage
from harness.errors import HarnessError
from harness.model.assessment import Standing, broken_slots, evidence_lines, standing
from harness.model.outcome import BROKEN_COLOUR, INTERRUPTED_COLOUR, POLICY, Outcome
from harness.model.records import SUMMARY, BrokenSlot, RunResult, SessionRecord
from harness.output.markdown import cell_text
from harness.output.render import HTML

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
DRIVER_COLUMN = "no mod_wsgi (driver)"


def collect(folders: Iterable[Path]) -> list[RunResult]:
    """Every run in the session summaries found under the folders; the newest wins when the same run of
    the same cell appears twice (a resumed or repeated shard)."""
    newest: dict[tuple[str, str], RunResult] = {}
    for folder in folders:
        if not folder.is_dir():
            raise HarnessError(f"{folder}: no such folder; give result folders (sessions, matrices, or their parents)")
        for file in sorted(folder.rglob(SUMMARY)):
            data = storage.read_json(file)
            if not isinstance(data, dict) or "runs" not in data:
                continue  # a run's own summary: its session's lists it
            record = SessionRecord.from_json(data, file)
            for run in record.runs:
                located = _located(run, file.parent, folder)
                key = (run.cell.label, run.run)
                if key not in newest or run.finished >= newest[key].finished:
                    newest[key] = located
    if not newest:
        raise HarnessError("no runs found in those folders; give results/<session> or a matrix folder")
    return list(newest.values())


def _located(run: RunResult, session_dir: Path, root: Path) -> RunResult:
    """The run with its folder as a path, so links can be made relative to wherever the report goes."""
    return replace(run, folder=str(session_dir / run.folder))


def _version_key(text: str) -> tuple[int, Version | str]:
    try:
        return (0, Version(text))
    except InvalidVersion:
        return (1, text)


@dataclass
class Grid:
    scenario: str
    mechanism: str
    layout: str
    apache: str  # "" when the report has one Apache
    rows: list[str] = field(default_factory=list)  # Python versions
    columns: list[str] = field(default_factory=list)  # mod_wsgi versions
    entries: dict[tuple[str, str], RunResult] = field(default_factory=dict)

    @property
    def title(self) -> str:
        apache = f" (Apache {self.apache})" if self.apache else ""
        return f"{self.scenario} / {self.mechanism} / {self.layout}{apache}"


@dataclass(frozen=True)
class Entry:
    text: str  # "crashed 4/20"
    colour: str
    link: str
    note: str  # "broken slot", "unsupported", "interrupted" or ""
    title: str  # the first evidence, for a tooltip


def entry_text(run: RunResult) -> str:
    """The verdict with its count over the reload trials ("crashed 4/20") where the reloads showed it."""
    counted = next((r for r in run.rates if r.outcome is run.verdict), None)
    return f"{run.verdict.value} {counted.count}/{counted.trials}" if counted else run.verdict.value


def build(runs: Sequence[RunResult]) -> tuple[list[Grid], list[BrokenSlot]]:
    broken = broken_slots(runs)
    apaches = {_apache(r) for r in runs if r.cell.mod_wsgi is not None}
    grids: dict[tuple[str, str, str, str], Grid] = {}
    for run in runs:
        apache = _apache(run) if len(apaches) > 1 and run.cell.mod_wsgi is not None else ""
        key = (run.scenario, run.mechanism, run.layout, apache)
        grid = grids.setdefault(key, Grid(*key))
        column = (run.cell.mod_wsgi_version or run.cell.mod_wsgi) if run.cell.mod_wsgi else DRIVER_COLUMN
        grid.entries[(run.cell.python, str(column))] = run
    for grid in grids.values():
        grid.rows = sorted({row for row, _ in grid.entries}, key=_version_key)
        grid.columns = sorted({column for _, column in grid.entries}, key=_version_key)
    return [grids[key] for key in sorted(grids)], broken


def _apache(run: RunResult) -> str:
    return f"{run.cell.apache} ({run.cell.apache_origin})"


def entry(run: RunResult, broken: Sequence[BrokenSlot], out_dir: Path) -> Entry:
    where = standing(run, broken)
    colour = POLICY[run.verdict].colour
    note = ""
    if where is Standing.BROKEN:
        colour, note = BROKEN_COLOUR, "broken slot"
    elif where is Standing.INTERRUPTED:
        colour, note = INTERRUPTED_COLOUR, "interrupted"
    elif where is Standing.FAILED:
        note = "not as expected"
    evidence = evidence_lines(run)
    return Entry(
        entry_text(run), colour, os.path.relpath(run.folder, out_dir), note, evidence[0][:300] if evidence else ""
    )


def markdown(grids: Sequence[Grid], broken: Sequence[BrokenSlot], out_dir: Path) -> str:
    lines = [
        "# Harness results",
        "",
        f"{len(grids)} grids (scenario / mechanism / layout), Python down, mod_wsgi across. Each entry: the "
        "verdict and how many reload trials had it. *broken slot*: the cell's clean control failed under that "
        "mechanism and layout, so nothing there is blamed on the scenario.",
    ]
    for grid in grids:
        lines += [
            "",
            f"## {grid.title}",
            "",
            "| Python | " + " | ".join(grid.columns) + " |",
            "|---|" + "---|" * len(grid.columns),
        ]
        for row in grid.rows:
            cells = []
            for column in grid.columns:
                run = grid.entries.get((row, column))
                if run is None:
                    cells.append("")
                    continue
                shown = entry(run, broken, out_dir)
                cells.append(f"[{shown.text}]({shown.link})" + (f" *{shown.note}*" if shown.note else ""))
            lines.append(f"| {row} | " + " | ".join(cells) + " |")
    unsupported = sorted(
        {
            (g.title, r.cell.label, r.reason or "")
            for g in grids
            for r in g.entries.values()
            if r.verdict is Outcome.UNSUPPORTED
        }
    )
    if unsupported:
        lines += ["", "Unsupported:", ""] + [
            f"- {title}, {label}: {cell_text(reason, 200)}" for title, label, reason in unsupported
        ]
    for slot in broken:
        lines += ["", f"Broken slot {slot.cell} / {slot.mechanism} / {slot.layout}: {slot.reason}."]
    return "\n".join(lines) + "\n"


def page(grids: Sequence[Grid], broken: Sequence[BrokenSlot], out_dir: Path) -> str:
    """The HTML page: one coloured grid per scenario, mechanism and layout; no outside resources."""
    shown = [
        (
            grid,
            [
                [
                    entry(run, broken, out_dir) if (run := grid.entries.get((row, column))) else None
                    for column in grid.columns
                ]
                for row in grid.rows
            ],
        )
        for grid in grids
    ]
    legend = [(o.value, POLICY[o].colour, POLICY[o].label) for o in Outcome]
    legend += [
        ("broken slot", BROKEN_COLOUR, "the clean control failed here"),
        ("interrupted", INTERRUPTED_COLOUR, "stopped before it finished"),
    ]
    return HTML.get_template("report.html.j2").render(grids=shown, legend=legend)


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
        try:
            done = subprocess.run(
                [
                    browser,
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--hide-scrollbars",
                    f"--user-data-dir={profile}",
                    f"--window-size={size[0]},{size[1]}",
                    f"--screenshot={png}",
                    page_file.resolve().as_uri(),
                ],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"Chromium failed: {exc}"
    if done.returncode != 0 or not png.is_file():
        return f"Chromium failed: {(done.stderr or done.stdout).strip()[-200:]}"
    return None


def page_size(grids: Sequence[Grid]) -> tuple[int, int]:
    """A window that holds the whole page at its natural size, so every label is drawn full size."""
    widest = max((len(g.columns) for g in grids), default=1)
    height = 140 + sum(90 + 46 * len(g.rows) for g in grids)
    return max(900, 220 + 190 * widest), min(16000, height)


def write(folders: Sequence[Path], out_dir: Path) -> tuple[list[Path], str | None]:
    """report.md, report.html and report.png in out_dir; returns the files and why the PNG is missing."""
    grids, broken = build(collect(folders))
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise storage.disk_error(out_dir, exc) from None
    md, page_file, png = out_dir / "report.md", out_dir / "report.html", out_dir / "report.png"
    storage.write_atomic(md, markdown(grids, broken, out_dir))
    storage.write_atomic(page_file, page(grids, broken, out_dir))
    problem = screenshot(page_file, png, page_size(grids))
    return [p for p in (md, page_file, png) if p.is_file()], problem
