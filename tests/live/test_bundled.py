"""Apache from PyPI (mod-wsgi-httpd) as an Apache axis value: built once per httpd release into the cache,
installed into each cell before mod_wsgi, recorded with its version and origin in every result.

The default run builds one release, as an ordinary user on a machine where Debian's Apache cannot be seen
(its apxs and apache2 are hidden in a mount namespace of the test's own): the no-root path of the README.
The matrix over Debian's Apache and two bundled releases is marked slow (run with --run-slow).
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from harness.model.outcome import Outcome
from harness.model.records import RunResult, SessionRecord
from tests.conftest import REPO, harness, require_apache

pytestmark = pytest.mark.live
USER = "nobody"
# The ordinary user's cache lives on between test runs, like a user's ~/.cache: the httpd build is minutes.
USER_CACHE = Path("/var/tmp/mod-wsgi-harness-test-bundled")
RELEASE = "2.4.69"
HIDDEN = ("/usr/bin/apxs", "/usr/sbin/apache2", "/usr/sbin/apachectl")


def _matrix_record(results: Path) -> SessionRecord:
    (folder,) = [p for p in results.iterdir() if p.name.startswith("matrix-")]
    return SessionRecord.from_json(json.loads((folder / "summary.json").read_text()), folder)


def _user_cache() -> Path:
    user = pwd.getpwnam(USER)
    USER_CACHE.mkdir(mode=0o755, exist_ok=True)
    os.chown(USER_CACHE, user.pw_uid, user.pw_gid)
    return USER_CACHE


def _as_user_without_debian_apache(args: list[str], results: Path) -> subprocess.CompletedProcess[str]:
    """`python -m harness ARGS` as an ordinary user, in a mount namespace where Debian's Apache is not there."""
    user = pwd.getpwnam(USER)
    home = _user_cache() / "home"
    for folder in (home, results.parent, results):
        folder.mkdir(parents=True, exist_ok=True)
        os.chown(folder, user.pw_uid, user.pw_gid)
    hide = " && ".join(f"mount --bind /dev/null {path}" for path in HIDDEN if Path(path).exists())
    inner = [
        "setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups",
        "env", f"HOME={home}", f"MOD_WSGI_HARNESS_CACHE={USER_CACHE / 'cache'}", "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
        f"MOD_WSGI_HARNESS_RUNTIME={USER_CACHE / 'run'}",
        sys.executable, "-m", "harness", *args, "--results", str(results),
    ]  # fmt: skip
    script = f'{hide} && exec "$@"' if hide else 'exec "$@"'
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *inner],
        cwd=REPO, capture_output=True, text=True, timeout=2400, check=False,
    )  # fmt: skip


def test_an_ordinary_user_with_no_debian_apache_runs_a_bundled_httpd() -> None:
    if os.geteuid() != 0:
        pytest.skip("hiding Debian's Apache needs a mount namespace: run the tests as root (as CI does)")
    args = ["matrix", "--python", "/usr/bin/python3.11", "--mod-wsgi", "6.1.1", "--apache", f"bundled:{RELEASE}",
            "--scenario", "hello,segfault", "--mechanism", "sigusr1", "--cycles", "1", "--no-controls"]  # fmt: skip
    results = Path(tempfile.mkdtemp(prefix="results-", dir=_user_cache()))  # the user cannot enter tmp_path
    first = _as_user_without_debian_apache(args, results / "first")
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-3000:]
    runs = {r.spec.scenario.name: r for r in _matrix_record(results / "first").runs}
    _check(runs)
    assert runs["hello"].engine.user == USER, "Apache ran as the ordinary user"

    again = _as_user_without_debian_apache(args, results / "again")
    assert again.returncode == 0, again.stderr[-3000:]
    said = again.stdout + again.stderr
    assert "compilations: 0" in said and "building Apache httpd" not in said, said[-2000:]
    _check({r.spec.scenario.name: r for r in _matrix_record(results / "again").runs})
    shutil.rmtree(results)


def _check(runs: dict[str, RunResult]) -> None:
    assert runs["hello"].verdict is Outcome.CLEAN and runs["segfault"].verdict is Outcome.CRASHED, runs
    for run in runs.values():
        assert (run.cell.apache, run.cell.apache_origin) == (RELEASE, f"bundled:{RELEASE}")
        assert run.cell.httpd and "mod_wsgi_packages/httpd/bin/httpd" in run.cell.httpd, run.cell.httpd
        assert run.engine.mpm in ("event", "worker", "prefork")
        assert run.engine.apache == RELEASE, "the httpd that ran says its own version at start-up"


@pytest.mark.slow
def test_debians_apache_and_two_bundled_releases_side_by_side(tmp_path: Path) -> None:
    require_apache()
    args = ["matrix", "--python", "/usr/bin/python3.11,3.12", "--mod-wsgi", "6.1.1", "--apache",
            "/usr/bin/apxs,bundled:2.4.68,bundled:2.4.69", "--scenario", "hello,segfault", "--mechanism", "sigusr1",
            "--cycles", "1", "--no-controls"]  # fmt: skip
    done = harness(*args, "--results", str(tmp_path / "first"), timeout=3600)
    assert done.returncode == 0, done.stderr[-3000:]
    record = _matrix_record(tmp_path / "first")
    assert len(record.runs) == 2 * 3 * 2
    origins = {(r.cell.apache, r.cell.apache_origin) for r in record.runs}
    assert {("2.4.68", "bundled:2.4.68"), ("2.4.69", "bundled:2.4.69")} < origins and len(origins) == 3, origins
    for run in record.runs:
        assert run.verdict is {"hello": Outcome.CLEAN, "segfault": Outcome.CRASHED}[run.spec.scenario.name], run.run
        # What ran, not only what was asked for: pip's wheel cache once handed one cell the mod_wsgi compiled
        # in another, so a "bundled" cell ran Debian's apache2.
        assert run.engine.apache == run.cell.apache, (run.run, run.engine.apache, run.cell.apache)
    again = harness(*args, "--results", str(tmp_path / "again"), timeout=3600)
    assert again.returncode == 0 and "compilations: 0" in again.stdout + again.stderr, again.stderr[-2000:]
