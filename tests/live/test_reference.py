"""The reference case on Python 2.7: a real Pylons 1.0.3 app loaded with loadapp('config:...').

Under interpreter-cycle (mod_wsgi 1.x's WSGIReloadMechanism Interpreter) its simplejson and MarkupSafe
C speedups break the second interpreter, which the scenario expects on 2.7; with both blocked it is clean;
isolate names both; under every Apache mechanism (which never re-creates an interpreter in a live
process) it is clean. pylons_pyprotocols needs PyProtocols and RuleDispatch handed in as local files:
without them it is skipped with that reason.
"""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path

import pytest

from harness.cells import interpreters
from harness.model.mechanisms import APACHE_MECHANISM_NAMES
from harness.model.outcome import Outcome
from harness.model.records import RunResult
from tests.conftest import harness, require_apache, runs_by_id, session_dir, session_record

pytestmark = pytest.mark.live
SPEEDUPS = ["markupsafe._speedups", "simplejson._speedups"]
README_COMMAND = ["run", "--scenario", "pylons_basic", "--mechanism", "interpreter-cycle", "--cycles", "5",
                  "--python", "2.7", "--mod-wsgi", "4.9.4"]  # fmt: skip


@pytest.fixture(autouse=True)
def _apache() -> None:
    require_apache()


def _python27() -> str:
    found = [p.executable for p in interpreters.discover() if p.version.startswith("2.7.")]
    if not found:
        if os.environ.get("CI"):
            pytest.fail("no Python 2.7 on this machine (pyenv 2.7.18 is on the CI image)")
        pytest.skip("no Python 2.7 on this machine")
    return found[0]


def _run(results: Path, *args: str) -> dict[str, RunResult]:
    done = harness("run", "--scenario", "pylons_basic", "--python", _python27(), "--mod-wsgi", "4.9.4",
                   "--no-controls", "--results", str(results), *args, timeout=1800)  # fmt: skip
    assert done.returncode in (0, 1), done.stderr[-3000:]
    return runs_by_id(session_record(results))


@pytest.fixture(scope="module")
def readme_command(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, RunResult]:
    """The README's reference command as written (with the clean controls it adds)."""
    _python27()
    results = tmp_path_factory.mktemp("pylons-readme")
    done = harness(*README_COMMAND, "--results", str(results), timeout=1800)
    assert done.returncode in (0, 1), done.stderr[-3000:]
    return results, done.returncode, runs_by_id(session_record(results))["pylons_basic.interpreter-cycle.named"]


def test_the_readme_reference_command_exits_zero_with_its_documented_verdict(
    readme_command: tuple[Path, int, RunResult],
) -> None:
    results, code, run = readme_command
    assert code == 0, [(r.folder, r.verdict, r.expected) for r in session_record(results).runs]
    assert run.verdict in (Outcome.RAISED, Outcome.CRASHED) and run.matches, run.evidence
    assert run.expected == (Outcome.RAISED, Outcome.CRASHED)
    assert run.load_outcome is Outcome.CLEAN, "the first interpreter is fine; the trouble starts with the second"
    assert run.trials == 5
    assert sorted(n for n, _ in run.extensions if "_speedups" in n) == SPEEDUPS


def test_clean_with_speedups_blocked(tmp_path: Path) -> None:
    runs = _run(tmp_path, "--mechanism", "interpreter-cycle", "--cycles", "5", "--block", ",".join(SPEEDUPS))
    run = runs["pylons_basic.interpreter-cycle.named"]
    assert run.verdict is Outcome.CLEAN, run.evidence
    assert list(run.spec.blocked) == SPEEDUPS
    assert not [n for n, _ in run.extensions if "_speedups" in n], "the fallbacks are pure Python"


