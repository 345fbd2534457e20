"""A session's files: summary.json (the record), junit.xml and report.md, each written whole or not at all."""

from __future__ import annotations

from pathlib import Path

from harness import storage
from harness.model.records import SUMMARY, SessionRecord
from harness.output import markdown
from harness.output.junit import junit

JUNIT = "junit.xml"
REPORT = "report.md"


def write(session_dir: Path, record: SessionRecord) -> None:
    storage.write_json(session_dir / SUMMARY, record.to_json())
    storage.write_atomic(session_dir / JUNIT, junit(record, f"harness.{session_dir.name}"))
    storage.write_atomic(session_dir / REPORT, markdown.report(record, f"Harness session {session_dir.name}"))


def read(session_dir: Path) -> SessionRecord:
    path = session_dir / SUMMARY
    return SessionRecord.from_json(storage.read_json(path), path)
