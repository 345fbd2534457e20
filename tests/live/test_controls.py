"""Every control under every mechanism (Apache's and the driver's) in one session against live servers,
and hello under every Apache layout: each outcome class and each mechanism met for real, read back
from the typed records cycle by cycle."""

from __future__ import annotations

import os
import re
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.model.mechanisms import MECHANISM_NAMES, MECHANISMS
from harness.model.outcome import Outcome
from harness.model.records import DeathSource, EventKind, Fired, Phase, RunResult, SessionRecord
from tests.conftest import (
    cycles,
    harness,
    require_apache,
    run_once,
    runs_by_id,
    server_processes_under,
    session_dir,
    session_record,
)

pytestmark = pytest.mark.live
CONTROLS = ("hello", "segfault", "raise", "wrong", "block")
EXPECTED = {
    "hello": Outcome.CLEAN,
    "segfault": Outcome.CRASHED,
    "raise": Outcome.RAISED,
    "wrong": Outcome.WRONG_RESULT,
    "block": Outcome.HUNG,
}


@dataclass(frozen=True)
class Controls:
    returncode: int
    stderr: str
    results: Path
    record: SessionRecord
    leftovers: list[str]

    def run(self, control: str, mechanism: str) -> RunResult:
        return runs_by_id(self.record)[f"{control}.{mechanism}.{_layout(mechanism)}"]


