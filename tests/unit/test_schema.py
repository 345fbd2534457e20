"""The JSON the harness writes: its shipped schemas are the ones the record classes generate, real
records validate against them, and a reader refuses a schema version it cannot read, in one line."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped,unused-ignore]

from harness.errors import HarnessError
from harness.model import scenario as scenarios
from harness.model import schemas
from harness.model.mechanisms import MECHANISMS
from harness.model.outcome import Outcome
from harness.model.records import CYCLES, SUMMARY, CycleRecord, RunResult, SessionRecord
from harness.model.spec import SPEC_FILE, RunSpec
from harness.output import baseline
from harness.run.plan import Selection, plan
from harness.run.session import SessionPlan, run_session
from harness.storage import read_json, read_jsonl
from tests.unit import builders
from tests.unit.fakes import CELL, SEGV, Answer, Step, World

SCHEMA_DIR = Path(schemas.__file__).resolve().parent / "schema"
RECORDS: dict[str, type[Any]] = {
    "cycle.schema.json": CycleRecord,
    "run.schema.json": RunResult,
    "session.schema.json": SessionRecord,
    "spec.schema.json": RunSpec,
}


def validator(name: str) -> Draft202012Validator:
    schema = schemas.shipped(name)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def problems(name: str, data: object) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator(name).iter_errors(data)]


@pytest.mark.parametrize("name", sorted(schemas.SCHEMAS))
def test_shipped_schemas_are_what_the_records_generate(name: str) -> None:
    """Change a record and forget `python -m harness.model.schemas`, and this fails."""
    assert schemas.shipped(name) == schemas.generate(name)
    assert (SCHEMA_DIR / name).read_text() == schemas.render(name)


def test_every_shipped_schema_file_describes_a_record() -> None:
    assert sorted(p.name for p in SCHEMA_DIR.glob("*.json")) == sorted(schemas.SCHEMAS) == sorted(RECORDS)
    assert all(schemas.SCHEMAS[name][1] is cls for name, cls in RECORDS.items())


@pytest.fixture
def session(world: World, tmp_path: Path) -> Path:
    """A session run by the real runner over a FakeEngine: a crash in cycle 1, a hang in cycle 2, a
    second scenario with a start failure, and a baseline to annotate the runs."""
    script = world.script("hello")
    script.steps[1] = Step(answers=[Answer(502)], deaths=[SEGV])
    script.steps[2] = Step(answers=[Answer(None, error="timeout")])
    world.script("raise").start_fails = True
    base_file = tmp_path / "base.toml"
    base_file.write_text(baseline.render(builders.cell_info(), {"hello.sigusr1.global": Outcome.CLEAN}))
    chosen = Selection(scenarios.resolve("hello,raise"), [MECHANISMS["sigusr1"]], ["global"], 3)
    specs = tuple(plan(chosen, [CELL]).specs)
    folder, _ = run_session(SessionPlan(specs, tmp_path / "results", jobs=2, baseline=baseline.load(base_file)))
    return folder


def test_the_files_a_session_writes_validate(session: Path) -> None:
    summary = read_json(session / SUMMARY)
    assert problems("session.schema.json", summary) == []
    record = SessionRecord.from_json(summary, session / SUMMARY)
    assert {r.run for r in record.runs} >= {"hello.sigusr1.global", "raise.sigusr1.global"}
    for run in record.runs:
        folder = session / run.folder
        assert problems("run.schema.json", read_json(folder / SUMMARY)) == []
        assert problems("spec.schema.json", read_json(folder / SPEC_FILE)) == []
        lines = read_jsonl(folder / CYCLES)
        assert lines and all(problems("cycle.schema.json", line) == [] for line in lines)
    hello = next(r for r in record.runs if r.run == "hello.sigusr1.global")
    assert hello.crashes and hello.hangs and hello.baseline is not None  # the optional parts were exercised


def test_records_validate_and_survive_a_round_trip(session: Path) -> None:
    record = SessionRecord.from_json(read_json(session / SUMMARY), session / SUMMARY)
    assert problems("session.schema.json", record.to_json()) == []
    assert SessionRecord.from_json(record.to_json(), "memory") == record
    for run in record.runs:
        assert problems("run.schema.json", run.to_json()) == []
        assert RunResult.from_json(run.to_json(), "memory") == run
        assert problems("spec.schema.json", run.spec.to_json()) == []
        assert RunSpec.from_json(run.spec.to_json(), "memory") == run.spec
        path = session / run.folder / CYCLES
        for cycle in (CycleRecord.from_json(line, path) for line in read_jsonl(path)):
            assert problems("cycle.schema.json", cycle.to_json()) == []


def test_hand_made_records_validate() -> None:
    result, cycles = builders.run("segfault", reloads=(Outcome.CRASHED, Outcome.CLEAN), expected=Outcome.CRASHED)
    assert problems("run.schema.json", result.to_json()) == []
    assert all(problems("cycle.schema.json", c.to_json()) == [] for c in cycles)
    record = SessionRecord("s", (result,), skipped=(("x", "needs PyProtocols"),), started=1.0, finished=2.0)
    assert problems("session.schema.json", record.to_json()) == []


def damaged(data: dict[str, Any], *path: str | int, value: object = None, drop: bool = False) -> dict[str, Any]:
    found = copy.deepcopy(data)
    here: Any = found
    for key in path[:-1]:
        here = here[key]
    if drop:
        del here[path[-1]]
    else:
        here[path[-1]] = value
    return found


def test_the_schemas_refuse_what_no_harness_writes() -> None:
    """So a green validation above means something: a wrong verdict, a missing field, a wrong type fail."""
    data = builders.result(verdict=Outcome.CRASHED).to_json()
    assert problems("run.schema.json", data) == []
    assert problems("run.schema.json", damaged(data, "verdict", value="exploded"))
    assert problems("run.schema.json", damaged(data, "spec", drop=True))
    assert problems("run.schema.json", damaged(data, "trials", value="3"))
    assert problems("run.schema.json", damaged(data, "rates", 0, "ci95", value=[0.1]))
    assert problems("run.schema.json", damaged(data, "spec", "cell", "python", value=3.11))


@pytest.mark.parametrize("cls", [RunResult, CycleRecord, SessionRecord, RunSpec], ids=lambda c: c.__name__)
def test_a_newer_major_version_says_upgrade_in_one_line(cls: type[Any]) -> None:
    data = {"schema_version": "3.0"}
    with pytest.raises(HarnessError) as caught:
        cls.from_json(data, "results/x/summary.json")
    message = str(caught.value)
    assert message.startswith("results/x/summary.json: schema 3.0, this harness reads ")
    assert "upgrade the harness" in message and "\n" not in message


def test_a_newer_minor_version_is_read() -> None:
    """Minor versions only add optional fields: an older reader takes what it knows."""
    data = builders.result().to_json() | {"schema_version": "2.7"}
    assert RunResult.from_json(data, "summary.json").run == "hello.sigusr1.global"


@pytest.mark.parametrize(
    ("version", "needle"),
    [
        ("1.0", "schema 1.0, this harness reads 2.0; run it again with this harness"),
        (None, "written by an older harness (no schema_version); run it again with this one"),
        (2, "written by an older harness (no schema_version)"),
        ("x.y", "schema x.y, this harness reads 2.0; run it again with this harness"),
    ],
)
def test_an_older_or_missing_version_is_refused_in_one_line(version: object, needle: str) -> None:
    data: dict[str, Any] = builders.result().to_json()
    data = damaged(data, "schema_version", drop=True) if version is None else data | {"schema_version": version}
    with pytest.raises(HarnessError) as caught:
        RunResult.from_json(data, "summary.json")
    assert needle in str(caught.value) and "\n" not in str(caught.value)


def test_a_bad_field_names_the_field_in_one_line() -> None:
    data = damaged(builders.result().to_json(), "verdict", value="exploded")
    with pytest.raises(HarnessError) as caught:
        RunResult.from_json(data, "summary.json")
    message = str(caught.value)
    assert message.startswith("summary.json: field 'verdict' ") and "not a RunResult this harness wrote" in message
    assert "\n" not in message


def test_not_json_of_a_record_at_all_is_refused() -> None:
    cases: tuple[object, ...] = (None, [], "run", 3)
    for data in cases:
        with pytest.raises(HarnessError, match="no schema_version"):
            RunResult.from_json(data, "summary.json")
    assert json.dumps(builders.result().to_json())  # what is written is plain JSON


def test_a_summary_from_before_verdict_lists_is_refused_in_one_line() -> None:
    """Schema 2.0 files written before `expected` became a list (one verdict or null) carry the same
    version string; reading one must still end in one line that names the field, never a traceback."""
    data: dict[str, Any] = builders.result().to_json() | {"expected": "clean"}
    with pytest.raises(HarnessError) as caught:
        RunResult.from_json(data, "old/summary.json")
    message = str(caught.value)
    assert message.startswith("old/summary.json: field 'expected' ") and "\n" not in message
