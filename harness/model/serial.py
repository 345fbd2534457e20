"""JSON in and out of the typed records, with a schema version that readers check first.

Records are plain frozen dataclasses; pydantic's TypeAdapter turns them into JSON-ready data and back
(validating every field on the way in) and writes their JSON Schema, so the schema shipped in
``harness/model/schema/`` is generated from the same classes the harness writes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from harness.errors import HarnessError

T = TypeVar("T")


_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {}


def adapter(cls: type[T]) -> TypeAdapter[T]:
    """One adapter per record class, made on first use (building one takes milliseconds)."""
    if cls not in _ADAPTERS:
        _ADAPTERS[cls] = TypeAdapter(cls)
    return _ADAPTERS[cls]


def dump(obj: object) -> dict[str, Any]:
    """A record as JSON-ready data (enums as their values, tuples as lists)."""
    data = adapter(type(obj)).dump_python(obj, mode="json")
    assert isinstance(data, dict)
    return data


def check_version(data: object, expected: str, source: str | Path) -> None:
    """Refuse data written by a newer major version of a schema (or by no known one), in one line."""
    found = data.get("schema_version") if isinstance(data, dict) else None
    if not isinstance(found, str):
        raise HarnessError(
            f"{source}: written by an older harness (no schema_version); run it again with this one to read it"
        )
    major, want = found.split(".")[0], expected.split(".")[0]
    if major != want:
        newer = found.split(".")[0].isdigit() and int(major) > int(want)
        how = "upgrade the harness to read it" if newer else "run it again with this harness"
        raise HarnessError(f"{source}: schema {found}, this harness reads {expected}; {how}")


def load(cls: type[T], data: object, source: str | Path, version: str | None = None) -> T:
    """A record from JSON data, checked: a wrong schema version or a bad field is one line naming both."""
    if version is not None:
        check_version(data, version, source)
    try:
        found: T = adapter(cls).validate_python(data)
        return found
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top)"
        raise HarnessError(
            f"{source}: field '{where}' {first['msg'].lower()}; it is not a {cls.__name__} this harness wrote"
        ) from None


def schema(cls: type[Any]) -> dict[str, Any]:
    """The JSON Schema of a record's JSON form."""
    found = adapter(cls).json_schema(mode="serialization")
    assert isinstance(found, dict)
    return found
