"""Bug-report bundles: one folder (and a .tar.gz of it) holding all a maintainer needs to act on a run.

The run's exact RunSpec (its scenario and hand-in packages travel with it, so it names nothing of this
machine but versions), the full freeze of the environment the app really ran in, the generated
configuration, the failing cycles' log lines, backtraces and stack dumps, a ``reproduce.sh`` that runs
the spec again from any checkout and exits 0 only when the verdict and the crash signatures are the
same, and ISSUE.md: a report a maintainer reads in a minute (at most about 8 KB; the rest are files).
"""

from __future__ import annotations

import os
import platform
import re
import shlex
import shutil
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness import proc, storage
from harness.cells.handins import normal
from harness.engines.procs import signal_name
from harness.errors import HarnessError
from harness.evidence import cores
from harness.model import scenario as scenarios
from harness.model.records import CYCLES, SUMMARY, CycleRecord, Phase, RunResult
from harness.model.spec import SPEC_FILE, RunSpec
from harness.output import locate
from harness.output.markdown import rates_text
from harness.output.render import TEXT

CONFIG_FILES = ("httpd.conf", "harness-include.conf", "handler.wsgi", "driver.json")
ISSUE_LOG_LINES = 40
ISSUE_BACKTRACE_LINES = 45
EXCERPT_FRAMES = 16  # lines of the faulting thread's stack in ISSUE.md
EXCERPT_INNER = 2  # of them, inside the culprit
EXCERPT_WIDTH = 180
ISSUE_LIMIT = 8000


def _output(args: Sequence[str]) -> str:
    done = proc.run(args, timeout=60)
    return done.output.strip() if done.returncode is not None else f"({done.problem})"


def _os_release() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            key, _, value = line.partition("=")
            if key == "PRETTY_NAME":
                return value.strip('"')
    except OSError:
        pass
    return platform.platform()


def freeze(result: RunResult) -> list[str]:
    """Every distribution the app could import, as name==version: the cell's and those of each requirement
    folder the app had on its path. pip list rather than pip freeze, which names a package installed from a
    file by this machine's path; a hand-in says which bundled file it came from."""
    env = result.cell.env_dir
    if not env:
        return []
    python = str(Path(env) / "bin" / "python")
    base = [python, "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"]
    lines = proc.run(base, timeout=120).stdout.splitlines()
    for folder in result.site_dirs:
        lines += proc.run([*base, "--path", folder], timeout=120).stdout.splitlines()
    handed = {normal(h.name): h for h in result.spec.hand_ins}
    found = []
    for line in set(lines):
        name = normal(line.partition("==")[0])
        hand_in = handed.get(name)
        found.append(f"{line}  # handed in: packages/{hand_in.filename} (sha256 {hand_in.sha256})" if hand_in else line)
    return sorted(found, key=str.lower)


def versions(result: RunResult) -> dict[str, Any]:
    """Every version that decides whether the crash happens, read now from the same installation."""
    cell = result.cell
    python = str(Path(cell.env_dir) / "bin" / "python") if cell.env_dir else cell.python_executable
    found: dict[str, Any] = {
        "python": cell.python,
        "python_build": _output([python, "-VV"]),
        "os": _os_release(),
        "kernel": platform.release(),
        "libc": " ".join(platform.libc_ver()),
        "machine": platform.machine(),
        "core_settings": dict(result.core_dumps.settings) or cores.kernel_settings(),
        "pip_freeze": freeze(result),
    }
    if result.engine.kind == "apache":
        found |= {
            "mod_wsgi": cell.mod_wsgi_version or cell.mod_wsgi,
            "apache": cell.apache,
            "apache_origin": cell.apache_origin,
            "apache_mpm": result.engine.mpm,
            "apache_V": "\n".join(
                line
                for line in (_output([cell.httpd, "-V"]) if cell.httpd else "").splitlines()
                if not re.search(r"AH\d{5}|Syntax error|Configuration error", line)
            ),
        }
    return found


