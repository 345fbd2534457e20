"""What the harness promises about privilege and exposure, checked on real servers while they run:
servers listen on loopback only, server roots are private to the server user, nothing of a server tree
(Apache, its daemons, the embedding driver) runs as root, no shell command line is built from scenario
text (the syntax-tree scan covers every package of the harness, and the driver's C source), and root is
refused as the server user."""

from __future__ import annotations

import ast
import json
import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from harness.errors import HarnessError, ScenarioError
from harness.model import scenario
from harness.model.records import RunResult
from tests.conftest import REPO, harness, require_apache, run_once, session_dir, session_record
from tests.live.test_faults import cycle_records, one_line_error, stray_processes

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the harness's own Python is 3.11 here
    import tomli as tomllib

pytestmark = pytest.mark.live

SLOW_APP = """\
import time


def application(environ, start_response):
    time.sleep(2.5)  # keeps the server tree up and busy while the test looks at it
    body = b"slow\\n"
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]
"""
SLOW_TOML = (
    '[app]\nscript = "app.wsgi"\n[[probe]]\npath = "/"\nbody_equals = "slow\\n"\ntimeout = 20\n'
    '[expect]\ndefault = "clean"\n'
)


def _require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("these promises are about running as root (as an ordinary user the tree runs as that user)")


# --- one live run per kind of server tree, looked at while it runs -----------------------------------
@dataclass
class Observed:
    """What a run's server tree looked like while a request was in progress."""

    runtime: Path
    results: Path
    returncode: int | None = None
    stderr: str = ""
    processes: dict[int, dict[str, Any]] = field(default_factory=dict)  # pid -> name, cmdline, uids, gids
    sockets: set[tuple[int, str, str, int, str]] = field(default_factory=set)  # pid, kind, ip, port, status
    roots: dict[str, dict[str, int]] = field(default_factory=dict)  # server root -> mode, uid, gid
    records: dict[str, dict[str, int]] = field(default_factory=dict)  # owner record -> mode, uid
    defines: set[str] = field(default_factory=set)  # -D arguments of the Apache parent

    def result(self) -> RunResult:
        (run,) = session_record(self.results).runs
        return run

    def run_dir(self) -> Path:
        return session_dir(self.results) / self.result().folder


def _tree(harness_pid: int, runtime: Path) -> list[psutil.Process]:
    """The server tree: every process naming the runtime folder, their descendants, and any Apache or
    driver process below the harness (not the harness's own tools: apxs queries, pystack, gcc)."""
    found: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(f"{runtime}/" in arg for arg in proc.info["cmdline"] or ()):
                found[proc.pid] = proc
                found.update((child.pid, child) for child in proc.children(recursive=True))
        except psutil.Error:
            continue
    try:
        for proc in psutil.Process(harness_pid).children(recursive=True):
            if proc.name() in ("apache2", "httpd", "wsgi_driver"):
                found[proc.pid] = proc
    except psutil.Error:
        pass
    return list(found.values())


