"""Where built things live (cell environments, drivers, requirement sets, tools) and how builders
take turns: one lock file per thing, held across threads, processes and xdist workers."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.errors import HarnessError
from harness.places import CACHE_ENV, cache_root

__all__ = ["cache_root", "folder", "locked"]


def folder(*parts: str) -> Path:
    """A folder of the cache, made if needed; one line when the cache cannot be written."""
    path = cache_root().joinpath(*parts)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HarnessError(
            f"cannot create the cache folder {path}: {exc.strerror or exc}; set {CACHE_ENV} to a writable folder"
        ) from None
    return path


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """One builder of `path`'s thing at a time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
