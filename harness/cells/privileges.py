"""Who the Apache tree runs as, and whether that user can read what it must.

Run as an ordinary user, Apache runs as that user. Run as root, the whole server tree (parent,
children, daemons) runs as one unprivileged user, never as root: that keeps daemons out of root's
files and lets them leave core files. That user must be able to read the cell's Python; a pyenv
under a 0700 home is the usual reason it cannot. We say so and how to fix it; we never change
permissions on the user's machine.
"""

from __future__ import annotations

import functools
import grp
import os
import pwd
import stat
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import HarnessError

USER_ENV = "MOD_WSGI_HARNESS_USER"
DEFAULT_USERS = ("www-data", "nobody")


@dataclass(frozen=True)
class ServerUser:
    name: str
    uid: int
    gid: int

    @functools.cached_property
    def groups(self) -> frozenset[int]:
        """Primary and supplementary groups, read from the group database once, not on every apachectl."""
        return frozenset({self.gid} | {g.gr_gid for g in grp.getgrall() if self.name in g.gr_mem})

    def popen_kwargs(self) -> dict[str, Any]:
        """subprocess arguments that drop to this user for good (no supplementary groups of root)."""
        if os.geteuid() != 0:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": sorted(self.groups - {self.gid})}


def choose(requested: str | None = None) -> ServerUser:
    """The user servers run as: ourselves, or (as root) --server-user / $MOD_WSGI_HARNESS_USER / www-data / nobody."""
    if os.geteuid() != 0:
        entry = pwd.getpwuid(os.geteuid())
        return ServerUser(entry.pw_name, entry.pw_uid, entry.pw_gid)
    names = [requested] if requested else [os.environ[USER_ENV]] if os.environ.get(USER_ENV) else list(DEFAULT_USERS)
    for name in names:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        if entry.pw_uid == 0:
            raise HarnessError(
                f"--server-user {name} is root; Apache is never run as root here, name an unprivileged user"
            )
        return ServerUser(entry.pw_name, entry.pw_uid, entry.pw_gid)
    raise HarnessError(
        f"no unprivileged user to run Apache as (tried {', '.join(names)}); create one or pass --server-user NAME"
    )


def _can(user: ServerUser, path: Path, want: int) -> bool:
    """Whether user may access path with the given rwx bits (0o4 read, 0o1 search), by mode bits."""
    st = path.stat()
    if user.uid == st.st_uid:
        bits = (st.st_mode >> 6) & 7
    elif st.st_gid in user.groups:
        bits = (st.st_mode >> 3) & 7
    else:
        bits = st.st_mode & 7
    return bits & want == want


def first_blocked(user: ServerUser, target: Path) -> Path | None:
    """The first directory on the way to target (or target itself) that user cannot get through."""
    target = Path(os.path.realpath(target))
    for parent in reversed(target.parents):
        if not _can(user, parent, 0o1):
            return parent
    if target.is_dir():
        return None if _can(user, target, 0o5) else target
    return None if _can(user, target, 0o4) else target


def blocked_path(user: ServerUser, python_executable: str, env_python: Path) -> Path | None:
    """The first directory that keeps user from the cell's interpreter, or None."""
    for target in (Path(python_executable), env_python):
        blocked = first_blocked(user, target)
        if blocked is not None:
            return blocked
    return None


def check_can_run(
    user: ServerUser,
    python_executable: str,
    env_python: Path,
    wrap: Callable[[list[str]], list[str]] | None = None,
    mod_wsgi: bool = True,
) -> None:
    """Prove user can start the cell's Python (through `wrap`, which drops to user itself, when given);
    otherwise one line naming the blocked path and the fixes."""
    if os.geteuid() != 0:
        return
    args = [str(env_python), "-c", "import mod_wsgi" if mod_wsgi else "import site"]
    try:
        probe = subprocess.run(
            wrap(args) if wrap else args,
            capture_output=True,
            text=True,
            check=False,
            cwd="/",
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/"},
            **({} if wrap else user.popen_kwargs()),
        )
        if probe.returncode == 0:
            return
        detail = (probe.stderr.strip().splitlines() or ["no output"])[-1]
    except OSError as exc:  # the interpreter a venv links to cannot even be executed
        detail = str(exc)
    if wrap is not None:
        raise HarnessError(
            f"server user '{user.name}' cannot start {env_python} even in a private mount view: {detail}"
        )
    for target in (Path(python_executable), env_python):
        blocked = first_blocked(user, target)
        if blocked is not None:
            mode = stat.S_IMODE(blocked.stat().st_mode)
            owner = pwd.getpwuid(blocked.stat().st_uid).pw_name
            raise HarnessError(
                f"server user '{user.name}' cannot read {target}: {blocked} is mode {mode:04o} owned by {owner}. "
                f"Run the harness from a Python {user.name} can read (e.g. Debian's: /usr/bin/python3 -m venv .venv), "
                f"run it as an ordinary user, pass --server-user with a user that can read it, "
                f"or drop --no-private-view so the servers see it in a mount namespace of their own"
            )
    raise HarnessError(f"server user '{user.name}' cannot start {env_python}: {detail}")