def _look(seen: Observed, harness_pid: int) -> None:
    for proc in _tree(harness_pid, seen.runtime):
        try:
            with proc.oneshot():
                if proc.status() == psutil.STATUS_ZOMBIE:
                    continue
                cmdline = proc.cmdline()
                seen.processes[proc.pid] = {
                    "name": proc.name(),
                    "cmdline": " ".join(cmdline)[:200],
                    "uids": tuple(proc.uids()),
                    "gids": tuple(proc.gids()),
                }
                if "httpd.conf" in " ".join(cmdline) and proc.ppid() == harness_pid:
                    seen.defines |= {arg[2:] for arg in " ".join(cmdline).split() if arg.startswith("-D")}
            for conn in proc.net_connections(kind="inet"):
                kind = "tcp" if conn.type == 1 else "udp"
                seen.sockets.add((proc.pid, kind, conn.laddr.ip, conn.laddr.port, conn.status))
        except psutil.Error:
            continue
    for entry in seen.runtime.iterdir():
        try:
            st = entry.lstat()
        except OSError:
            continue
        facts = {"mode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid}
        (seen.roots if entry.is_dir() else seen.records)[entry.name] = facts


def _daemon_or_driver_up(seen: Observed) -> bool:
    return any(
        p["cmdline"].startswith("(wsgi:") or "wsgi_driver" in p["cmdline"].split(" ")[0]
        for p in seen.processes.values()
    )


@pytest.fixture(scope="module")
def slow_scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("slow") / "slow"
    folder.mkdir()
    (folder / "app.wsgi").write_text(SLOW_APP)
    (folder / "scenario.toml").write_text(SLOW_TOML)
    return folder


def _observe(tmp: Path, slow: Path, mechanism: str) -> Iterator[Observed]:
    """Start a run of the slow app, look at its tree for a second once the app is serving, let it finish."""
    require_apache()
    runtime = Path("/tmp") / f"mwh-s{os.getpid()}-{mechanism[:6]}"
    runtime.mkdir(mode=0o711, exist_ok=True)
    seen = Observed(runtime, tmp / "results")
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", "--scenario", str(slow), "--mechanism", mechanism,
         "--cycles", "1", "--no-controls", "--results", str(seen.results)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "MOD_WSGI_HARNESS_RUNTIME": str(runtime)},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline and not _daemon_or_driver_up(seen):
            _look(seen, proc.pid)
            time.sleep(0.05)
        looked = time.monotonic() + 1.0  # the app sleeps 2.5 s per request: the tree is up all along
        while proc.poll() is None and time.monotonic() < looked:
            _look(seen, proc.pid)
            time.sleep(0.05)
        _out, seen.stderr = proc.communicate(timeout=120)
        seen.returncode = proc.returncode
        yield seen
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        subprocess.run([sys.executable, "-m", "harness", "clean", "--all"], cwd=REPO, capture_output=True,
                       env={**os.environ, "MOD_WSGI_HARNESS_RUNTIME": str(runtime)}, timeout=60)  # fmt: skip
        shutil.rmtree(runtime, ignore_errors=True)


@pytest.fixture(scope="module")
def apache_run(tmp_path_factory: pytest.TempPathFactory, slow_scenario: Path) -> Iterator[Observed]:
    yield from _observe(tmp_path_factory.mktemp("apache-run"), slow_scenario, "sigusr1")


@pytest.fixture(scope="module")
def driver_run(tmp_path_factory: pytest.TempPathFactory, slow_scenario: Path) -> Iterator[Observed]:
    yield from _observe(tmp_path_factory.mktemp("driver-run"), slow_scenario, "interpreter-cycle")


def _finished_cleanly(seen: Observed) -> None:
    assert seen.returncode == 0, seen.stderr[-2000:]
    assert seen.processes, "the run's processes were never seen"
    assert stray_processes([seen.runtime]) == []


# --- loopback only ------------------------------------------------------------------------------------
def _active_listens(conf: str, defines: set[str]) -> list[str]:
    """The Listen directives Apache applies, given the -D names it was started with (IfDefine
    blocks are evaluated; every other container counts as active, which can only add lines)."""
    active: list[bool] = []
    found = []
    for raw in conf.splitlines():
        line = raw.strip()
        opened = re.match(r"^<IfDefine\s+(!?)([\w.]+)\s*>", line, re.IGNORECASE)
        if opened:
            negate, name = opened.groups()
            active.append((name in defines) != bool(negate))
        elif re.match(r"^</IfDefine\s*>", line, re.IGNORECASE):
            active.pop()
        elif re.match(r"^Listen\s", line, re.IGNORECASE) and all(active):
            found.append(line)
    return found


def test_listen_directive_is_loopback_only(apache_run: Observed) -> None:
    """The generated httpd.conf (as kept in the results) listens on 127.0.0.1:PORT only, with the
    defines Apache was really started with; the setup-server command recorded says --host 127.0.0.1."""
    _finished_cleanly(apache_run)
    engine = apache_run.result().engine
    assert engine.kind == "apache" and engine.port is not None
    assert "MOD_WSGI_WITH_LISTENER_HOST" in apache_run.defines, apache_run.defines
    conf = (apache_run.run_dir() / "httpd.conf").read_text()
    assert _active_listens(conf, apache_run.defines) == [f"Listen 127.0.0.1:{engine.port}"]
    args = engine.command
    assert args[:2] == ("mod_wsgi-express", "setup-server") and "--host" in args, args
    assert args[args.index("--host") + 1] == "127.0.0.1"


def test_listening_sockets_are_loopback_only(apache_run: Observed) -> None:
    """While the run serves, every socket any process of the server tree has bound is on 127.0.0.1."""
    _finished_cleanly(apache_run)
    port = apache_run.result().engine.port
    listening = {(ip, p) for _pid, kind, ip, p, status in apache_run.sockets if status == "LISTEN"}
    assert ("127.0.0.1", port) in listening, apache_run.sockets
    exposed = [s for s in apache_run.sockets if s[2] != "127.0.0.1"]
    assert exposed == [], f"sockets not on loopback: {exposed}"


