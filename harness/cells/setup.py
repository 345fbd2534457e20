"""From a CellSpec to an environment the servers can use: the interpreter found, the cell built or taken
from the cache, the server user chosen and proven able to start it (through a private mount view
where it could not otherwise read the interpreter). All of it before any results folder exists, so a
set-up problem leaves nothing behind."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from harness.cells import interpreters, view
from harness.cells.apache import ApacheInfo, find_apache
from harness.cells.build import Cell, PythonInfo, Unsupported, cell_known, ensure_cell, express_options
from harness.cells.bundled import bundled_apache
from harness.cells.privileges import ServerUser, blocked_path, check_can_run, choose
from harness.cells.view import PrivateView
from harness.errors import HarnessError
from harness.model.records import CellInfo
from harness.model.spec import ApacheRef, CellSpec
from harness.places import runtime_dir


@dataclass(frozen=True)
class PreparedCell:
    spec: CellSpec  # with the mod_wsgi version it resolved to
    info: CellInfo
    cell: Cell | None  # None: the cell cannot exist here (info.unsupported says why)
    user: ServerUser
    view: PrivateView | None  # how the server user reaches an interpreter it cannot read, if it must
    express_options: frozenset[str] = frozenset()
    log: str = ""  # the build log of a cell that cannot exist

    @property
    def named_groups(self) -> bool:
        """express has --process-group/--application-group (5.x and later)."""
        return "--process-group" in self.express_options


def apache_for(ref: ApacheRef) -> ApacheInfo:
    """The Apache a spec names, on this machine: the same apxs if it is there, else one of the same origin."""
    if ref.origin.startswith("bundled:"):
        return bundled_apache(ref.version)
    if Path(ref.apxs).exists():
        return find_apache(ref.apxs)
    if ref.origin == "debian":
        return find_apache()
    raise HarnessError(
        f"the spec's Apache {ref.version} ({ref.origin}) is not here ({ref.apxs} is missing); "
        "install it or pass --apache"
    )


def cell_spec(python: PythonInfo, mod_wsgi: str | None, apache: ApacheInfo | None) -> CellSpec:
    return CellSpec(
        python=python.version,
        python_executable=python.executable,
        mod_wsgi=mod_wsgi,
        apache=apache.ref() if apache is not None else None,
    )


def prepare(spec: CellSpec, server_user: str | None, private_view: bool) -> PreparedCell:
    """Build (or reuse) the cell and make sure its servers can run it. A cell that cannot exist comes back
    without an environment; a user's input that names nothing real is a HarnessError."""
    python = interpreters.find(spec.python, spec.python_executable)
    apache = apache_for(spec.apache) if spec.apache is not None else None
    compiled = spec.mod_wsgi is not None and not cell_known(python, spec.mod_wsgi, apache)
    built = ensure_cell(python, spec.mod_wsgi, apache)
    user = choose(server_user)
    info = CellInfo(
        label=spec.label,
        python=python.version,
        python_executable=python.executable,
        mod_wsgi=spec.mod_wsgi,
        apache=apache.version if apache else None,
        apache_origin=apache.origin if apache else None,
        httpd=(apache.httpd or None) if apache else None,
        compiled_now=compiled,
    )
    if isinstance(built, Unsupported):
        if built.user_error:
            raise HarnessError(f"--mod-wsgi {spec.mod_wsgi}: {built.reason}")
        return PreparedCell(spec, replace(info, unsupported=built.reason), None, user, None, log=built.log)
    resolved = CellSpec(spec.python, python.executable, spec.mod_wsgi, spec.apache, built.mod_wsgi_version)
    info = replace(info, env_dir=built.env_dir, mod_wsgi_version=built.mod_wsgi_version, httpd=built.httpd)
    private: PrivateView | None = None
    blocked = blocked_path(user, python.executable, built.env_python) if os.geteuid() == 0 else None
    if blocked is not None and private_view:
        private = view.plan(blocked, Path(python.executable).parent.parent, runtime_dir())
        info = replace(info, private_view=private.describe())
        print(f"note: {user.name} cannot read {blocked}; {private.describe()}", file=sys.stderr)
        check_can_run(
            user, python.executable, built.env_python, wrap=_probe_wrapper(private, user), mod_wsgi=bool(built.mod_wsgi)
        )
    else:
        check_can_run(user, python.executable, built.env_python, mod_wsgi=bool(built.mod_wsgi))
    options = express_options(built) if built.mod_wsgi is not None else frozenset()
    return PreparedCell(resolved, info, built, user, private, options)


def _probe_wrapper(private: PrivateView, user: ServerUser) -> Callable[[list[str]], list[str]]:
    stage = runtime_dir() / "view-stage"
    stage.mkdir(mode=0o700, exist_ok=True)
    return lambda args: private.command(args, user, stage)
