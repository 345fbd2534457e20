"""A private view of one interpreter for a server user who cannot read it (root only, Linux only).

A pyenv under a 0700 home is unreadable to the unprivileged user Apache runs as. Rather than change
any permission on the machine, the server's processes get a mount namespace of their own in which
the blocking directory is covered by an empty tmpfs that holds one read-only bind mount: the
interpreter's install prefix, at its own path. Nothing else of that directory is visible to them,
nothing on the machine changes, and the namespace ends with the last process in it.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from harness.cells.privileges import ServerUser
from harness.errors import HarnessError

# $1 stage, $2 hidden, $3 exposed, $4.. setpriv options; then "--" and the command.
_SCRIPT = """set -e
stage=$1 hidden=$2 exposed=$3
shift 3
mount --bind "$exposed" "$stage"
mount -o remount,bind,ro "$stage"
mount -t tmpfs -o mode=0755,size=1m harness-view "$hidden"
mkdir -p "$exposed"
mount --move "$stage" "$exposed"
exec setpriv "$@"
"""


@dataclass(frozen=True)
class PrivateView:
    hidden: Path  # the directory the server user cannot pass (e.g. /root)
    exposed: Path  # the interpreter's prefix below it (e.g. /root/.pyenv/versions/3.8.18)

    def describe(self) -> str:
        return f"{self.exposed} shown read-only over an empty {self.hidden} in the servers' own mount namespace"

    def command(self, args: list[str], user: ServerUser, stage: Path) -> list[str]:
        """`args` run as `user` inside a fresh namespace with the view; `stage` is an empty folder
        outside `hidden` (the server root), used for a moment while the mounts are made."""
        groups = sorted(user.groups - {user.gid})
        setpriv = [f"--reuid={user.uid}", f"--regid={user.gid}"]
        setpriv += [f"--groups={','.join(map(str, groups))}"] if groups else ["--clear-groups"]
        return [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "--",
            "/bin/sh",
            "-c",
            _SCRIPT,
            "harness-view",
            str(stage),
            str(self.hidden),
            str(self.exposed),
            *setpriv,
            "--",
            *args,
        ]


def plan(blocked: Path, python_prefix: Path, runtime: Path) -> PrivateView:
    """The view that lets the server user reach `python_prefix` past `blocked`; a clear error when it
    cannot be made here."""
    missing = [tool for tool in ("unshare", "setpriv", "mount") if shutil.which(tool) is None]
    if missing:
        raise HarnessError(
            f"cannot show {python_prefix} to the server user: {', '.join(missing)} missing (util-linux); "
            "install util-linux or use a Python the server user can read"
        )
    if runtime == blocked or blocked in runtime.parents:
        raise HarnessError(
            f"the runtime folder {runtime} lies under {blocked}, which the server user cannot pass; "
            "set MOD_WSGI_HARNESS_RUNTIME to a folder elsewhere (e.g. /tmp)"
        )
    return PrivateView(hidden=blocked, exposed=python_prefix)
