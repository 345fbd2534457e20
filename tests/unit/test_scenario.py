"""Scenario files: every shipped one loads; every malformed one gets one line naming file, field and fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import scenario
from harness.errors import HarnessError, ScenarioError
from harness.outcome import Outcome

from .conftest import harness

GOOD = """
description = "x"
[app]
script = "app.wsgi"
[[probe]]
path = "/"
[expect]
default = "clean"
"""


def write(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "case"
    folder.mkdir(exist_ok=True)
    (folder / "app.wsgi").write_text("def application(e, s):\n    s('200 OK', [])\n    return [b'']\n")
    path = folder / "scenario.toml"
    path.write_text(text)
    return path


def test_shipped_controls_load() -> None:
    loaded = {s.name: s for s in scenario.resolve("all")}
    assert {"hello", "segfault", "raise", "wrong", "block"} <= set(loaded)
    assert loaded["segfault"].expected("sigusr1") is Outcome.CRASHED
    assert loaded["block"].probes[0].timeout == 2.0


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("[app\nscript=1", "(syntax)"),
        (GOOD.replace('script = "app.wsgi"', 'script = "missing.wsgi"'), "app.script"),
        (GOOD.replace('script = "app.wsgi"', 'script = "../../etc/passwd"'), "app.script"),
        (GOOD.replace('script = "app.wsgi"', "script = 5"), "app.script"),
        (GOOD.replace('path = "/"', 'path = "no-slash"'), "probe[0].path"),
        (GOOD.replace('path = "/"', 'path = "/"\nstatus = 99'), "probe[0].status"),
        (GOOD.replace('path = "/"', 'path = "/"\ntimeout = -1'), "probe[0].timeout"),
        (GOOD.replace('path = "/"', 'path = "/"\nbody_regex = "("'), "probe[0].body_regex"),
        (GOOD.replace('path = "/"', 'path = "/"\nbogus = 1'), "probe[0].bogus"),
        (GOOD.replace('default = "clean"', 'default = "exploded"'), "expect.default"),
        (GOOD.replace('default = "clean"', 'sigkill = "clean"'), "expect.sigkill"),
        (GOOD.replace('[expect]\ndefault = "clean"', ""), "expect"),
        (GOOD.replace('[[probe]]\npath = "/"', ""), "probe"),
        ('layouts = ["global", "nowhere"]\n' + GOOD, "layouts"),
        ('colour = "red"\n' + GOOD, "colour"),
    ],
)
def test_malformed_files_name_field_and_fix(tmp_path: Path, text: str, field: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as caught:
        scenario.load(path)
    message = str(caught.value)
    assert caught.value.field == field
    assert message.startswith(str(path)) and f"field '{field}'" in message
    assert "\n" not in message and "; " in message  # one line, with a fix after the problem


def test_cli_reports_one_line_and_exit_2(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace('default = "clean"', 'default = "exploded"'))
    done = harness("run", "--scenario", str(path), "--results", str(tmp_path / "results"))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "expect.default" in done.stderr and str(path) in done.stderr
    assert not (tmp_path / "results").exists()  # nothing started, nothing written


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--scenario", "nosuch"],
        ["run", "--mechanism", "sigkill"],
        ["run", "--layout", "sideways"],
        ["run", "--cycles", "0"],
    ],
)
def test_cli_bad_selection_one_line(args: list[str]) -> None:
    done = harness(*args)
    assert done.returncode == 2 and done.stderr.startswith("error: ") and done.stderr.count("\n") == 1


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=300))
def test_fuzzed_files_never_traceback(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    try:
        scenario.load(path)
    except HarnessError as exc:
        assert "\n" not in str(exc)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.dictionaries(
        st.sampled_from(["script", "watch", "requirements", "x"]),
        st.one_of(st.integers(), st.text(max_size=20), st.lists(st.integers(), max_size=2)),
        max_size=3,
    ),
    st.sampled_from(["clean", "crashed", 3, "nope"]),
)
def test_fuzzed_fields_never_traceback(tmp_path: Path, app: dict[str, object], verdict: object) -> None:
    import json

    lines = [f"{k} = {json.dumps(v)}" for k, v in app.items()]
    text = "[app]\n" + "\n".join(lines) + f'\n[[probe]]\npath = "/"\n[expect]\ndefault = {json.dumps(verdict)}\n'
    path = write(tmp_path, text)
    try:
        scenario.load(path)
    except HarnessError as exc:
        assert "\n" not in str(exc)


def test_most_specific_expectation_wins(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "app.wsgi").write_text("")
    (folder / "scenario.toml").write_text(
        '[app]\nscript = "app.wsgi"\n[[probe]]\npath = "/"\n[expect]\ndefault = "crashed"\n'
        'two-groups-orphan = "clean"\nsigusr1 = "hung"\n"sigusr1@two-groups-orphan" = "raised"\n'
    )
    found = scenario.load(folder / "scenario.toml")
    assert found.expected("sigterm", "two-groups") is Outcome.CRASHED
    assert found.expected("sigterm", "two-groups-orphan") is Outcome.CLEAN
    assert found.expected("sigusr1", "two-groups") is Outcome.HUNG
    assert found.expected("sigusr1", "two-groups-orphan") is Outcome.RAISED
