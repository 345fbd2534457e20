"""Cells: (Python interpreter, mod_wsgi, Apache), each with an environment built once and cached.

A cell's environment is a virtualenv made with the target interpreter that holds mod_wsgi compiled
against the chosen Apache's apxs. It lives in a cache outside the repository (overridable with
MOD_WSGI_HARNESS_CACHE), so a second run compiles nothing. A cell that cannot be built is
reported as unsupported with the reason and the build log, never as a crash.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.errors import HarnessError

CACHE_ENV = "MOD_WSGI_HARNESS_CACHE"
DEFAULT_MOD_WSGI = "6.1.1"
BUILD_TIMEOUT = 900


def cache_root() -> Path:
    """Where cell environments live: readable by the server user when running as root."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser().resolve()
    if os.geteuid() == 0:
        return Path("/var/cache/mod-wsgi-harness")
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mod-wsgi-harness"


@dataclass(frozen=True)
class ApacheInfo:
    version: str
    origin: str  # "debian" for the distribution's package, else "apxs:<path>"
    apxs: str
    httpd: str


@dataclass(frozen=True)
class PythonInfo:
    version: str  # full version, e.g. 3.11.2
    executable: str  # the base interpreter (never a virtualenv's)


@dataclass(frozen=True)
class Cell:
    python: PythonInfo
    mod_wsgi: str  # the pip requirement's version or spec as given
    apache: ApacheInfo
    env_dir: str

    @property
    def express(self) -> Path:
        return Path(self.env_dir) / "bin" / "mod_wsgi-express"

    @property
    def env_python(self) -> Path:
        return Path(self.env_dir) / "bin" / "python"

    def to_json(self) -> dict[str, object]:
        return {
            "python": self.python.version,
            "python_executable": self.python.executable,
            "mod_wsgi": self.mod_wsgi,
            "apache": self.apache.version,
            "apache_origin": self.apache.origin,
            "env_dir": self.env_dir,
        }


@dataclass(frozen=True)
class Unsupported:
    """A cell that cannot exist here; the reason is one line, the log is the build's output."""

    reason: str
    log: str = ""


def _run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload,no-any-return]


def _apache_version(include_dir: str) -> str:
    """The version from the development headers (ap_release.h): httpd itself is never started here,
    so nothing of Apache runs as root, not even `httpd -v`."""
    try:
        text = (Path(include_dir) / "ap_release.h").read_text(errors="replace")
    except OSError:
        return "unknown"
    parts = [re.search(rf"#define AP_SERVER_{name}_NUMBER\s+(\d+)", text) for name in ("MAJORVERSION", "MINORVERSION",
                                                                                         "PATCHLEVEL")]  # fmt: skip
    return ".".join(m[1] for m in parts if m) if all(parts) else "unknown"


def find_apache(apxs: str | None = None) -> ApacheInfo:
    """Apache via apxs: the one given, else $APXS, else the apxs on PATH (Debian's apache2-dev)."""
    apxs = apxs or os.environ.get("APXS") or shutil.which("apxs") or shutil.which("apxs2")
    if not apxs:
        raise HarnessError(
            "Apache development files not found: install them (apt-get install apache2 apache2-dev) "
            "or set APXS=/path/to/apxs"
        )
    if not os.access(apxs, os.X_OK):
        raise HarnessError(f"--apache/APXS: {apxs} is not an executable apxs; give the path of one")
    sbindir = _run([apxs, "-q", "SBINDIR"]).stdout.strip()
    target = _run([apxs, "-q", "PROGNAME"]).stdout.strip() or _run([apxs, "-q", "TARGET"]).stdout.strip()
    httpd = str(Path(sbindir) / target)
    if not (sbindir and target and Path(httpd).is_file() and os.access(httpd, os.X_OK)):
        raise HarnessError(f"apxs at {apxs} names httpd {httpd}, which is not executable; install Apache or fix APXS")
    version = _apache_version(_run([apxs, "-q", "INCLUDEDIR"]).stdout.strip())
    debian = Path("/etc/debian_version").exists() and Path(apxs).resolve() == Path("/usr/bin/apxs").resolve()
    return ApacheInfo(version=version, origin="debian" if debian else f"apxs:{apxs}", apxs=apxs, httpd=httpd)


