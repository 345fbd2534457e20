"""The cycle loop and the runner over a scripted engine: every rule about what a cycle is, what counts
as a trial, and how deaths, hangs and missing reloads are recorded. (Each is proven live in tests/live.)"""

from __future__ import annotations

from pathlib import Path

from harness.model import invariants
from harness.model import mechanisms as mech
from harness.model import scenario as scenarios
from harness.model.outcome import Outcome
from harness.model.records import CycleRecord, Fired, Phase, RunResult
from harness.run.plan import Selection, plan
from harness.run.session import SessionPlan, run_session
from harness.storage import read_jsonl
from tests.unit.fakes import CELL, SEGV, Answer, Step, World

AH00051 = (
    "[Sun Nov 29 08:00:00.000000 2026] [core:notice] [pid 1] AH00051: child pid {pid} exit signal "
    "Segmentation fault (11), possible coredump in /tmp"
)


def run(tmp_path: Path, scenario: str = "hello", mechanism: str = "sigusr1", cycles: int = 3,
        until_crash: bool = False) -> tuple[RunResult, list[CycleRecord]]:  # fmt: skip
    chosen = Selection(scenarios.resolve(scenario), [mech.MECHANISMS[mechanism]], ["global"], cycles,
                       until_crash=until_crash, controls=False)  # fmt: skip
    specs = plan(chosen, [CELL]).specs
    folder, record = run_session(SessionPlan(tuple(specs), tmp_path / "results", jobs=1))
    (result,) = record.runs
    path = folder / result.folder / "cycles.jsonl"
    records = [CycleRecord.from_json(r, path) for r in read_jsonl(path)]
    assert invariants.violations(result, records) == []
    return result, records


def test_a_clean_run_is_load_reloads_and_stop_with_every_reload_a_trial(world: World, tmp_path: Path) -> None:
    result, records = run(tmp_path)
    assert [r.phase for r in records] == [Phase.LOAD, Phase.RELOAD, Phase.RELOAD, Phase.RELOAD, Phase.STOP]
    assert result.verdict is Outcome.CLEAN and result.matches and result.trials == 3
    assert [r.outcome.value for r in result.rates] == ["clean"] and result.rates[0].count == 3
    assert world.engines[0].calls[:4] == ["prepare", "start", "probe 0", "trigger 1"]


def test_a_death_seen_by_its_exit_status_is_counted_once_when_apaches_line_comes_later(
    world: World, tmp_path: Path
) -> None:
    script = world.script("hello")
    script.steps[1] = Step(answers=[Answer(502)], deaths=[SEGV])
    script.steps[2] = Step(log=[AH00051.format(pid=1001)])  # the dead daemon of cycle 1 (pid 1001), a tick later
    result, records = run(tmp_path)
    assert [r.outcome for r in records] == [Outcome.CLEAN, Outcome.CRASHED, Outcome.CLEAN, Outcome.CLEAN, Outcome.CLEAN]
    (crash,) = result.crashes
    assert crash.cycle == 1 and crash.pid == 1001 and crash.signal == SEGV
    assert result.counts[Outcome.CRASHED] == 1
    assert records[1].timestamps.death_seen is not None


def test_a_hung_probe_dumps_stacks_then_kills_and_the_next_cycle_is_a_real_trial(world: World, tmp_path: Path) -> None:
    script = world.script("hello")
    script.steps[2] = Step(answers=[Answer(None, error="timeout")])
    result, records = run(tmp_path)
    assert records[2].outcome is Outcome.HUNG and records[2].trial
    assert records[2].stacks and records[2].stacks[0].app_frames == ("app.wsgi:9 in application",)
    engine = world.engines[0]
    assert world.hang_dumps == [1002] and engine.killed == {1002}
    assert engine.calls.index("kill [1002]") < engine.calls.index("trigger 3")
    assert records[3].outcome is Outcome.CLEAN and records[3].trial
    assert result.trials == 3 and {r.outcome: r.count for r in result.rates} == {Outcome.CLEAN: 2, Outcome.HUNG: 1}


def test_a_reload_that_did_not_fire_is_a_harness_error_and_no_trial(world: World, tmp_path: Path) -> None:
    world.script("hello").steps[2] = Step(fired=Fired.NOT_FIRED)
    result, records = run(tmp_path)
    assert records[2].outcome is Outcome.HARNESS_ERROR and not records[2].trial
    assert result.trials == 2 and result.verdict is Outcome.HARNESS_ERROR
    assert any("cycle 2 was no trial" in line for line in result.not_run)


def test_an_app_that_never_loaded_is_raised_not_a_harness_error(world: World, tmp_path: Path) -> None:
    """mod_wsgi does not restart a daemon whose script never loaded; every request tries again, and fails."""
    failing = [Answer(500, body="Internal Server Error")]
    script = world.script("hello")
    script.steps[0] = Step(answers=failing)
    for cycle in (1, 2, 3):
        script.steps[cycle] = Step(answers=failing, fired=Fired.NOT_FIRED)
    result, records = run(tmp_path, mechanism="script-touch")
    assert [r.outcome for r in records[:4]] == [Outcome.RAISED] * 4
    assert result.verdict is Outcome.RAISED and result.trials == 3


def test_until_crash_stops_and_says_which_reloads_did_not_run(world: World, tmp_path: Path) -> None:
    world.script("hello").steps[2] = Step(answers=[Answer(502)], deaths=[SEGV])
    result, records = run(tmp_path, cycles=5, until_crash=True)
    assert [r.cycle for r in records] == [0, 1, 2, 3]  # the stop still runs
    assert result.first_crash_cycle == 2 and result.trials == 2
    assert any("reloads 3-5 not run" in line for line in result.not_run)


def test_a_trigger_that_fails_is_no_trial(world: World, tmp_path: Path) -> None:
    world.script("hello").steps[1] = Step(trigger_fails=True)
    _, records = run(tmp_path, mechanism="apache-graceful")
    assert records[1].outcome is Outcome.HARNESS_ERROR and not records[1].trial
    assert "apachectl graceful failed" in records[1].evidence[0]


def test_a_death_at_the_stop_is_a_crashed_stop(world: World, tmp_path: Path) -> None:
    world.script("hello").steps[4] = Step(deaths=[SEGV])
    result, records = run(tmp_path)
    assert records[-1].phase is Phase.STOP and records[-1].outcome is Outcome.CRASHED
    assert result.verdict is Outcome.CRASHED and result.stop_outcome is Outcome.CRASHED
    assert [c.cycle for c in result.crashes] == [4]


def test_start_failure_is_one_setup_cycle(world: World, tmp_path: Path) -> None:
    world.script("hello").start_fails = True
    result, records = run(tmp_path)
    assert [(r.phase, r.outcome) for r in records] == [(Phase.SETUP, Outcome.START_FAILED)]
    assert result.reason and "start-up" in result.reason and result.trials == 0