def make(run_dir: Path, out_dir: Path, with_cores: bool = False, with_packages: bool = True) -> tuple[Path, Path]:
    """Write the bundle folder and its .tar.gz under out_dir; returns both paths."""
    result = locate.read_run(run_dir)
    records = (
        [CycleRecord.from_json(r, run_dir / CYCLES) for r in storage.read_jsonl(run_dir / CYCLES)]
        if (run_dir / CYCLES).is_file()
        else []
    )
    name = f"{run_dir.parent.name}-{result.run}"
    folder = out_dir / name
    try:
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        _fill(folder, run_dir, result, records, with_cores, with_packages)
        tarball = out_dir / f"{name}.tar.gz"
        tmp = tarball.with_name(f".{tarball.name}.tmp")
        with tarfile.open(tmp, "w:gz") as archive:
            archive.add(folder, arcname=name)
        os.replace(tmp, tarball)
    except OSError as exc:
        raise HarnessError(f"cannot write the bundle under {out_dir}: {exc}; choose --out DIR elsewhere") from None
    return folder, tarball


def portable_spec(result: RunResult, scenario_path: str, packages: Mapping[str, str]) -> RunSpec:
    """The run's spec as it travels: the scenario and hand-ins named relative to the bundle, and nothing of
    this machine but versions (the interpreter is found by its version wherever it runs)."""
    spec = result.spec
    hand_ins = tuple(replace(h, path=packages.get(h.filename, h.path)) for h in spec.hand_ins)
    scenario = spec.scenario if spec.scenario.package else replace(spec.scenario, path=scenario_path)
    cell = replace(spec.cell, python_executable="")  # found by its version on the machine that reruns it
    return replace(spec, scenario=scenario, hand_ins=hand_ins, cell=cell, port=None, server_user=None)


def _fill(
    folder: Path, run_dir: Path, result: RunResult, records: list[CycleRecord], with_cores: bool, with_packages: bool
) -> None:
    spec = result.spec
    scenario_rel = ""
    if spec.scenario.package is None:
        source = _scenario_dir(run_dir, result)
        target = folder / "scenario" / spec.scenario.name
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "build", "*.egg-info"))
        _copy_local_requirements(source, target, folder)
        scenario_rel = f"scenario/{spec.scenario.name}/{scenarios.SCENARIO_FILE}"
    packages: dict[str, str] = {}
    wanted: list[str] = []
    for hand_in in spec.hand_ins:
        if with_packages and Path(hand_in.path).exists():
            (folder / "packages").mkdir(exist_ok=True)
            copy = folder / "packages" / hand_in.filename
            (shutil.copytree if Path(hand_in.path).is_dir() else shutil.copyfile)(hand_in.path, copy)
            packages[hand_in.filename] = f"packages/{hand_in.filename}"
        else:
            packages[hand_in.filename] = f"packages/{hand_in.filename}"
            wanted.append(f"{hand_in.filename} (sha256 {hand_in.sha256}) into packages/")
    portable = portable_spec(result, scenario_rel, packages)
    storage.write_json(folder / SPEC_FILE, portable.to_json())
    config = folder / "config"
    config.mkdir()
    for file in CONFIG_FILES:
        if (run_dir / file).is_file():
            shutil.copyfile(run_dir / file, config / file)
    if result.engine.command:
        (config / "command.txt").write_text(shlex.join(result.engine.command) + "\n")
    for sub in ("backtraces", "stacks", *(["cores"] if with_cores else [])):
        if (run_dir / sub).is_dir():
            shutil.copytree(run_dir / sub, folder / sub)
    for file in (SUMMARY, CYCLES, "error_log"):
        if (run_dir / file).is_file():
            shutil.copyfile(run_dir / file, folder / file)
    failing = _failing_cycle_logs(run_dir / "error_log", records, folder / "error_log_by_cycle")
    found = versions(result)
    storage.write_json(folder / "versions.json", found)
    (folder / "freeze.txt").write_text("\n".join(found["pip_freeze"]) + "\n")
    script = folder / "reproduce.sh"
    script.write_text(
        TEXT.get_template("reproduce.sh.j2").render(
            run=result.run,
            verdict=result.verdict.value,
            signatures=[s.signature for s in result.signatures],
            missing=wanted,
        )
    )
    script.chmod(0o755)
    issue = issue_text(folder, result, records, found, failing, wanted)
    (folder / "ISSUE.md").write_text(issue)