def base_interpreter() -> Path:
    """The interpreter the harness runs on, seen through any virtualenv."""
    candidate = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    return candidate if candidate.exists() else Path(os.path.realpath(sys.executable))


def describe_python(executable: Path) -> PythonInfo:
    try:
        probe = _run(
            # getattr: Python 2.7 has no base_prefix (and a 2.7 virtualenv keeps the real one in real_prefix).
            [
                str(executable),
                "-c",
                "import sys; print('%d.%d.%d' % sys.version_info[:3]); "
                "print(getattr(sys, 'real_prefix', getattr(sys, 'base_prefix', sys.prefix)))",
            ]
        )
    except OSError as exc:
        raise HarnessError(
            f"--python: cannot run {executable} ({exc.strerror}); give a path to an interpreter or a version like 3.12"
        ) from None
    if probe.returncode != 0:
        raise HarnessError(
            f"--python: {executable} does not run ({probe.stderr.strip()[-200:]}); give a Python interpreter"
        )
    version, base_prefix = probe.stdout.split()
    major_minor = ".".join(version.split(".")[:2])
    real = Path(base_prefix) / "bin" / f"python{major_minor}"
    return PythonInfo(version=version, executable=str(real if real.exists() else Path(executable).resolve()))


def source_state(mod_wsgi: str) -> str:
    """For a local checkout or sdist, what identifies its content (so an edited branch is a new cell);
    '' for a release or any other pip requirement."""
    path = Path(mod_wsgi).expanduser()
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    if not path.is_dir():
        return ""
    head = _run(["git", "-C", str(path), "rev-parse", "HEAD"])
    if head.returncode == 0:
        dirty = _run(["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"]).stdout
        diff = _run(["git", "-C", str(path), "diff", "HEAD"]).stdout if dirty else ""
        return hashlib.sha256((head.stdout + diff).encode()).hexdigest()
    stamps = sorted(f"{f}:{f.stat().st_mtime_ns}" for f in path.rglob("*") if f.is_file())
    return hashlib.sha256("\n".join(stamps).encode()).hexdigest()


def _cell_key(python: PythonInfo, mod_wsgi: str, apache: ApacheInfo) -> str:
    state = source_state(mod_wsgi)
    spec_identity = f"{mod_wsgi}@{state}" if state else mod_wsgi
    identity = f"{python.executable}|{spec_identity}|{apache.apxs}|{apache.version}"
    digest = hashlib.sha256(identity.encode()).hexdigest()
    spec = re.sub(r"[^A-Za-z0-9.]+", "_", mod_wsgi)[:40]
    return f"py{python.version}-modwsgi{spec}-apache{apache.version}-{digest[:10]}"


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One builder per cell at a time, across threads, processes and xdist workers."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _pip_requirement(mod_wsgi: str) -> str:
    """A bare version means the PyPI release; anything else is passed to pip as it is."""
    return f"mod_wsgi=={mod_wsgi}" if re.fullmatch(r"\d+(\.\d+)*", mod_wsgi) else mod_wsgi


def cell_known(python: PythonInfo, mod_wsgi: str, apache: ApacheInfo) -> bool:
    """Whether this cell was built (or found impossible) before: using it compiles nothing."""
    key = _cell_key(python, mod_wsgi, apache)
    cells = cache_root() / "cells"
    return (cells / key / "cell.json").is_file() or (cells / f"{key}.unsupported.json").is_file()


