"""What a scenario expects where: [[expect.case]] tables with version conditions beside the plain
[expect] keys (the most specific expectation wins, the later one among equals), probes aimed at one
application group, and the [load] plan; every bad value is one line naming the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.engines.base import probe_targets
from harness.errors import ScenarioError
from harness.model import scenario
from harness.model.layouts import LAYOUTS
from harness.model.mechanisms import MECHANISMS
from harness.model.outcome import Outcome
from harness.model.scenario import LoadPlan, Scenario
from harness.run.plan import Selection, plan
from tests.unit.builders import CELL

APP = '[app]\nscript = "app.wsgi"\n'
PROBE = '[[probe]]\npath = "/"\n'
TWO_GROUPS = 'layouts = ["two-groups", "two-groups-orphan", "global"]\n'


def write(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "case"
    folder.mkdir(exist_ok=True)
    (folder / "app.wsgi").write_text("def application(e, s):\n    s('200 OK', [])\n    return [b'']\n")
    path = folder / "scenario.toml"
    path.write_text(text)
    return path


def load(tmp_path: Path, text: str) -> Scenario:
    return scenario.load(write(tmp_path, text))


def verdict(found: Scenario, mechanism: str, layout: str = "global", python: str | None = None,
            mod_wsgi: str | None = None) -> tuple[Outcome, ...] | None:  # fmt: skip
    expectation = found.expected(mechanism, layout, python, mod_wsgi)
    return expectation.verdicts if expectation else None


CASES = """
[expect]
default = "clean"
interpreter-cycle = "crashed"
"sigusr1@two-groups" = "hung"

[[expect.case]]
mechanism = "interpreter-cycle"
python = "<3"
verdict = "wrong-result"
note = "the mod_wsgi 1.x bug: NameError VERSION"

[[expect.case]]
mod_wsgi = "<5"
verdict = "raised"

