"""The version matrix against live servers: real cells built from the interpreters on this machine (all of
them side by side in one session), unsupported cells recorded with their reason, a second run that
compiles nothing, a resumed matrix, shards that merge into the unsharded table, the grid report seen in
headless Chromium, bisect, and tox handing a 2.7 cell to the harness."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.cells import interpreters
from harness.model.outcome import POLICY, Outcome
from harness.model.records import SessionRecord
from harness.output import report
from tests.conftest import DATA, REPO, harness, require_apache, session_record

pytestmark = pytest.mark.live
MUST_HAVE = [("2.7", "4.9.4"), ("3.8", "4.9.4"), ("3.8", "5.0.2"), ("3.11", "5.0.2"), ("3.11", "6.1.1"),
             ("3.12", "6.1.1"), ("3.13", "6.1.1")]  # fmt: skip
IMPOSSIBLE = [("2.7", "5.0.2"), ("2.7", "6.1.1"), ("3.8", "6.1.1")]
PYTHONS = "2.7,3.8,/usr/bin/python3.11,3.12,3.13"


@pytest.fixture(autouse=True)
def _apache() -> None:
    require_apache()


def need_interpreters() -> None:
    found = {".".join(p.version.split(".")[:2]) for p in interpreters.discover()}
    missing = {"2.7", "3.8", "3.12", "3.13"} - found
    if missing:
        message = f"interpreters {', '.join(sorted(missing))} not on this machine (pyenv)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def _matrix(results: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    args = ["matrix", "--scenario", "hello,segfault", "--mechanism", "sigusr1", "--cycles", "1"]
    return harness(*args, "--results", str(results), *extra, timeout=2400)


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


@dataclass(frozen=True)
class Twice:
    first: subprocess.CompletedProcess[str]
    second: subprocess.CompletedProcess[str]
    folders: list[Path]

    def record(self, index: int) -> SessionRecord:
        return session_record_of(self.folders[index])


def session_record_of(folder: Path) -> SessionRecord:
    import json

    return SessionRecord.from_json(json.loads((folder / "summary.json").read_text()), folder)


@pytest.fixture(scope="module")
def matrix_twice(tmp_path_factory: pytest.TempPathFactory) -> Twice:
    """The default cells with the clean and crash controls, run twice."""
    require_apache()
    need_interpreters()
    results = tmp_path_factory.mktemp("matrix")
    first = _matrix(results, "--python", PYTHONS)
    second = _matrix(results, "--python", PYTHONS)
    return Twice(first, second, sorted(results.glob("matrix-*")))


def test_every_valid_cell_gives_the_controls_verdicts(matrix_twice: Twice) -> None:
    assert matrix_twice.first.returncode == 0, matrix_twice.first.stdout[-3000:] + matrix_twice.first.stderr[-3000:]
    record = matrix_twice.record(0)
    cells = {(_minor(c.cell.python), c.cell.mod_wsgi or ""): c for c in record.cells if c.cell}
    runs = {(_minor(r.cell.python), r.cell.mod_wsgi or "", r.scenario): r for r in record.runs}
    for key in MUST_HAVE:
        assert cells[key].status == "ok", (key, cells[key])
        assert runs[(*key, "hello")].verdict is Outcome.CLEAN and runs[(*key, "segfault")].verdict is Outcome.CRASHED
    for key in IMPOSSIBLE:
        cell = cells[key]
        assert cell.status == "unsupported" and cell.reason and f"mod_wsgi {key[1]}" in cell.reason, cell
        run = runs[(*key, "hello")]
        assert run.verdict is Outcome.UNSUPPORTED
        build_log = matrix_twice.folders[0] / run.folder / "build.log"
        assert build_log.is_file() and build_log.read_text().strip()


def test_second_run_compiles_nothing(matrix_twice: Twice) -> None:
    assert matrix_twice.second.returncode == 0, matrix_twice.second.stderr[-3000:]
    assert "compilations: 0 " in matrix_twice.second.stdout
    record = matrix_twice.record(1)
    assert record.compilations == 0 and len(record.cells) == 15


def test_grid_report_in_headless_chromium(matrix_twice: Twice, tmp_path: Path) -> None:
    """Both matrices merged into grids (Python down, mod_wsgi across); Chromium draws them at full size."""
    from PIL import Image

    if report.chromium() is None:
        pytest.fail("Chromium is not installed (apt-get install chromium); .ci/setup installs it")
    done = harness("report", *map(str, matrix_twice.folders), "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    page = (tmp_path / "report.html").read_text()
    markdown = (tmp_path / "report.md").read_text()
    assert "## hello / sigusr1 / global" in markdown and "| Python | 4.9.4 | 5.0.2 | 6.1.1 |" in markdown
    assert re.search(r"\| 3\.8\.\d+ \| \[clean 1/1\]\([^)]+\) \| \[clean 1/1\]", markdown), markdown[:2000]
    assert page.count('class="run"') >= 30  # hello, segfault and stdlib in 15 cells, the newer of each kept
    image = Image.open(tmp_path / "report.png").convert("RGB")
    width, height = image.size
    assert 900 <= width <= 2000 and 400 <= height <= 6000, image.size  # drawn full size, not a strip
    colours = {colour for _, colour in image.getcolors(maxcolors=1 << 20)}  # type: ignore[union-attr]
    for verdict in (Outcome.CLEAN, Outcome.CRASHED, Outcome.UNSUPPORTED):
        hexcolour = POLICY[verdict].colour
        rgb = tuple(int(hexcolour[i : i + 2], 16) for i in (1, 3, 5))
        assert rgb in colours, verdict


def test_shards_merge_into_the_unsharded_table(tmp_path: Path) -> None:
    whole = _matrix(tmp_path / "whole", "--python", "/usr/bin/python3.11,3.12", "--mod-wsgi", "5.0.2,6.1.1")
    assert whole.returncode == 0, whole.stderr[-2000:]
    for k in (1, 2, 3):
        part = _matrix(tmp_path / "shards", "--python", "/usr/bin/python3.11,3.12", "--mod-wsgi", "5.0.2,6.1.1",
                       "--shard", f"{k}/3")  # fmt: skip
        assert part.returncode == 0, part.stderr[-2000:]
    for name, folders in (("whole", [tmp_path / "whole"]), ("shards", [tmp_path / "shards"])):
        assert harness("report", *map(str, folders), "--out", str(tmp_path / f"report-{name}")).returncode == 0

    def table(name: str) -> list[str]:
        text = (tmp_path / f"report-{name}" / "report.md").read_text()
        return [re.sub(r"\]\([^)]*\)", "]", line) for line in text.splitlines()]  # links differ, verdicts not

    assert table("shards") == table("whole")
    sharded = sum(len(session_record_of(f).runs) for f in (tmp_path / "shards").glob("matrix-*"))
    assert sharded == len(session_record(tmp_path / "whole").runs)


def test_resumed_matrix_runs_only_what_is_missing(tmp_path: Path) -> None:
    first = _matrix(tmp_path, "--python", "/usr/bin/python3.11", "--mod-wsgi", "6.1.1")
    assert first.returncode == 0, first.stderr
    (folder,) = tmp_path.glob("matrix-*")
    (folder / "segfault.sigusr1.global" / "summary.json").unlink()  # as if killed during that run
    again = _matrix(tmp_path, "--python", "/usr/bin/python3.11", "--mod-wsgi", "6.1.1", "--resume", str(folder))
    assert again.returncode == 0, again.stderr
    ran = [line for line in again.stderr.splitlines() if re.match(r"\[\d+/\d+\] ", line)]
    assert len(ran) == 1 and "segfault.sigusr1.global: crashed" in ran[0], again.stderr
    runs = session_record_of(folder).runs
    names = sorted(run.run for run in runs)
    assert names == ["hello.sigusr1.global", "segfault.sigusr1.global", "stdlib.sigusr1.global"]
    rerun = folder / "segfault.sigusr1.global"
    cycle_lines = (rerun / "cycles.jsonl").read_text().splitlines()
    assert len(cycle_lines) == {r.run: r for r in runs}["segfault.sigusr1.global"].cycles_recorded
    assert (rerun / "unfinished-1" / "cycles.jsonl").is_file(), "the killed attempt's files are kept beside it"


def test_bisect_finds_the_first_release_that_changes_the_verdict(tmp_path: Path) -> None:
    done = harness(
        "bisect", "--scenario", str(DATA / "scenarios" / "modwsgi4_only"), "--mechanism", "sigusr1", "--cycles", "1",
        "--good", "4.9.4", "--bad", "6.1.1", "--python", "/usr/bin/python3.11", "--results", str(tmp_path),
        timeout=2400,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "last release with 'clean': 4.9.4" in done.stdout
    assert "first release with 'wrong-result': 5.0.0" in done.stdout


def test_tox_environment_hands_a_27_cell_to_the_harness(tmp_path: Path) -> None:
    need_interpreters()
    tox = Path(sys.executable).with_name("tox")
    done = subprocess.run(
        [str(tox), "--workdir", str(tmp_path / ".tox"), "-e", "cell27-modwsgi494", "--",
         "--scenario", "hello", "--cycles", "1", "--results", str(tmp_path / "results")],
        cwd=REPO, capture_output=True, text=True, timeout=1200, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (folder,) = (tmp_path / "results").glob("matrix-*")
    record = session_record_of(folder)
    assert {(_minor(c.cell.python), c.cell.mod_wsgi) for c in record.cells if c.cell} == {("2.7", "4.9.4")}
    assert {c.status for c in record.cells} == {"ok"}


def test_envs_lists_built_and_impossible_cells(matrix_twice: Twice) -> None:
    done = harness("envs")
    assert done.returncode == 0
    assert re.search(r"py2\.7\.18-modwsgi4\.9\.4\S*\s+ready", done.stdout)
    assert re.search(r"py2\.7\.18-modwsgi6\.1\.1\S*\s+unsupported", done.stdout)
    assert shutil.which("apxs") or os.environ.get("APXS")
