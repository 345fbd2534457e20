"""The JSON Schemas of the files the harness writes, generated from the record classes themselves and
shipped in ``harness/model/schema/`` (a test keeps the shipped ones equal to what the classes say).

    python -m harness.model.schemas   # write them again after changing a record
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from harness.model import serial
from harness.model.records import RESULT_SCHEMA, CycleRecord, RunResult, SessionRecord
from harness.model.spec import SPEC_SCHEMA, RunSpec

# file name -> (what it describes, its class, its schema version)
SCHEMAS: dict[str, tuple[str, type[Any], str]] = {
    "cycle.schema.json": ("one line of a run's cycles.jsonl", CycleRecord, RESULT_SCHEMA),
    "run.schema.json": ("a run folder's summary.json", RunResult, RESULT_SCHEMA),
    "session.schema.json": ("a session folder's summary.json", SessionRecord, RESULT_SCHEMA),
    "spec.schema.json": ("a run's spec.json (harness run --spec)", RunSpec, SPEC_SCHEMA),
}


def generate(name: str) -> dict[str, Any]:
    title, cls, version = SCHEMAS[name]
    found = serial.schema(cls)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"mod-wsgi-crash-harness/{name}",
        "description": f"{title}, schema_version {version}",
        **found,
    }


def render(name: str) -> str:
    return json.dumps(generate(name), indent=1, sort_keys=True) + "\n"


def shipped(name: str) -> dict[str, Any]:
    data = json.loads(resources.files("harness.model").joinpath("schema").joinpath(name).read_text())
    assert isinstance(data, dict)
    return data


def main() -> None:
    folder = Path(__file__).resolve().parent / "schema"
    for name in SCHEMAS:
        (folder / name).write_text(render(name))
        print(f"wrote {folder / name}")


if __name__ == "__main__":
    main()
