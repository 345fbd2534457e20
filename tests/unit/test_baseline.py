"""Baseline files: checked on load, compared by severity, rewritten so that a diff shows what moved."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness import baseline
from harness.errors import HarnessError
from harness.outcome import Outcome

CELL = {"python": "3.11.2", "mod_wsgi": "6.1.1", "apache": "2.4.71", "apache_origin": "debian"}


def summary(run: str, verdict: str, interrupted: bool = False) -> dict[str, Any]:
    return {"run": run, "verdict": verdict, "interrupted": interrupted, "cell": CELL}


def write(tmp_path: Path, text: str) -> Path:
    file = tmp_path / "base.toml"
    file.write_text(text)
    return file


def test_round_trip_and_compare(tmp_path: Path) -> None:
    verdicts = {"hello.sigusr1.global": Outcome.CLEAN, "segfault.sigusr1.global": Outcome.CRASHED}
    file = write(tmp_path, baseline.render(CELL, verdicts))
    loaded = baseline.load(file)
    assert loaded.verdicts == verdicts and loaded.cell == CELL
    now = [summary("hello.sigusr1.global", "crashed"), summary("segfault.sigusr1.global", "clean")]
    changes = baseline.compare(loaded, [*now, summary("x.y.z", "hung")])
    assert [str(c) for c in changes] == [
        "fix: segfault.sigusr1.global was crashed, now clean",
        "regression: hello.sigusr1.global was clean, now crashed",
    ]


def test_interrupted_runs_are_not_compared(tmp_path: Path) -> None:
    loaded = baseline.load(write(tmp_path, baseline.render(CELL, {"a.b.c": Outcome.CLEAN})))
    assert baseline.compare(loaded, [summary("a.b.c", "harness-error", interrupted=True)]) == []


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('[verdicts]\n"a.b.c" = "crashd"\n', "field 'verdicts.a.b.c' is 'crashd'; use one of"),
        ("[verdicts]\n", "field 'verdicts' is missing or empty"),
        ('[verdict]\n"a.b.c" = "clean"\n', "field 'verdict' is not a baseline field"),
        ('[verdicts\n"a.b.c" = "clean"\n', "not valid TOML"),
        ('cell = 3\n[verdicts]\n"a.b.c" = "clean"\n', "field 'cell' must be a table of strings"),
    ],
)
def test_bad_files_get_one_line_naming_file_and_field(tmp_path: Path, text: str, needle: str) -> None:
    file = write(tmp_path, text)
    with pytest.raises(HarnessError) as caught:
        baseline.load(file)
    message = str(caught.value)
    assert str(file) in message and needle in message and "\n" not in message


def test_missing_file_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="baseline update"):
        baseline.load(tmp_path / "none.toml")


def test_update_keeps_other_runs_unless_replacing(tmp_path: Path) -> None:
    file = write(tmp_path, baseline.render(CELL, {"a.b.c": Outcome.CLEAN, "old.b.c": Outcome.HUNG}))
    text, changes, added = baseline.updated(file, [summary("a.b.c", "crashed"), summary("new.b.c", "clean")])
    file.write_text(text)
    assert baseline.load(file).verdicts == {"a.b.c": Outcome.CRASHED, "old.b.c": Outcome.HUNG, "new.b.c": Outcome.CLEAN}
    assert [c.kind for c in changes] == ["regression"] and added == ["new.b.c"]
    text, _, _ = baseline.updated(file, [summary("a.b.c", "clean")], replace=True)
    assert "old.b.c" not in text


def test_update_from_only_interrupted_runs_is_refused(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="no finished runs"):
        baseline.updated(tmp_path / "b.toml", [summary("a.b.c", "clean", interrupted=True)])
