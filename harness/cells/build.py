"""Cell environments: a virtualenv of the target interpreter, holding mod_wsgi compiled against the chosen
Apache (or nothing, for the embedding driver), built once and cached outside the repository.

A cell that cannot be built here is ``Unsupported`` with pip's reason and the build log, never a crash.
When the reason is the user's own input (a mod_wsgi release that does not exist at all), it is a
set-up error instead, said in one line before anything runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from packaging.version import InvalidVersion, Version

from harness import proc
from harness.cells.apache import ApacheInfo
from harness.cells.cache import cache_root, folder, locked
from harness.errors import HarnessError

DEFAULT_MOD_WSGI = "6.1.1"
BUILD_TIMEOUT = 900
VIRTUALENV_SPEC = "virtualenv<20.22"


@dataclass(frozen=True)
class PythonInfo:
    version: str  # full version, e.g. 3.11.2
    executable: str  # the base interpreter (never a virtualenv's)
    free_threaded: bool = False  # a build without the GIL (Py_GIL_DISABLED, python3.13t)

    @property
    def release(self) -> Version:
        return Version(self.version)


@dataclass(frozen=True)
class Cell:
    python: PythonInfo
    mod_wsgi: str | None  # the requirement as given; None: no mod_wsgi (a driver-only environment)
    apache: ApacheInfo | None
    env_dir: str
    mod_wsgi_version: str | None = None  # what pip installed
    httpd: str | None = None  # the Apache binary the servers run (a bundled one lives in the environment)

    @property
    def express(self) -> Path:
        return Path(self.env_dir) / "bin" / "mod_wsgi-express"

    @property
    def env_python(self) -> Path:
        return Path(self.env_dir) / "bin" / "python"


@dataclass(frozen=True)
class Unsupported:
    """A cell (or a requirement set) that cannot exist here; the reason is one line, the log is pip's."""

    reason: str
    log: str = ""
    user_error: bool = False  # the user's input names something that exists nowhere: a set-up error


def describe_python(executable: Path) -> PythonInfo:
    done = proc.run(
        # getattr: Python 2.7 has no base_prefix (and a 2.7 virtualenv keeps the real one in real_prefix).
        [
            str(executable),
            "-c",
            "import sys, sysconfig; print('%d.%d.%d' % sys.version_info[:3]); "
            "print(1 if sysconfig.get_config_var('Py_GIL_DISABLED') else 0); "
            "print(getattr(sys, 'real_prefix', getattr(sys, 'base_prefix', sys.prefix)))",
        ],
        timeout=60,
    )
    if done.returncode is None:
        raise HarnessError(f"--python: cannot run {executable} ({done.problem}); give an interpreter or a version")
    lines = done.stdout.splitlines()
    if not done.ok or len(lines) != 3:
        raise HarnessError(f"--python: {executable} does not run ({done.last_line()}); give a Python interpreter")
    version, no_gil, base_prefix = lines
    free_threaded = no_gil == "1"
    major_minor = ".".join(version.split(".")[:2]) + ("t" if free_threaded else "")
    real = Path(base_prefix) / "bin" / f"python{major_minor}"
    return PythonInfo(version, str(real if real.exists() else Path(executable).resolve()), free_threaded)


def base_interpreter() -> Path:
    """The interpreter the harness runs on, seen through any virtualenv."""
    candidate = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    return candidate if candidate.exists() else Path(os.path.realpath(sys.executable))


def source_state(mod_wsgi: str) -> str:
    """For a local checkout or sdist, what identifies its content (so an edited branch is a new cell);
    '' for a release or any other pip requirement."""
    path = Path(mod_wsgi).expanduser()
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    if not path.is_dir():
        return ""
    head = proc.run(["git", "-C", str(path), "rev-parse", "HEAD"], timeout=60)
    if head.ok:
        dirty = proc.run(["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"], timeout=60).stdout
        diff = proc.run(["git", "-C", str(path), "diff", "HEAD"], timeout=60).stdout if dirty else ""
        return hashlib.sha256((head.stdout + diff).encode()).hexdigest()
    stamps = sorted(f"{f}:{f.stat().st_mtime_ns}" for f in path.rglob("*") if f.is_file())
    return hashlib.sha256("\n".join(stamps).encode()).hexdigest()


