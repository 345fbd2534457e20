"""Bad input at the command line's edge: one line on stderr starting 'error: ', exit status 2, no
traceback, and nothing started or written. Every case runs the CLI in-process."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

import pytest

from harness.model import scenario
from tests.unit.cli import Done, cli, nothing_starts

HELLO = scenario.shipped_dir() / "hello"
pytestmark = pytest.mark.usefixtures(nothing_starts.__name__)
LONG_NAME = "x" * 300


def one_line_error(done: Done) -> None:
    assert done.status == 2, done
    assert done.stderr.startswith("error: ") and done.stderr.endswith("\n") and done.stderr.count("\n") == 1, done
    assert "Traceback" not in done.stderr + done.stdout
    assert done.stdout == ""


def hello_with(folder: Path, text: str | bytes) -> Path:
    """The hello scenario's folder with another scenario.toml."""
    shutil.copytree(HELLO, folder)
    path = folder / "scenario.toml"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def deeply_nested(tmp_path: Path) -> Path:
    return hello_with(tmp_path / "deep", "a = " + "[" * 5000 + "]" * 5000 + "\n")


def byte_order_mark(tmp_path: Path) -> Path:
    return hello_with(tmp_path / "bom", b"\xef\xbb\xbf" + (HELLO / "scenario.toml").read_bytes())


def directory_as_file(tmp_path: Path) -> Path:
    path = tmp_path / "dir" / "scenario.toml"
    path.mkdir(parents=True)
    return path


def empty_folder(tmp_path: Path) -> Path:
    path = tmp_path / "empty"
    path.mkdir()
    return path


def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "fifo" / "scenario.toml"
    path.parent.mkdir()
    os.mkfifo(path)
    return path


def symlink_loop(tmp_path: Path) -> Path:
    folder = tmp_path / "loop"
    folder.mkdir()
    (folder / "a.toml").symlink_to(folder / "b.toml")
    (folder / "b.toml").symlink_to(folder / "a.toml")
    return folder / "a.toml"


def long_name(tmp_path: Path) -> Path:
    return Path(LONG_NAME)


BAD_FILES: dict[str, Callable[[Path], Path]] = {
    "deeply nested TOML": deeply_nested,
    "UTF-8 byte-order mark": byte_order_mark,
    "a directory given as the file": directory_as_file,
    "a folder without scenario.toml": empty_folder,
    "a FIFO": fifo,
    "a symlink loop": symlink_loop,
    "a 300-character name": long_name,
}


class Blocked(BaseException):
    """Not an OSError: the harness must not be able to turn it into a tidy one-line error."""


@pytest.fixture
def deadline() -> Iterator[None]:
    """Fail instead of hanging when reading a scenario blocks (a FIFO opened for reading waits for a writer)."""

    def expired(signum: int, frame: FrameType | None) -> None:
        raise Blocked("the command blocked for 10 s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, 10.0)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("make", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_check_refuses_a_bad_scenario_file_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], deadline: None, make: Callable[[Path], Path]
) -> None:
    path = make(tmp_path)
    before = listing(tmp_path)
    done = cli(capsys, "check", str(path))
    one_line_error(done)
    assert str(path)[:60] in done.stderr
    assert listing(tmp_path) == before


@pytest.mark.parametrize("make", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_run_refuses_a_bad_scenario_file_before_starting_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], deadline: None, make: Callable[[Path], Path]
) -> None:
    path = make(tmp_path)
    results = tmp_path / "results"
    done = cli(capsys, "run", "--scenario", str(path), "--results", str(results))
    one_line_error(done)
    assert not results.exists()


@pytest.mark.parametrize(
    "args",
    [
        ["--jobs", "0"],
        ["--jobs", "-3"],
        ["--jobs", "many"],
        ["--cycles", "0"],
        ["--cycles", "99999999"],
        ["--mechanism", ""],
        ["--mechanism", " , "],
        ["--layout", ""],
        ["--scenario", ""],
        ["--scenario", LONG_NAME],
        ["--scenario", "a" * 3000],
        ["--block", "os;rm"],
        ["--load-order", "app a"],
        ["--port", "80"],
        ["--probe", "result = 1"],
    ],
    ids=lambda args: " ".join(a[:12] for a in args) or "empty",
)
def test_run_refuses_bad_options_before_starting_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    results = tmp_path / "results"
    done = cli(capsys, "run", *args, "--results", str(results))
    one_line_error(done)
    assert not results.exists()


def test_the_error_names_the_option_and_the_range(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    done = cli(capsys, "run", "--jobs", "0", "--results", str(tmp_path / "r"))
    assert done.stderr == "error: argument --jobs/-j: 0 is out of range; give 'auto' or 1 to 64\n"
    done = cli(capsys, "run", "--cycles", "99999999", "--results", str(tmp_path / "r"))
    assert done.stderr == "error: argument --cycles: 99999999 is out of range; give 1 to 10000\n"


def test_check_accepts_every_shipped_scenario_folder(capsys: pytest.CaptureFixture[str]) -> None:
    folders = sorted(file.parent for file in scenario.discover().values())
    assert {"hello", "segfault", "raise", "wrong", "block", "stdlib"} <= {f.name for f in folders}
    done = cli(capsys, "check", *map(str, folders))
    assert done.status == 0 and done.stderr == ""
    assert [line.split(" ", 2)[1] for line in done.stdout.splitlines()] == [str(f / "scenario.toml") for f in folders]
    assert all(line.startswith("ok: ") for line in done.stdout.splitlines())


def test_check_of_good_and_bad_files_reports_each_and_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One bad file among good ones: the good ones are still said ok, the bad one is the error."""
    bad = byte_order_mark(tmp_path)
    done = cli(capsys, "check", str(HELLO), str(bad))
    assert done.status == 2
    assert done.stdout == f"ok: {HELLO / 'scenario.toml'} (hello: 1 probe(s), 1 expectation(s))\n"
    assert done.stderr.startswith(f"error: {bad}: field '(file)' ") and done.stderr.count("\n") == 1
