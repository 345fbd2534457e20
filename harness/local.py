"""Packages on no index that the user hands in as local files (PyProtocols, RuleDispatch, ...).

A scenario names them in ``[app] local_packages``; the user gives paths with ``--local-package`` or
in ``$MOD_WSGI_HARNESS_LOCAL_PACKAGES`` (separated by ':'): sdists, wheels or source folders, matched
to a name by their file name. The harness never fetches them; without them the scenario is skipped,
and says what to hand in.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError

ENV = "MOD_WSGI_HARNESS_LOCAL_PACKAGES"
_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".zip", ".whl")


def _normal(name: str) -> str:
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


def distribution_name(path: Path) -> str:
    """'PyProtocols-1.0a0.tar.gz' -> 'pyprotocols'; a folder's own name, less any version."""
    stem = path.name
    for suffix in _SUFFIXES:
        stem = stem.removesuffix(suffix)
    return _normal(re.split(r"-(?=\d)", stem, maxsplit=1)[0])


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
    by_name = {distribution_name(p): p for p in paths}
    found = {name: by_name[_normal(name)] for name in wanted if _normal(name) in by_name}
    return LocalMatch(found, tuple(name for name in wanted if name not in found))