def cell_key(python: PythonInfo, mod_wsgi: str | None, apache: ApacheInfo | None) -> str:
    if mod_wsgi is None or apache is None:
        digest = hashlib.sha256(f"{python.executable}|driver".encode()).hexdigest()
        return f"py{python.version}-driver-{digest[:10]}"
    state = source_state(mod_wsgi)
    spec_identity = f"{mod_wsgi}@{state}" if state else mod_wsgi
    identity = f"{python.executable}|{spec_identity}|{apache.apxs}|{apache.version}|{apache.origin}"
    digest = hashlib.sha256(identity.encode()).hexdigest()
    spec = re.sub(r"[^A-Za-z0-9.]+", "_", mod_wsgi)[:40]
    return f"py{python.version}-modwsgi{spec}-apache{apache.version}-{digest[:10]}"


def pip_requirement(mod_wsgi: str) -> str:
    """A bare version means the PyPI release; anything else is passed to pip as it is."""
    return f"mod_wsgi=={mod_wsgi}" if re.fullmatch(r"\d+(\.\d+)*", mod_wsgi) else mod_wsgi


def cell_known(python: PythonInfo, mod_wsgi: str | None, apache: ApacheInfo | None) -> bool:
    """Whether this cell was built (or found impossible) before: using it compiles nothing."""
    key = cell_key(python, mod_wsgi, apache)
    cells = cache_root() / "cells"
    return _built(cells / key, apache) or (cells / f"{key}.unsupported.json").is_file()


def _built(env_dir: Path, apache: ApacheInfo | None) -> bool:
    """A finished build whose mod_wsgi runs this cell's Apache (one compiled for another is built again)."""
    return (env_dir / "cell.json").is_file() and compiled_for_other_apache(env_dir, apache) is None


def ensure_cell(python: PythonInfo, mod_wsgi: str | None, apache: ApacheInfo | None) -> Cell | Unsupported:
    """The cell's environment, built on first use and reused after; Unsupported if it cannot be built."""
    cells = folder("cells")
    key = cell_key(python, mod_wsgi, apache)
    env_dir = cells / key
    marker = env_dir / "cell.json"
    with locked(cells / f"{key}.lock"):
        if _built(env_dir, apache):
            record = json.loads(marker.read_text())
            return Cell(python, mod_wsgi, apache, str(env_dir), record.get("mod_wsgi_version"), _httpd(env_dir, apache))
        failed = cells / f"{key}.unsupported.json"
        if failed.is_file():
            record = json.loads(failed.read_text())
            return Unsupported(record["reason"], record.get("log", ""))
        if env_dir.exists():
            shutil.rmtree(env_dir)  # a build that was interrupted half-way, or one compiled for another Apache
        result = _build(python, mod_wsgi, apache, env_dir)
        if isinstance(result, Unsupported):
            shutil.rmtree(env_dir, ignore_errors=True)
            if not result.user_error:  # a limit of the cell: remembered; the user's typo is not
                failed.write_text(json.dumps({"reason": result.reason, "log": result.log}))
            return result
        httpd = _httpd(env_dir, apache)
        record = {
            "httpd": httpd,
            "python": python.version,
            "python_executable": python.executable,
            "mod_wsgi": mod_wsgi,
            "mod_wsgi_version": result,
            "apache": apache.version if apache else None,
            "apache_origin": apache.origin if apache else None,
            "apxs": apache.apxs if apache else None,
            "built_at": time.time(),
        }
        marker.write_text(json.dumps(record))
        return Cell(python, mod_wsgi, apache, str(env_dir), result, httpd)


