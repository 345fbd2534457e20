"""Where the harness keeps things: built environments (the cache), running servers (the runtime
folder) and results (the current directory's ./results unless told otherwise)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from harness.errors import HarnessError

CACHE_ENV = "MOD_WSGI_HARNESS_CACHE"
RUNTIME_ENV = "MOD_WSGI_HARNESS_RUNTIME"


def cache_root() -> Path:
    """Outside any checkout, readable by the server user when running as root."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser().resolve()
    if os.geteuid() == 0:
        return Path("/var/cache/mod-wsgi-harness")
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mod-wsgi-harness"


def runtime_dir() -> Path:
    """Short (unix socket paths are limited to 108 bytes), per effective user, traversable by server users."""
    base = Path(os.environ.get(RUNTIME_ENV) or Path(tempfile.gettempdir()) / f"mod-wsgi-harness-{os.geteuid()}")
    try:
        base.mkdir(mode=0o711, parents=True, exist_ok=True)
        st = base.stat()
        if st.st_uid != os.geteuid():
            raise HarnessError(f"{base} belongs to uid {st.st_uid}, not us; remove it or set {RUNTIME_ENV}")
        os.chmod(base, 0o711)
    except OSError as exc:
        raise HarnessError(f"cannot use the runtime folder {base}: {exc.strerror or exc}; set {RUNTIME_ENV}") from None
    return base


def default_results() -> Path:
    return Path.cwd() / "results"
