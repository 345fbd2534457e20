"""Scenario files: what app to load, how to probe it, and what verdict each run of it must give.

A scenario is a folder holding ``scenario.toml`` and the app's files. Every field is checked here,
before any server starts, and a problem is one line naming the file, the field and the fix.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from harness.errors import HarnessError, ScenarioError
from harness.model.layouts import LAYOUT_NAMES, LAYOUTS
from harness.model.mechanisms import MECHANISM_NAMES
from harness.model.outcome import OUTCOME_NAMES, Outcome

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.9/3.10 only
    import tomli as tomllib

SCENARIO_FILE = "scenario.toml"
MAX_FILE_BYTES = 1_000_000
# A script or module name goes into Apache's config: keep it to characters that need no quoting.
_SAFE_RELATIVE = re.compile(r"^(?!/)(?!.*\.\.)[A-Za-z0-9_./-]+$")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
LOCAL_PREFIXES = ("./", "../")
_HASH_SKIP = {"__pycache__", "build", "dist", ".git"}


def shipped_dir() -> Path:
    """The scenarios that come with the harness (package data, so an installed harness has them)."""
    return Path(str(resources.files("harness.scenarios")))


@dataclass(frozen=True)
class Probe:
    """One request and what a correct answer is."""

    path: str
    status: int = 200
    body_contains: str | None = None
    body_equals: str | None = None
    body_regex: str | None = None
    timeout: float = 5.0
    group: str | None = None  # only to this application group's mount; None: to every mount

    def mismatch(self, status: int, body: str) -> str | None:
        """Why this answer is wrong, or None when it is right."""
        if status != self.status:
            return f"status {status}, expected {self.status}"
        if self.body_equals is not None and body != self.body_equals:
            return difference(body, self.body_equals)
        if self.body_contains is not None and self.body_contains not in body:
            return f"body {_bounded(body)!r} lacks {_bounded(self.body_contains)!r}"
        if self.body_regex is not None and not re.search(self.body_regex, body):
            return f"body {_bounded(body)!r} does not match /{self.body_regex}/"
        return None


SHOWN = 400  # characters of a body shown in a mismatch: enough for the value that differs


def _bounded(text: str, limit: int = SHOWN) -> str:
    return text if len(text) <= limit else text[:limit] + f"... ({len(text) - limit} more characters)"


def difference(body: str, expected: str) -> str:
    """Received and expected in full (bounded), with the first differing character marked, so the value
    that differs is always in the message."""
    at = next((i for i, (a, b) in enumerate(zip(body, expected)) if a != b), min(len(body), len(expected)))
    start = max(0, at - SHOWN // 2)
    got, want = body[start : start + SHOWN], expected[start : start + SHOWN]
    cut = f" from character {start}" if start else ""
    return f"body differs at character {at}{cut}: received {got!r}, expected {want!r}"


@dataclass(frozen=True)
class Expectation:
    """The verdict (or verdicts, for a failure that shows itself as either) the scenario expects where every
    condition given holds."""

    verdicts: tuple[Outcome, ...]
    mechanism: str | None = None
    layout: str | None = None
    python: str | None = None  # a version specifier, e.g. "<3" or ">=3.8,<3.13"
    mod_wsgi: str | None = None
    note: str = ""

    def matches(self, mechanism: str, layout: str, python: str | None, mod_wsgi: str | None) -> bool:
        return (
            (self.mechanism is None or self.mechanism == mechanism)
            and (self.layout is None or self.layout == layout)
            and _within(python, self.python)
            and _within(mod_wsgi, self.mod_wsgi)
        )

    @property
    def specificity(self) -> int:
        return sum(x is not None for x in (self.mechanism, self.layout, self.python, self.mod_wsgi))


def _within(version: str | None, specifier: str | None) -> bool:
    if specifier is None:
        return True
    if version is None:
        return False
    try:
        return Version(version) in SpecifierSet(specifier)
    except InvalidVersion:
        return False


@dataclass(frozen=True)
class LoadPlan:
    """How the app's interpreters first load: the order of application groups (which decides which one
    mod_wsgi destroys first) and whether the daemon preloads them at start or a request thread loads
    each lazily on its first request."""

    order: tuple[str, ...] = ()  # application groups first; the rest as the layout declares them
    preload: bool = True


@dataclass(frozen=True)
class Scenario:
    name: str
    file: Path
    description: str
    script: str  # relative to the scenario folder
    probes: tuple[Probe, ...]
    expectations: tuple[Expectation, ...]
    control: bool = False
    requirements: tuple[str, ...] = ()  # pip requirements; "./" and "../" ones are paths from the folder
    local_packages: tuple[str, ...] = ()  # on no index: the user hands them in (cells/handins.py)
    watch: str | None = None  # module file edited by reload-on-changes; default: the script
    layouts: tuple[str, ...] = LAYOUT_NAMES
    load: LoadPlan = field(default_factory=LoadPlan)
    threads: int | None = None  # daemon threads (express --threads); 1 makes every request share one thread

    @property
    def directory(self) -> Path:
        return self.file.parent

    def pip_requirements(self) -> tuple[str, ...]:
        """The requirements as pip takes them: a local one becomes an absolute path."""
        folder = self.directory
        return tuple(str((folder / r).resolve()) if r.startswith(LOCAL_PREFIXES) else r for r in self.requirements)

    def expected(
        self, mechanism: str, layout: str, python: str | None = None, mod_wsgi: str | None = None
    ) -> Expectation | None:
        """The most specific expectation that holds here; between equals, the one written last."""
        found = [e for e in self.expectations if e.matches(mechanism, layout, python, mod_wsgi)]
        return max(reversed(found), key=lambda e: e.specificity, default=None)

    def probes_for(self, groups: Sequence[str]) -> list[tuple[str, Probe]]:
        """(group, probe) in sending order: a probe naming a group goes to that group alone, in the order
        written (so a sequence can alternate between groups); one naming none goes to every group."""
        if any(p.group for p in self.probes):
            return [
                (group, p)
                for p in self.probes
                for group in (groups if p.group is None else [p.group])
                if group in groups
            ]
        return [(group, p) for group in groups for p in self.probes]


def content_hash(folder: Path) -> str:
    """sha256 over the scenario folder's files (names and bytes), so a spec can tell whether the
    scenario it names is still the same one."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if not path.is_file() or _HASH_SKIP & set(relative.parts) or path.suffix == ".pyc":
            continue
        digest.update(str(relative).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


_TOP_KEYS = {"name", "description", "control", "app", "probe", "expect", "layouts", "load"}
_APP_KEYS = {"script", "requirements", "watch", "local_packages", "threads"}
_PROBE_KEYS = {"path", "status", "body_contains", "body_equals", "body_regex", "timeout", "group"}
_CASE_KEYS = {"verdict", "mechanism", "layout", "python", "mod_wsgi", "note"}
_LOAD_KEYS = {"order", "preload"}


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
                    f"{prefix}{key}"[:80],
                    "is not a known field",
                    f"remove it or use one of: {', '.join(sorted(known))}",
                )

    def get(self, table: Mapping[str, Any], key: str, kind: type | tuple[type, ...], fieldname: str) -> Any:
        value = table.get(key)
        if value is not None and (not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool)):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise self.fail(fieldname, f"is {type(value).__name__} {_short(value)}", f"make it a {names}")
        return value

    def table(self, data: Mapping[str, Any], key: str, fieldname: str) -> Mapping[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(fieldname, f"is {_short(value)}", f"write it as a [{fieldname}] table")
        return value

    def strings(self, table: Mapping[str, Any], key: str, fieldname: str) -> tuple[str, ...]:
        value = self.get(table, key, list, fieldname) or []
        for item in value:
            if not isinstance(item, str):
                raise self.fail(fieldname, f"holds {_short(item)}", "make it a list of strings")
        return tuple(value)

    def relative_file(self, value: str, fieldname: str) -> str:
        if not _SAFE_RELATIVE.match(value) or len(value) > 200:
            raise self.fail(
                fieldname,
                f"is {_short(value)}",
                "give a path relative to the scenario folder using only letters, digits, '_', '-', '.', '/'",
            )
        if not (self.file.parent / value).is_file():
            raise self.fail(fieldname, f"names {value!r}, which does not exist", "create it or fix the name")
        return value


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _probe(reader: _Reader, raw: Any, index: int) -> Probe:
    where = f"probe[{index}]"
    if not isinstance(raw, dict):
        raise reader.fail(where, f"is {_short(raw)}", "write it as a [[probe]] table")
    reader.check_keys(raw, _PROBE_KEYS, f"{where}.")
    path = reader.get(raw, "path", str, f"{where}.path")
    if not path or not path.startswith("/") or len(path) > 2000:
        raise reader.fail(f"{where}.path", f"is {_short(path)}", "give the request path, starting with '/'")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in path):
        raise reader.fail(f"{where}.path", f"is {_short(path)}", "percent-encode spaces and control characters (%20)")
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
        except (re.error, RecursionError, OverflowError) as exc:
            raise reader.fail(f"{where}.body_regex", f"is not a valid regex ({exc})", "fix the pattern") from None
    group = reader.get(raw, "group", str, f"{where}.group")
    if group is not None and not re.match(r"^[A-Za-z0-9_.-]{1,64}$|^%\{GLOBAL\}$", group):
        raise reader.fail(f"{where}.group", f"is {_short(group)}", "name an application group, e.g. app-b")
    return Probe(
        path=path,
        status=200 if status is None else status,
        body_contains=reader.get(raw, "body_contains", str, f"{where}.body_contains"),
        body_equals=reader.get(raw, "body_equals", str, f"{where}.body_equals"),
        body_regex=regex,
        timeout=5.0 if timeout is None else float(timeout),
        group=group,
    )


