"""Python + C stacks from a crash's core file and from a live process before a hang is killed.

Each comes from a chain of tools, the next tried when the one before fails, warns, or names no frame
that matters: pystack (every sub-interpreter on Python >= 3.11), then py-spy (live processes only),
then gdb with the interpreter's own python-gdb script (C stacks everywhere, Python stacks on 2.7
too). pystack before 3.11 skips sub-interpreters ("pystack can only handle subinterpreters for Python
3.11+") and its dump of a thread stuck in one is empty; py-spy and gdb still name the Python line
and the C function. Every tool has a timeout: a stuck debugger never holds a run up.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness import proc
from harness.evidence import frames
from harness.evidence.frames import Thread

TOOL_TIMEOUT = 60.0
PYSTACK_WARNINGS = ("can only handle subinterpreters", "Unable to merge native stack", "Ignoring subinterpreter")


@dataclass
class Stacks:
    tool: str  # the tool whose threads are kept: pystack, py-spy, gdb, or none
    threads: list[Thread] = field(default_factory=list)
    text: str = ""  # every tool's output, the kept one first
    tried: list[str] = field(default_factory=list)  # each tool tried and why the next was needed
    native: list[Thread] = field(default_factory=list)  # gdb's threads, when added for their native frames


def _tool(name: str) -> str | None:
    """A tool installed beside the harness (its console script), else on the PATH."""
    beside = Path(sys.executable).with_name(name)
    if beside.exists():
        return str(beside)
    return shutil.which(name)


def python_gdb_script(python_executable: str) -> Path | None:
    """The interpreter's own gdb helpers (pyenv and source builds install bin/pythonX.Y-gdb.py)."""
    candidate = Path(python_executable + "-gdb.py")
    return candidate if candidate.is_file() else None


def _gdb_args(python_gdb: Path | None) -> list[str]:
    args = ["gdb", "-batch", "-nx"]
    if python_gdb is not None:
        args += ["-ex", f"source {python_gdb}"]
    args += ["-ex", "thread apply all bt"]
    if python_gdb is not None:
        args += ["-ex", "thread apply all py-bt"]
    return [*args, "-ex", "info sharedlibrary"]


Accept = Callable[[list[Thread]], str | None]  # why these threads are not enough, or None


def _chain(attempts: Sequence[tuple[str, list[str] | None, Callable[[str], list[Thread]]]], accept: Accept) -> Stacks:
    outputs: list[tuple[str, str]] = []
    tried: list[str] = []
    best: tuple[str, list[Thread]] | None = None
    for name, args, parse in attempts:
        if args is None:
            tried.append(f"{name}: not installed")
            continue
        done = proc.run(args, timeout=TOOL_TIMEOUT)
        text = done.output
        outputs.append((name, text or (done.problem or "")))
        if done.returncode is None or (not done.ok and not text.strip()):
            tried.append(f"{name}: {done.last_line()}")
            continue
        threads = parse(text)
        warning = next((w for w in PYSTACK_WARNINGS if w in text), None) if name == "pystack" else None
        why = accept(threads) if threads else "no thread in its output"
        if best is None or sum(len(t.frames) for t in threads) > sum(len(t.frames) for t in best[1]):
            best = (name, threads)
        if why is None and warning is None:
            tried.append(f"{name}: used")
            return Stacks(name, threads, _joined(outputs, name), tried)
        tried.append(f"{name}: {why or warning}")
    if best is None:
        return Stacks("none", [], _joined(outputs, ""), tried)
    return Stacks(best[0], best[1], _joined(outputs, best[0]), tried)


def _joined(outputs: list[tuple[str, str]], kept: str) -> str:
    ordered = sorted(outputs, key=lambda item: item[0] != kept)
    return "\n".join(f"# --- {name} ---\n{text.rstrip()}\n" for name, text in ordered)


def core_stacks(
    core: Path, executable: str, accept: Accept, python_gdb: Path | None, tools: Sequence[str] = ("pystack", "gdb")
) -> Stacks:
    """Every thread of a core: pystack, else gdb."""
    pystack = _tool("pystack")
    chain = [
        ("pystack", [pystack, "core", "--native", str(core), executable] if pystack else None, frames.pystack),
        ("gdb", [*_gdb_args(python_gdb), executable, str(core)] if shutil.which("gdb") else None, frames.gdb),
    ]
    return _chain([item for item in chain if item[0] in tools], accept)


def live_stacks(
    pid: int, accept: Accept, python_gdb: Path | None, tools: Sequence[str] = ("pystack", "py-spy", "gdb")
) -> Stacks:
    """Every thread (every interpreter) of a live process: pystack, else py-spy, else gdb."""
    pystack, spy = _tool("pystack"), _tool("py-spy")
    chain = [
        ("pystack", [pystack, "remote", "--native", str(pid)] if pystack else None, frames.pystack),
        ("py-spy", [spy, "dump", "--native", "--full-filenames", "--pid", str(pid)] if spy else None, frames.pyspy),
        # --native cannot unwind some processes (a daemon hung in Py_FinalizeEx: UNW_EBADREG, or no thread at
        # all); without it py-spy still names every Python frame, the app's line included.
        ("py-spy", [spy, "dump", "--full-filenames", "--pid", str(pid)] if spy else None, frames.pyspy),
        ("gdb", [*_gdb_args(python_gdb), "-p", str(pid)] if shutil.which("gdb") else None, frames.gdb),
    ]
    return _chain([item for item in chain if item[0] in tools], accept)
