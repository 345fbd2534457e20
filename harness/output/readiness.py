"""The readiness report: one page per package, ready to paste into its issue tracker. A grid of modes down and
Python versions across, each entry the verdict with how often, the exact message or crash signature of every
failure (as numbered notes, so the page stays short), and the modes that were clean on every interpreter:
the workaround to tell users about."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.version import Version

from harness import storage
from harness.model.assessment import Standing, evidence_lines, standing
from harness.model.outcome import BROKEN_COLOUR, POLICY, Outcome
from harness.model.records import BrokenSlot, RunResult
from harness.output.render import HTML
from harness.output.report import entry_text, screenshot
from harness.run.readiness import MODES, mode_of

MESSAGE = 160


@dataclass(frozen=True)
class Cell:
    text: str  # "clean 3/3", "raised 3/3 [2]", "n/a", "broken slot"
    colour: str
    link: str
    note: int | None  # the number of its message, if it has one


@dataclass(frozen=True)
class Page:
    package: str  # the requirement(s)
    scenario: str
    pythons: list[str]
    rows: list[tuple[str, str, list[Cell | None]]]  # (mode, what it is, one cell per Python)
    notes: list[str]
    clean_everywhere: list[str]
    failing: list[str]


def message(run: RunResult) -> str:
    """What a maintainer needs to see: the crash signature, else the exception, else the first evidence."""
    if run.signatures:
        text = run.signatures[0].signature
    elif run.first_exception:
        text = exception_line(run.first_exception.removeprefix("exception in load: "))
    else:
        lines = evidence_lines(run)
        text = lines[0] if lines else run.verdict.value
    return text if len(text) <= MESSAGE else text[: MESSAGE - 3] + "..."


def exception_line(text: str) -> str:
    """One line of a long exception message: the cause it quotes (numpy's "Original error was: ..."), else its
    first line with words in it, after the exception's type."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    kind = lines[0].split(":", 1)[0] if lines and ":" in lines[0] else ""
    quoted = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("Original error was:")), None)
    if quoted:
        return f"{kind}: {quoted}" if kind else quoted
    if len(lines) > 1 and lines[0].endswith(":"):
        return f"{lines[0]} {lines[1]}"
    return lines[0] if lines else text


def pages(runs: Sequence[RunResult], broken: Sequence[BrokenSlot], out_dir: Path) -> list[Page]:
    found = []
    packages = sorted({r.scenario for r in runs if r.spec.scenario.package is not None})
    for scenario in packages:
        mine = [r for r in runs if r.scenario == scenario]
        package = mine[0].spec.scenario.package
        pythons = sorted({r.cell.python for r in mine}, key=Version)
        notes: list[str] = []
        rows = []
        clean, failing = [], []
        for mode in MODES:
            cells: list[Cell | None] = []
            for python in pythons:
                run = next((r for r in mine if mode_of(r.spec) == mode.name and r.cell.python == python), None)
                cells.append(None if run is None else _cell(run, broken, notes, out_dir))
            rows.append((mode.name, mode.summary, cells))
            outcomes = [r.verdict for r in mine if mode_of(r.spec) == mode.name and r.verdict.about_app]
            if outcomes and all(o is Outcome.CLEAN for o in outcomes):
                clean.append(mode.name)
            elif any(o.is_failure for o in outcomes):
                failing.append(mode.name)
        requirement = ", ".join(package.requirements) if package else scenario
        found.append(Page(requirement, scenario, pythons, rows, notes, clean, failing))
    return found


def _cell(run: RunResult, broken: Sequence[BrokenSlot], notes: list[str], out_dir: Path) -> Cell:
    link = os.path.relpath(run.folder, out_dir)
    where = standing(run, broken)
    if where is Standing.BROKEN:  # the package's own verdict still says something; the controls' failure too
        slot = next((b for b in broken if b.cell == run.cell.label and b.mechanism == run.mechanism
                     and b.layout == run.layout), None)  # fmt: skip
        control = _note(notes, f"CPython's own controls fail here: {slot.reason}" if slot else "controls fail here")
        own = f"{entry_text(run)} [{_note(notes, message(run))}], " if run.verdict.is_failure else ""
        return Cell(f"{own}broken slot", BROKEN_COLOUR, link, control)
    if run.verdict is Outcome.UNSUPPORTED:
        return Cell("n/a", POLICY[Outcome.UNSUPPORTED].colour, link, _note(notes, run.reason or "unsupported"))
    if run.verdict is Outcome.CLEAN:
        return Cell(entry_text(run), POLICY[Outcome.CLEAN].colour, link, None)
    return Cell(entry_text(run), POLICY[run.verdict].colour, link, _note(notes, message(run)))


def _note(notes: list[str], text: str) -> int:
    if text not in notes:
        notes.append(text)
    return notes.index(text) + 1


def markdown(page: Page) -> str:
    lines = [f"## Readiness of {page.package} for mod_wsgi and sub-interpreters", ""]
    if page.clean_everywhere:
        lines.append(f"Clean on every Python tested in: **{', '.join(page.clean_everywhere)}**.")
    else:
        lines.append("Clean in no mode on every Python tested.")
    if page.failing:
        lines.append(f"Fails in: {', '.join(page.failing)}.")
    if "global" in page.clean_everywhere and page.failing:
        lines.append("Workaround under mod_wsgi: `WSGIApplicationGroup %{GLOBAL}` (the main interpreter).")
    lines += ["", "| mode | " + " | ".join(f"Python {p}" for p in page.pythons) + " |",
              "|---|" + "---|" * len(page.pythons)]  # fmt: skip
    for mode, _, cells in page.rows:
        shown = [(c.text + (f" [{c.note}]" if c.note else "")) if c else "" for c in cells]
        lines.append(f"| {mode} | " + " | ".join(shown) + " |")
    if page.notes:
        lines.append("")
        lines += [f"{number}. `{text}`" for number, text in enumerate(page.notes, 1)]
    lines += ["", "Modes: " + "; ".join(f"**{m.name}** {m.summary}" for m in MODES) + "."]
    return "\n".join(lines) + "\n"


def write(runs: Sequence[RunResult], broken: Sequence[BrokenSlot], out_dir: Path) -> tuple[list[Path], str | None]:
    """readiness.md (every package, one section each), readiness.html and a PNG of it."""
    found = pages(runs, broken, out_dir)
    md, html, png = out_dir / "readiness.md", out_dir / "readiness.html", out_dir / "readiness.png"
    storage.write_atomic(md, "\n".join(markdown(page) for page in found))
    for page in found:  # one file per package too: what a maintainer pastes
        storage.write_atomic(out_dir / f"readiness-{page.scenario}.md", markdown(page))
    legend = [(o.value, POLICY[o].colour, POLICY[o].label) for o in Outcome if o.about_app]
    legend.append(("broken slot", BROKEN_COLOUR, "CPython itself fails here (its clean control did)"))
    storage.write_atomic(html, HTML.get_template("readiness.html.j2").render(pages=found, legend=legend,
                                                                                     modes=MODES))  # fmt: skip
    width = max(900, 260 + 230 * max((len(p.pythons) for p in found), default=1))
    height = min(16000, 200 + sum(160 + 48 * len(p.rows) + 26 * len(p.notes) for p in found))
    problem = screenshot(html, png, (width, height))
    return [p for p in (md, html, png) if p.is_file()], problem
