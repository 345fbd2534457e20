"""Results on disk: cycles.jsonl appended as cycles finish, summary.json, junit.xml and report.md.

Writes are crash-safe: a cycle line is flushed and fsynced before the next cycle starts, and whole
files are written to a temporary name and renamed, so a killed harness or a full disk never leaves
a half-written summary and never spoils what was already written.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.outcome import OUTCOME_NAMES

CYCLES = "cycles.jsonl"
SUMMARY = "summary.json"
JUNIT = "junit.xml"
REPORT = "report.md"


def disk_error(path: Path, exc: OSError) -> HarnessError:
    """The one-line error for a results file that cannot be written (full or read-only disk)."""
    return HarnessError(f"cannot write {path}: {exc.strerror or exc}; free space or choose --results DIR elsewhere")


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise disk_error(path, exc) from None


def write_json(path: Path, data: object) -> None:
    write_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def append_jsonl(path: Path, record: Mapping[str, Any]) -> None:
    """One line per record, on disk before returning: a killed run keeps every finished cycle.

    A whole line or nothing: a full disk lets write(2) store part of a line (up to the last free
    page) before it fails, so on any error the file is cut back to its length before this record."""
    line = (json.dumps(record, separators=(",", ":")) + "\n").encode("utf-8")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except OSError as exc:
        raise disk_error(path, exc) from None
    try:
        try:
            start = os.fstat(fd).st_size
        except OSError as exc:
            raise disk_error(path, exc) from None
        try:
            rest = memoryview(line)
            while rest:
                written = os.write(fd, rest)
                if written <= 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                rest = rest[written:]
            os.fsync(fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, start)
            raise disk_error(path, exc) from None
    finally:
        os.close(fd)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Records from a cycles file; a last line cut short by a kill is skipped, not fatal."""
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def passed(summary: Mapping[str, Any]) -> bool:
    """Against a baseline that knows the run: its verdict did not change. Otherwise: the verdict is
    the one the scenario expects."""
    base = summary.get("baseline") or {}
    if base.get("expected") is not None:
        return base.get("change") is None and not summary.get("interrupted")
    return bool(summary["matches"])


def expected_verdict(summary: Mapping[str, Any]) -> str | None:
    base = summary.get("baseline") or {}
    return base.get("expected") or summary.get("expected")


def _failure_message(summary: Mapping[str, Any]) -> str:
    base = summary.get("baseline") or {}
    if base.get("change"):
        return f"{base['change']}: verdict {summary['verdict']}, baseline {base['expected']} ({base['file']})"
    return f"verdict {summary['verdict']}, expected {summary['expected']}"


def junit(summaries: Sequence[Mapping[str, Any]], name: str) -> str:
    """One testcase per run: a changed or unexpected verdict is a failure; a known crasher (a
    non-clean verdict that is expected) is an expected failure, so CI stays green until it changes."""
    failures = sum(1 for s in summaries if not passed(s))
    known = sum(1 for s in summaries if passed(s) and s["verdict"] != "clean")
    suite = ET.Element(
        "testsuite",
        name=name,
        tests=str(len(summaries)),
        failures=str(failures),
        errors="0",
        skipped=str(known),
        time=f"{sum(s.get('duration', 0.0) for s in summaries):.3f}",
    )
    for summary in summaries:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"harness.{summary['scenario']}",
            name=f"{summary['mechanism']}[{summary['layout']}]",
            time=f"{summary.get('duration', 0.0):.3f}",
        )
        props = ET.SubElement(case, "properties")
        for key in ("verdict", "expected", "cycles", "stability", "first_crash_cycle"):
            ET.SubElement(props, "property", name=key, value=str(summary.get(key)))
        if summary.get("baseline"):
            ET.SubElement(props, "property", name="baseline", value=str(summary["baseline"].get("expected")))
        for outcome, number in summary["counts"].items():
            ET.SubElement(props, "property", name=f"count.{outcome}", value=str(number))
        if not passed(summary):
            failure = ET.SubElement(case, "failure", message=_failure_message(summary), type="VerdictMismatch")
            failure.text = "\n".join(_first_evidence(summary))
        elif summary["verdict"] != "clean":
            ET.SubElement(
                case, "skipped", type="xfail", message=f"known {summary['verdict']}: as expected, not a regression"
            )
    ET.indent(suite)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


