"""Bug-report bundles that reproduce: three crashing runs are bundled, each bundle is unpacked into an
empty folder of a fresh copy of this checkout, and its reproduce.sh reruns the bundled spec there and
exits 0 only when the verdict and the signatures are the same. Editing the spec to drop its --block
makes it exit 1 and say what differs. The ISSUE.md of a driver run says nothing of Apache; an Apache
run's names the MPM that really ran; both stay under 8 KB.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from harness.cells import interpreters
from harness.model.outcome import Outcome
from harness.model.records import RunResult
from tests.conftest import REPO, harness, require_apache, session_dir, session_record
from tests.live.test_reference import _python27

pytestmark = pytest.mark.live
ISSUE_LIMIT = 8000
FIXTURE = REPO / "scenarios" / "fixtures" / "pyrex_pattern"


@pytest.fixture(autouse=True)
def _apache() -> None:
    require_apache()


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh copy of this checkout: its tracked files only (no results, caches or builds), with this
    checkout's virtual environment for the dependencies (reproduce.sh would otherwise run .ci/setup)."""
    target = tmp_path_factory.mktemp("clone") / "harness"
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=False)
    if listed.returncode != 0:
        pytest.fail(f"the checkout is not a git work tree: {listed.stderr.decode()[-300:]}")
    for name in filter(None, listed.stdout.decode().split("\0")):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    (target / ".venv").symlink_to(REPO / ".venv")
    return target


def _python311() -> str:
    found = [p.executable for p in interpreters.discover() if p.version.startswith("3.11.")]
    if not found:
        pytest.fail("no Python 3.11 on this machine (Debian's python3.11 is on every CI image)")
    return found[0]


def _bundle(results: Path, folder: str, *extra: str) -> tuple[Path, RunResult]:
    out = results / "bundles"
    done = harness("bundle", str(session_dir(results) / folder), "--out", str(out), *extra)
    assert done.returncode == 0, done.stderr[-2000:]
    (archive,) = out.glob("*.tar.gz")
    run = {r.folder: r for r in session_record(results).runs}[folder]
    return archive, run


def _unpack(archive: Path, checkout: Path, name: str) -> Path:
    """The bundle in an empty folder of the fresh checkout, as a maintainer would put it."""
    place = checkout / "reports" / name
    place.mkdir(parents=True)
    subprocess.run(["tar", "-xzf", str(archive), "-C", str(place)], check=True)
    (bundle,) = place.iterdir()
    return bundle


def _reproduce(bundle: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "MOD_WSGI_HARNESS_LOCAL_PACKAGES"}
    return subprocess.run(
        ["bash", str(bundle / "reproduce.sh")],
        cwd=bundle,
        capture_output=True,
        text=True,
        timeout=1800,
        env={**environment, **(env or {})},
        check=False,
    )


def _portable(bundle: Path) -> dict[str, object]:
    spec = json.loads((bundle / "spec.json").read_text())
    text = json.dumps(spec)
    assert "/root/" not in text and str(REPO) not in text, "the spec names nothing of this machine but versions"
    assert "python_executable" not in json.dumps(spec["cell"]) or not spec["cell"].get("python_executable")
    return dict(spec)


def _issue(bundle: Path) -> str:
    text = (bundle / "ISSUE.md").read_text()
    assert len(text.encode()) < ISSUE_LIMIT, len(text.encode())
    assert "None" not in text and "mount namespace" not in text and "unshare" not in text
    return text


def test_a_pylons_crash_with_one_speedups_module_blocked_reproduces(tmp_path: Path, checkout: Path) -> None:
    """Pylons 1.0.3 on 2.7 under interpreter-cycle, MarkupSafe's speedups blocked: simplejson's scanner
    crashes the garbage collector in every reload (5/5 measured). Without the block MarkupSafe's speedups
    also raise TypeError in most reloads: the same worst verdict and crash signature, a new exception."""
    results = tmp_path / "results"
    done = harness("run", "--scenario", "pylons_basic", "--mechanism", "interpreter-cycle", "--cycles", "5",
                   "--python", _python27(), "--mod-wsgi", "4.9.4", "--no-controls", "--block",
                   "markupsafe._speedups", "--results", str(results), timeout=1800)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    archive, run = _bundle(results, "pylons_basic.interpreter-cycle.named")
    assert run.verdict is Outcome.CRASHED and run.signatures, run.evidence
    assert run.signatures[0].signature.startswith("scanner_traverse (_speedups.c:"), run.signatures
    bundle = _unpack(archive, checkout, "pylons")
    spec = _portable(bundle)
    assert spec["blocked"] == ["markupsafe._speedups"]
    freeze = (bundle / "freeze.txt").read_text()
    assert "Pylons==1.0.3" in freeze and "simplejson==4.3.0" in freeze, "the app's environment, not the bare cell"
    issue = _issue(bundle)
    assert "embedding driver" in issue and "Apache" not in issue and "mod_wsgi" not in issue.split("\n", 1)[0]
    assert run.signatures[0].signature in issue.split("\n", 1)[0], "the signature heads the report"

    again = _reproduce(bundle)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert "same verdict" in again.stdout

    spec["blocked"] = []
    (bundle / "spec.json").write_text(json.dumps(spec))
    shutil.rmtree(bundle / "reproduced")
    unblocked = _reproduce(bundle)
    assert unblocked.returncode == 1, unblocked.stdout[-2000:] + unblocked.stderr[-2000:]
    assert "signature differs" in unblocked.stdout and "TypeError" in unblocked.stdout, unblocked.stdout[-2000:]


