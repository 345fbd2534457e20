"""Python + C stacks: from a crash's core file, and from a live process before a hang is killed.

pystack reads both (it sees every sub-interpreter of an Apache daemon and works for 2.7 and 3.x);
gdb, with the interpreter's own python-gdb script where one exists, is the fallback for cores, and
py-spy for live processes. Every call has a timeout: a stuck debugger never holds a run up.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

TOOL_TIMEOUT = 60.0
_THREAD = re.compile(r"^Traceback for thread (\d+)")
_FRAME = re.compile(r'^\s*\((C|Python)\) File "([^"]*)", line (\d+), in (\S+)')


@dataclass(frozen=True)
class Frame:
    kind: str  # "C" or "Python"
    file: str
    line: int
    function: str

    def within(self, folder: str) -> str:
        """As text, the file named relative to `folder` (the app's folder in a throwaway server root)."""
        relative = self.file[len(folder) :].lstrip("/") if self.file.startswith(folder) else self.file
        return str(Frame(self.kind, relative, self.line, self.function))

    def __str__(self) -> str:
        if self.kind == "C":
            return f"{self.function} ({self.file}:{self.line})"
        return f"{self.file}:{self.line} in {self.function}"


@dataclass(frozen=True)
class Backtrace:
    tool: str  # "pystack", "gdb", or "none"
    text: str
    crashing_function: str | None = None  # innermost C function before the signal handler
    python_frame: str | None = None  # innermost Python frame of the crashing thread
    app_frame: str | None = None  # innermost Python frame in the app's own files
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "tool": self.tool,
            "crashing_function": self.crashing_function,
            "python_frame": self.python_frame,
            "app_frame": self.app_frame,
            "problems": self.problems,
        }


def _run(args: Sequence[str]) -> subprocess.CompletedProcess[str] | str:
    try:
        return subprocess.run(list(args), capture_output=True, text=True, timeout=TOOL_TIMEOUT, check=False)
    except FileNotFoundError:
        return f"{args[0]} is not installed"
    except subprocess.TimeoutExpired:
        return f"{Path(args[0]).name} took longer than {TOOL_TIMEOUT:.0f}s"


def _pystack() -> list[str] | None:
    """pystack as installed beside the harness (its console script, else the module)."""
    script = Path(sys.executable).with_name("pystack")
    if script.exists():
        return [str(script)]
    found = shutil.which("pystack")
    return [found] if found else None


def threads(text: str) -> dict[int, list[Frame]]:
    """pystack's text report as frames per thread, outermost first (its order)."""
    found: dict[int, list[Frame]] = {}
    current: list[Frame] | None = None
    for line in text.splitlines():
        head = _THREAD.match(line)
        if head:
            current = found.setdefault(int(head[1]), [])
            continue
        frame = _FRAME.match(line)
        if frame and current is not None:
            current.append(Frame(frame[1], frame[2], int(frame[3]), frame[4]))
    return found


_SIGNAL_FRAMES = ("__restore_rt", "<signal handler called>")


def crashing_thread(per_thread: dict[int, list[Frame]], recorded: int | None) -> list[Frame]:
    """The thread that was in a signal handler when the process died. The thread the core records
    first is not always it: Apache re-raises the signal with kill(), which any thread may take."""
    handling = [frames for frames in per_thread.values() if any(f.function in _SIGNAL_FRAMES for f in frames)]
    if handling:
        return handling[0]
    return per_thread.get(recorded if recorded is not None else -1) or next(iter(per_thread.values()), [])


def crash_site(frames: Sequence[Frame], app_dir: str | None) -> tuple[str | None, str | None, str | None]:
    """(crashing C function, innermost Python frame, innermost app frame) of the crashing thread.

    The frames after the crash are the signal's own (__restore_rt, then raise when Apache re-raises
    it to dump core); the crashing function is the last real one before them."""
    cut = next((i for i, f in enumerate(frames) if f.function in _SIGNAL_FRAMES), None)
    before = list(frames[:cut] if cut is not None else frames)
    native = [f for f in before if f.kind == "C" and f.function != "???"]
    python = [f for f in before if f.kind == "Python"]
    app = [f for f in python if app_dir and f.file.startswith(app_dir)]
    return (
        str(native[-1]) if native and (not python or before.index(native[-1]) > before.index(python[-1])) else None,
        str(python[-1]) if python else None,
        app[-1].within(app_dir or "") if app else None,
    )