def _scenario_dir(run_dir: Path, result: RunResult) -> Path:
    path = Path(result.spec.scenario.path)
    if not path.is_absolute():
        raise HarnessError(f"{run_dir}: its spec names the scenario relatively ({path}); bundle the original run")
    return path.parent


def _copy_local_requirements(source: Path, target: Path, bundle: Path) -> None:
    """The fixtures a scenario builds from "./" or "../" paths, at the same place relative to its copy, so
    the bundled scenario loads and builds as it did (a path leaving the bundle is left out)."""
    try:
        found = scenarios.load(source / scenarios.SCENARIO_FILE)
    except HarnessError:
        return
    for requirement in found.requirements:
        if not requirement.startswith(scenarios.LOCAL_PREFIXES):
            continue
        origin, copy = (source / requirement).resolve(), (target / requirement).resolve()
        if bundle.resolve() not in copy.parents or copy.exists():
            continue
        if origin.is_dir():
            shutil.copytree(origin, copy, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "build", "*.egg-info"))
        elif origin.is_file():
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(origin, copy)


def _failing_cycle_logs(error_log: Path, records: list[CycleRecord], out: Path) -> dict[int, list[str]]:
    """The error_log lines of each cycle that was not clean, one file per cycle."""
    try:
        lines = error_log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return {}
    failing: dict[int, list[str]] = {}
    for record in records:
        if record.outcome.value == "clean" or record.log_lines is None:
            continue
        first, last = record.log_lines
        failing[record.cycle] = lines[first - 1 : last]
    if failing:
        out.mkdir()
        for cycle, chunk in failing.items():
            (out / f"cycle-{cycle:03d}.txt").write_text("\n".join(chunk) + "\n")
    return failing


def _head(text: str, limit: int) -> str:
    lines = text.splitlines()
    more = [f"... ({len(lines) - limit} more lines in the bundle)"] if len(lines) > limit else []
    return "\n".join(lines[:limit] + more)


def context(result: RunResult) -> str:
    """Where it happened, in words: an Apache mechanism, or interpreter re-creation with no Apache at all."""
    if result.engine.kind == "driver":
        what = {
            "interpreter-cycle": "sub-interpreter re-creation (Py_EndInterpreter, Py_NewInterpreter)",
            "interpreter-overlap": "sub-interpreter re-creation with the previous one alive",
            "finalize-reinit": "Py_Finalize and Py_Initialize in one process",
        }.get(result.mechanism, result.mechanism)
        return f"{what} in an embedding driver, Python {result.cell.python} ({result.layout} interpreter)"
    cell = result.cell
    return (
        f"{result.mechanism} reloads under Apache {cell.apache}/mod_wsgi {cell.mod_wsgi_version or cell.mod_wsgi}, "
        f"Python {cell.python} ({result.layout} layout)"
    )