def ensure_cell(python: PythonInfo, mod_wsgi: str, apache: ApacheInfo) -> Cell | Unsupported:
    """The cell's environment, built on first use and reused after; Unsupported if it cannot be built."""
    cells = cache_root() / "cells"
    key = _cell_key(python, mod_wsgi, apache)
    env_dir = cells / key
    marker = env_dir / "cell.json"
    cell = Cell(python=python, mod_wsgi=mod_wsgi, apache=apache, env_dir=str(env_dir))
    try:
        cells.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HarnessError(
            f"cannot create the cell cache {cells}: {exc.strerror or exc}; set {CACHE_ENV} to a writable folder"
        ) from None
    with _locked(cells / f"{key}.lock"):
        if marker.is_file():
            return cell
        failed = cells / f"{key}.unsupported.json"
        if failed.is_file():
            record = json.loads(failed.read_text())
            return Unsupported(record["reason"], record.get("log", ""))
        if env_dir.exists():
            shutil.rmtree(env_dir)  # a build that was interrupted half-way
        result = _build(python, mod_wsgi, apache, env_dir)
        if isinstance(result, Unsupported):
            shutil.rmtree(env_dir, ignore_errors=True)
            failed.write_text(json.dumps({"reason": result.reason, "log": result.log}))
            return result
        marker.write_text(json.dumps({**cell.to_json(), "built_at": time.time(), "apache_info": asdict(apache)}))
        return cell