def core_backtrace(
    core: Path, executable: str, crashed_thread: int | None, app_dir: str | None, python_gdb: Path | None
) -> Backtrace:
    """Stacks of every thread in the core, and where the crashing thread died."""
    problems: list[str] = []
    tool = _pystack()
    pystack_text = ""
    if tool is not None:
        done = _run([*tool, "core", "--native", str(core), executable])
        if isinstance(done, str):
            problems.append(done)
        elif done.returncode == 0 and "Traceback for thread" in done.stdout:
            frames = crashing_thread(threads(done.stdout), crashed_thread)
            function, python_frame, app = crash_site(frames, app_dir)
            if function or python_frame:
                return Backtrace("pystack", done.stdout, function, python_frame, app, problems)
            # e.g. a crash inside the garbage collector: "Unable to merge native stack"
            problems.append("pystack named no frame of the crashing thread; gdb's stacks follow its output")
            pystack_text = done.stdout
        else:
            problems.append(f"pystack failed: {(done.stderr or done.stdout).strip()[-200:]}")
    else:
        problems.append("pystack is not installed (pip install pystack)")
    trace = gdb_backtrace(core, executable, python_gdb, problems)
    if pystack_text:
        return dataclasses.replace(trace, tool="pystack+gdb", text=f"{pystack_text}\n# gdb\n{trace.text}")
    return trace


def gdb_backtrace(core: Path, executable: str, python_gdb: Path | None, problems: Sequence[str] = ()) -> Backtrace:
    """Every thread's C stack (and Python stack, with the interpreter's gdb script) from a core."""
    problems = list(problems)
    args = ["gdb", "-batch", "-nx"]
    if python_gdb is not None:
        args += ["-ex", f"source {python_gdb}"]
    args += ["-ex", "thread apply all bt"]
    if python_gdb is not None:
        args += ["-ex", "thread apply all py-bt"]
    done = _run([*args, executable, str(core)])
    if isinstance(done, str):
        return Backtrace("none", "", problems=[*problems, done])
    return Backtrace("gdb", done.stdout + done.stderr, gdb_crashing_function(done.stdout), None, None, problems)


_GDB_FRAME = re.compile(r"^#\d+\s+(?:0x[0-9a-f]+ in )?(\S+) \(")


def gdb_crashing_function(text: str) -> str | None:
    """In `thread apply all bt` output: in the first thread that was handling a signal, the frame just
    below its outermost '<signal handler called>' (inner ones are the handlers re-raising it)."""
    blocks = re.split(r"\n(?=Thread \d+ )", text)
    for block in blocks:
        lines = block.splitlines()
        marks = [i for i, line in enumerate(lines) if "<signal handler called>" in line]
        if not marks:
            continue
        for follower in lines[marks[-1] + 1 : marks[-1] + 3]:
            match = _GDB_FRAME.match(follower)
            if match:
                return match[1]
    # No handler ran (no faulthandler, as on 2.7): in a one-thread process frame #0 is where it died.
    zeros = {m[1] for line in text.splitlines() if line.startswith("#0 ") and (m := _GDB_FRAME.match(line))}
    if len(zeros) == 1 and len(set(re.findall(r"^Thread (\d+) ", text, re.MULTILINE))) <= 1:
        return zeros.pop()
    return None


def python_gdb_script(python_executable: str) -> Path | None:
    """The interpreter's own gdb helpers (pyenv and source builds install bin/pythonX.Y-gdb.py)."""
    candidate = Path(python_executable + "-gdb.py")
    return candidate if candidate.is_file() else None


def live_stacks(pid: int) -> tuple[str, str]:
    """(tool, text): every thread of a live process, in every interpreter, Python and C frames."""
    tool = _pystack()
    problems = []
    if tool is not None:
        done = _run([*tool, "remote", "--native", str(pid)])
        if not isinstance(done, str) and done.returncode == 0:
            return "pystack", done.stdout
        problems.append(done if isinstance(done, str) else (done.stderr or done.stdout).strip()[-300:])
    spy = Path(sys.executable).with_name("py-spy")
    done = _run([str(spy) if spy.exists() else "py-spy", "dump", "--full-filenames", "--pid", str(pid)])
    if not isinstance(done, str) and done.returncode == 0:
        return "py-spy", done.stdout
    problems.append(done if isinstance(done, str) else (done.stderr or done.stdout).strip()[-300:])
    return "none", "no stack dump: " + "; ".join(problems)