def _verdicts(reader: _Reader, value: Any, where: str) -> tuple[Outcome, ...]:
    """One verdict, or a list of them (a nondeterministic failure that shows itself as either)."""
    items = value if isinstance(value, list) and value else [value]
    for item in items:
        if not isinstance(item, str) or item not in OUTCOME_NAMES:
            raise reader.fail(where, f"is {_short(value)}", f"give one of (or a list of): {', '.join(OUTCOME_NAMES)}")
    return tuple(dict.fromkeys(Outcome(item) for item in items))


def _specifier(reader: _Reader, value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise reader.fail(where, f"is {_short(value)}", 'give a version specifier such as "<3" or ">=3.8,<3.13"')
    try:
        SpecifierSet(value)
    except InvalidSpecifier:
        raise reader.fail(
            where, f"is {_short(value)}", 'give a version specifier such as "<3" or ">=3.8,<3.13"'
        ) from None
    return value


def _expectations(reader: _Reader, raw: Any) -> tuple[Expectation, ...]:
    if not isinstance(raw, dict) or not raw:
        raise reader.fail(
            "expect", "is missing or empty", 'add an [expect] table, e.g. default = "clean" (per-mechanism keys too)'
        )
    known = ("default", *MECHANISM_NAMES, *LAYOUT_NAMES)
    found: list[Expectation] = []
    for key, value in raw.items():
        if key == "case":
            found += _cases(reader, value)
            continue
        mechanism, at, layout = key.partition("@")
        if key not in known and not (at and mechanism in MECHANISM_NAMES and layout in LAYOUT_NAMES):
            raise reader.fail(
                f"expect.{key}"[:80],
                "is not a mechanism, a layout, mechanism@layout or case",
                f"use 'default' or one of: {', '.join(known[1:])}",
            )
        verdict = _verdicts(reader, value, f"expect.{key}")
        if key == "default":
            found.append(Expectation(verdict))
        elif at:
            found.append(Expectation(verdict, mechanism=mechanism, layout=layout))
        elif key in MECHANISM_NAMES:
            found.append(Expectation(verdict, mechanism=key))
        else:
            found.append(Expectation(verdict, layout=key))
    return tuple(found)


def _cases(reader: _Reader, raw: Any) -> list[Expectation]:
    """[[expect.case]] tables: a verdict under conditions on mechanism, layout and versions."""
    if not isinstance(raw, list):
        raise reader.fail("expect.case", f"is {_short(raw)}", "write each case as an [[expect.case]] table")
    cases = []
    for index, item in enumerate(raw):
        where = f"expect.case[{index}]"
        if not isinstance(item, dict):
            raise reader.fail(where, f"is {_short(item)}", "write it as an [[expect.case]] table")
        reader.check_keys(item, _CASE_KEYS, f"{where}.")
        mechanism = reader.get(item, "mechanism", str, f"{where}.mechanism")
        if mechanism is not None and mechanism not in MECHANISM_NAMES:
            raise reader.fail(
                f"{where}.mechanism", f"is {_short(mechanism)}", f"use one of: {', '.join(MECHANISM_NAMES)}"
            )
        layout = reader.get(item, "layout", str, f"{where}.layout")
        if layout is not None and layout not in LAYOUT_NAMES:
            raise reader.fail(f"{where}.layout", f"is {_short(layout)}", f"use one of: {', '.join(LAYOUT_NAMES)}")
        cases.append(
            Expectation(
                _verdicts(reader, item.get("verdict"), f"{where}.verdict"),
                mechanism=mechanism,
                layout=layout,
                python=_specifier(reader, item.get("python"), f"{where}.python"),
                mod_wsgi=_specifier(reader, item.get("mod_wsgi"), f"{where}.mod_wsgi"),
                note=reader.get(item, "note", str, f"{where}.note") or "",
            )
        )
    return cases


def _requirements(reader: _Reader, app: Mapping[str, Any]) -> tuple[str, ...]:
    found = reader.strings(app, "requirements", "app.requirements")
    for index, req in enumerate(found):
        where = f"app.requirements[{index}]"
        if req.startswith("-") or "\n" in req or not req.strip():
            raise reader.fail(where, f"is {_short(req)}", "give a requirement or a ./path, not a pip option")
        if req.startswith(LOCAL_PREFIXES) and not (reader.file.parent / req).exists():
            raise reader.fail(where, f"names {req!r}, which does not exist", "fix the path (relative to the scenario)")
    return found


def _local_packages(reader: _Reader, app: Mapping[str, Any]) -> tuple[str, ...]:
    names = reader.strings(app, "local_packages", "app.local_packages")
    for index, name in enumerate(names):
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$", name):
            where = f"app.local_packages[{index}]"
            raise reader.fail(where, f"is {_short(name)}", "give a distribution name, e.g. PyProtocols")
    return names


def _load_plan(reader: _Reader, data: Mapping[str, Any], layouts: Sequence[str]) -> LoadPlan:
    raw = reader.table(data, "load", "load")
    reader.check_keys(raw, _LOAD_KEYS, "load.")
    order = reader.strings(raw, "order", "load.order")
    groups = {group for name in layouts for group in LAYOUTS[name].groups}
    for group in order:
        if group not in groups:
            raise reader.fail(
                "load.order", f"names {_short(group)}", f"name groups of its layouts: {', '.join(sorted(groups))}"
            )
    preload = reader.get(raw, "preload", bool, "load.preload")
    return LoadPlan(order=order, preload=True if preload is None else preload)


def read_text(file: Path, what: str = "scenario file") -> str:
    """A small UTF-8 text file, refusing what is not one (a folder, a FIFO, a loop of links, a huge or
    binary file, a byte-order mark) with one line instead of blocking or a traceback."""
    try:
        info = os.stat(file)
    except FileNotFoundError:
        raise HarnessError(f"{file}: no such {what}; run 'python -m harness list' to see scenarios") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise HarnessError(f"{file}: a loop of symbolic links; point it at a real {what}") from None
        if exc.errno == errno.ENAMETOOLONG:
            raise HarnessError(f"{str(file)[:80]}...: path too long; give a shorter path") from None
        raise HarnessError(f"{file}: cannot read it ({exc.strerror}); check the path and its permissions") from None
    if stat.S_ISDIR(info.st_mode):
        raise HarnessError(f"{file}: a folder, not a {what}; give the folder's {SCENARIO_FILE} or the folder itself")
    if not stat.S_ISREG(info.st_mode):
        raise HarnessError(f"{file}: not a regular file (a FIFO or device); give a {what}")
    if info.st_size > MAX_FILE_BYTES:
        raise HarnessError(f"{file}: {info.st_size} bytes, more than a {what} needs; give the right file")
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise HarnessError(f"{file}: cannot read it ({exc.strerror}); check its permissions") from None
    if data.startswith(b"\xef\xbb\xbf"):
        raise ScenarioError(file, "(file)", "starts with a UTF-8 byte-order mark", "save it as UTF-8 without a BOM")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(file, "(file)", f"is not UTF-8 text ({exc.reason})", "save it as UTF-8") from None


def load(file: Path) -> Scenario:
    """Parse and check one scenario file; raises ScenarioError naming file, field and fix."""
    reader = _Reader(file)
    text = read_text(file)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise reader.fail("(syntax)", f"is not valid TOML ({exc})", "fix the TOML syntax") from None
    except RecursionError:
        raise reader.fail("(syntax)", "nests tables or arrays too deeply", "flatten it") from None
    reader.check_keys(data, _TOP_KEYS, "")
    app = data.get("app")
    if not isinstance(app, dict):
        raise reader.fail("app", "is missing", 'add an [app] table with script = "app.wsgi"')
    reader.check_keys(app, _APP_KEYS, "app.")
    script = reader.get(app, "script", str, "app.script")
    if not script:
        raise reader.fail("app.script", "is missing", 'name the WSGI script, e.g. script = "app.wsgi"')
    watch = reader.get(app, "watch", str, "app.watch")
    threads = reader.get(app, "threads", int, "app.threads")
    if threads is not None and not 1 <= threads <= 100:
        raise reader.fail("app.threads", f"is {threads}", "give a number of daemon threads from 1 to 100")
    raw_probes = data.get("probe")
    if not isinstance(raw_probes, list) or not raw_probes:
        raise reader.fail("probe", "is missing", 'add at least one [[probe]] table with path = "/"')
    if len(raw_probes) > 100:
        raise reader.fail("probe", f"has {len(raw_probes)} tables", "keep to 100 probes or fewer")
    layouts = reader.strings(data, "layouts", "layouts") or LAYOUT_NAMES
    for layout in layouts:
        if layout not in LAYOUT_NAMES:
            raise reader.fail("layouts", f"names {_short(layout)}", f"use layouts from: {', '.join(LAYOUT_NAMES)}")
    name = reader.get(data, "name", str, "name") or file.parent.name
    if not _NAME.match(name):
        raise reader.fail("name", f"is {_short(name)}", "use at most 64 letters, digits, '_', '-', '.'")
    probes = tuple(_probe(reader, p, i) for i, p in enumerate(raw_probes))
    groups = {group for layout in layouts for group in LAYOUTS[layout].groups}
    for index, probe in enumerate(probes):
        if probe.group is not None and probe.group not in groups:
            raise reader.fail(
                f"probe[{index}].group",
                f"names {probe.group!r}",
                f"name a group of its layouts: {', '.join(sorted(groups))}",
            )
    return Scenario(
        name=name,
        file=file,
        description=reader.get(data, "description", str, "description") or "",
        script=reader.relative_file(script, "app.script"),
        probes=probes,
        expectations=_expectations(reader, data.get("expect")),
        control=bool(reader.get(data, "control", bool, "control")),
        requirements=_requirements(reader, app),
        local_packages=_local_packages(reader, app),
        watch=reader.relative_file(watch, "app.watch") if watch else None,
        layouts=layouts,
        load=_load_plan(reader, data, layouts),
        threads=threads,
    )


def discover(directory: Path | None = None) -> dict[str, Path]:
    """Scenario name -> file, for every scenario folder; names come from folder names."""
    folder = shipped_dir() if directory is None else directory
    return {f.parent.name: f for f in sorted(folder.glob(f"*/{SCENARIO_FILE}"))}


def locate(item: str, known: Mapping[str, Path]) -> Path:
    """The scenario file a name or path stands for."""
    if item in known:
        return known[item]
    path = Path(item)
    try:
        if path.is_dir():
            return path / SCENARIO_FILE
        if path.suffix == ".toml" or path.exists():
            return path
    except OSError as exc:
        raise HarnessError(f"--scenario {item[:80]}: {exc.strerror}; give a scenario name or path") from None
    raise HarnessError(
        f"--scenario: no scenario '{item[:80]}'; known: {', '.join(known) or '(none)'} "
        "(or give a path to a scenario folder or .toml file)"
    )


def resolve(names: str, directory: Path | None = None) -> list[Scenario]:
    """Scenarios from a comma list of names or paths ('all' is every shipped one), each once; two
    different scenarios with one name are refused, since their runs would share a folder."""
    known = discover(directory)
    wanted = list(known) if names.strip() == "all" else [n.strip() for n in names.split(",") if n.strip()]
    if not wanted:
        raise HarnessError("--scenario: no scenario named; give names, paths, or 'all'")
    chosen: dict[str, Scenario] = {}
    for item in dict.fromkeys(wanted):
        found = load(locate(item, known))
        other = chosen.get(found.name)
        if other is not None and other.file.resolve() != found.file.resolve():
            raise HarnessError(
                f"--scenario: {other.file} and {found.file} are both named '{found.name}' and their runs would share "
                "a folder; give one of them another name (name = ... in its scenario.toml)"
            )
        chosen[found.name] = found
    return list(chosen.values())