def _build(python: PythonInfo, mod_wsgi: str, apache: ApacheInfo, env_dir: Path) -> Unsupported | None:
    log: list[str] = []

    def step(args: list[str], env: dict[str, str] | None = None) -> bool:
        log.append("$ " + " ".join(args))
        done = _run(args, env=env, timeout=BUILD_TIMEOUT)
        log.append(done.stdout + done.stderr)
        return done.returncode == 0

    env_dir.parent.mkdir(parents=True, exist_ok=True)
    if python.version.startswith("2."):
        # venv is 3.x only, and virtualenv dropped 2.7 targets in 20.22: an older one, kept as a tool.
        made = step([str(virtualenv_tool()), "--no-download", "-p", python.executable, str(env_dir)])
    else:
        made = step([python.executable, "-m", "venv", str(env_dir)])
    if not made:
        return Unsupported(f"Python {python.version} cannot create an environment", "\n".join(log))
    pip_env = {**os.environ, "APXS": apache.apxs, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    pip = [str(env_dir / "bin" / "python"), "-m", "pip", "install", "--no-input"]
    # mod_wsgi-express before 5.0 finds its module through setuptools' metadata, which venvs of
    # Python >= 3.12 no longer carry: without it express looks for the wrong .so.
    extra = ["setuptools"] if _at_least(python.version, (3, 12)) else []
    if not step([*pip, _pip_requirement(mod_wsgi), *extra], env=pip_env):
        tail = [line for line in log[-1].splitlines() if line.strip()][-1:] or ["no output"]
        return Unsupported(
            f"mod_wsgi {mod_wsgi} does not build for Python {python.version} "
            f"with Apache {apache.version}: {tail[0][:200]}",
            "\n".join(log),
        )
    if not (env_dir / "bin" / "mod_wsgi-express").exists():
        return Unsupported(f"mod_wsgi {mod_wsgi} installed no mod_wsgi-express", "\n".join(log))
    (env_dir / "build.log").write_text("\n".join(log))
    return None


def express_options(cell: Cell) -> frozenset[str]:
    """The options this cell's `mod_wsgi-express setup-server` accepts (they differ across 4.x-6.x),
    read from its --help once and kept beside the cell."""
    cached = Path(cell.env_dir) / "express-options.json"
    if cached.is_file():
        return frozenset(json.loads(cached.read_text()))
    done = _run([str(cell.express), "setup-server", "--help"], timeout=60)
    found = frozenset(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]+", done.stdout))
    if done.returncode == 0 and found:
        cached.write_text(json.dumps(sorted(found)))
    return found


def _at_least(version: str, wanted: tuple[int, int]) -> bool:
    major, minor = (int(part) for part in version.split(".")[:2])
    return (major, minor) >= wanted


VIRTUALENV_SPEC = "virtualenv<20.22"


def virtualenv_tool() -> Path:
    """A virtualenv that can still make 2.7 environments, installed once into the cache with the
    harness's own Python (never into the target interpreter)."""
    tool_dir = cache_root() / "tools" / "virtualenv-20.21"
    script = tool_dir / "bin" / "virtualenv"
    with _locked(tool_dir.with_suffix(".lock")):
        if (tool_dir / ".complete").is_file():
            return script
        shutil.rmtree(tool_dir, ignore_errors=True)
        made = _run([sys.executable, "-m", "venv", str(tool_dir)], timeout=BUILD_TIMEOUT)
        installed = made.returncode == 0 and _run(
            [str(tool_dir / "bin" / "python"), "-m", "pip", "install", "-q", VIRTUALENV_SPEC], timeout=BUILD_TIMEOUT
        )
        if not installed or installed.returncode != 0:
            detail = (made.stderr if made.returncode else installed.stderr if installed else "").strip()[-200:]
            raise HarnessError(f"cannot install {VIRTUALENV_SPEC} into {tool_dir}: {detail}; check access to PyPI")
        (tool_dir / ".complete").write_text("")
    return script


_BUILD_LEFTOVERS = {"build", "dist", "__pycache__"}


def _fingerprint(requirement: str) -> str:
    """A requirement as part of the cache key: a local path stands for its content, so an edited
    fixture or a newer sdist builds again under the same name."""
    path = Path(requirement)
    if not path.is_absolute() or not path.exists():
        return requirement
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        parts = file.relative_to(path).parts if file != path else ()
        if _BUILD_LEFTOVERS & set(parts) or any(part.endswith(".egg-info") for part in parts):
            continue
        digest.update(str(parts).encode())
        digest.update(file.read_bytes())
    return f"{requirement}@{digest.hexdigest()[:16]}"


def install_requirements(cell: Cell, requirements: tuple[str, ...]) -> Path | Unsupported | None:
    """A folder holding the scenario's requirements for this cell, cached per requirement set;
    Unsupported when they do not install there (a package that has no build for that Python)."""
    if not requirements:
        return None
    digest = hashlib.sha256("\n".join(sorted(map(_fingerprint, requirements))).encode()).hexdigest()[:12]
    target = Path(cell.env_dir).with_name(Path(cell.env_dir).name + f"-deps-{digest}")
    with _locked(target.with_suffix(".lock")):
        if (target / ".complete").is_file():
            return target
        shutil.rmtree(target, ignore_errors=True)
        done = _run(
            [str(cell.env_python), "-m", "pip", "install", "--no-input", "--target", str(target), *requirements],
            timeout=BUILD_TIMEOUT,
        )
        if done.returncode != 0:
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            reason = f"requirements {', '.join(requirements)} do not install for this cell: {tail[:200]}"
            return Unsupported(reason, done.stdout + done.stderr)
        (target / ".complete").write_text("")
        return target


def list_cells() -> list[dict[str, str]]:
    """The cached cells: built ones with their interpreter and size, and those found impossible."""
    cells = cache_root() / "cells"
    found: list[dict[str, str]] = []
    if not cells.is_dir():
        return found
    for entry in sorted(cells.iterdir()):
        if entry.is_dir():
            marker = entry / "cell.json"
            if not marker.is_file():
                found.append({"label": entry.name, "status": "incomplete", "detail": "an interrupted build"})
                continue
            record = json.loads(marker.read_text())
            present = Path(record.get("python_executable", "")).exists()
            size = sum(f.stat().st_size for f in entry.rglob("*") if f.is_file() and not f.is_symlink())
            status = "ready" if present else "orphaned"
            detail = f"{record.get('python_executable')} ({size // 1_000_000} MB)"
            found.append({"label": entry.name, "status": status, "detail": detail})
        elif entry.name.endswith(".unsupported.json"):
            reason = json.loads(entry.read_text()).get("reason", "")
            found.append({"label": entry.name.removesuffix(".unsupported.json"), "status": "unsupported",
                          "detail": reason[:120]})  # fmt: skip
    return found


def prune_cells() -> list[str]:
    """Remove cells whose interpreter is gone, half-built ones, and recorded failures (so they are
    tried again next time)."""
    cells = cache_root() / "cells"
    removed = []
    for entry in list_cells():
        if entry["status"] == "ready":
            continue
        label = entry["label"]
        with _locked(cells / f"{label}.lock"):
            shutil.rmtree(cells / label, ignore_errors=True)
            (cells / f"{label}.unsupported.json").unlink(missing_ok=True)
        removed.append(label)
    return removed