def rates_cell(summary: Mapping[str, Any]) -> str:
    """Per reload: each outcome's count, rate and 95% interval, and whether the run was flaky."""
    parts = []
    for outcome, rate in summary.get("rates", {}).items():
        low, high = rate["ci95"]
        parts.append(f"{outcome} {rate['count']}/{rate['trials']} ({low:.0%}-{high:.0%})")
    stability = summary.get("stability")
    return "; ".join(parts) + (f", {stability}" if parts and stability else "")


def _first_evidence(summary: Mapping[str, Any]) -> list[str]:
    lines = [summary["reason"]] if summary.get("reason") else []
    for outcome_lines in summary.get("evidence", {}).values():
        lines += outcome_lines
    return lines[:12]


def _counts_cell(counts: Mapping[str, int]) -> str:
    return " ".join(f"{name}:{counts[name]}" for name in OUTCOME_NAMES if counts.get(name))


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")[:160]


def report(summaries: Iterable[Mapping[str, Any]], title: str) -> str:
    """A table a person reads in ten seconds: failures first, then everything else."""
    rows = sorted(summaries, key=lambda s: (passed(s), s["scenario"], s["mechanism"], s["layout"]))
    bad = sum(1 for s in rows if not passed(s))
    lines = [
        f"# {title}",
        "",
        f"{len(rows)} runs, {bad} not as expected." if bad else f"{len(rows)} runs, all as expected.",
        "",
        "| | scenario | mechanism | layout | verdict | expected | per reload (95% CI) | counts | first evidence |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in rows:
        evidence = _first_evidence(s)
        change = (s.get("baseline") or {}).get("change")
        mark = "ok" if passed(s) else f"**{change.upper()}**" if change in ("regression", "fix") else "**FAIL**"
        lines.append(
            f"| {mark} | {s['scenario']} | {s['mechanism']} | {s['layout']} "
            f"| {s['verdict']} | {expected_verdict(s)} | {rates_cell(s)} | {_counts_cell(s['counts'])} "
            f"| {_md(evidence[0]) if evidence else ''} |"
        )
    lines += _crash_table(rows) + _hang_table(rows)
    if rows:
        cell = rows[0]["cell"]
        lines += [
            "",
            f"Cell: Python {cell.get('python')}, mod_wsgi {cell.get('mod_wsgi')}, "
            f"Apache {cell.get('apache')} ({cell.get('apache_origin')}).",
        ]
    return "\n".join(lines) + "\n"


EVENTS_PER_RUN = 3


def _crash_table(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Where each run's first crashes happened, from their cores' backtraces."""
    lines = []
    for s in rows:
        for crash in s.get("crashes", [])[:EVENTS_PER_RUN]:
            trace = crash.get("backtrace") or {}
            where = trace.get("crashing_function") or "-"
            frame = trace.get("app_frame") or trace.get("python_frame") or "-"
            files = f"`{s['run']}/{trace['file']}`" if trace.get("file") else _md(crash.get("no_core") or "no core")
            lines.append(
                f"| {s['run']} | {crash.get('cycle')} | {crash.get('pid')} | {crash.get('signal')} "
                f"| {_md(where)} | {_md(frame)} | {files} |"
            )
    if not lines:
        return []
    head = ["", "## Crashes", "", "| run | cycle | pid | signal | crashing function | Python line | backtrace |"]
    return [*head, "|---|---|---|---|---|---|---|", *lines]


def _hang_table(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Where each hung process was blocked, from the stack dumps taken before it was killed."""
    lines = []
    for s in rows:
        for dump in s.get("hangs", [])[:EVENTS_PER_RUN]:
            frames = "; ".join(dump.get("app_frames") or []) or "-"
            lines.append(
                f"| {s['run']} | {dump['cycle']} | {dump['pid']} | {_md(frames)} | `{s['run']}/{dump['file']}` |"
            )
    if not lines:
        return []
    head = ["", "## Hangs (stacks dumped before the kill)", "", "| run | cycle | pid | app frames | stack dump |"]
    return [*head, "|---|---|---|---|---|", *lines]