def test_the_pyrex_fixture_under_interpreter_overlap_reproduces(tmp_path: Path, checkout: Path) -> None:
    python = _python311()
    results = tmp_path / "results"
    done = harness("run", "--scenario", "pyrex_plain", "--mechanism", "interpreter-overlap", "--cycles", "3",
                   "--python", python, "--no-controls", "--results", str(results))  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    archive, run = _bundle(results, "pyrex_plain.interpreter-overlap.named")
    assert run.verdict is Outcome.CRASHED
    (signature,) = [s.signature for s in run.signatures]
    assert signature.startswith("__Pyx_GetName (pyrex_pattern.c:") and " in pyrex_pattern" in signature
    bundle = _unpack(archive, checkout, "pyrex")
    _portable(bundle)
    issue = _issue(bundle)
    assert "Apache" not in issue and "MPM" not in issue
    assert "pyrex_pattern.c" in issue, "the culprit backtrace is in the report"
    again = _reproduce(bundle)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]


def test_a_run_with_a_hand_in_package_reproduces_from_the_bundled_file(tmp_path: Path, checkout: Path) -> None:
    """The crashing C module comes in as a local sdist (through the environment, as a user would set it
    once); the bundle carries the file itself, so the reproduction needs no environment and reruns the
    same module, not some other one."""
    sdist = tmp_path / "pyrex_pattern-1.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:
        for name in ("pyproject.toml", "setup.py", "pyrex_pattern.c"):
            tar.add(FIXTURE / name, arcname=f"pyrex_pattern-1.0/{name}")
    scenario = tmp_path / "handed_in"
    scenario.mkdir()
    shutil.copyfile(REPO / "scenarios" / "pyrex_plain" / "app.wsgi", scenario / "app.wsgi")
    toml = (REPO / "scenarios" / "pyrex_plain" / "scenario.toml").read_text()
    assert 'requirements = ["./../fixtures/pyrex_pattern"]' in toml
    toml = toml.replace('requirements = ["./../fixtures/pyrex_pattern"]', 'local_packages = ["pyrex_pattern"]')
    (scenario / "scenario.toml").write_text(toml)
    python = _python311()
    results = tmp_path / "results"
    done = harness("run", "--scenario", str(scenario), "--mechanism", "interpreter-overlap", "--cycles", "3",
                   "--python", python, "--no-controls", "--results", str(results),
                   env={"MOD_WSGI_HARNESS_LOCAL_PACKAGES": str(sdist)})  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    archive, run = _bundle(results, "handed_in.interpreter-overlap.named")
    assert run.verdict is Outcome.CRASHED and [h.filename for h in run.spec.hand_ins] == [sdist.name]
    bundle = _unpack(archive, checkout, "hand-in")
    spec = _portable(bundle)
    assert (bundle / "packages" / sdist.name).read_bytes() == sdist.read_bytes()
    assert spec["scenario"]["path"] == "scenario/handed_in/scenario.toml"  # type: ignore[index]
    freeze = (bundle / "freeze.txt").read_text()
    assert re.search(rf"^pyrex[-_]pattern==1\.0  # handed in: packages/{sdist.name} ", freeze, re.M), freeze
    assert "file://" not in freeze, "nothing of this machine"
    again = _reproduce(bundle)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    reproduced = json.loads(next((bundle / "reproduced").glob("*/*/summary.json")).read_text())
    assert {s["signature"] for s in reproduced["signatures"]} == {s.signature for s in run.signatures}


def test_an_apache_runs_issue_names_the_mpm_that_ran(tmp_path: Path) -> None:
    results = tmp_path / "results"
    done = harness("run", "--scenario", "segfault", "--mechanism", "sigusr1", "--cycles", "2", "--no-controls",
                   "--results", str(results))  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    archive, run = _bundle(results, "segfault.sigusr1.global")
    assert run.engine.mpm in ("event", "worker", "prefork"), run.engine
    folder = archive.parent / archive.name.removesuffix(".tar.gz")
    issue = _issue(folder)
    assert f"MPM {run.engine.mpm}" in issue, issue[:1500]
    assert "`app.wsgi:7 in application`" in issue, "the crash table names the app's line"
    assert "sigusr1" in issue.split("\n", 1)[0] or "SIGUSR1" in issue.split("\n", 1)[0]
