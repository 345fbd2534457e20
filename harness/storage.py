"""Files on disk that must survive a kill or a full disk: whole files or none, whole lines or none.

A cycle line is flushed and fsynced before the next cycle starts, and whole files are written to a
temporary name and renamed, so a killed harness or a full disk never leaves a half-written record
and never spoils what was already written.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.errors import HarnessError


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
    """Records from a cycles file; a line cut short by a kill is skipped, not fatal."""
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def read_json(path: Path) -> Any:
    """A JSON file the harness wrote; a missing, unreadable or cut file is one line."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HarnessError(f"{path}: no such file; give a results folder the harness wrote") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HarnessError(f"{path}: unreadable ({exc}); the run may have been killed mid-write") from None
