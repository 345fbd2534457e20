"""Baseline files: checked on load, compared by severity, rewritten so that a diff shows what moved."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.model.outcome import Outcome
from harness.model.records import RunResult
from harness.output import baseline
from tests.unit.builders import CELL, OTHER_CELL, cell_info, result

INFO = cell_info(CELL)
CELL_TABLE = {"python": "3.11.2", "mod_wsgi": "6.1.1", "apache": "2.4.71", "apache_origin": "debian"}


def ran(run: str, verdict: Outcome, interrupted: bool = False) -> RunResult:
    """A finished (or interrupted) run whose folder in its session is `run`."""
    return result(verdict=verdict, interrupted=interrupted, folder=run)


def write(tmp_path: Path, text: str) -> Path:
    file = tmp_path / "base.toml"
    file.write_text(text)
    return file


def test_round_trip_and_compare(tmp_path: Path) -> None:
    verdicts = {"hello.sigusr1.global": Outcome.CLEAN, "segfault.sigusr1.global": Outcome.CRASHED}
    file = write(tmp_path, baseline.render(INFO, verdicts))
    loaded = baseline.load(file)
    assert loaded.verdicts == verdicts and loaded.cell == CELL_TABLE
    now = [ran("hello.sigusr1.global", Outcome.CRASHED), ran("segfault.sigusr1.global", Outcome.CLEAN)]
    changes = baseline.compare(loaded, [*now, ran("x.y.z", Outcome.HUNG)])
    assert [str(c) for c in changes] == [
        "fix: segfault.sigusr1.global was crashed, now clean",
        "regression: hello.sigusr1.global was clean, now crashed",
    ]


def test_rendered_file_is_sorted_one_verdict_a_line(tmp_path: Path) -> None:
    """So a reviewer's diff shows exactly the verdicts that moved."""
    text = baseline.render(INFO, {"b.x.y": Outcome.HUNG, "a.x.y": Outcome.CLEAN})
    lines = text.splitlines()
    assert lines.index('"a.x.y" = "clean"') + 1 == lines.index('"b.x.y" = "hung"')


def test_runs_are_keyed_by_their_folder_so_a_matrix_keeps_cells_apart(tmp_path: Path) -> None:
    loaded = baseline.load(
        write(tmp_path, baseline.render(INFO, {f"{CELL.label}/hello.sigusr1.global": Outcome.CLEAN}))
    )
    run = result(verdict=Outcome.CRASHED, folder=f"{CELL.label}/hello.sigusr1.global")
    other = result(verdict=Outcome.CRASHED, cell=OTHER_CELL, folder=f"{OTHER_CELL.label}/hello.sigusr1.global")
    assert [c.run for c in baseline.compare(loaded, [run, other])] == [f"{CELL.label}/hello.sigusr1.global"]
    assert baseline.key(replace(run, folder="")) == "hello.sigusr1.global"  # a lone run: its run id


def test_interrupted_runs_are_not_compared(tmp_path: Path) -> None:
    loaded = baseline.load(write(tmp_path, baseline.render(INFO, {"a.b.c": Outcome.CLEAN})))
    assert baseline.compare(loaded, [ran("a.b.c", Outcome.HARNESS_ERROR, interrupted=True)]) == []


def test_annotate_says_what_the_baseline_expected_and_what_changed(tmp_path: Path) -> None:
    loaded = baseline.load(write(tmp_path, baseline.render(INFO, {"a.b.c": Outcome.CLEAN, "d.e.f": Outcome.HUNG})))
    notes = {
        run: baseline.annotate(loaded, ran(run, verdict)).baseline
        for run, verdict in [("a.b.c", Outcome.CLEAN), ("d.e.f", Outcome.CRASHED), ("new.x.y", Outcome.CLEAN)]
    }
    assert {run: (n.expected, n.change) for run, n in notes.items() if n} == {
        "a.b.c": (Outcome.CLEAN, None),
        "d.e.f": (Outcome.HUNG, "regression"),
        "new.x.y": (None, "new"),
    }
    assert all(n is not None and n.file == str(loaded.file) for n in notes.values())


def test_cell_differences_name_each_field_that_moved(tmp_path: Path) -> None:
    loaded = baseline.load(write(tmp_path, baseline.render(INFO, {"a.b.c": Outcome.CLEAN})))
    assert baseline.cell_differences(loaded, INFO) == []
    assert baseline.cell_differences(loaded, cell_info(OTHER_CELL)) == ["python 3.11.2 -> 3.12.1"]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('[verdicts]\n"a.b.c" = "crashd"\n', "field 'verdicts.a.b.c' is 'crashd'; use one of"),
        ("[verdicts]\n", "field 'verdicts' is missing or empty"),
        ('[verdict]\n"a.b.c" = "clean"\n', "field 'verdict' is not a baseline field"),
        ('[verdicts\n"a.b.c" = "clean"\n', "not valid TOML"),
        ('cell = 3\n[verdicts]\n"a.b.c" = "clean"\n', "field 'cell' must be a table of strings"),
        ('[cell]\npython = 3.11\n[verdicts]\n"a.b.c" = "clean"\n', "field 'cell' must be a table of strings"),
        ('[verdicts]\n"a.b.c" = 3\n', "field 'verdicts.a.b.c' is 3; use one of"),
    ],
)
def test_bad_files_get_one_line_naming_file_and_field(tmp_path: Path, text: str, needle: str) -> None:
    file = write(tmp_path, text)
    with pytest.raises(HarnessError) as caught:
        baseline.load(file)
    message = str(caught.value)
    assert str(file) in message and needle in message and "\n" not in message


def test_a_file_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    file = tmp_path / "base.toml"
    file.write_bytes(b'[verdicts]\n"a.b.c" = "\xff"\n')
    with pytest.raises(HarnessError, match="not valid TOML") as caught:
        baseline.load(file)
    assert "\n" not in str(caught.value)


def test_missing_file_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="baseline update"):
        baseline.load(tmp_path / "none.toml")


def test_update_keeps_other_runs_unless_replacing(tmp_path: Path) -> None:
    file = write(tmp_path, baseline.render(INFO, {"a.b.c": Outcome.CLEAN, "old.b.c": Outcome.HUNG}))
    text, changes, added = baseline.updated(file, [ran("a.b.c", Outcome.CRASHED), ran("new.b.c", Outcome.CLEAN)])
    file.write_text(text)
    assert baseline.load(file).verdicts == {"a.b.c": Outcome.CRASHED, "old.b.c": Outcome.HUNG, "new.b.c": Outcome.CLEAN}
    assert [c.kind for c in changes] == ["regression"] and added == ["new.b.c"]
    text, _, _ = baseline.updated(file, [ran("a.b.c", Outcome.CLEAN)], replace_all=True)
    assert "old.b.c" not in text


def test_update_never_takes_a_verdict_from_an_interrupted_run(tmp_path: Path) -> None:
    file = write(tmp_path, baseline.render(INFO, {"a.b.c": Outcome.CLEAN}))
    text, changes, added = baseline.updated(
        file, [ran("a.b.c", Outcome.HARNESS_ERROR, interrupted=True), ran("d.e.f", Outcome.CLEAN)]
    )
    file.write_text(text)
    assert baseline.load(file).verdicts == {"a.b.c": Outcome.CLEAN, "d.e.f": Outcome.CLEAN}
    assert changes == [] and added == ["d.e.f"]


def test_update_from_only_interrupted_runs_is_refused(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="no finished runs"):
        baseline.updated(tmp_path / "b.toml", [ran("a.b.c", Outcome.CLEAN, interrupted=True)])
