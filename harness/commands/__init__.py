"""Command line: parse, dispatch, and turn every user-fixable problem into one line on stderr.

Each subcommand is one module with ``register`` (its parser, built from the shared parent parsers in
``options``) and ``run`` (a call into the library). Exit status: 0 every verdict as expected; 1 some
verdict differs outside broken slots; 2 bad input or set-up; 3 a result that contradicts itself (a
harness bug); 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from harness.commands import baseline, bisect, bundle, check, clean, envs, isolate, matrix, readiness, report
from harness.commands import list as list_command
from harness.commands import run as run_command
from harness.errors import HarnessError
from harness.model.invariants import InvariantError

COMMANDS = (run_command, list_command, check, matrix, readiness, report, bisect, isolate, bundle, baseline, envs, clean)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        """One line, no usage block: the option and what is wrong with it."""
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2)


def parser() -> argparse.ArgumentParser:
    top = _Parser(
        prog="python -m harness",
        description="Reload Python web apps under Apache/mod_wsgi again and again and record every crash.",
    )
    sub = top.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for command in COMMANDS:
        command.register(sub)
    return top


def one_line(exc: BaseException) -> str:
    """A message as one line, whatever a library put in it."""
    return " ".join(part.strip() for part in str(exc).splitlines() if part.strip())


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        status: int = args.handler(args)
        return status
    except InvariantError as exc:
        print(f"internal error: {one_line(exc)}", file=sys.stderr)
        return 3
    except HarnessError as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: servers stopped; finished cycles are in the results folder", file=sys.stderr)
        return 130