def issue_text(
    folder: Path,
    result: RunResult,
    records: list[CycleRecord],
    found: Mapping[str, Any],
    failing: Mapping[int, list[str]],
    missing: Sequence[str],
) -> str:
    crash = next((c for c in result.crashes if c.backtrace), result.crashes[0] if result.crashes else None)
    trace = crash.backtrace if crash else None
    backtrace = ""
    if trace and trace.file and (folder / trace.file).is_file():
        backtrace = _culprit_excerpt((folder / trace.file).read_text(errors="replace"), trace.culprit)
    hang = result.hangs[0] if result.hangs else None
    hang_text = ""
    if hang and (folder / hang.file).is_file():
        hang_text = _head((folder / hang.file).read_text(errors="replace"), ISSUE_BACKTRACE_LINES)
    reloads = [r for r in records if r.phase is Phase.RELOAD]
    first_bad = next((r for r in records if r.outcome.is_failure), None)
    log_cycle = first_bad.cycle if first_bad and first_bad.cycle in failing else next(iter(failing), None)
    text = TEXT.get_template("ISSUE.md.j2").render(
        result=result,
        context=context(result),
        rates=rates_text(result),
        reloads=len(reloads),
        trials=result.trials,
        crash=crash,
        signal=signal_name(crash.signal) if crash else "",
        trace=trace,
        backtrace=backtrace,
        hang=hang,
        hang_text=hang_text,
        records=records,
        found=found,
        log_cycle=log_cycle,
        log_text=_head("\n".join(failing[log_cycle]), ISSUE_LOG_LINES) if log_cycle is not None else "",
        include=_read(folder / "config" / "harness-include.conf"),
        command=_read(folder / "config" / "command.txt").strip(),
        scenario_files=_scenario_files(folder, result),
        missing=missing,
        folder=folder.name,
    )
    if len(text.encode()) > ISSUE_LIMIT:  # the rest is in the bundle's files, never cut mid-line
        keep = text.encode()[: ISSUE_LIMIT - 200].decode(errors="ignore").rsplit("\n", 1)[0]
        text = keep + "\n\n(ISSUE.md stops here at about 8 KB; the bundle's files hold the rest.)\n"
    return text


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _scenario_files(folder: Path, result: RunResult) -> list[tuple[str, str]]:
    """The scenario's small text files, inline: what the app is, in its own words."""
    found = []
    base = folder / "scenario" / result.spec.scenario.name
    for file in sorted(base.glob("*")) if base.is_dir() else []:
        if file.is_file() and file.stat().st_size < 1500 and file.suffix in (".toml", ".wsgi", ".py", ".ini"):
            found.append((f"scenario/{result.spec.scenario.name}/{file.name}", file.read_text(errors="replace")))
    return found[:3]


def _culprit_excerpt(text: str, culprit: str | None) -> str:
    """The faulting thread's stack around the culprit, not the whole backtrace: a few frames inside it
    and the callers that say how it got there, each line cut at a readable width."""
    lines = text.splitlines()
    at = None
    if culprit:
        function = culprit.split(" ", 1)[0]
        at = next((i for i, line in enumerate(lines) if function in line and function != "??"), None)
    if at is None:
        chosen = lines[:EXCERPT_FRAMES]
    else:
        chosen = lines[max(0, at - EXCERPT_INNER) : at + EXCERPT_FRAMES - EXCERPT_INNER]
    cut = [line if len(line) <= EXCERPT_WIDTH else line[: EXCERPT_WIDTH - 1] + "…" for line in chosen]
    return "\n".join(cut)


def same(reference: RunResult, now: RunResult) -> list[str]:
    """What differs between a reproduction and the run it reproduces: the verdict, the crash signatures."""
    differences = []
    if reference.verdict is not now.verdict:
        differences.append(f"verdict differs: {reference.verdict.value} before, {now.verdict.value} now")
    was = {s.signature for s in reference.signatures}
    found = {s.signature for s in now.signatures}
    if was != found:
        differences.append(
            f"signature differs: {', '.join(sorted(was)) or 'none'} before, {', '.join(sorted(found)) or 'none'} now"
        )
    raised_before = {e.exception for e in reference.exceptions}
    raised_now = {e.exception for e in now.exceptions}
    if raised_before != raised_now:  # a crash that hid a new exception is not the same failure
        differences.append(
            f"exception signature differs: {'; '.join(sorted(raised_before)) or 'none'} before, "
            f"{'; '.join(sorted(raised_now)) or 'none'} now"
        )
    return differences