@pytest.fixture(scope="module")
def runtime_for_module() -> Iterator[Path]:
    path = Path(f"/tmp/mwh-c{os.getpid()}")
    path.mkdir(mode=0o711, exist_ok=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def controls(tmp_path_factory: pytest.TempPathFactory, runtime_for_module: Path) -> Controls:
    require_apache()
    results = tmp_path_factory.mktemp("controls")
    done = harness(
        "run", "--scenario", ",".join(CONTROLS), "--mechanism", "all", "--layout", "global", "--cycles", "3",
        "--no-controls", "--jobs", "6", "--results", str(results),
        env={"MOD_WSGI_HARNESS_RUNTIME": str(runtime_for_module / "controls")},
    )  # fmt: skip
    return Controls(done.returncode, done.stderr, results, session_record(results),
                    server_processes_under(runtime_for_module / "controls"))  # fmt: skip


def _layout(mechanism: str) -> str:
    """The layout a run of `--layout global` has: the driver mechanisms keep their own."""
    return (MECHANISMS[mechanism].layouts or ("global",))[0]


def test_acceptance_command_exits_zero(controls: Controls) -> None:
    assert controls.returncode == 0, controls.stderr[-3000:]
    assert len(controls.record.runs) == len(CONTROLS) * len(MECHANISM_NAMES) == 5 * (11 + 4)  # Apache, driver


@pytest.mark.parametrize("mechanism", MECHANISM_NAMES)
@pytest.mark.parametrize("control", CONTROLS)
def test_control_verdict(controls: Controls, control: str, mechanism: str) -> None:
    run = controls.run(control, mechanism)
    assert (run.verdict, run.matches) == (EXPECTED[control], True), run.evidence
    records = cycles(controls.results, run.folder)
    assert [r.phase for r in records] == [Phase.LOAD, Phase.RELOAD, Phase.RELOAD, Phase.RELOAD, Phase.STOP]
    assert [r.outcome for r in records[1:4]] == [EXPECTED[control]] * 3, records
    if mechanism == "inactivity-timeout" and control in ("segfault", "block"):
        # mod_wsgi starts a daemon's idle timer with its first finished request; a daemon that replaced one
        # killed by the app's every request never finishes one, so the reload cannot fire: no trial, said why.
        assert run.trials == 0 and all(not r.trial and r.why_not_trial for r in records[1:4]), records
    else:  # N cycles are N trials: a crash or a hang is followed by a fresh process, never by the end
        assert run.trials == 3, records


@pytest.mark.parametrize("mechanism", MECHANISM_NAMES)
def test_every_mechanism_fires_and_hello_stays_clean(controls: Controls, mechanism: str) -> None:
    records = cycles(controls.results, controls.run("hello", mechanism).folder)
    reloads = [r for r in records if r.phase is Phase.RELOAD]
    assert [r.confirmation.fired for r in reloads] == [Fired.CONFIRMED] * 3
    assert all(r.outcome is Outcome.CLEAN and r.trial for r in records)
    for record in reloads:
        stamps = record.timestamps
        assert stamps.trigger_sent is not None and stamps.reload_confirmed is not None
        assert stamps.outcome_recorded is not None and stamps.probe_answered is not None
        assert stamps.trigger_sent <= stamps.reload_confirmed <= stamps.outcome_recorded
        if mechanism != "script-touch-embedded" and not MECHANISMS[mechanism].driver:  # those reload in place
            assert set(record.pids_before).isdisjoint(record.pids_after)


def test_a_driver_keeps_one_process_while_the_app_stays_clean(controls: Controls) -> None:
    for mechanism, step in (("interpreter-cycle", "new-interpreter"), ("finalize-reinit", "initialize")):
        records = cycles(controls.results, controls.run("hello", mechanism).folder)
        assert len({pid for r in records for pid in r.pids_before}) == 1, "one process for all cycles"
        assert all(step in r.confirmation.detail for r in records if r.phase is Phase.RELOAD)


def test_crash_is_seen_at_its_exit_status_and_apaches_line_confirms_it_once(controls: Controls) -> None:
    run = controls.run("segfault", "sigusr1")
    records = cycles(controls.results, run.folder)
    log = (session_dir(controls.results) / run.folder / "error_log").read_text()
    logged = {int(pid) for pid in re.findall(r"AH0005[12]: child pid (\d+) exit signal Segmentation fault", log)}
    crashed = {c.pid for c in run.crashes}
    assert logged <= crashed and len(run.crashes) == len(crashed) == run.counts[Outcome.CRASHED]
    seen_first = [d for r in records for d in r.deaths if d.source is DeathSource.EXIT_STATUS]
    assert seen_first, "the zombie's exit status names the signal before Apache's tick"
    assert all(r.timestamps.death_seen is not None for r in records if r.outcome is Outcome.CRASHED)
    evidence = "\n".join(run.evidence[Outcome.CRASHED])
    assert "ended by signal 11" in evidence


def test_crash_evidence_has_faulthandler_and_the_app_line(controls: Controls) -> None:
    run = controls.run("segfault", "sigusr1")
    faulthandler = "\n".join(line for r in cycles(controls.results, run.folder) for line in r.faulthandler)
    assert "Fatal Python error: Segmentation fault" in faulthandler  # PYTHONFAULTHANDLER=1 reached the daemon
    assert 'app.wsgi", line 7' in faulthandler


def test_embedded_crash_is_a_dead_worker(controls: Controls) -> None:
    first = cycles(controls.results, controls.run("segfault", "script-touch-embedded").folder)[0]
    assert first.outcome is Outcome.CRASHED
    assert any(d.signal == 11 for d in first.deaths)
    assert first.probes[0].error is not None and first.probes[0].error.startswith("connection dropped")


def test_in_flight_request_of_dying_daemon_gets_502(controls: Controls) -> None:
    records = cycles(controls.results, controls.run("segfault", "script-touch").folder)
    assert {p.status for r in records for p in r.probes} == {502}
    assert any(e.kind is EventKind.LOST_RESPONSE for r in records for e in r.events)


def test_raise_evidence_names_the_exception(controls: Controls) -> None:
    run = controls.run("raise", "script-touch")
    evidence = "\n".join(run.evidence[Outcome.RAISED])
    assert "HTTP 500" in evidence and "ControlError: raised on purpose" in evidence
    assert run.first_exception is not None and "ControlError: raised on purpose" in run.first_exception


def test_a_hang_costs_one_deadline_its_stacks_and_a_kill(controls: Controls) -> None:
    run = controls.run("block", "sigusr1")
    records = cycles(controls.results, run.folder)
    for record in records[:4]:
        assert [p.error for p in record.probes] == ["timeout"], "one probe: the rest of a stuck cycle is not sent"
        assert record.stacks and any("app.wsgi:9" in f for f in record.stacks[0].app_frames), record.stacks
    reloads = [r for r in records if r.phase is Phase.RELOAD]
    assert all(r.timestamps.outcome_recorded - r.timestamps.trigger_sent < 2.0 + 6.0 for r in reloads  # type: ignore[operator]
               if r.timestamps.trigger_sent)  # fmt: skip
    assert records[-1].outcome is Outcome.CLEAN, "the hung daemon was killed: the server stops cleanly"


def test_results_files(controls: Controls) -> None:
    folder = session_dir(controls.results)
    suite = ET.parse(folder / "junit.xml").getroot()
    total = len(CONTROLS) * len(MECHANISM_NAMES)
    assert (suite.get("tests"), suite.get("failures")) == (str(total), "0")
    assert f"{total} runs, all as expected." in (folder / "report.md").read_text()
    run_dir = folder / "hello.apache-graceful.global"
    for name in ("cycles.jsonl", "summary.json", "spec.json", "error_log", "httpd.conf", "harness-include.conf"):
        assert (run_dir / name).is_file(), name
    assert "WSGIScriptAlias /app" in (run_dir / "harness-include.conf").read_text()
    assert "Listen 127.0.0.1:" in (run_dir / "httpd.conf").read_text()  # loopback only


def test_nothing_left_running(controls: Controls) -> None:
    assert controls.leftovers == []


def test_hello_clean_under_every_apache_layout(tmp_path: Path, private_runtime: Path) -> None:
    require_apache()
    done = run_once(tmp_path, "hello", "script-touch,sigusr1", "--layout", "global,named,two-groups,global+named",
                    cycles=2)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    runs = runs_by_id(session_record(tmp_path))
    assert {r.verdict for r in runs.values()} == {Outcome.CLEAN} and len(runs) == 2 * 4
    log = (session_dir(tmp_path) / "hello.sigusr1.two-groups" / "error_log").read_text()
    assert "into sub-interpreter 'app-a'" in log and "into sub-interpreter 'app-b'" in log
    log = (session_dir(tmp_path) / "hello.script-touch.global+named" / "error_log").read_text()
    assert "app.wsgi' into main interpreter" in log and "into sub-interpreter 'app-b'" in log
    stop = cycles(tmp_path, "hello.sigusr1.two-groups")[-1]
    assert stop.destroy_order in (("app-a", "app-b"), ("app-b", "app-a")), stop.destroy_order
    assert server_processes_under(private_runtime) == []
