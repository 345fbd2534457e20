"""Finding a session, run or matrix folder from what a user types: a path, a name, or 'latest'."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.results import SUMMARY

LATEST = "latest"
MATRIX_FILE = "matrix.json"


def _sessions(base: Path) -> list[Path]:
    if not base.is_dir():
        return []
    return sorted(p for p in base.iterdir() if p.is_dir() and (p / SUMMARY).is_file() and p.name != "baselines")


def session(text: str, base: Path) -> Path:
    """A session folder: a path, a name under `base`, or 'latest' (the newest one there)."""
    if text == LATEST:
        found = _sessions(base)
        if not found:
            raise HarnessError(f"no sessions under {base}; run 'python -m harness run' first or give a folder")
        return found[-1]
    for candidate in (Path(text), base / text):
        if (candidate / SUMMARY).is_file() and "runs" in read_summary(candidate):
            return candidate
    raise HarnessError(f"{text}: not a session folder (no summary.json with runs); give results/<session> or 'latest'")


def matrix(text: str, base: Path) -> Path:
    """A matrix folder: a path, a name under `base`, or 'latest' (the newest matrix there)."""
    if text == LATEST:
        found = sorted(p for p in base.glob("matrix-*") if (p / MATRIX_FILE).is_file())
        if not found:
            raise HarnessError(f"no matrix folders under {base}; run 'python -m harness matrix' first")
        return found[-1]
    for candidate in (Path(text), base / text):
        if (candidate / MATRIX_FILE).is_file():
            return candidate
    raise HarnessError(
        f"--resume {text}: not a matrix folder (no {MATRIX_FILE}); give results/matrix-<time> or 'latest'"
    )


def run(text: str, base: Path) -> Path:
    """A run folder: its path, SESSION/RUN_ID, or a run id in the newest session."""
    candidates = [Path(text), base / text]
    if "/" not in text:
        latest = _sessions(base)
        if latest:
            candidates.append(latest[-1] / text)
    for candidate in candidates:
        if (candidate / SUMMARY).is_file() and "run" in read_summary(candidate):
            return candidate
    raise HarnessError(
        f"{text}: not a run folder (no summary.json of a run); give results/<session>/<run id>, "
        "or a run id of the newest session"
    )


def read_summary(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / SUMMARY).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise HarnessError(f"{folder / SUMMARY}: unreadable ({exc}); the run may have been killed mid-write") from None
    if not isinstance(data, dict):
        raise HarnessError(f"{folder / SUMMARY}: not a summary object; was it edited by hand?")
    return data
