"""Finding the Python interpreters on this machine: pyenv's versions, the PATH, and explicit paths.

Each is named by its full version (3.8.18) and known by its base executable, so a virtualenv's python
and the interpreter it was made from count once. Nothing is hard-coded: a machine has what it has.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

from harness.cells.build import PythonInfo, describe_python
from harness.errors import HarnessError

_MINORS = ("2.7", *(f"3.{minor}" for minor in range(6, 16)))


def pyenv_root() -> Path | None:
    if os.environ.get("PYENV_ROOT"):
        return Path(os.environ["PYENV_ROOT"])
    found = shutil.which("pyenv")
    if found:
        done = subprocess.run([found, "root"], capture_output=True, text=True, check=False, timeout=30)
        if done.returncode == 0 and done.stdout.strip():
            return Path(done.stdout.strip())
    default = Path.home() / ".pyenv"
    return default if default.is_dir() else None


def candidates() -> list[Path]:
    """Executables that may be interpreters: every pyenv version, pythonX.Y on the PATH, the system's."""
    found: list[Path] = []
    root = pyenv_root()
    if root is not None:
        for version in sorted(glob.glob(str(root / "versions" / "*"))):
            found += [Path(p) for p in sorted(glob.glob(f"{version}/bin/python[23].[0-9]*")) if _is_plain(p)]
    for minor in _MINORS:
        on_path = shutil.which(f"python{minor}")
        if on_path:
            found.append(Path(on_path))
    # The system's own, which pyenv's shims hide from the PATH lookup above.
    for folder in ("/usr/local/bin", "/usr/bin"):
        found += [Path(p) for p in sorted(glob.glob(f"{folder}/python[23].[0-9]*")) if _is_plain(p)]
    return found


def _is_plain(path: str) -> bool:
    """python3.8 (or a free-threaded python3.13t), not python3.8-config or python3.8-gdb.py."""
    return re.fullmatch(r"python\d\.\d+t?", Path(path).name) is not None


def discover(explicit: Iterable[Path] = ()) -> list[PythonInfo]:
    """Every interpreter found, once each, oldest version first."""
    return _discover(tuple(explicit))


@functools.cache
def _discover(explicit: tuple[Path, ...]) -> list[PythonInfo]:
    seen: dict[str, PythonInfo] = {}
    for path in [*explicit, *candidates()]:
        try:
            info = describe_python(path)
        except HarnessError:
            continue
        seen.setdefault(os.path.realpath(info.executable), info)
    return sorted(seen.values(), key=lambda p: (_version_key(p.version), p.executable))


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


def select(found: Sequence[PythonInfo], wanted: str) -> list[PythonInfo]:
    """Interpreters matching a comma list of versions ('3.8', '3.11.7') or paths; ValueError names
    what matched nothing, with what there is. A version names one interpreter: the newest patch release
    found of it (list '3.11.2,3.11.7' to run two)."""
    chosen: list[PythonInfo] = []
    for item in (w.strip() for w in wanted.split(",") if w.strip()):
        if "/" in item:
            chosen.append(describe_python(Path(item)))
            continue
        matches = [p for p in found if p.version == item or p.version.startswith(item + ".")]
        if not matches:
            have = ", ".join(p.version for p in found) or "none"
            raise ValueError(f"--python: no interpreter {item} found (found: {have}); give a version or a path")
        chosen.append(max(matches, key=lambda p: p.release))
    return list({p.executable: p for p in chosen}.values())


def find(version: str, hint: str | None = None) -> PythonInfo:
    """The interpreter of exactly this version: the hinted path if it still is that version, else one
    found here; one line naming what is missing otherwise."""
    if hint and Path(hint).exists():
        with contextlib.suppress(HarnessError):
            info = describe_python(Path(hint))
            if info.version == version:
                return info
    found = discover()
    for info in found:
        if info.version == version:
            return info
    near = [p.version for p in found if p.version.rsplit(".", 1)[0] == version.rsplit(".", 1)[0]]
    also = f" (found {', '.join(near)}: pass --python to use one)" if near else ""
    raise HarnessError(
        f"Python {version} is not on this machine{also}; install it (pyenv install {version}) or pass --python"
    )