def _make_env(python: PythonInfo, env_dir: Path, log: list[str]) -> bool:
    if python.version.startswith("2."):
        # venv is 3.x only, and virtualenv dropped 2.7 targets in 20.22: an older one, kept as a tool.
        args = [str(virtualenv_tool()), "--no-download", "-p", python.executable, str(env_dir)]
    else:
        args = [python.executable, "-m", "venv", str(env_dir)]
    done = proc.run(args, timeout=BUILD_TIMEOUT)
    log += ["$ " + " ".join(args), done.output or (done.problem or "")]
    return done.ok


def _build(
    python: PythonInfo, mod_wsgi: str | None, apache: ApacheInfo | None, env_dir: Path
) -> Unsupported | str | None:
    """Build into env_dir; returns the installed mod_wsgi version (None for a driver-only environment)."""
    log: list[str] = []
    env_dir.parent.mkdir(parents=True, exist_ok=True)
    if not _make_env(python, env_dir, log):
        return Unsupported(f"Python {python.version} cannot create an environment", "\n".join(log))
    if mod_wsgi is None or apache is None:
        (env_dir / "build.log").write_text("\n".join(log))
        return None
    pip_env = {**os.environ, "APXS": apache.apxs, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    pip = [str(env_dir / "bin" / "python"), "-m", "pip", "install", "--no-input"]
    if is_bundled(apache):
        # mod_wsgi's setup finds a bundled Apache through mod_wsgi_packages.httpd in the same environment; an
        # APXS in the environment would win over it. Both builds happen in the cell's own environment, which
        # needs setuptools and wheel there (an older pip without wheel falls back to a legacy install).
        pip_env.pop("APXS", None)
        done = proc.run([*pip, "setuptools", "wheel"], timeout=BUILD_TIMEOUT, env=pip_env)
        log += ["$ pip install setuptools wheel", done.output or (done.problem or "")]
        refused = _install_bundled(python, apache, env_dir, pip, pip_env, log)
        if refused is not None:
            return refused
    # mod_wsgi-express before 5.0 finds its module through setuptools' metadata, which venvs of
    # Python >= 3.12 no longer carry: without it express looks for the wrong .so.
    extra = ["setuptools"] if python.release >= Version("3.12") else []
    # pip's isolated build environment would hide mod_wsgi_packages.httpd from mod_wsgi's setup.py, which
    # would then fall back to a system apxs.
    isolation = ["--no-build-isolation"] if is_bundled(apache) else []
    # The wheel pip builds from mod_wsgi's sdist names the Apache it was compiled for, and pip's wheel cache keys
    # it by the sdist alone: a cached wheel from a cell with another Apache would be installed as it is.
    args = [*pip, "--no-cache-dir", *isolation, pip_requirement(mod_wsgi), *extra]
    done = proc.run(args, timeout=BUILD_TIMEOUT, env=pip_env)
    log += ["$ " + " ".join(args), done.output or (done.problem or "")]
    if not done.ok:
        return Unsupported(
            f"mod_wsgi {mod_wsgi} does not build for Python {python.version} with Apache {apache.version}: "
            f"{done.last_line()}",
            "\n".join(log),
            user_error=requirement_exists_nowhere(
                done.output, pip_requirement(mod_wsgi), pip_tells_ignored(env_dir / "bin" / "python")
            ),
        )
    if not (env_dir / "bin" / "mod_wsgi-express").exists():
        return Unsupported(f"mod_wsgi {mod_wsgi} installed no mod_wsgi-express", "\n".join(log))
    other = compiled_for_other_apache(env_dir, apache)
    if other is not None:
        return Unsupported(other, "\n".join(log))
    shown = proc.run([str(env_dir / "bin" / "python"), "-m", "pip", "show", "mod_wsgi"], timeout=60).stdout
    version = next((line.split(":", 1)[1].strip() for line in shown.splitlines() if line.startswith("Version:")), None)
    (env_dir / "build.log").write_text("\n".join(log))
    return version


def pip_tells_ignored(env_python: Path) -> bool:
    """Whether this environment's pip names the releases it skipped for needing another Python ("Ignored the
    following versions that require a different python version"); an older one hides them (measured: 2.7's,
    3.6's, and 3.7's pip 22.0.4 lists mod_wsgi up to 4.9.4 and says nothing of 5.x), so its "no matching
    distribution" may be a limit of the cell rather than a name that exists nowhere."""
    done = proc.run([str(env_python), "-m", "pip", "--version"], timeout=60)
    found = re.match(r"pip (\S+)", done.stdout)
    try:
        return found is not None and Version(found[1]) >= Version("22.2")
    except InvalidVersion:
        return False


def is_bundled(apache: ApacheInfo | None) -> bool:
    return apache is not None and apache.origin.startswith("bundled:")


def _install_bundled(
    python: PythonInfo, apache: ApacheInfo, env_dir: Path, pip: list[str], pip_env: dict[str, str], log: list[str]
) -> Unsupported | None:
    """The bundled Apache's wheel for this Python, installed before mod_wsgi."""
    from harness.cells.bundled import wheel_for

    if python.release < Version("3"):
        return Unsupported(f"a bundled Apache ({apache.origin}) needs Python 3: mod-wsgi-httpd does not build for 2.7")
    wheel = wheel_for(Path(apache.apxs), env_dir / "bin" / "python", log)
    if isinstance(wheel, str):
        return Unsupported(f"no {apache.origin} wheel for Python {python.version}: {wheel}", "\n".join(log))
    done = proc.run([*pip, str(wheel)], timeout=BUILD_TIMEOUT, env=pip_env)
    log += [f"$ pip install {wheel}", done.output or (done.problem or "")]
    if not done.ok:
        return Unsupported(f"{wheel.name} does not install for Python {python.version}: {done.last_line()}",
                           "\n".join(log))  # fmt: skip
    return None


def _httpd(env_dir: Path, apache: ApacheInfo | None) -> str | None:
    """The httpd the cell's servers run: the bundled one inside the environment, else the system's."""
    if apache is None:
        return None
    if is_bundled(apache):
        found = sorted(env_dir.glob("lib/python*/site-packages/mod_wsgi_packages/httpd/bin/httpd"))
        return str(found[0]) if found else None
    return apache.httpd


def compiled_for_other_apache(env_dir: Path, apache: ApacheInfo | None) -> str | None:
    """Why the cell's mod_wsgi does not run this cell's Apache, or None when it does (or nothing says).
    mod_wsgi's build writes the Apache it was compiled for into `apxs_config.py`: WITH_HTTPD_PACKAGE is True for
    the bundled httpd found through mod_wsgi_packages, False for the apxs it was given."""
    if apache is None:
        return None
    for path in sorted(env_dir.glob("lib/python*/site-packages/mod_wsgi/*/apxs_config.py")):
        found = re.search(r"^WITH_HTTPD_PACKAGE = (True|False)\s*$", path.read_text(errors="replace"), re.M)
        if found is None:
            continue
        bundled = found.group(1) == "True"
        if bundled == is_bundled(apache):
            return None
        compiled = "a bundled httpd (mod_wsgi_packages)" if bundled else "the system's Apache"
        return (f"mod_wsgi in {env_dir.name} was compiled for {compiled}, not for this cell's Apache "
                f"{apache.version} ({apache.origin}): {path}")  # fmt: skip
    return None


def requirement_exists_nowhere(pip_output: str, requirement: str, pip_tells: bool = True) -> bool:
    """pip found no version of the requirement for any Python: the user's input, not the cell's limit.
    (A recent pip lists the versions it ignored for needing another Python; a release it lists exists.)"""
    if not pip_tells:
        return False
    if "No matching distribution found" not in pip_output and "Could not find a version" not in pip_output:
        return False
    wanted = re.split(r"==", requirement, maxsplit=1)[1].strip() if "==" in requirement else None
    listed = re.findall(r"\(from versions: ([^)]*)\)", pip_output)
    ignored = re.findall(r"Ignored the following versions that require a different python version: (.*)", pip_output)
    versions = {v.strip() for text in listed for v in text.split(",") if v.strip() and v.strip() != "none"}
    versions |= {m for text in ignored for m in re.findall(r"(\S+) Requires-Python", text)}
    if wanted is None:
        return not versions
    try:
        return all(Version(v) != Version(wanted) for v in versions)
    except InvalidVersion:
        return wanted not in versions


def express_options(cell: Cell) -> frozenset[str]:
    """The options this cell's `mod_wsgi-express setup-server` accepts (they differ across 4.x-6.x), read
    from its --help once and kept beside the cell."""
    cached = Path(cell.env_dir) / "express-options.json"
    if cached.is_file():
        return frozenset(json.loads(cached.read_text()))
    done = proc.run([str(cell.express), "setup-server", "--help"], timeout=60)
    found = frozenset(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]+", done.stdout))
    if done.ok and found:
        cached.write_text(json.dumps(sorted(found)))
    return found


def virtualenv_tool() -> Path:
    """A virtualenv that can still make 2.7 environments, installed once into the cache with the
    harness's own Python (never into the target interpreter)."""
    tool_dir = folder("tools") / "virtualenv-20.21"
    script = tool_dir / "bin" / "virtualenv"
    with locked(tool_dir.with_suffix(".lock")):
        if (tool_dir / ".complete").is_file():
            return script
        shutil.rmtree(tool_dir, ignore_errors=True)
        made = proc.run([sys.executable, "-m", "venv", str(tool_dir)], timeout=BUILD_TIMEOUT)
        installed = made.ok and proc.run(
            [str(tool_dir / "bin" / "python"), "-m", "pip", "install", "-q", VIRTUALENV_SPEC], timeout=BUILD_TIMEOUT
        )
        if not installed or not installed.ok:
            detail = (installed or made).last_line()
            raise HarnessError(f"cannot install {VIRTUALENV_SPEC} into {tool_dir}: {detail}; check access to PyPI")
        (tool_dir / ".complete").write_text("")
    return script


def list_cells() -> list[tuple[str, str, str]]:
    """(label, status, detail) of every cached cell: built ones with their interpreter and size, and those
    found impossible."""
    cells = cache_root() / "cells"
    found: list[tuple[str, str, str]] = []
    if not cells.is_dir():
        return found
    for entry in sorted(cells.iterdir()):
        if entry.is_dir():
            marker = entry / "cell.json"
            if not marker.is_file():
                found.append((entry.name, "incomplete", "an interrupted build"))
                continue
            record = json.loads(marker.read_text())
            present = Path(record.get("python_executable", "")).exists()
            size = sum(f.stat().st_size for f in entry.rglob("*") if f.is_file() and not f.is_symlink())
            status = "ready" if present else "orphaned"
            found.append((entry.name, status, f"{record.get('python_executable')} ({size // 1_000_000} MB)"))
        elif entry.name.endswith(".unsupported.json"):
            reason = json.loads(entry.read_text()).get("reason", "")
            found.append((entry.name.removesuffix(".unsupported.json"), "unsupported", reason[:120]))
    return found


def prune_cells() -> list[str]:
    """Remove cells whose interpreter is gone, half-built ones, and recorded failures (so they are tried
    again next time)."""
    cells = cache_root() / "cells"
    removed = []
    for label, status, _ in list_cells():
        if status == "ready":
            continue
        with locked(cells / f"{label}.lock"):
            shutil.rmtree(cells / label, ignore_errors=True)
            (cells / f"{label}.unsupported.json").unlink(missing_ok=True)
        removed.append(label)
    return removed
