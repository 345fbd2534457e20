"""Stacks as data: the text of pystack, gdb and py-spy turned into threads of frames, innermost first.

Each tool prints differently; the rest of the harness (crash signatures, hang summaries) reads only
these records, so a fourth tool would need a parser here and nothing else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Frame:
    kind: str  # "C" or "Python"
    function: str  # "??" when the tool could not name it
    file: str = ""
    line: int = 0
    obj: str = ""  # the shared object (or executable) holding a C frame, when the tool says

    @property
    def named(self) -> bool:
        return self.function not in ("", "??", "???")

    def within(self, folder: str) -> str:
        """As text, a file under `folder` named relative to it (the app's folder in a throwaway root), and
        an installed module's by its import path (webob/request.py), which is the same on every machine."""
        if folder and self.file.startswith(folder):
            file = self.file[len(folder) :].lstrip("/")
        else:
            file = _INSTALLED.sub("", self.file)
        return str(Frame(self.kind, self.function, file, self.line, self.obj))

    def __str__(self) -> str:
        if self.kind == "Python":
            return f"{self.file}:{self.line} in {self.function}"
        where = f" ({self.file}:{self.line})" if self.file and self.line else ""
        lib = f" in {self.obj.rsplit('/', 1)[-1]}" if self.obj else ""
        return f"{self.function}{where}{lib}"


# Where installed modules live: a site-packages folder, or the harness's requirement folders (-deps-HASH/).
_INSTALLED = re.compile(r"^.*/(?:site-packages|dist-packages|[^/]+-deps-[0-9a-f]+)/")


@dataclass
class Thread:
    ident: int
    frames: list[Frame] = field(default_factory=list)  # innermost first
    current: bool = False  # the tool says this thread was the one running (gdb's "Current thread")
    pthread: int | None = None  # its pthread_t, which py-spy names a thread by (gdb shows both)

    def same_as(self, other: Thread) -> bool:
        """The same OS thread in two tools' dumps: by LWP, or by pthread_t (py-spy's hex ident)."""
        return (
            self.ident == other.ident
            or (self.pthread is not None and self.pthread == other.ident)
            or (other.pthread is not None and other.pthread == self.ident)
        )

    @property
    def in_signal_handler(self) -> bool:
        return any(f.function in SIGNAL_FRAMES for f in self.frames)


SIGNAL_FRAMES = frozenset({"__restore_rt", "<signal handler called>"})

_PYSTACK_THREAD = re.compile(r"^Traceback for thread (\d+)")
_PYSTACK_FRAME = re.compile(
    r'^\s*\((C|Python)\) File "([^"]*)", line (\d+), in (\S+)(?: \(inlined\))?(?: \(([^()]*)\))?\s*$'
)


def pystack(text: str) -> list[Thread]:
    """`pystack core/remote --native` output. pystack prints outermost first; reversed here."""
    threads: list[Thread] = []
    for line in text.splitlines():
        head = _PYSTACK_THREAD.match(line)
        if head:
            threads.append(Thread(int(head[1])))
            continue
        frame = _PYSTACK_FRAME.match(line)
        if frame and threads:
            kind, file, number, function, obj = frame.groups()
            if kind == "C" and not obj and ".so" in file:
                obj = file  # pystack names an object it has no debug info for in place of the file
            threads[-1].frames.append(Frame(kind, function, file, int(number), obj or ""))
    for thread in threads:
        thread.frames.reverse()
    return threads


_GDB_THREAD = re.compile(r"^Thread (\d+) \(.*?(?:LWP (\d+))?\)\)?:")
_GDB_PTHREAD = re.compile(r"^Thread \d+ \(Thread (0x[0-9a-f]+) ")
_GDB_FRAME = re.compile(
    r"^#\d+\s+(?:0x(?P<address>[0-9a-f]+) in )?(?P<function>\S+|<signal handler called>)"
    r"(?: \(.*?\))?(?: at (?P<file>\S+?):(?P<line>\d+))?(?: from (?P<obj>\S+))?\s*$"
)
_GDB_PYTHON = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<function>\S+)')
_GDB_CURRENT = re.compile(r"^\[Current thread is \d+ \(.*?LWP (\d+)\)\)\]")


_GDB_LIBRARY = re.compile(r"^(?:0x([0-9a-f]+))\s+(?:0x([0-9a-f]+))\s+\S+\s+(?:\(\*\)\s+)?(/\S+)\s*$")


def _libraries(text: str) -> list[tuple[int, int, str]]:
    """`info sharedlibrary`: (from, to, path) of each object's text, to name the object of a frame gdb names
    only by its source file (an extension built with debug info)."""
    found = []
    for line in text.splitlines():
        match = _GDB_LIBRARY.match(line.strip())
        if match:
            found.append((int(match[1], 16), int(match[2], 16), match[3]))
    return found


def gdb(text: str) -> list[Thread]:
    """`thread apply all bt` (+ `thread apply all py-bt`) output: C frames innermost first, and the Python
    frames py-bt printed for the same thread after them (also innermost first)."""
    libraries = _libraries(text)
    by_lwp: dict[int, Thread] = {}
    order: list[Thread] = []
    current_lwp = None
    thread: Thread | None = None
    for line in text.splitlines():
        current = _GDB_CURRENT.match(line)
        if current:
            current_lwp = int(current[1])
            continue
        head = _GDB_THREAD.match(line)
        if head:
            lwp = int(head[2] or head[1])
            thread = by_lwp.get(lwp)
            if thread is None:
                pthread = _GDB_PTHREAD.search(line)
                thread = by_lwp[lwp] = Thread(lwp, pthread=int(pthread[1], 16) if pthread else None)
                order.append(thread)
            continue
        if thread is None:
            continue
        frame = _GDB_FRAME.match(line)
        if frame and line.startswith("#"):
            obj = frame["obj"] or ""
            if not obj and frame["address"]:
                address = int(frame["address"], 16)
                obj = next((path for low, high, path in libraries if low <= address < high), "")
            thread.frames.append(Frame("C", frame["function"], frame["file"] or "", int(frame["line"] or 0), obj))
            continue
        python = _GDB_PYTHON.match(line)
        if python:
            thread.frames.append(Frame("Python", python["function"], python["file"], int(python["line"])))
    for thread in order:
        thread.current = thread.ident == current_lwp
    return order


_SPY_THREAD = re.compile(r"^Thread (0x[0-9A-Fa-f]+|\d+)")
_SPY_FRAME = re.compile(r"^\s+(?P<function>\S.*?) \((?P<file>[^()]+?):(?P<line>\d+)\)\s*$")


def pyspy(text: str) -> list[Thread]:
    """`py-spy dump [--native]` output: frames innermost first, as py-spy prints them."""
    threads: list[Thread] = []
    for line in text.splitlines():
        head = _SPY_THREAD.match(line)
        if head:
            ident = int(head[1], 16) if head[1].startswith("0x") else int(head[1])
            threads.append(Thread(ident))
            continue
        frame = _SPY_FRAME.match(line)
        if frame and threads:
            file = frame["file"]
            native = not file.endswith((".py", ".wsgi")) and "/" not in file[:1]
            threads[-1].frames.append(Frame("C" if native else "Python", frame["function"], file, int(frame["line"])))
    return threads


def innermost(thread: Thread, kind: str, under: str | None = None) -> Frame | None:
    for frame in thread.frames:
        if frame.kind == kind and (under is None or frame.file.startswith(under)):
            return frame
    return None