# --- private server roots ----------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["apache", "driver"])
def test_server_roots_are_private(request: pytest.FixtureRequest, which: str) -> None:
    """Each server root is mode 0700 and owned by the server user (www-data as root); its owner record
    lies outside it, owned by root and writable by nobody else; the runtime folder is 0711 (passable,
    not listable, by the server user)."""
    _require_root()
    seen: Observed = request.getfixturevalue(f"{which}_run")
    _finished_cleanly(seen)
    user = pwd.getpwnam(seen.result().engine.user)
    assert user.pw_name == "www-data" and user.pw_uid != 0
    assert len(seen.roots) == 1, seen.roots
    for name, facts in seen.roots.items():
        assert facts == {"mode": 0o700, "uid": user.pw_uid, "gid": user.pw_gid}, (name, facts)
        record = seen.records[name + ".owner.json"]
        assert record["uid"] == 0 and record["mode"] & 0o022 == 0, record
    assert stat.S_IMODE(seen.runtime.stat().st_mode) == 0o711


# --- never root -------------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["apache", "driver"])
def test_server_tree_never_runs_as_root(request: pytest.FixtureRequest, which: str) -> None:
    """Every process of the tree, seen while a request is in progress, has real, effective and saved
    uid and gid of the server user, never 0: Apache's parent, its children and its daemons, or the
    embedding driver."""
    _require_root()
    seen: Observed = request.getfixturevalue(f"{which}_run")
    _finished_cleanly(seen)
    user = pwd.getpwnam("www-data")
    names = {p["cmdline"].split(" ")[0] for p in seen.processes.values()}
    if which == "apache":
        assert any(p["cmdline"].startswith("(wsgi:") for p in seen.processes.values()), names
        assert any(p["name"] == "apache2" and not p["cmdline"].startswith("(wsgi:") for p in seen.processes.values())
    else:
        assert any("wsgi_driver" in name for name in names), names
    as_root = {pid: p for pid, p in seen.processes.items() if 0 in p["uids"] or 0 in p["gids"]}
    assert as_root == {}, as_root
    for p in seen.processes.values():
        assert set(p["uids"]) == {user.pw_uid} and set(p["gids"]) == {user.pw_gid}, p


# --- no shell built from scenario text --------------------------------------------------------------
HELLO = (REPO / "scenarios" / "hello" / "app.wsgi").read_text()
METACHARACTERS = ["x;id", "x$(id)", "x`id`", "x|id", "x&&id", "x>y"]


def _scenario(folder: Path, toml: str, files: tuple[str, ...] = ("app.wsgi",)) -> Path:
    folder.mkdir(parents=True)
    for name in files:
        (folder / name).write_text(HELLO)
    (folder / "scenario.toml").write_text(toml)
    return folder / "scenario.toml"


def _toml(script: str = "app.wsgi", extra: str = "", app_extra: str = "", path: str = "/") -> str:
    return (
        f"{extra}[app]\nscript = {json.dumps(script)}\n{app_extra}[[probe]]\npath = {json.dumps(path)}\n"
        '[expect]\ndefault = "clean"\n'
    )


@pytest.mark.parametrize("text", METACHARACTERS)
@pytest.mark.parametrize("where", ["name", "folder", "app.script", "app.watch", "app.local_packages"])
def test_shell_metacharacters_are_refused(tmp_path: Path, where: str, text: str) -> None:
    """Names and file fields with shell metacharacters are refused by the loader, in one line naming the
    file and the field, even when a file of that very name exists."""
    if where == "name":
        path = _scenario(tmp_path / "case", _toml(extra=f"name = {json.dumps(text)}\n"))
    elif where == "folder":
        path = _scenario(tmp_path / text, _toml())
    elif where == "app.script":
        path = _scenario(tmp_path / "case", _toml(script=f"{text}.wsgi"), files=("app.wsgi", f"{text}.wsgi"))
    elif where == "app.watch":
        path = _scenario(tmp_path / "case", _toml(app_extra=f"watch = {json.dumps(text)}\n"), ("app.wsgi", text))
    else:
        path = _scenario(tmp_path / "case", _toml(app_extra=f"local_packages = [{json.dumps(text)}]\n"))
    with pytest.raises(ScenarioError) as caught:
        scenario.load(path)
    message = str(caught.value)
    assert caught.value.field.startswith("name" if where == "folder" else where), message
    assert message.startswith(str(path)) and "\n" not in message