def test_isolate_names_both_speedups(readme_command: tuple[Path, int, RunResult]) -> None:
    results, _, run = readme_command
    done = harness("isolate", str(session_dir(results) / run.folder), "--results", str(results), timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    (folder,) = results.glob("isolate-*")
    record = json.loads((folder / "isolate.json").read_text())
    assert sorted(record["culprits"]) == SPEEDUPS, record
    assert sorted(record["candidates"]) == SPEEDUPS, "stdlib C modules are not candidates"
    for row in record["modules"]:
        alone = row["alone"]
        assert alone["verdict"] != "clean" and alone["failing"] > 0, row  # each breaks a second interpreter
        assert all(outcome != "clean" for outcome, _ in alone["outcomes"]), "failing cycles are labelled by class"
    clean = [t for t in record["trials"] if t["verdict"] == "clean"]
    assert [sorted(t["blocked"]) for t in clean] == [SPEEDUPS]
    for module in SPEEDUPS:
        assert module in done.stdout
    assert "cycles failing (" in done.stdout, "each module's rate comes with its interval"


def test_clean_under_every_apache_mechanism(tmp_path: Path) -> None:
    runs = _run(tmp_path, "--mechanism", ",".join(APACHE_MECHANISM_NAMES), "--layout", "global", "--cycles", "2")
    assert len(runs) == len(APACHE_MECHANISM_NAMES)
    verdicts = {run_id: run.verdict for run_id, run in runs.items()}
    assert set(verdicts.values()) == {Outcome.CLEAN}, verdicts


def test_pyprotocols_skipped_without_its_packages(tmp_path: Path) -> None:
    done = harness("run", "--scenario", "pylons_pyprotocols", "--results", str(tmp_path))
    assert done.returncode == 2
    assert "PyProtocols, RuleDispatch" in done.stderr and "--local-package" in done.stderr
    assert "Traceback" not in done.stderr
    assert not list(tmp_path.iterdir()), "nothing ran, nothing written"


def test_pyprotocols_skip_recorded_beside_other_runs(tmp_path: Path) -> None:
    done = harness("run", "--scenario", "hello,pylons_pyprotocols", "--mechanism", "sigusr1", "--cycles", "1",
                   "--no-controls", "--results", str(tmp_path))  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    record = session_record(tmp_path)
    assert [r.run for r in record.runs] == ["hello.sigusr1.global"]
    assert "PyProtocols" in dict(record.skipped)["pylons_pyprotocols"]


def test_a_hand_in_pip_refuses_is_a_set_up_error(tmp_path: Path) -> None:
    """Files handed in are installed beside the requirements: here two empty archives named like the real
    sdists, which pip refuses. That is the user's input to fix (exit 2, pip's line), not a cell limit."""
    packages = []
    for name in ("PyProtocols-1.0a0", "RuleDispatch-0.5a0"):
        archive = tmp_path / f"{name}.tar.gz"
        with tarfile.open(archive, "w:gz"):
            pass
        packages += ["--local-package", str(archive)]
    done = harness("run", "--scenario", "pylons_pyprotocols", "--mechanism", "interpreter-cycle", "--cycles", "1",
                   "--python", _python27(), "--mod-wsgi", "4.9.4", "--results", str(tmp_path / "r"), *packages,
                   timeout=1800)  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "hand-in package" in errors[0] and "refused by pip" in errors[0], done.stderr


def test_bad_local_package_is_one_line(tmp_path: Path) -> None:
    done = harness("run", "--scenario", "hello", "--local-package", str(tmp_path / "nope.tar.gz"))
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "does not exist" in done.stderr


def test_two_groups_markupsafe_under_apache_and_isolate(tmp_path: Path) -> None:
    """Found with this harness under modern mod_wsgi: in a daemon with two application groups, MarkupSafe
    1.1.1's speedups keep the first interpreter's Markup class, so the second group's escape() answers
    wrongly. isolate, run on that Apache run, names markupsafe._speedups alone."""
    runs = _run(tmp_path, "--mechanism", "sigusr1", "--layout", "two-groups", "--cycles", "2")
    run = runs["pylons_basic.sigusr1.two-groups"]
    assert run.verdict is Outcome.WRONG_RESULT and run.matches, run.evidence
    line = run.evidence[Outcome.WRONG_RESULT][0]
    assert line.startswith("GET /app2/escape: ") and "escape is Markup: False" in line, line
    done = harness("isolate", str(session_dir(tmp_path) / run.folder), "--results", str(tmp_path), timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    (folder,) = tmp_path.glob("isolate-*")
    record = json.loads((folder / "isolate.json").read_text())
    assert record["culprits"] == ["markupsafe._speedups"], record
    by_module = {row["module"]: row for row in record["modules"]}
    assert by_module["simplejson._speedups"]["alone"]["verdict"] == "clean"
    assert by_module["markupsafe._speedups"]["culprit"] is True
