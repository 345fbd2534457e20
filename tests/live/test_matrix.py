"""The version matrix against live servers: real cells built from the interpreters on this machine,
unsupported cells recorded with their reason, a second run that compiles nothing, a resumed matrix,
the merged report seen in headless Chromium, bisect, and tox handing a 2.7 cell to the harness."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, harness, require_apache

pytestmark = pytest.mark.live
MUST_HAVE = [("2.7", "4.9.4"), ("3.8", "4.9.4"), ("3.8", "5.0.2"), ("3.11", "5.0.2"), ("3.11", "6.1.1"),
             ("3.12", "6.1.1"), ("3.13", "6.1.1")]  # fmt: skip
IMPOSSIBLE = [("2.7", "5.0.2"), ("2.7", "6.1.1"), ("3.8", "6.1.1")]
PYTHONS = "2.7,3.8,/usr/bin/python3.11,3.12,3.13"
FIXTURES = Path(__file__).parent / "data" / "scenarios"


@pytest.fixture(autouse=True)
def _apache() -> None:
    require_apache()


def _need_interpreters() -> None:
    from harness import interpreters

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


def _cells(folder: Path) -> dict[tuple[str, str], dict[str, Any]]:
    record = json.loads((folder / "matrix.json").read_text())
    found = {}
    for label, cell in record["cells"].items():
        python, mod_wsgi = re.fullmatch(r"py(\d+\.\d+)\.\d+-modwsgi(.+)", label).groups()  # type: ignore[union-attr]
        found[(python, mod_wsgi)] = {"label": label, **cell}
    return found


@pytest.fixture(scope="module")
def matrix_twice(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The issue's default cells with the clean and crash controls, run twice."""
    require_apache()
    _need_interpreters()
    results = tmp_path_factory.mktemp("matrix")
    first = _matrix(results, "--python", PYTHONS)
    second = _matrix(results, "--python", PYTHONS)
    folders = sorted(results.glob("matrix-*"))
    return {"first": first, "second": second, "folders": folders}


def test_every_valid_cell_gives_the_controls_verdicts(matrix_twice: dict[str, Any]) -> None:
    first = matrix_twice["first"]
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    folder = matrix_twice["folders"][0]
    cells = _cells(folder)
    for key in MUST_HAVE:
        assert cells[key]["status"] == "ok", (key, cells[key])
        session = folder / cells[key]["label"]
        verdicts = {
            run["scenario"]: run["verdict"] for run in json.loads((session / "summary.json").read_text())["runs"]
        }
        assert verdicts == {"hello": "clean", "segfault": "crashed"}, key
    for key in IMPOSSIBLE:
        cell = cells[key]
        assert cell["status"] == "unsupported" and f"mod_wsgi {key[1]}" in cell["reason"], cell
        build_log = folder / cell["label"] / "hello.sigusr1.global" / "build.log"
        assert build_log.is_file() and build_log.read_text().strip()


def test_second_run_compiles_nothing(matrix_twice: dict[str, Any]) -> None:
    second = matrix_twice["second"]
    assert second.returncode == 0, second.stderr[-3000:]
    assert "compilations: 0 " in second.stdout
    record = json.loads((matrix_twice["folders"][1] / "matrix.json").read_text())
    assert record["compilations"] == 0 and len(record["cells"]) == 15


def test_report_heatmap_in_headless_chromium(matrix_twice: dict[str, Any], tmp_path: Path) -> None:
    """Both matrices merged; the page is rendered by Chromium and the PNG shows the verdict colours."""
    from PIL import Image

    from harness import report

    if report.chromium() is None:
        pytest.fail("Chromium is not installed (apt-get install chromium); .ci/setup installs it")
    done = harness("report", *map(str, matrix_twice["folders"]), "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    page = (tmp_path / "report.html").read_text()
    assert page.count('class="run"') == 30  # 2 runs x 15 cells, the newer of each duplicate kept
    assert "Python 2.7.18 / mod_wsgi 4.9.4" in (tmp_path / "report.md").read_text()
    image = Image.open(tmp_path / "report.png").convert("RGB")
    colours = {colour for _, colour in image.getcolors(maxcolors=1 << 20)}  # type: ignore[union-attr]
    for verdict in ("clean", "crashed", "unsupported"):
        rgb = tuple(int(report.COLOURS[verdict][i : i + 2], 16) for i in (1, 3, 5))
        assert rgb in colours, verdict


def test_resumed_matrix_runs_only_what_is_missing(tmp_path: Path) -> None:
    first = _matrix(tmp_path, "--python", "/usr/bin/python3.11", "--mod-wsgi", "6.1.1")
    assert first.returncode == 0, first.stderr
    (folder,) = tmp_path.glob("matrix-*")
    (session,) = [p for p in folder.iterdir() if p.is_dir()]
    (session / "segfault.sigusr1.global" / "summary.json").unlink()  # as if killed during that run
    again = _matrix(tmp_path, "--python", "/usr/bin/python3.11", "--mod-wsgi", "6.1.1", "--resume", str(folder))
    assert again.returncode == 0, again.stderr
    ran = [line for line in again.stderr.splitlines() if re.search(r"\] \d+/\d+ ETA", line)]
    assert len(ran) == 1 and "segfault.sigusr1.global: crashed" in ran[0]
    runs = json.loads((session / "summary.json").read_text())["runs"]
    assert sorted(run["run"] for run in runs) == ["hello.sigusr1.global", "segfault.sigusr1.global"]


def test_bisect_finds_the_first_release_that_changes_the_verdict(tmp_path: Path) -> None:
    done = harness(
        "bisect", "--scenario", str(FIXTURES / "modwsgi4_only"), "--mechanism", "sigusr1", "--cycles", "1",
        "--good", "4.9.4", "--bad", "6.1.1", "--python", "/usr/bin/python3.11", "--results", str(tmp_path),
        timeout=2400,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "last release with 'clean': 4.9.4" in done.stdout
    assert "first release with 'wrong-result': 5.0.0" in done.stdout


def test_tox_environment_hands_a_27_cell_to_the_harness(tmp_path: Path) -> None:
    _need_interpreters()
    tox = Path(sys.executable).with_name("tox")
    done = subprocess.run(
        [str(tox), "--workdir", str(tmp_path / ".tox"), "-e", "cell27-modwsgi494", "--",
         "--scenario", "hello", "--cycles", "1", "--results", str(tmp_path / "results")],
        cwd=REPO, capture_output=True, text=True, timeout=1200, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (folder,) = (tmp_path / "results").glob("matrix-*")
    cells = _cells(folder)
    assert list(cells) == [("2.7", "4.9.4")] and cells[("2.7", "4.9.4")]["status"] == "ok"


def test_envs_lists_built_and_impossible_cells(matrix_twice: dict[str, Any]) -> None:
    done = harness("envs")
    assert done.returncode == 0
    assert re.search(r"py2\.7\.18-modwsgi4\.9\.4\S*\s+ready", done.stdout)
    assert re.search(r"py2\.7\.18-modwsgi6\.1\.1\S*\s+unsupported", done.stdout)
    assert shutil.which("apxs") or os.environ.get("APXS")
