"""Scenario files: what app to load, how to probe it, and what verdict each mechanism must give.

A scenario is a folder under scenarios/ holding ``scenario.toml`` and the app's files. Every
field is checked here, so a malformed file stops the run before any server starts, with one line
naming the file, the field and the fix.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import HarnessError, ScenarioError
from harness.layouts import LAYOUT_NAMES
from harness.mechanisms import MECHANISM_NAMES
from harness.outcome import OUTCOME_NAMES, Outcome

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.9/3.10 only
    import tomli as tomllib

SCENARIOS_DIR = Path(__file__).resolve().parent.parent / "scenarios"
SCENARIO_FILE = "scenario.toml"
# A script or module name goes into Apache's config: keep it to characters that need no quoting.
_SAFE_RELATIVE = re.compile(r"^(?!/)(?!.*\.\.)[A-Za-z0-9_./-]+$")


@dataclass(frozen=True)
class Probe:
    """One request and what a correct answer is."""

    path: str
    status: int = 200
    body_contains: str | None = None
    body_equals: str | None = None
    body_regex: str | None = None
    timeout: float = 5.0

    def mismatch(self, status: int, body: str) -> str | None:
        """Why this answer is wrong, or None when it is right."""
        if status != self.status:
            return f"status {status}, expected {self.status}"
        if self.body_equals is not None and body != self.body_equals:
            return _difference(body, self.body_equals)
        if self.body_contains is not None and self.body_contains not in body:
            return f"body {body[:80]!r} lacks {self.body_contains[:80]!r}"
        if self.body_regex is not None and not re.search(self.body_regex, body):
            return f"body {body[:80]!r} does not match /{self.body_regex}/"
        return None


def _difference(body: str, expected: str, width: int = 60) -> str:
    """Where a body first differs from the expected one, shown around that place in both (a long page
    that differs near its end is otherwise unreadable in one line)."""
    at = next((i for i, (a, b) in enumerate(zip(body, expected)) if a != b), min(len(body), len(expected)))
    if at < width:
        return f"body {body[: width + 20]!r}, expected {expected[: width + 20]!r}"
    start = at - 20
    return (
        f"body differs at character {at}: {body[start : start + width]!r}, expected {expected[start : start + width]!r}"
    )


@dataclass(frozen=True)
class Scenario:
    name: str
    file: Path
    description: str
    script: str  # relative to the scenario folder
    probes: tuple[Probe, ...]
    expect: Mapping[str, Outcome]  # "default" and/or mechanism names
    control: bool = False
    requirements: tuple[str, ...] = ()  # pip requirements; "./" and "../" ones are paths from the folder
    local_packages: tuple[str, ...] = ()  # on no index: the user hands them in (local.py)
    watch: str | None = None  # module file edited by reload-on-changes; default: the script
    layouts: tuple[str, ...] = LAYOUT_NAMES

    @property
    def directory(self) -> Path:
        return self.file.parent

    def pip_requirements(self) -> tuple[str, ...]:
        """The requirements as pip takes them: a local one becomes an absolute path."""
        folder = self.directory
        return tuple(str((folder / r).resolve()) if r.startswith(LOCAL_PREFIXES) else r for r in self.requirements)

    def expected(self, mechanism: str, layout: str | None = None) -> Outcome | None:
        """The most specific expectation: 'mechanism@layout', then the layout, the mechanism, 'default'."""
        for key in (f"{mechanism}@{layout}", layout, mechanism, "default"):
            if key is not None and key in self.expect:
                return self.expect[key]
        return None


_TOP_KEYS = {"name", "description", "control", "app", "probe", "expect", "layouts"}
_APP_KEYS = {"script", "requirements", "watch", "local_packages"}
LOCAL_PREFIXES = ("./", "../")
_PROBE_KEYS = {"path", "status", "body_contains", "body_equals", "body_regex", "timeout"}


class _Reader:
    """Typed access to a parsed TOML table that reports errors against the file and field."""

    def __init__(self, file: Path) -> None:
        self.file = file

    def fail(self, fieldname: str, problem: str, fix: str) -> ScenarioError:
        return ScenarioError(self.file, fieldname, problem, fix)

    def check_keys(self, table: Mapping[str, Any], known: set[str], prefix: str) -> None:
        for key in table:
            if key not in known:
                raise self.fail(
                    f"{prefix}{key}", "is not a known field", f"remove it or use one of: {', '.join(sorted(known))}"
                )

    def get(self, table: Mapping[str, Any], key: str, kind: type | tuple[type, ...], fieldname: str) -> Any:
        value = table.get(key)
        if value is not None and (not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool)):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise self.fail(fieldname, f"is {type(value).__name__} {value!r}", f"make it a {names}")
        return value

    def strings(self, table: Mapping[str, Any], key: str, fieldname: str) -> tuple[str, ...]:
        value = self.get(table, key, list, fieldname) or []
        for item in value:
            if not isinstance(item, str):
                raise self.fail(fieldname, f"holds {item!r}", "make it a list of strings")
        return tuple(value)

    def relative_file(self, value: str, fieldname: str) -> str:
        if not _SAFE_RELATIVE.match(value):
            raise self.fail(
                fieldname,
                f"is {value!r}",
                "give a path relative to the scenario folder using only letters, digits, '_', '-', '.', '/'",
            )
        if not (self.file.parent / value).is_file():
            raise self.fail(fieldname, f"names {value!r}, which does not exist", "create it or fix the name")
        return value


def _probe(reader: _Reader, raw: Any, index: int) -> Probe:
    where = f"probe[{index}]"
    if not isinstance(raw, dict):
        raise reader.fail(where, f"is {raw!r}", "write it as a [[probe]] table")
    reader.check_keys(raw, _PROBE_KEYS, f"{where}.")
    path = reader.get(raw, "path", str, f"{where}.path")
    if not path or not path.startswith("/"):
        raise reader.fail(f"{where}.path", f"is {path!r}", "give the request path, starting with '/'")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in path):
        raise reader.fail(f"{where}.path", f"is {path!r}", "percent-encode spaces and control characters (%20)")
    status = reader.get(raw, "status", int, f"{where}.status")
    if status is not None and not 100 <= status <= 599:
        raise reader.fail(f"{where}.status", f"is {status}", "give an HTTP status between 100 and 599")
    timeout = reader.get(raw, "timeout", (int, float), f"{where}.timeout")
    if timeout is not None and not 0 < timeout <= 600:
        raise reader.fail(f"{where}.timeout", f"is {timeout}", "give seconds between 0 and 600")
    regex = reader.get(raw, "body_regex", str, f"{where}.body_regex")
    if regex is not None:
        try:
            re.compile(regex)
        except re.error as exc:
            raise reader.fail(f"{where}.body_regex", f"is not a valid regex ({exc})", "fix the pattern") from None
    return Probe(
        path=path,
        status=200 if status is None else status,
        body_contains=reader.get(raw, "body_contains", str, f"{where}.body_contains"),
        body_equals=reader.get(raw, "body_equals", str, f"{where}.body_equals"),
        body_regex=regex,
        timeout=5.0 if timeout is None else float(timeout),
    )


def _expect(reader: _Reader, raw: Any) -> dict[str, Outcome]:
    if not isinstance(raw, dict) or not raw:
        raise reader.fail(
            "expect", "is missing or empty", 'add an [expect] table, e.g. default = "clean" (per-mechanism keys too)'
        )
    known = ("default", *MECHANISM_NAMES, *LAYOUT_NAMES)
    expect: dict[str, Outcome] = {}
    for key, value in raw.items():
        mechanism, _, layout = key.partition("@")
        if key not in known and not (mechanism in MECHANISM_NAMES and layout in LAYOUT_NAMES):
            raise reader.fail(
                f"expect.{key}",
                "is not a mechanism, a layout or mechanism@layout",
                f"use 'default' or one of: {', '.join(known[1:])}",
            )
        if not isinstance(value, str) or value not in OUTCOME_NAMES:
            raise reader.fail(f"expect.{key}", f"is {value!r}", f"give one of: {', '.join(OUTCOME_NAMES)}")
        expect[key] = Outcome(value)
    return expect


def _requirements(reader: _Reader, app: Mapping[str, Any]) -> tuple[str, ...]:
    found = reader.strings(app, "requirements", "app.requirements")
    for index, req in enumerate(found):
        where = f"app.requirements[{index}]"
        if req.startswith("-"):
            raise reader.fail(where, f"is {req!r}", "give a requirement or a ./path, not a pip option")
        if req.startswith(LOCAL_PREFIXES) and not (reader.file.parent / req).exists():
            raise reader.fail(where, f"names {req!r}, which does not exist", "fix the path (relative to the scenario)")
    return found


def _local_packages(reader: _Reader, app: Mapping[str, Any]) -> tuple[str, ...]:
    names = reader.strings(app, "local_packages", "app.local_packages")
    for index, name in enumerate(names):
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", name):
            where = f"app.local_packages[{index}]"
            raise reader.fail(where, f"is {name!r}", "give a distribution name, e.g. PyProtocols")
    return names


def load(file: Path) -> Scenario:
    """Parse and check one scenario file; raises ScenarioError naming file, field and fix."""
    reader = _Reader(file)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HarnessError(f"{file}: no such scenario file; run 'python -m harness list' to see scenarios") from None
    except UnicodeDecodeError as exc:
        raise reader.fail("(file)", f"is not UTF-8 text ({exc.reason})", "save it as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise reader.fail("(syntax)", f"is not valid TOML ({exc})", "fix the TOML syntax") from None
    reader.check_keys(data, _TOP_KEYS, "")
    app = data.get("app")
    if not isinstance(app, dict):
        raise reader.fail("app", "is missing", 'add an [app] table with script = "app.wsgi"')
    reader.check_keys(app, _APP_KEYS, "app.")
    script = reader.get(app, "script", str, "app.script")
    if not script:
        raise reader.fail("app.script", "is missing", 'name the WSGI script, e.g. script = "app.wsgi"')
    watch = reader.get(app, "watch", str, "app.watch")
    raw_probes = data.get("probe")
    if not isinstance(raw_probes, list) or not raw_probes:
        raise reader.fail("probe", "is missing", 'add at least one [[probe]] table with path = "/"')
    layouts = reader.strings(data, "layouts", "layouts") or LAYOUT_NAMES
    for name in layouts:
        if name not in LAYOUT_NAMES:
            raise reader.fail("layouts", f"names {name!r}", f"use layouts from: {', '.join(LAYOUT_NAMES)}")
    name = reader.get(data, "name", str, "name") or file.parent.name
    if not re.match(r"^[A-Za-z0-9_.-]+$", name):
        raise reader.fail("name", f"is {name!r}", "use only letters, digits, '_', '-', '.'")
    return Scenario(
        name=name,
        file=file,
        description=reader.get(data, "description", str, "description") or "",
        script=reader.relative_file(script, "app.script"),
        probes=tuple(_probe(reader, p, i) for i, p in enumerate(raw_probes)),
        expect=_expect(reader, data.get("expect")),
        control=bool(reader.get(data, "control", bool, "control")),
        requirements=_requirements(reader, app),
        local_packages=_local_packages(reader, app),
        watch=reader.relative_file(watch, "app.watch") if watch else None,
        layouts=layouts,
    )


def discover(directory: Path = SCENARIOS_DIR) -> dict[str, Path]:
    """Scenario name -> file, for every scenario folder; names come from folder names."""
    return {f.parent.name: f for f in sorted(directory.glob(f"*/{SCENARIO_FILE}"))}


def resolve(names: str, directory: Path = SCENARIOS_DIR) -> list[Scenario]:
    """Scenarios from a comma list of names or paths; 'all' is every scenario found."""
    known = discover(directory)
    wanted = list(known) if names.strip() == "all" else [n.strip() for n in names.split(",") if n.strip()]
    scenarios = []
    for item in wanted:
        path = Path(item)
        if item in known:
            scenarios.append(load(known[item]))
        elif path.is_dir() and (path / SCENARIO_FILE).is_file():
            scenarios.append(load(path / SCENARIO_FILE))
        elif path.suffix == ".toml" and path.is_file():
            scenarios.append(load(path))
        else:
            raise HarnessError(
                f"--scenario: no scenario '{item}'; known: {', '.join(known) or '(none)'} "
                "(or give a path to a scenario folder or .toml file)"
            )
    return scenarios
