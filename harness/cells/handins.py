"""Packages on no index that the user hands in as local files (PyProtocols, RuleDispatch, ...).

A scenario names them in ``[app] local_packages``; the user gives paths with ``--local-package`` or
in ``$MOD_WSGI_HARNESS_LOCAL_PACKAGES`` (separated by ':'): sdists, wheels or source folders, matched
to a name by their file name. The harness never fetches them; without them the scenario is skipped,
and says what to hand in. A RunSpec records each by sha256, so a rerun knows it has the same file.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import InvalidSdistFilename, InvalidWheelFilename, parse_sdist_filename, parse_wheel_filename

from harness.errors import HarnessError
from harness.model.spec import HandIn

ENV = "MOD_WSGI_HARNESS_LOCAL_PACKAGES"
_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".zip", ".whl")
_SKIP = {"__pycache__", "build", "dist", ".git"}


def normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def supplied(paths: Iterable[str | Path] = ()) -> list[Path]:
    """The paths given on the command line and in the environment; a missing one is an error."""
    given = [Path(p) for p in paths]
    given += [Path(p) for p in os.environ.get(ENV, "").split(os.pathsep) if p.strip()]
    for path in given:
        if not path.exists():
            raise HarnessError(f"--local-package / ${ENV}: {path} does not exist; give an sdist, wheel or folder")
        if path.is_file() and not path.name.endswith(_SUFFIXES):
            raise HarnessError(
                f"--local-package / ${ENV}: {path} is not an sdist or wheel ({', '.join(_SUFFIXES)}) nor a folder"
            )
    return [p.resolve() for p in given]


def name_and_version(path: Path) -> tuple[str, str]:
    """('pyprotocols', '1.0a0') from 'PyProtocols-1.0a0.tar.gz'; a folder's own name, less any version."""
    filename = path.name
    try:
        if filename.endswith(".whl"):
            wheel = parse_wheel_filename(filename)
            return str(wheel[0]), str(wheel[1])
        if filename.endswith((".tar.gz", ".zip")):
            sdist = parse_sdist_filename(filename)
            return str(sdist[0]), str(sdist[1])
    except (InvalidSdistFilename, InvalidWheelFilename, ValueError):
        pass
    stem = filename
    for suffix in _SUFFIXES:
        stem = stem.removesuffix(suffix)
    name, _, version = stem.partition("-") if re.search(r"-\d", stem) else (stem, "", "")
    return normal(name), version


def digest(path: Path) -> str:
    """sha256 of a file, or of a folder's files (names and bytes)."""
    sha = hashlib.sha256()
    if path.is_file():
        sha.update(path.read_bytes())
        return sha.hexdigest()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        relative = file.relative_to(path)
        if _SKIP & set(relative.parts) or any(part.endswith(".egg-info") for part in relative.parts):
            continue
        sha.update(str(relative).encode() + b"\0" + file.read_bytes() + b"\0")
    return sha.hexdigest()


def record(path: Path) -> HandIn:
    name, version = name_and_version(path)
    return HandIn(name=name, version=version, filename=path.name, sha256=digest(path), path=str(path))


@dataclass(frozen=True)
class LocalMatch:
    found: dict[str, Path]
    missing: tuple[str, ...]

    def skip_reason(self) -> str:
        return (
            f"needs {', '.join(self.missing)}, which no package index has: hand in local sdists, wheels or "
            f"source folders with --local-package PATH or ${ENV}"
        )


def match(wanted: Sequence[str], paths: Sequence[Path]) -> LocalMatch:
    by_name = {normal(name_and_version(p)[0]): p for p in paths}
    found = {name: by_name[normal(name)] for name in wanted if normal(name) in by_name}
    return LocalMatch(found, tuple(name for name in wanted if name not in found))


def verify(hand_in: HandIn, base: Path) -> Path:
    """The hand-in's file as the spec names it (relative to `base`), refused in one line when it is not
    the same file the spec was made with."""
    path = Path(hand_in.path)
    path = path if path.is_absolute() else base / path
    if not path.exists():
        raise HarnessError(
            f"the spec needs {hand_in.filename} (sha256 {hand_in.sha256[:12]}) at {path}; put it there, or pass "
            f"--local-package PATH"
        )
    found = digest(path)
    if found != hand_in.sha256:
        raise HarnessError(
            f"{path}: sha256 {found[:12]}, but the spec was made with {hand_in.sha256[:12]}; hand in the same "
            f"{hand_in.name} the spec names"
        )
    return path
