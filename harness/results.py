"""Results on disk: cycles.jsonl appended as cycles finish, summary.json, junit.xml and report.md.

Writes are crash-safe: a cycle line is flushed and fsynced before the next cycle starts, and whole
files are written to a temporary name and renamed, so a killed harness or a full disk never leaves
a half-written summary and never spoils what was already written.
"""

from __future__ import annotations

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


def _disk_error(path: Path, exc: OSError) -> HarnessError:
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
        raise _disk_error(path, exc) from None


def write_json(path: Path, data: object) -> None:
    write_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def append_jsonl(path: Path, record: Mapping[str, Any]) -> None:
    """One line per record, on disk before returning: a killed run keeps every finished cycle."""
    line = json.dumps(record, separators=(",", ":")) + "\n"
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        raise _disk_error(path, exc) from None


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Records from a cycles file; a last line cut short by a kill is skipped, not fatal."""
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def junit(summaries: Sequence[Mapping[str, Any]], name: str) -> str:
    """One testcase per run; a verdict other than the expected one is a failure."""
    failures = sum(1 for s in summaries if not s["matches"])
    suite = ET.Element(
        "testsuite",
        name=name,
        tests=str(len(summaries)),
        failures=str(failures),
        errors="0",
        skipped="0",
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
        for key in ("verdict", "expected", "cycles"):
            ET.SubElement(props, "property", name=key, value=str(summary.get(key)))
        for outcome, number in summary["counts"].items():
            ET.SubElement(props, "property", name=f"count.{outcome}", value=str(number))
        if not summary["matches"]:
            failure = ET.SubElement(
                case,
                "failure",
                message=f"verdict {summary['verdict']}, expected {summary['expected']}",
                type="VerdictMismatch",
            )
            failure.text = "\n".join(_first_evidence(summary))
    ET.indent(suite)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


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
    """A table a person reads in ten seconds: mismatches first, then everything else."""
    rows = sorted(summaries, key=lambda s: (s["matches"], s["scenario"], s["mechanism"], s["layout"]))
    bad = sum(1 for s in rows if not s["matches"])
    lines = [
        f"# {title}",
        "",
        f"{len(rows)} runs, {bad} not as expected." if bad else f"{len(rows)} runs, all as expected.",
        "",
        "| | scenario | mechanism | layout | verdict | expected | cycles | counts | first evidence |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in rows:
        evidence = _first_evidence(s)
        lines.append(
            f"| {'ok' if s['matches'] else '**FAIL**'} | {s['scenario']} | {s['mechanism']} | {s['layout']} "
            f"| {s['verdict']} | {s['expected']} | {s['cycles_recorded']} | {_counts_cell(s['counts'])} "
            f"| {_md(evidence[0]) if evidence else ''} |"
        )
    if rows:
        cell = rows[0]["cell"]
        lines += [
            "",
            f"Cell: Python {cell.get('python')}, mod_wsgi {cell.get('mod_wsgi')}, "
            f"Apache {cell.get('apache')} ({cell.get('apache_origin')}).",
        ]
    return "\n".join(lines) + "\n"
