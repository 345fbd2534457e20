"""Options shared by several commands, declared once as argparse parent parsers, and checked at the edge:
a bad value is one line naming the option and the fix, before anything starts."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from harness.errors import HarnessError

MAX_CYCLES = 10_000
MAX_JOBS = 64
DEFAULT_SCENARIOS = "hello,segfault,raise,wrong,block"
DEFAULT_MECHANISMS = "script-touch,sigusr1,apache-graceful"
DEFAULT_LAYOUTS = "global"
DEFAULT_CYCLES = 3
LOCAL_HELP = (
    "an sdist, wheel or source folder of a package on no index (PyProtocols, RuleDispatch) that a scenario's "
    "local_packages names; repeatable, or list them in $MOD_WSGI_HARNESS_LOCAL_PACKAGES"
)


def _bounded(option: str, low: int, high: int) -> type:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; give {low} to {high}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is out of range; give {low} to {high}")
        return value

    parse.__name__ = option
    return parse  # type: ignore[return-value]


def _name_list(option: str) -> type:
    def parse(text: str) -> str:
        if len(text) > 2000:
            raise argparse.ArgumentTypeError("too long; give a shorter comma list")
        return text

    parse.__name__ = option
    return parse  # type: ignore[return-value]


def selection() -> argparse.ArgumentParser:
    """What to run: scenarios x mechanisms x layouts, for how many cycles."""
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group("what to run")
    group.add_argument(
        "--scenario",
        type=_name_list("--scenario"),
        help=f"comma list of names or paths, or 'all' (default: {DEFAULT_SCENARIOS})",
    )
    group.add_argument(
        "--mechanism",
        type=_name_list("--mechanism"),
        default=DEFAULT_MECHANISMS,
        help=f"comma list or 'all' (default: {DEFAULT_MECHANISMS})",
    )
    group.add_argument(
        "--layout",
        type=_name_list("--layout"),
        default=DEFAULT_LAYOUTS,
        help=f"comma list or 'all' (default: {DEFAULT_LAYOUTS})",
    )
    group.add_argument(
        "--cycles",
        type=_bounded("--cycles", 1, MAX_CYCLES),
        default=DEFAULT_CYCLES,
        help=f"reloads per run, 1 to {MAX_CYCLES} (default: {DEFAULT_CYCLES})",
    )
    group.add_argument("--until-crash", action="store_true", help="stop reloading a run at its first crashed cycle")
    group.add_argument(
        "--block",
        default="",
        metavar="MODULES",
        help="comma list of (C extension) modules made unimportable before the app loads, so packages "
        "fall back to pure Python (e.g. simplejson._speedups,markupsafe._speedups)",
    )
    group.add_argument(
        "--package",
        action="append",
        metavar="REQUIREMENT",
        help="test pip requirements without writing a scenario: a generated app imports them and runs "
        "--probe on every request (repeatable; added to --scenario when that is given)",
    )
    group.add_argument(
        "--probe",
        metavar="CODE",
        help="Python run in the --package app on every request, with the request's environ; set "
        "'result' to a value that must be the same in every interpreter",
    )
    group.add_argument("--local-package", action="append", metavar="PATH", help=LOCAL_HELP)
    group.add_argument(
        "--load-order",
        metavar="GROUPS",
        help="application groups in the order they first load (so mod_wsgi destroys them in that "
        "order on Python 3), e.g. app-b,app-a (default: the scenario's, else the layout's)",
    )
    group.add_argument(
        "--lazy-load",
        action="store_true",
        help="let the first request load each group in a request thread instead of preloading it at daemon start",
    )
    group.add_argument(
        "--no-controls",
        action="store_true",
        help="do not add the clean controls (hello, stdlib) that judge each cell, mechanism and layout",
    )
    return parser


def cell() -> argparse.ArgumentParser:
    """Which environment: interpreter, mod_wsgi, Apache."""
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group("cell")
    group.add_argument(
        "--python",
        type=_name_list("--python"),
        help="target interpreter(s): comma list of versions (3.8, 3.11.7) or paths (default: the "
        "harness's own; matrix: every one found)",
    )
    group.add_argument(
        "--mod-wsgi",
        type=_name_list("--mod-wsgi"),
        help="mod_wsgi release(s) or pip requirement(s), comma list (default: 6.1.1; matrix: 4.9.4,5.0.2,6.1.1)",
    )
    group.add_argument(
        "--apache",
        type=_name_list("--apache"),
        help="the Apache to build against: the path of its apxs, or 'bundled[:VERSION]' for the PyPI "
        "mod-wsgi-httpd build (default: $APXS, else apxs on the PATH); comma list for matrix",
    )
    return parser


def server() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group("server")
    group.add_argument(
        "--server-user", help="when run as root: the unprivileged user Apache runs as (default: www-data)"
    )
    group.add_argument(
        "--no-private-view",
        action="store_true",
        help="as root, refuse (instead of showing it in a private mount namespace) an interpreter the "
        "server user cannot read",
    )
    return parser


def results() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--results", type=Path, help="results folder (default: ./results)")
    return parser


def _jobs(text: str) -> int | None:
    if text == "auto":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not 'auto' or a whole number from 1 to {MAX_JOBS}") from None
    if not 1 <= value <= MAX_JOBS:
        raise argparse.ArgumentTypeError(f"{value} is out of range; give 'auto' or 1 to {MAX_JOBS}")
    return value


def jobs() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument(
        "--jobs",
        "-j",
        type=_jobs,
        default=None,
        metavar="N|auto",
        help=f"runs side by side: 'auto' (the default) admits runs while CPU and memory allow, or 1 to {MAX_JOBS}",
    )
    return parser


_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$")


def module_names(text: str, option: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    for name in names:
        if not _MODULE.match(name) or len(name) > 200:
            raise HarnessError(
                f"{option}: {name[:80]!r} is not a module name; give dotted names like markupsafe._speedups"
            )
    return names


def group_names(text: str | None, option: str) -> tuple[str, ...] | None:
    if text is None:
        return None
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    for name in names:
        if not re.match(r"^[A-Za-z0-9_.-]{1,64}$|^%\{GLOBAL\}$", name):
            raise HarnessError(f"{option}: {name[:80]!r} is not an application group; give names like app-a,app-b")
    return names
