"""A 30-cell matrix with every cell cached (10 interpreters x mod_wsgi 4.9.4, 5.0.2, 6.1.1; two scenarios,
one mechanism, one cycle): its wall time with one run at a time, as a matrix ran before, and with
--jobs auto, where runs of all cells share the machine."""

from __future__ import annotations

from collections.abc import Sequence

from bench.common import Bench, BenchError, Figure, Section, harness, table, timed
from harness.cells import interpreters
from harness.model.records import RunResult

MOD_WSGI = "4.9.4,5.0.2,6.1.1"


def astray(runs: Sequence[RunResult]) -> int:
    """Runs whose verdict is not the expected one, unsupported cells aside: a start-failed run is quick and would
    flatter the wall time it is counted in."""
    return sum(1 for run in runs if not run.matches and run.verdict.value != "unsupported")


def _pythons() -> str:
    """Every interpreter here, by exact version (Debian's 3.11 and pyenv's are two)."""
    found = sorted({p.version for p in interpreters.discover()}, key=lambda v: tuple(int(x) for x in v.split(".")))
    if len(found) < 10:
        raise BenchError(f"a 30-cell matrix needs 10 interpreters; found {len(found)}: {', '.join(found)}")
    return ",".join(found[:10])


def measure(bench: Bench) -> Section:
    section = Section("A cached 30-cell matrix")
    args = ["matrix", "--python", _pythons(), "--mod-wsgi", MOD_WSGI, "--scenario", "hello,stdlib", "--mechanism",
            "sigusr1", "--cycles", "1", "--no-controls"]  # fmt: skip
    with timed(section):
        warm = harness(bench, "matrix-warm", *args, "--jobs", "auto")  # builds what is not cached yet; not timed
        before = harness(bench, "matrix-jobs-1", *args, "--jobs", "1")
        after = harness(bench, "matrix-auto", *args, "--jobs", "auto")
        cells = len({run.cell.label for run in after.record.runs})
        section.figures.append(Figure(
            "5", f"A cached {cells}-cell matrix (2 scenarios x sigusr1 x 1 cycle): one run at a time / --jobs auto",
            f"{before.finished.wall / after.finished.wall:.1f}x", "-", None,
            f"{before.finished.wall:.1f} s at --jobs 1, {after.finished.wall:.1f} s at --jobs auto "
            f"({len(after.record.runs)} runs; machine {after.busy:.0%} busy); the warm-up that built missing cells "
            f"took {warm.finished.wall:.0f} s; runs not as expected: {astray(before.record.runs)} and "
            f"{astray(after.record.runs)}",
        ))  # fmt: skip
        unsupported = sum(1 for run in after.record.runs if run.verdict.value == "unsupported")
        section.details += table(
            ["jobs", "wall", "runs", "of them unsupported in their cell", "not as expected", "machine busy"],
            [("1", f"{before.finished.wall:.1f} s", len(before.record.runs), unsupported,
              astray(before.record.runs), f"{before.busy:.0%}"),
             ("auto", f"{after.finished.wall:.1f} s", len(after.record.runs), unsupported,
              astray(after.record.runs), f"{after.busy:.0%}")],
        )  # fmt: skip
    return section
