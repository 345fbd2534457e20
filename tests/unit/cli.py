"""The CLI called in-process (milliseconds, not an interpreter start per call), as a user would see it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from harness.commands import common, main
from harness.commands import run as run_command


@dataclass(frozen=True)
class Done:
    status: int
    stdout: str
    stderr: str


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> Done:
    """`python -m harness ARGS`: the exit status (argparse's SystemExit included) and what was printed.
    Any other exception propagates, and fails the test: a user would have seen a traceback."""
    capsys.readouterr()  # what came before is not this command's
    try:
        status = main(list(args))
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return Done(status, out, err)


@pytest.fixture
def nothing_starts(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Input the CLI must refuse never gets as far as looking for interpreters or starting servers: if it
    does, the test fails at once instead of running real servers for half a minute."""

    def started(*args: object, **kwargs: object) -> None:
        raise AssertionError("the command got past its input checks and went on to run")

    monkeypatch.setattr(common, "cells", started)
    monkeypatch.setattr(run_command, "run_session", started)
    yield
