"""Finding a session or a run folder from what a user types: a path, a name, or 'latest'."""

from __future__ import annotations

from pathlib import Path

from harness import storage
from harness.errors import HarnessError
from harness.model.records import SUMMARY, RunResult, SessionRecord

LATEST = "latest"


def _sessions(base: Path, prefix: str = "") -> list[Path]:
    if not base.is_dir():
        return []
    return sorted(
        p
        for p in base.iterdir()
        if p.is_dir() and p.name.startswith(prefix) and (p / SUMMARY).is_file() and p.name != "baselines"
    )


def session(text: str, base: Path, prefix: str = "") -> Path:
    """A session folder: a path, a name under `base`, or 'latest' (the newest one there)."""
    if text == LATEST:
        found = _sessions(base, prefix)
        if not found:
            raise HarnessError(f"no sessions under {base}; run 'python -m harness run' first or give a folder")
        return found[-1]
    for candidate in (Path(text), base / text):
        if (candidate / SUMMARY).is_file() and "runs" in (storage.read_json(candidate / SUMMARY) or {}):
            return candidate
    raise HarnessError(f"{text}: not a session folder (no summary.json with runs); give results/<session> or 'latest'")


def read_session(folder: Path) -> SessionRecord:
    path = folder / SUMMARY
    return SessionRecord.from_json(storage.read_json(path), path)


def run(text: str, base: Path) -> Path:
    """A run folder: its path, SESSION/RUN under `base`, or a run id of the newest session."""
    candidates = [Path(text), base / text]
    latest = _sessions(base)
    if latest and not Path(text).is_absolute():
        candidates.append(latest[-1] / text)
    for candidate in candidates:
        path = candidate / SUMMARY
        if path.is_file() and "run" in (storage.read_json(path) or {}):
            return candidate
    raise HarnessError(
        f"{text}: not a run folder (no summary.json of a run); give results/<session>/<run id>, "
        "or a run id of the newest session"
    )


def read_run(folder: Path) -> RunResult:
    path = folder / SUMMARY
    return RunResult.from_json(storage.read_json(path), path)
