"""Scenario files: every shipped one loads; every malformed one gets one line naming file, field and fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.errors import HarnessError, ScenarioError
from harness.model import scenario
from harness.model.outcome import Outcome
from tests.unit.cli import cli, nothing_starts

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
    expectation = loaded["segfault"].expected("sigusr1", "global")
    assert expectation is not None and expectation.verdicts == (Outcome.CRASHED,)
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


@pytest.mark.usefixtures(nothing_starts.__name__)
def test_cli_reports_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, GOOD.replace('default = "clean"', 'default = "exploded"'))
    done = cli(capsys, "run", "--scenario", str(path), "--results", str(tmp_path / "results"))
    assert done.status == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: ") and done.stdout == ""
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
@pytest.mark.usefixtures(nothing_starts.__name__)
def test_cli_bad_selection_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    done = cli(capsys, *args, "--results", str(tmp_path / "results"))
    assert done.status == 2 and done.stderr.startswith("error: ") and done.stderr.count("\n") == 1
    assert not (tmp_path / "results").exists()


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

    def verdicts(mechanism: str, layout: str) -> tuple[Outcome, ...] | None:
        expectation = found.expected(mechanism, layout)
        return expectation.verdicts if expectation else None

    assert verdicts("sigterm", "two-groups") == (Outcome.CRASHED,)
    assert verdicts("sigterm", "two-groups-orphan") == (Outcome.CLEAN,)
    assert verdicts("sigusr1", "two-groups") == (Outcome.HUNG,)
    assert verdicts("sigusr1", "two-groups-orphan") == (Outcome.RAISED,)


def test_a_wrong_answer_says_what_differs() -> None:
    probe = scenario.Probe("/", body_equals="hello from mod_wsgi\n")
    assert probe.mismatch(200, "hello from mod_wsgi\n") is None
    assert probe.mismatch(500, "hello from mod_wsgi\n") == "status 500, expected 200"
    assert probe.mismatch(200, "hello from mod_wsgj\n") == (
        "body differs at character 18: received 'hello from mod_wsgj\\n', expected 'hello from mod_wsgi\\n'"
    )
    assert scenario.Probe("/", body_contains="ok").mismatch(200, "not it") == "body 'not it' lacks 'ok'"
    assert scenario.Probe("/", body_regex=r"^\d+$").mismatch(200, "x") == "body 'x' does not match /^\\d+$/"


def test_a_long_body_is_shown_around_the_difference_not_whole() -> None:
    """A 100 kB answer that differs at its end still shows the differing value, in a bounded message."""
    expected = "a" * 100_000 + "expected-tail"
    message = scenario.difference("a" * 100_000 + "received-tail", expected)
    assert "at character 100000 from character" in message and "received-tail" in message
    assert len(message) < 2 * scenario.SHOWN + 200


def test_the_content_hash_follows_the_apps_files_but_not_caches(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    folder = path.parent
    first = scenario.content_hash(folder)
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"\0")
    assert scenario.content_hash(folder) == first
    (folder / "app.wsgi").write_text("def application(e, s):\n    return []\n")
    assert scenario.content_hash(folder) != first


def test_local_requirements_become_absolute_paths(tmp_path: Path) -> None:
    (tmp_path / "fixture").mkdir()
    path = write(tmp_path, GOOD.replace("[app]\n", '[app]\nrequirements = ["./../fixture", "six==1.17.0"]\n'))
    found = scenario.load(path)
    assert found.pip_requirements() == (str((tmp_path / "fixture").resolve()), "six==1.17.0")


@pytest.mark.parametrize(
    ("requirement", "field"),
    [
        ("--index-url=http://evil", "app.requirements[0]"),
        ("./../nowhere", "app.requirements[0]"),
        ("", "app.requirements[0]"),
    ],
)
def test_requirements_refuse_pip_options_and_missing_paths(tmp_path: Path, requirement: str, field: str) -> None:
    path = write(tmp_path, GOOD.replace("[app]\n", f"[app]\nrequirements = [{requirement!r}]\n"))
    with pytest.raises(ScenarioError) as caught:
        scenario.load(path)
    assert caught.value.field == field


def test_two_scenarios_with_one_name_are_refused(tmp_path: Path) -> None:
    """Their runs would share a folder: one would overwrite the other's results."""
    first = write(tmp_path, 'name = "twin"\n' + GOOD)
    other = tmp_path / "other"
    other.mkdir()
    (other / "app.wsgi").write_text("")
    (other / "scenario.toml").write_text('name = "twin"\n' + GOOD)
    with pytest.raises(HarnessError, match="are both named 'twin'"):
        scenario.resolve(f"{first},{other}")
    assert [s.name for s in scenario.resolve(f"{first},{first.parent}")] == ["twin"]  # the same one twice: once


def test_a_huge_or_binary_file_is_refused_in_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "#" * scenario.MAX_FILE_BYTES)
    with pytest.raises(HarnessError, match="more than a scenario file needs"):
        scenario.load(path)
    path.write_bytes(b"description = '\xff\xfe'\n")
    with pytest.raises(ScenarioError) as caught:
        scenario.load(path)
    assert caught.value.field == "(file)" and "not UTF-8" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('"a\\nb" = 1\n' + GOOD, "a\\nb"),
        (GOOD.replace("[app]\n", '[app]\n"x\\u2028y" = 1\n'), "app.x\\u2028y"),
        (GOOD + '"\\u0085sigusr1" = "clean"\n', "expect.\\x85sigusr1"),
        (GOOD.replace('path = "/"', "path = \"/\"\nbody_regex = '[z-\\na]'"), "probe[0].body_regex"),
    ],
)
def test_line_breaks_from_the_file_are_escaped_in_the_message(tmp_path: Path, text: str, field: str) -> None:
    """A quoted TOML key (or a regex's own error) can hold a line break; the message stays one line."""
    with pytest.raises(ScenarioError) as caught:
        scenario.load(write(tmp_path, text))
    message = str(caught.value)
    assert caught.value.field == field and len(message.splitlines()) == 1, message
