"""Bug-report bundles: one folder (and a .tar.gz of it) holding all a maintainer needs to act on a run.

Versions of everything that matters, the generated Apache configuration, the scenario itself, the
error_log lines of each failing cycle, the backtraces and stack dumps, the outcome table, a script
that reproduces the run from a checkout of the harness and checks that the verdict is the same, and
ISSUE.md: a report ready to paste, covering what CPython's crash template and mod_wsgi's maintainer
ask for (reproducer, versions, configuration, full backtrace).
"""

from __future__ import annotations

import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness import baseline, cores, locate, results, scenario
from harness.errors import HarnessError
from harness.outcome import Outcome

REPO = Path(__file__).resolve().parent.parent
CONFIG_FILES = ("httpd.conf", "harness-include.conf", "handler.wsgi", "driver.json")
ISSUE_LOG_LINES = 60
ISSUE_BACKTRACE_LINES = 80


def _output(args: Sequence[str]) -> str:
    try:
        done = subprocess.run(list(args), capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"({' '.join(args)} failed: {exc})"
    return (done.stdout + done.stderr).strip()


def _apache_v(httpd: str) -> str:
    """`httpd -V` without the complaints of a binary started with no configuration of its own."""
    text = _output([httpd, "-V"])
    return "\n".join(
        line for line in text.splitlines() if not re.search(r"AH\d{5}|Syntax error|Configuration error", line)
    )


def _mpm(error_log: Path) -> str | None:
    """The MPM the server really ran, from its own start-up line."""
    try:
        with open(error_log, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                match = re.search(r"\[mpm_(\w+):", line)
                if match:
                    return match[1]
    except OSError:
        pass
    return None


def versions(cell: Mapping[str, Any], run_dir: Path, core_settings: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Every version that decides whether the crash happens, read now from the same installation."""
    env = Path(str(cell.get("env_dir", "")))
    python = str(env / "bin" / "python") if env.name else str(cell.get("python_executable"))
    os_release = {}
    if Path("/etc/os-release").is_file():
        for line in Path("/etc/os-release").read_text().splitlines():
            key, _, value = line.partition("=")
            os_release[key] = value.strip('"')
    freeze = _output([python, "-m", "pip", "freeze", "--all"]).splitlines()
    return {
        "python": cell.get("python"),
        "python_executable": cell.get("python_executable"),
        "python_VV": _output([python, "-VV"]),
        "mod_wsgi": cell.get("mod_wsgi"),
        "mod_wsgi_installed": next(
            (p for p in freeze if p.lower().startswith("mod-wsgi") or p.startswith("mod_wsgi")), None
        ),
        "apache": cell.get("apache"),
        "apache_origin": cell.get("apache_origin"),
        "apache_mpm": _mpm(run_dir / "error_log"),
        "apache_V": _apache_v(str(cell.get("httpd") or "apache2")),
        "pip_freeze": freeze,
        "os": os_release.get("PRETTY_NAME", platform.platform()),
        "kernel": platform.release(),
        "libc": " ".join(platform.libc_ver()),
        "machine": platform.machine(),
        "core_settings": core_settings or cores.kernel_settings(),
        "harness_commit": _output(["git", "-C", str(REPO), "rev-parse", "HEAD"]),
    }


def reproduce_command(summary: Mapping[str, Any], scenario_dir: str, baseline_file: str, results_dir: str) -> list[str]:
    cell = summary["cell"]
    return [
        ".venv/bin/python", "-m", "harness", "run",
        "--scenario", scenario_dir,
        "--mechanism", summary["mechanism"],
        "--layout", summary["layout"],
        "--cycles", str(summary["cycles"]),
        "--mod-wsgi", str(cell.get("mod_wsgi")),
        "--python", str(cell.get("python_executable")),
        "--baseline", baseline_file,
        "--results", results_dir,
    ]  # fmt: skip


_REPRODUCE = """#!/usr/bin/env bash
# Reproduces run {run} (verdict: {verdict}) and checks that the verdict is the same:
# exit 0 when it is, 1 when it changed. Run it from anywhere inside a checkout of the harness
# (or pass the checkout as the first argument); the checkout's .ci/setup is run if it has no .venv.
set -euo pipefail
bundle="$(cd "$(dirname "${{BASH_SOURCE[0]}}")" && pwd)"
checkout="${{1:-${{HARNESS_CHECKOUT:-}}}}"
if [ -z "$checkout" ]; then
    checkout="$bundle"
    while [ "$checkout" != / ] && [ ! -f "$checkout/harness/__main__.py" ]; do checkout="$(dirname "$checkout")"; done
fi
if [ ! -f "$checkout/harness/__main__.py" ]; then
    echo "reproduce.sh: no harness checkout around $bundle; pass its path as the first argument" >&2
    exit 2
fi
cd "$checkout"
[ -x .venv/bin/python ] || bash .ci/setup
exec {command}
"""


def make(run_dir: Path, out_dir: Path, with_cores: bool = False) -> tuple[Path, Path]:
    """Write the bundle folder and its .tar.gz under out_dir; returns both paths."""
    summary = locate.read_summary(run_dir)
    records = results.read_jsonl(run_dir / results.CYCLES) if (run_dir / results.CYCLES).is_file() else []
    name = f"{run_dir.parent.name}-{summary['run']}"
    folder = out_dir / name
    try:
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        _fill(folder, run_dir, summary, records, with_cores)
        tarball = out_dir / f"{name}.tar.gz"
        tmp = tarball.with_name(f".{tarball.name}.tmp")
        with tarfile.open(tmp, "w:gz") as archive:
            archive.add(folder, arcname=name)
        os.replace(tmp, tarball)
    except OSError as exc:
        raise HarnessError(f"cannot write the bundle under {out_dir}: {exc}; choose --out DIR elsewhere") from None
    return folder, tarball


def _fill(
    folder: Path, run_dir: Path, summary: Mapping[str, Any], records: list[dict[str, Any]], with_cores: bool
) -> None:
    scenario_src = Path(summary["scenario_file"]).parent
    scenario_dst = folder / "scenario" / summary["scenario"]
    if scenario_src.is_dir():
        shutil.copytree(scenario_src, scenario_dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        _copy_local_requirements(scenario_src, scenario_dst, folder)
    config = folder / "config"
    config.mkdir()
    for file in CONFIG_FILES:
        if (run_dir / file).is_file():
            shutil.copyfile(run_dir / file, config / file)
    express = (summary.get("server") or {}).get("express_arguments") or []
    if express:
        (config / "mod_wsgi-express.args").write_text(shlex.join(["mod_wsgi-express", *express]) + "\n")
    for sub in ("backtraces", "stacks", *(["cores"] if with_cores else [])):
        if (run_dir / sub).is_dir():
            shutil.copytree(run_dir / sub, folder / sub)
    for file in (results.SUMMARY, results.CYCLES, "error_log"):
        if (run_dir / file).is_file():
            shutil.copyfile(run_dir / file, folder / file)
    failing = _failing_cycle_logs(run_dir / "error_log", records, folder / "error_log_by_cycle")
    found = versions(summary["cell"], run_dir, (summary.get("core_dumps") or {}).get("settings"))
    results.write_json(folder / "versions.json", found)
    verdict = Outcome(summary["verdict"])
    (folder / "expected.toml").write_text(baseline.render(summary["cell"], {summary["run"]: verdict}))
    command = reproduce_command(
        summary, f"$bundle/scenario/{summary['scenario']}", "$bundle/expected.toml", "$bundle/reproduced"
    )
    shell = " ".join(
        '"$bundle"/' + shlex.quote(part.removeprefix("$bundle/")) if part.startswith("$bundle/") else shlex.quote(part)
        for part in command
    )
    script = folder / "reproduce.sh"
    script.write_text(_REPRODUCE.format(run=summary["run"], verdict=verdict.value, command=shell))
    script.chmod(0o755)
    (folder / "ISSUE.md").write_text(issue_text(folder, summary, records, found, failing))


def _copy_local_requirements(scenario_src: Path, scenario_dst: Path, bundle: Path) -> None:
    """The fixtures a scenario builds from "./" or "../" paths, at the same place relative to its copy,
    so the bundled scenario loads and builds as it did (a path leaving the bundle is left out)."""
    try:
        found = scenario.load(scenario_src / scenario.SCENARIO_FILE)
    except HarnessError:
        return
    for requirement in found.requirements:
        if not requirement.startswith(scenario.LOCAL_PREFIXES):
            continue
        source = (scenario_src / requirement).resolve()
        target = (scenario_dst / requirement).resolve()
        if bundle.resolve() not in target.parents or target.exists():
            continue
        if source.is_dir():
            shutil.copytree(
                source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "build", "*.egg-info")
            )
        elif source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)


def _failing_cycle_logs(error_log: Path, records: list[dict[str, Any]], out: Path) -> dict[int, list[str]]:
    """The error_log lines of each cycle that was not clean, one file per cycle."""
    try:
        lines = error_log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return {}
    failing: dict[int, list[str]] = {}
    for record in records:
        span = record.get("log_lines") or []
        if record.get("outcome") == Outcome.CLEAN.value or len(span) != 2:
            continue
        failing[record["cycle"]] = lines[span[0] - 1 : span[1]]
    if failing:
        out.mkdir()
        for cycle, chunk in failing.items():
            (out / f"cycle-{cycle:03d}.txt").write_text("\n".join(chunk) + "\n")
    return failing


def _fence(text: str, language: str = "") -> list[str]:
    return [f"```{language}", text.rstrip("\n"), "```"]


def _head(text: str, limit: int) -> str:
    lines = text.splitlines()
    return "\n".join(
        lines[:limit] + ([f"... ({len(lines) - limit} more lines in the bundle)"] if len(lines) > limit else [])
    )


def issue_text(
    folder: Path,
    summary: Mapping[str, Any],
    records: list[dict[str, Any]],
    found: Mapping[str, Any],
    failing: Mapping[int, list[str]],
) -> str:
    cell = summary["cell"]
    crash = next((c for c in summary.get("crashes", []) if c.get("backtrace")), None)
    trace = (crash or {}).get("backtrace") or {}
    title = (
        f"{summary['verdict']}: {summary['scenario']} under {summary['mechanism']} ({summary['layout']} layout), "
        f"mod_wsgi {cell.get('mod_wsgi')}, Python {cell.get('python')}, Apache {cell.get('apache')}"
    )
    lines = [f"# {title}", "", "## What happens", ""]
    lines.append(
        f"Reloading the app {summary['cycles_recorded'] - 2 if summary['cycles_recorded'] > 1 else 0} times with "
        f"`{summary['mechanism']}` gives the verdict **{summary['verdict']}** "
        f"(per reload: {results.rates_cell(summary) or 'no reloads'}; first load: {summary.get('load_outcome')}; "
        f"shutdown: {summary.get('stop_outcome')})."
    )
    if summary.get("first_crash_cycle") is not None:
        lines.append(f"The first crash is in cycle {summary['first_crash_cycle']} (0 is the first request).")
    if trace:
        lines += [
            "",
            f"- crashing function: `{trace.get('crashing_function')}`",
            f"- Python line: `{trace.get('python_frame')}`",
            f"- app line: `{trace.get('app_frame')}`",
        ]
    lines += ["", "## Reproducer", ""]
    lines.append("From a checkout of the harness (commit "
                 f"`{found.get('harness_commit', '?')[:12]}`), with this bundle unpacked inside it:")  # fmt: skip
    lines += _fence(f"bash {folder.name}/reproduce.sh   # exit 0: same verdict ({summary['verdict']})", "sh")
    lines.append("which runs:")
    command = reproduce_command(summary, f"scenario/{summary['scenario']}", "expected.toml", "reproduced")
    lines += _fence(shlex.join(command), "sh")
    for file in sorted((folder / "scenario" / summary["scenario"]).glob("*")):
        if file.is_file() and file.stat().st_size < 4000:
            lines += ["", f"`scenario/{summary['scenario']}/{file.name}`:"]
            lines += _fence(file.read_text(errors="replace"), "toml" if file.suffix == ".toml" else "python")
    lines += ["", "## Versions", "", "| | |", "|---|---|"]
    for key in ("python", "python_VV", "python_executable", "mod_wsgi", "mod_wsgi_installed", "apache",
                "apache_origin", "apache_mpm", "os", "kernel", "libc", "machine"):  # fmt: skip
        lines.append(f"| {key} | `{str(found.get(key)).splitlines()[0] if found.get(key) else ''}` |")
    lines.append(f"| core settings | `{json.dumps(found.get('core_settings'))}` |")
    lines += ["", "<details><summary>apache2 -V</summary>", ""]
    lines += [*_fence(str(found.get("apache_V"))), "", "</details>"]
    lines += ["", "<details><summary>pip freeze of the cell</summary>", ""]
    lines += [*_fence("\n".join(found.get("pip_freeze") or [])), "", "</details>"]
    lines += ["", "## Configuration", ""]
    express = folder / "config" / "mod_wsgi-express.args"
    driver = folder / "config" / "driver.json"
    if express.is_file():
        lines += ["Generated by:", "", *_fence(express.read_text(), "sh")]
    if driver.is_file():
        argv = shlex.join((summary.get("server") or {}).get("driver_command") or [])
        lines += ["Run by the embedding driver (no Apache):", "", *_fence(argv, "sh")]
        lines += ["", "with `config/driver.json`:", "", *_fence(driver.read_text(), "json")]
    include = folder / "config" / "harness-include.conf"
    if include.is_file():
        lines += ["", "Included into the generated httpd.conf (`config/httpd.conf` has the rest):", ""]
        lines += _fence(include.read_text(), "apache")
    if failing:
        cycle, chunk = next(iter(failing.items()))
        lines += ["", f"## Error log (cycle {cycle}, LogLevel info; every failing cycle is in error_log_by_cycle/)", ""]
        lines += _fence(_head("\n".join(chunk), ISSUE_LOG_LINES))
    if trace.get("file") and (folder / trace["file"]).is_file():
        lines += ["", f"## Backtrace ({trace.get('tool')}, pid {crash and crash.get('pid')}, from its core)", ""]
        lines += _fence(_head((folder / trace["file"]).read_text(errors="replace"), ISSUE_BACKTRACE_LINES))
    hangs = summary.get("hangs") or []
    if hangs and (folder / hangs[0]["file"]).is_file():
        lines += ["", f"## Stacks of the hung process (pid {hangs[0]['pid']}, taken before it was killed)", ""]
        lines += _fence(_head((folder / hangs[0]["file"]).read_text(errors="replace"), ISSUE_BACKTRACE_LINES))
    lines += [
        "",
        "## Outcome per cycle",
        "",
        "| cycle | phase | outcome | reload | evidence |",
        "|---|---|---|---|---|",
    ]
    for record in records:
        evidence = (record.get("evidence") or [""])[0].replace("|", "\\|")[:140]
        lines.append(
            f"| {record['cycle']} | {record['phase']} | {record['outcome']} "
            f"| {record['confirmation']['fired']} | {evidence} |"
        )
    lines += ["", "Files: `summary.json`, `cycles.jsonl`, `error_log`, `config/`, `backtraces/`, `stacks/`, "
              "`versions.json`" + (", `cores/`" if (folder / "cores").is_dir() else
                                   " (cores are kept in the run's results folder; bundle --with-cores adds them)"),
              ""]  # fmt: skip
    return "\n".join(lines)
