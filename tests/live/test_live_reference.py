"""The reference case on Python 2.7: a real Pylons 1.0.3 app loaded with loadapp('config:...').

Under interpreter-cycle (mod_wsgi 1.x's WSGIReloadMechanism Interpreter) its simplejson and MarkupSafe
C speedups break the second interpreter; with both blocked it is clean; isolate names both; and under
every Apache mechanism (which never re-creates an interpreter in a live process) it is clean.
pylons_pyprotocols needs PyProtocols and RuleDispatch handed in as local files: without them it is
skipped with that reason.
"""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import harness, require_apache, runs_by_id, session_summary

pytestmark = pytest.mark.live
PY27 = "2.7"
SPEEDUPS = ["markupsafe._speedups", "simplejson._speedups"]


@pytest.fixture(autouse=True)
def _apache() -> None:
    require_apache()


def _python27() -> str:
    from harness import interpreters

    found = [p.executable for p in interpreters.discover() if p.version.startswith("2.7.")]
    if not found:
        if os.environ.get("CI"):
            pytest.fail("no Python 2.7 on this machine (pyenv 2.7.18 is on the CI image)")
        pytest.skip("no Python 2.7 on this machine")
    return found[0]


def _run(results: Path, *args: str) -> dict[str, Any]:
    done = harness("run", "--scenario", "pylons_basic", "--python", _python27(), "--mod-wsgi", "4.9.4",
                   "--results", str(results), *args, timeout=1800)  # fmt: skip
    assert done.returncode in (0, 1), done.stderr[-3000:]
    return runs_by_id(session_summary(results))


@pytest.fixture(scope="module")
def as_is(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    results = tmp_path_factory.mktemp("pylons-as-is")
    runs = _run(results, "--mechanism", "interpreter-cycle", "--cycles", "5")
    return results, runs["pylons_basic.interpreter-cycle.named"]


def test_interpreter_cycle_breaks_pylons(as_is: tuple[Path, dict[str, Any]]) -> None:
    _, run = as_is
    assert run["verdict"] in ("crashed", "raised", "wrong-result"), run["evidence"]
    assert run["load_outcome"] == "clean", "the first interpreter is fine; the trouble starts with the second"
    assert sorted(n for n, path in run["extensions"] if "_speedups" in n) == SPEEDUPS


def test_clean_with_speedups_blocked(tmp_path: Path) -> None:
    runs = _run(tmp_path, "--mechanism", "interpreter-cycle", "--cycles", "5", "--block", ",".join(SPEEDUPS))
    run = runs["pylons_basic.interpreter-cycle.named"]
    assert run["verdict"] == "clean", run["evidence"]
    assert run["blocked"] == SPEEDUPS
    assert not [n for n, _ in run["extensions"] if "_speedups" in n], "the fallbacks are pure Python"


def test_isolate_names_both_speedups(as_is: tuple[Path, dict[str, Any]]) -> None:
    results, run = as_is
    (session,) = [p for p in results.iterdir() if p.is_dir() and not p.name.startswith("isolate-")]
    done = harness("isolate", str(session / run["run"]), "--results", str(results), timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    (folder,) = results.glob("isolate-*")
    record = json.loads((folder / "isolate.json").read_text())
    assert sorted(record["culprits"]) == SPEEDUPS, record
    assert sorted(record["candidates"]) == SPEEDUPS, "stdlib C modules are not candidates"
    for row in record["modules"]:
        assert row["alone"]["verdict"] != "clean", row  # each breaks the second interpreter on its own
        assert 0 < row["share"] < 1
    clean = [t for t in record["trials"] if t["verdict"] == "clean"]
    assert [sorted(t["blocked"]) for t in clean] == [SPEEDUPS]
    for module in SPEEDUPS:
        assert module in done.stdout


def test_clean_under_every_apache_mechanism(tmp_path: Path) -> None:
    from harness.mechanisms import APACHE_MECHANISM_NAMES

    runs = _run(tmp_path, "--mechanism", ",".join(APACHE_MECHANISM_NAMES), "--layout", "global", "--cycles", "2")
    assert len(runs) == len(APACHE_MECHANISM_NAMES)
    verdicts = {run_id: run["verdict"] for run_id, run in runs.items()}
    assert set(verdicts.values()) == {"clean"}, verdicts


def test_pyprotocols_skipped_without_its_packages(tmp_path: Path) -> None:
    done = harness("run", "--scenario", "pylons_pyprotocols", "--results", str(tmp_path))
    assert done.returncode == 2
    assert "PyProtocols, RuleDispatch" in done.stderr and "--local-package" in done.stderr
    assert "Traceback" not in done.stderr
    assert not list(tmp_path.iterdir()), "nothing ran, nothing written"


def test_pyprotocols_skip_recorded_beside_other_runs(tmp_path: Path) -> None:
    done = harness("run", "--scenario", "hello,pylons_pyprotocols", "--mechanism", "sigusr1", "--cycles", "1",
                   "--results", str(tmp_path))  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    summary = session_summary(tmp_path)
    assert [r["run"] for r in summary["runs"]] == ["hello.sigusr1.global"]
    assert "PyProtocols" in summary["skipped"]["pylons_pyprotocols"]


def test_handed_in_packages_go_to_pip(tmp_path: Path) -> None:
    """Files handed in are installed beside the requirements: here two empty archives named like the
    real sdists, which pip refuses, so the run is 'unsupported' with pip's reason (no PEAK code is used)."""
    packages = []
    for name in ("PyProtocols-1.0a0", "RuleDispatch-0.5a0"):
        archive = tmp_path / f"{name}.tar.gz"
        with tarfile.open(archive, "w:gz"):
            pass
        packages += ["--local-package", str(archive)]
    done = harness("run", "--scenario", "pylons_pyprotocols", "--mechanism", "interpreter-cycle", "--cycles", "1",
                   "--python", _python27(), "--mod-wsgi", "4.9.4", "--results", str(tmp_path / "r"), *packages,
                   timeout=1800)  # fmt: skip
    assert done.returncode == 1, done.stderr[-2000:]
    (run,) = session_summary(tmp_path / "r")["runs"]
    assert run["verdict"] == "unsupported", run
    assert "do not install for this cell" in run["reason"]
    assert any(p.endswith("PyProtocols-1.0a0.tar.gz") for p in run["requirements"])


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
    assert run["verdict"] == "wrong-result", run["evidence"]
    (line,) = run["evidence"]["wrong-result"][:1]
    assert line.startswith("GET /app2/escape: ") and "escape is Markup: False" in line, line
    (session,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    done = harness("isolate", str(session / run["run"]), "--results", str(tmp_path), timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    (folder,) = tmp_path.glob("isolate-*")
    record = json.loads((folder / "isolate.json").read_text())
    assert record["culprits"] == ["markupsafe._speedups"], record
    by_module = {row["module"]: row for row in record["modules"]}
    assert by_module["simplejson._speedups"]["alone"]["verdict"] == "clean"
    assert by_module["markupsafe._speedups"]["share"] == 1.0