[[expect.case]]
mechanism = "sigusr1"
layout = "two-groups"
python = ">=3.12,<3.14"
verdict = "start-failed"
"""


def test_a_version_condition_makes_a_case_more_specific_than_a_mechanism_key(tmp_path: Path) -> None:
    found = load(tmp_path, TWO_GROUPS + APP + PROBE + CASES)
    assert verdict(found, "interpreter-cycle", "named", python="2.7.18") == (Outcome.WRONG_RESULT,)
    assert verdict(found, "interpreter-cycle", "named", python="3.11.2") == (Outcome.CRASHED,)
    expectation = found.expected("interpreter-cycle", "named", "2.7.18", None)
    assert expectation is not None and expectation.note == "the mod_wsgi 1.x bug: NameError VERSION"


def test_mod_wsgi_conditions_and_the_default(tmp_path: Path) -> None:
    found = load(tmp_path, TWO_GROUPS + APP + PROBE + CASES)
    assert verdict(found, "sigterm", mod_wsgi="4.9.4") == (Outcome.RAISED,)
    assert verdict(found, "sigterm", mod_wsgi="6.1.1") == (Outcome.CLEAN,)
    assert verdict(found, "sigterm", mod_wsgi="4.9.4", python="2.7.18") == (Outcome.RAISED,)


def test_an_unknown_version_never_meets_a_condition(tmp_path: Path) -> None:
    """A cell whose version is not known yet (or not PEP 440) gets the unconditional expectation."""
    found = load(tmp_path, TWO_GROUPS + APP + PROBE + CASES)
    assert verdict(found, "interpreter-cycle", "named", python=None) == (Outcome.CRASHED,)
    assert verdict(found, "interpreter-cycle", "named", python="2.7-custom+build") == (Outcome.CRASHED,)
    assert verdict(found, "sigterm", mod_wsgi=None) == (Outcome.CLEAN,)


def test_mechanism_at_layout_outranks_mechanism_and_three_conditions_outrank_it(tmp_path: Path) -> None:
    found = load(tmp_path, TWO_GROUPS + APP + PROBE + CASES)
    assert verdict(found, "sigusr1", "two-groups", python="3.11.2") == (Outcome.HUNG,)
    assert verdict(found, "sigusr1", "two-groups", python="3.12.1") == (Outcome.START_FAILED,)
    assert verdict(found, "sigusr1", "two-groups-orphan", python="3.12.1") == (Outcome.CLEAN,)


@pytest.mark.parametrize(("first", "second"), [("crashed", "raised"), ("raised", "crashed")])
def test_the_later_of_two_equally_specific_expectations_wins(tmp_path: Path, first: str, second: str) -> None:
    """Whichever is written last, not the more severe: a case refines what comes before it."""
    text = (
        APP + PROBE + '[expect]\ndefault = "clean"\n'
        f'[[expect.case]]\nmechanism = "sigusr1"\nverdict = "{first}"\n'
        f'[[expect.case]]\nlayout = "global"\nverdict = "{second}"\n'
    )
    assert verdict(load(tmp_path, text), "sigusr1", "global") == (Outcome(second),)


def test_a_case_written_after_an_equal_plain_key_wins(tmp_path: Path) -> None:
    text = APP + PROBE + '[expect]\nsigusr1 = "hung"\n[[expect.case]]\nmechanism = "sigusr1"\nverdict = "raised"\n'
    assert verdict(load(tmp_path, text), "sigusr1") == (Outcome.RAISED,)


def test_no_expectation_where_nothing_matches(tmp_path: Path) -> None:
    """Runs there have no verdict to match: the scenario says nothing about them (pyramid_cython's overlap)."""
    found = load(tmp_path, APP + PROBE + '[expect]\nsigusr1 = "clean"\n')
    assert found.expected("sigterm", "global") is None and verdict(found, "sigusr1") == (Outcome.CLEAN,)


def test_every_shipped_scenario_expects_something_of_its_default_runs() -> None:
    for name, file in scenario.discover().items():
        found = scenario.load(file)
        for mechanism in ("script-touch", "sigusr1", "apache-graceful"):
            for layout in found.layouts:
                assert found.expected(mechanism, layout, "3.11.2", "6.1.1") is not None, (name, mechanism, layout)


def test_a_verdict_list_accepts_any_of_its_outcomes_once_each(tmp_path: Path) -> None:
    """A nondeterministic failure (pylons_basic on 2.7: raised in some reloads, crashed in others)."""
    text = (
        APP + PROBE + '[expect]\ndefault = ["hung", "hung"]\n'
        '[[expect.case]]\nmechanism = "interpreter-cycle"\npython = "<3"\nverdict = ["raised", "crashed"]\n'
    )
    found = load(tmp_path, text)
    assert verdict(found, "interpreter-cycle", "named", python="2.7.18") == (Outcome.RAISED, Outcome.CRASHED)
    assert verdict(found, "interpreter-cycle", "named", python="3.11.2") == (Outcome.HUNG,)


def test_the_shipped_pylons_case_says_raised_or_crashed_on_python_2() -> None:
    found = scenario.load(scenario.discover()["pylons_basic"])
    assert verdict(found, "interpreter-cycle", "named", python="2.7.18") == (Outcome.RAISED, Outcome.CRASHED)
    assert verdict(found, "sigusr1", "two-groups", python="2.7.18") == (Outcome.WRONG_RESULT,)
    assert verdict(found, "sigusr1", "two-groups", python="3.11.2") == (Outcome.CLEAN,)


GROUPED = (
    TWO_GROUPS
    + APP
    + """
[[probe]]
path = "/both"
[[probe]]
path = "/b-first"
group = "app-b"
[[probe]]
path = "/a-then"
group = "app-a"
[expect]
default = "clean"
"""
)


def test_a_probe_naming_a_group_goes_there_alone_in_the_order_written(tmp_path: Path) -> None:
    found = load(tmp_path, GROUPED)
    sent = [(group, probe.path) for group, probe in found.probes_for(["app-a", "app-b"])]
    assert sent == [("app-a", "/both"), ("app-b", "/both"), ("app-b", "/b-first"), ("app-a", "/a-then")]


def test_probes_without_groups_go_to_every_group_one_group_after_the_other(tmp_path: Path) -> None:
    found = load(tmp_path, TWO_GROUPS + APP + PROBE + '[[probe]]\npath = "/second"\n[expect]\ndefault = "clean"\n')
    sent = [(group, probe.path) for group, probe in found.probes_for(["app-b", "app-a"])]
    assert sent == [("app-b", "/"), ("app-b", "/second"), ("app-a", "/"), ("app-a", "/second")]


def test_every_probe_reaches_a_mount_when_some_name_a_group(tmp_path: Path) -> None:
    """A probe that names no group is sent to every group's mount, beside the ones that name one."""
    found = load(tmp_path, GROUPED)
    urls = [t.url for t in probe_targets(found, LAYOUTS["two-groups"].mounts)]
    assert urls == ["/app/both", "/app2/both", "/app2/b-first", "/app/a-then"]
    assert [t.url for t in probe_targets(found, LAYOUTS["global"].mounts)] == ["/app/both"]


LOADED = TWO_GROUPS + APP + PROBE + '[expect]\ndefault = "clean"\n[load]\norder = ["app-b"]\npreload = false\n'


def test_load_order_and_preload_reach_the_spec_and_the_order_of_requests(tmp_path: Path) -> None:
    found = load(tmp_path, LOADED)
    assert found.load == LoadPlan(order=("app-b",), preload=False)
    chosen = Selection([found], [MECHANISMS["sigusr1"]], ["two-groups"], 1, controls=False)
    (spec,) = plan(chosen, [CELL]).specs
    assert spec.load == LoadPlan(("app-b",), False)
    mounts = LAYOUTS["two-groups"].ordered(spec.load.order)
    assert [t.url for t in probe_targets(found, mounts)] == ["/app2/", "/app/"]


def test_the_command_lines_load_order_overrides_the_scenarios(tmp_path: Path) -> None:
    found = load(tmp_path, LOADED)
    chosen = Selection([found], [MECHANISMS["sigusr1"]], ["two-groups"], 1, controls=False,
                       load_order=("app-a", "app-b"), preload=True)  # fmt: skip
    (spec,) = plan(chosen, [CELL]).specs
    assert spec.load == LoadPlan(("app-a", "app-b"), True)


def test_without_a_load_table_groups_preload_in_declared_order(tmp_path: Path) -> None:
    found = load(tmp_path, TWO_GROUPS + APP + PROBE + '[expect]\ndefault = "clean"\n')
    assert found.load == LoadPlan((), True)
    assert [m.application_group for m in LAYOUTS["two-groups"].ordered(found.load.order)] == ["app-a", "app-b"]


BASE = TWO_GROUPS + APP + PROBE + '[expect]\ndefault = "clean"\n'


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ('[[expect.case]]\nverdict = "crashd"\n', "expect.case[0].verdict"),
        ("[[expect.case]]\nverdict = []\n", "expect.case[0].verdict"),
        ('[[expect.case]]\nverdict = ["clean", 3]\n', "expect.case[0].verdict"),
        ('[[expect.case]]\nverdict = [["clean"]]\n', "expect.case[0].verdict"),
        ("[[expect.case]]\nmechanism = 'sigusr1'\n", "expect.case[0].verdict"),
        ('[[expect.case]]\nverdict = "clean"\nmechanism = "sigkill"\n', "expect.case[0].mechanism"),
        ('[[expect.case]]\nverdict = "clean"\nlayout = "sideways"\n', "expect.case[0].layout"),
        ('[[expect.case]]\nverdict = "clean"\npython = "three"\n', "expect.case[0].python"),
        ('[[expect.case]]\nverdict = "clean"\npython = 3.11\n', "expect.case[0].python"),
        ('[[expect.case]]\nverdict = "clean"\nmod_wsgi = "=>5"\n', "expect.case[0].mod_wsgi"),
        ('[[expect.case]]\nverdict = "clean"\nnote = 5\n', "expect.case[0].note"),
        ('[[expect.case]]\nverdict = "clean"\nwhen = "always"\n', "expect.case[0].when"),
        (
            '[[expect.case]]\nverdict = "clean"\n[[expect.case]]\nverdict = "hung"\nmod_wsgi = "5.x"\n',
            "expect.case[1].mod_wsgi",
        ),
        ("[expect.case]\nverdict = 'clean'\n", "expect.case"),
        ("[load]\norder = ['app-c']\n", "load.order"),
        ("[load]\norder = 'app-a'\n", "load.order"),
        ("[load]\norder = [1]\n", "load.order"),
        ("[load]\npreload = 'yes'\n", "load.preload"),
        ("[load]\nlazy = true\n", "load.lazy"),
        ("load = 3\n", "load"),
    ],
)
def test_bad_values_are_one_line_naming_file_and_field(tmp_path: Path, extra: str, field: str) -> None:
    text = BASE.replace('[expect]\ndefault = "clean"\n', "") + '[expect]\ndefault = "clean"\n' + extra
    if extra.startswith("load = "):
        text = extra + BASE
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as caught:
        scenario.load(path)
    message = str(caught.value)
    assert caught.value.field == field, message
    assert message.startswith(f"{path}: field '{field}' ") and "; " in message and "\n" not in message


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (TWO_GROUPS + APP + '[[probe]]\npath = "/"\ngroup = "app-c"\n[expect]\ndefault = "clean"\n', "probe[0].group"),
        (
            'layouts = ["global"]\n' + APP + '[[probe]]\npath = "/"\ngroup = "app-a"\n[expect]\ndefault = "clean"\n',
            "probe[0].group",
        ),
        (APP + '[[probe]]\npath = "/"\ngroup = "a b"\n[expect]\ndefault = "clean"\n', "probe[0].group"),
        (APP + '[[probe]]\npath = "/"\ngroup = 1\n[expect]\ndefault = "clean"\n', "probe[0].group"),
        (APP + PROBE + '[expect]\n"sigusr1@nowhere" = "clean"\n', "expect.sigusr1@nowhere"),
        (APP + PROBE + '[expect]\n"sigkill@global" = "clean"\n', "expect.sigkill@global"),
        (APP + PROBE + '[expect]\n"sigusr1@global" = "clear"\n', "expect.sigusr1@global"),
    ],
)
def test_groups_and_mechanism_at_layout_keys_are_checked(tmp_path: Path, text: str, field: str) -> None:
    """A probe may only name a group its layouts have (a global-only scenario has no app-a)."""
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as caught:
        scenario.load(path)
    assert caught.value.field == field and "\n" not in str(caught.value)