def test_cli_refuses_a_scenario_folder_named_like_a_command(tmp_path: Path, private_runtime: Path) -> None:
    marker = tmp_path / "pwned"
    folder = tmp_path / f"x;touch {marker};$(touch {marker})"
    path = _scenario(folder, _toml())
    done = harness("run", "--scenario", str(folder), "--mechanism", "sigusr1", "--cycles", "1",
                   "--results", str(tmp_path / "results"))  # fmt: skip
    assert done.returncode == 2
    error = one_line_error(done.stderr)
    assert str(path) in error and "field 'name'" in error
    assert not marker.exists() and not (tmp_path / "results").exists()
    assert list(private_runtime.iterdir()) == []


ECHO_APP = """\
def application(environ, start_response):
    uri = environ.get("REQUEST_URI") or environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    body = uri.encode("latin-1", "replace")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]
"""


@pytest.mark.parametrize("mechanism", ["sigusr1", "interpreter-cycle"])
def test_probe_paths_never_reach_a_shell(tmp_path: Path, private_runtime: Path, mechanism: str) -> None:
    """';', '$(...)' and backticks are legal in a URL, so the loader keeps them in probe paths; what must
    hold is that no shell ever sees them: they travel verbatim as the request (Apache) or the WSGI
    environ (driver), and the commands in them never run."""
    require_apache()
    markers = [tmp_path / f"pwned{n}" for n in range(3)]
    paths = [f"/e;touch${{IFS}}{markers[0]}", f"/e$(touch${{IFS}}{markers[1]})", f"/e`touch${{IFS}}{markers[2]}`"]
    folder = tmp_path / "echo"
    folder.mkdir()
    (folder / "app.wsgi").write_text(ECHO_APP)
    probes = "".join(f"[[probe]]\npath = {json.dumps(p)}\nbody_contains = {json.dumps(p)}\n" for p in paths)
    (folder / "scenario.toml").write_text(f'[app]\nscript = "app.wsgi"\n{probes}[expect]\ndefault = "clean"\n')
    assert [p.path for p in scenario.load(folder / "scenario.toml").probes] == paths
    done = run_once(tmp_path / "results", str(folder), mechanism)
    assert done.returncode == 0, done.stderr[-2000:]
    assert [m for m in markers if m.exists()] == []
    records = [r for r in cycle_records(tmp_path / "results") if r.probes]
    assert records, "no cycle sent its probes"
    for record in records:
        assert len(record.probes) == len(paths), record.probes
        for probe, path in zip(record.probes, paths):
            assert probe.url.endswith(path) and probe.body == probe.url, probe


@pytest.mark.parametrize("path", ["/a b", "/a\nb", "/a\tb"])
def test_probe_path_with_whitespace_is_refused(tmp_path: Path, path: str) -> None:
    """A path no HTTP request line can carry should be refused at load time, not sent as a request
    that fails and is then blamed on the app as 'raised'."""
    toml = _scenario(tmp_path / "case", _toml(path=path))
    with pytest.raises(HarnessError) as refused:
        scenario.load(toml)
    assert "probe[0].path" in str(refused.value) and "\n" not in str(refused.value)


SHELLS = {"sh", "bash", "dash", "zsh", "ksh"}
FORBIDDEN = {
    ("os", "system"), ("os", "popen"), ("subprocess", "getoutput"), ("subprocess", "getstatusoutput"),
    ("asyncio", "create_subprocess_shell"), ("commands", "getoutput"),
}  # fmt: skip


