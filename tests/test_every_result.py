"""Every summary.json, cycles.jsonl and spec.json the test suite wrote, checked after the rest of the suite:
each validates against the schema shipped in the package, and every run's summary agrees with its cycles
(the invariants the harness checks when it writes them, checked again from the files)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped,unused-ignore]

from harness.model import invariants, schemas
from harness.model.records import CycleRecord, RunResult

LAST = pytest.mark.run_last


def _validator(name: str) -> Any:
    return Draft202012Validator(schemas.shipped(name))


def _roots(basetemp: Path) -> list[Path]:
    """This session's temporary folders: every xdist worker's, or the one of a plain run."""
    return sorted(basetemp.parent.glob("popen-gw*")) if basetemp.name.startswith("popen-gw") else [basetemp]


def check(roots: list[Path]) -> tuple[dict[str, int], list[str]]:
    """(how many of each file were read, what is wrong with them) under the given folders."""
    validators = {name: _validator(name) for name in schemas.SCHEMAS}
    problems: list[str] = []
    counted = {"run": 0, "session": 0, "cycle": 0, "spec": 0}
    for root in roots:
        for path in sorted(root.rglob("summary.json")):
            data = json.loads(path.read_text())
            kind = "session" if "runs" in data else "run"
            problems += [f"{path}: {e.message}" for e in validators[f"{kind}.schema.json"].iter_errors(data)][:3]
            counted[kind] += 1
            if kind == "run" and (path.parent / "cycles.jsonl").is_file():
                lines = (path.parent / "cycles.jsonl").read_text().splitlines()
                cycles = []
                for line in lines:
                    record = json.loads(line)
                    problems += [f"{path.parent}/cycles.jsonl: {e.message}"
                                 for e in validators["cycle.schema.json"].iter_errors(record)][:3]  # fmt: skip
                    cycles.append(CycleRecord.from_json(record, path.parent))
                    counted["cycle"] += 1
                found = invariants.violations(RunResult.from_json(data, path), cycles)
                problems += [f"{path}: {v}" for v in found]
        for path in sorted(root.rglob("spec.json")):
            data = json.loads(path.read_text())
            problems += [f"{path}: {e.message}" for e in validators["spec.schema.json"].iter_errors(data)][:3]
            counted["spec"] += 1
    return counted, problems


def said(counted: dict[str, int], problems: list[str]) -> str:
    return (f"checked {counted['session']} session and {counted['run']} run summaries, {counted['cycle']} cycle "
            f"records, {counted['spec']} specs: {len(problems)} problems")  # fmt: skip


@LAST
def test_every_result_file_of_the_suite_is_valid(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> None:
    if hasattr(request.config, "workerinput"):
        pytest.skip("under pytest-xdist the check runs once every worker has finished (the session's last line)")
    counted, problems = check(_roots(tmp_path_factory.getbasetemp()))
    if counted["run"] == 0:
        if os.environ.get("CI"):
            pytest.fail("the suite wrote no results to check")
        pytest.skip("no results written by this session (run the live tests with it)")
    print(said(counted, problems))
    assert problems == [], "\n".join(problems[:40])
