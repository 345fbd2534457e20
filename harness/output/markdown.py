"""report.md of a session: a table a person reads in ten seconds, failures first, then the crashes by
signature and the hangs by the line they were stuck on."""

from __future__ import annotations

from collections.abc import Sequence

from harness.engines.procs import signal_name
from harness.model.assessment import Standing, evidence_lines, expected_verdict, standing, verdicts_text
from harness.model.records import RunResult, SessionRecord

EVENTS_PER_RUN = 3
_MARK = {
    Standing.PASSED: "ok",
    Standing.FAILED: "**FAIL**",
    Standing.BROKEN: "broken slot",
    Standing.NOT_APPLICABLE: "n/a",
    Standing.INTERRUPTED: "interrupted",
}


def cell_text(text: str, limit: int = 160) -> str:
    """Text for one Markdown table cell: pipes escaped, one line, bounded."""
    flat = text.replace("|", "\\|").replace("\n", " ")
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def rates_text(result: RunResult) -> str:
    """Per reload trial: each outcome's count and 95% interval, and whether the run was flaky."""
    parts = [rate.short() for rate in result.rates]
    if not parts:
        return "no reload trials"
    return "; ".join(parts) + (f", {result.stability}" if result.stability else "")


def report(record: SessionRecord, title: str) -> str:
    where = {r.run + r.cell.label: standing(r, record.broken) for r in record.runs}
    rows = sorted(record.runs, key=lambda r: (where[r.run + r.cell.label] is not Standing.FAILED, r.cell.label, r.run))
    bad = sum(1 for s in where.values() if s is Standing.FAILED)
    several = len({r.cell.label for r in rows}) > 1
    lines = [f"# {title}", ""]
    if record.interrupted:
        lines += ["**Interrupted**: runs not finished are marked so and say nothing about the app.", ""]
    lines += [f"{len(rows)} runs, {bad} not as expected." if bad else f"{len(rows)} runs, all as expected.", ""]
    head = (
        "| | "
        + ("cell | " if several else "")
        + "scenario | mechanism | layout | verdict | expected | per reload (95% CI) | first evidence |"
    )
    lines += [head, "|---" * (head.count("|") - 1) + "|"]
    for r in rows:
        evidence = evidence_lines(r)
        expected = expected_verdict(r)
        cells = [
            _MARK[where[r.run + r.cell.label]],
            *([r.cell.label] if several else []),
            r.scenario,
            r.mechanism,
            r.layout,
            r.verdict.value,
            verdicts_text(expected),
            rates_text(r),
            cell_text(evidence[0]) if evidence else "",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    for broken in record.broken:
        lines.append(f"\nBroken slot {broken.cell} / {broken.mechanism} / {broken.layout}: {broken.reason}.")
    for scenario, why in record.skipped:
        lines.append(f"\nSkipped {scenario}: {why}.")
    lines += crash_table(rows) + hang_table(rows)
    environments = sorted({r.cell.label: r.cell for r in rows}.values(), key=lambda c: c.label)
    if environments:
        lines += [""] + [
            f"Cell {c.label}: Python {c.python}"
            + (
                f", mod_wsgi {c.mod_wsgi_version or c.mod_wsgi}, Apache {c.apache} ({c.apache_origin})"
                if c.mod_wsgi
                else ", embedding driver (no Apache)"
            )
            + "."
            for c in environments
        ]
    return "\n".join(lines) + "\n"


def crash_table(rows: Sequence[RunResult]) -> list[str]:
    """Crashes grouped by signature: how many, in which runs and cycles, and the first one's evidence."""
    lines = []
    for r in rows:
        for crash in r.crashes[:EVENTS_PER_RUN]:
            trace = crash.backtrace
            frame = (trace.app_frame or trace.python_frame) if trace else None
            files = f"`{r.folder}/{trace.file}`" if trace and trace.file else cell_text(crash.no_core or "no core")
            lines.append(
                f"| {cell_text(crash.signature or 'no signature')} | {r.run} | {crash.cycle} | {crash.pid} "
                f"| {signal_name(crash.signal)} | {cell_text(frame or '-')} | {files} |"
            )
    if not lines:
        return []
    head = ["", "## Crashes", "", "| signature | run | cycle | pid | signal | Python line | backtrace |"]
    return [*head, "|---|---|---|---|---|---|---|", *lines]


def hang_table(rows: Sequence[RunResult]) -> list[str]:
    """Where each hung process was blocked, from the stacks dumped before it was killed."""
    lines = []
    for r in rows:
        for dump in r.hangs[:EVENTS_PER_RUN]:
            frames = "; ".join(dump.app_frames) or "-"
            native = "; ".join(dump.native_frames) or "-"
            lines.append(
                f"| {r.run} | {dump.cycle} | {dump.pid} | {cell_text(frames)} | {cell_text(native)} "
                f"| {dump.tool} | `{r.folder}/{dump.file}` |"
            )
    if not lines:
        return []
    head = [
        "",
        "## Hangs (stacks dumped before the kill)",
        "",
        "| run | cycle | pid | app line | blocked in | tool | stack dump |",
    ]
    return [*head, "|---|---|---|---|---|---|---|", *lines]