def shell_uses(source: str, filename: str = "<source>") -> list[str]:
    """Places in Python source that build or run a shell command line: shell= anything but False,
    os.system/os.popen/getoutput and friends (called or imported), and an argv ["sh", "-c", X] whose X
    is not a module-level constant string (a fixed script, with the data passed as "$1"...)."""
    tree = ast.parse(source, filename)
    constants = {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    found = []
    for node in ast.walk(tree):
        where = f"{filename}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Call):
            for keyword in node.keywords:
                if keyword.arg == "shell" and not (
                    isinstance(keyword.value, ast.Constant) and keyword.value.value is False
                ):
                    found.append(f"{where}: shell={ast.unparse(keyword.value)}")
            func = node.func
            if (
                isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Name)
                and (func.value.id, func.attr) in FORBIDDEN
            ):
                found.append(f"{where}: {func.value.id}.{func.attr}()")
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if (node.module, alias.name) in FORBIDDEN:
                    found.append(f"{where}: from {node.module} import {alias.name}")
        elif isinstance(node, ast.Import):
            found += [f"{where}: import commands" for alias in node.names if alias.name == "commands"]
        elif isinstance(node, (ast.List, ast.Tuple)) and len(node.elts) >= 2:
            first, second = node.elts[0], node.elts[1]
            if (
                isinstance(first, ast.Constant)
                and isinstance(first.value, str)
                and Path(first.value).name in SHELLS
                and isinstance(second, ast.Constant)
                and second.value == "-c"
            ):
                script = node.elts[2] if len(node.elts) > 2 else None
                fixed = isinstance(script, ast.Name) and script.id in constants
                fixed = fixed or (isinstance(script, ast.Constant) and isinstance(script.value, str))
                if not fixed:
                    found.append(f"{where}: {first.value} -c with a script built at run time")
    return found


def test_shell_check_finds_what_it_looks_for() -> None:
    bad = (
        "import os, subprocess\nfrom os import popen\n"
        "subprocess.run('ls', shell=True)\nsubprocess.call(x, shell=flag)\nos.system('ls')\n"
        "cmd = ['/bin/sh', '-c', f'touch {name}']\n"
    )
    good = "import subprocess\n_S = 'exec \"$@\"'\nsubprocess.run(['sh', '-c', _S, 'x', name], shell=False)\n"
    assert len(shell_uses(bad)) == 5
    assert shell_uses(good) == []


def _harness_packages() -> dict[str, Path]:
    """Every package pyproject.toml ships from the harness's own folder (not the data ones mapped
    elsewhere: scenarios, Apache templates), with its folder."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    packages: list[str] = project["tool"]["setuptools"]["packages"]
    mapped: dict[str, str] = project["tool"]["setuptools"].get("package-dir", {})
    return {name: REPO / name.replace(".", "/") for name in packages if name not in mapped}


def test_no_shell_command_lines_in_the_harness() -> None:
    """Every .py file of every package of the harness parses and builds no shell command line, the
    embedding driver's host (which runs under the target Python, 2.7 too) included."""
    files = sorted((REPO / "harness").rglob("*.py"))
    packages = _harness_packages()
    assert {"harness.model", "harness.engines.apache", "harness.engines.driver", "harness.run"} <= set(packages)
    for name, folder in packages.items():
        assert any(path.parent == folder for path in files), f"package {name} ({folder}) has no file in the scan"
    assert REPO / "harness/engines/driver/driver_host.py" in files
    found = [use for path in files for use in shell_uses(path.read_text(), str(path.relative_to(REPO)))]
    assert found == []


C_SHELL = re.compile(r"\b(system|popen|wordexp)\s*\(|\bexec\w*\s*\(\s*\"/bin/(ba)?sh\"")


def test_no_shell_in_the_drivers_c_source() -> None:
    """The embedding driver is C compiled by the harness: it calls no system(), popen() or wordexp() and
    execs no /bin/sh."""
    sources = sorted((REPO / "harness").rglob("*.c"))
    assert REPO / "harness/engines/driver/wsgi_driver.c" in sources
    assert C_SHELL.search('int x = system("ls");') and C_SHELL.search('execl("/bin/sh", "sh", "-c", s, NULL);')
    found = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for path in sources
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if C_SHELL.search(line)
    ]
    assert found == []


# --- root refused as the server user ------------------------------------------------------------------
@pytest.mark.parametrize("how", ["option", "environment"])
def test_server_user_root_is_refused(tmp_path: Path, private_runtime: Path, how: str) -> None:
    """--server-user root (or MOD_WSGI_HARNESS_USER=root): one line saying Apache never runs as root,
    exit 2, no results folder, no server root, no process."""
    _require_root()
    require_apache()
    since = time.time()
    extra = ("--server-user", "root") if how == "option" else ()
    env = {"MOD_WSGI_HARNESS_USER": "root"} if how == "environment" else None
    done = run_once(tmp_path / "results", "hello", "sigusr1", *extra, env=env)
    assert done.returncode == 2
    error = one_line_error(done.stderr)
    assert "root" in error and "never run as root" in error, error
    assert not (tmp_path / "results").exists()
    assert list(private_runtime.iterdir()) == []
    assert stray_processes([private_runtime], since) == []
