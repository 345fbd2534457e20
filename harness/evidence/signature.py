"""Crash signatures: which frame of a crashed thread is to blame, and one string that groups crashes.

The innermost frames of a crashed thread are rarely the culprit: a thread that called abort() shows
libc's kill and raise, glibc's heap checks, Python's fatal-error path; a segfault inside the garbage
collector shows libpython's traversal. As Mozilla's crash-stats (Socorro) does, a small table lists
what is never the signature (the C library, the loader, the interpreter, Apache, mod_wsgi, their
signal and abort paths) and what only leads to the next frame (call trampolines such as libffi); the
culprit is the innermost frame left. The signature is that frame and the signal: "6 crashes, 1
signature" across cycles and runs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from harness.evidence.frames import SIGNAL_FRAMES, Frame, Thread

# Shared objects whose frames never name the culprit (matched on the file name).
NEVER_OBJECTS = re.compile(
    r"^(?:libc[.-]|libc\.so|ld-linux|ld64|libpthread|libm[.-]|libdl[.-]|librt[.-]|libgcc_s|libstdc\+\+"
    r"|libpython\d|python\d(?:\.\d+)?$|apache2$|httpd$|mod_wsgi|libapr-|libaprutil-|mod_mpm_|wsgi_driver$)"
)
# Functions that never name the culprit wherever they are (signal delivery, abort and heap checks,
# the interpreter's fatal-error and evaluation machinery), for tools that do not say the object.
NEVER_FUNCTIONS = re.compile(
    r"^(?:__restore_rt|<signal handler called>|raise|abort|__GI_\w+|__pthread_kill\w*|pthread_kill\w*"
    r"|__libc_\w+|malloc_printerr|_int_free\w*|_int_malloc|__libc_message\w*|__fortify_fail|__stack_chk_fail"
    r"|__assert_fail\w*|__strlen\w*|__memcpy\w*|__memmove\w*|__strcmp\w*|__memset\w*|__strcpy\w*|__futex\w*"
    r"|_?Py\w+|_PyEval\w*|fatal_error\w*|faulthandler\w*|visit_\w+|subtract_refs|update_refs|move_unreachable"
    r"|gc_collect\w*|collect\w*|deduce_unreachable|cfunction_\w+|method_vectorcall\w*|slot_tp_\w+|call_\w+"
    r"|builtin_\w+|_start|main|start_thread|clone3?|ap_\w+|apr_\w+|wsgi_\w+|Adapter_\w+)$"
)
# Source files of the C library and of CPython itself, for frames a tool names only by file.
NEVER_FILES = re.compile(
    r"^(?:\.\./sysdeps/|\./(?:nptl|stdlib|malloc|string|signal|posix|libio|csu)/|Objects/|Python/|Modules/gcmodule\.c|Include/"
    r"|(?:.*/)?wsgi_driver\.c$|src/server/(?:mod_wsgi|wsgi_\w+)\.c$)"  # the harness's driver, mod_wsgi's sources
)
# Trampolines: they only lead to the frame they call, which is the one to name.
LEADS_ON = re.compile(r"^(?:libffi)")


@dataclass(frozen=True)
class Culprit:
    frame: Frame | None
    python_frame: Frame | None
    app_frame: Frame | None
    thread: int | None
    caller: Frame | None = None  # the nearest named frame that called an unnamed culprit
    runtime_frame: Frame | None = None  # no culprit: the innermost named frame of the runtime itself

    def runtime(self) -> str | None:
        """Where a crash with no culprit outside the runtime happened (an Apache worker at shutdown, the
        interpreter's own code): named rather than left without a signature."""
        return describe(self.runtime_frame) if self.frame is None and self.runtime_frame is not None else None

    def describe(self) -> str | None:
        if self.frame is None:
            return None
        text = describe(self.frame)
        if not self.frame.named and self.caller is not None:
            text += f" via {self.caller.function}"
        return text


def _object_name(frame: Frame) -> str:
    return frame.obj.rsplit("/", 1)[-1] if frame.obj else ""


def never(frame: Frame) -> bool:
    """A frame that is never the culprit: signal and abort paths, libc, the loader, Python, Apache, mod_wsgi."""
    if frame.kind != "C":
        return True
    name = _object_name(frame)
    if name:
        return bool(NEVER_OBJECTS.match(name)) or bool(LEADS_ON.match(name))
    if frame.function in SIGNAL_FRAMES or NEVER_FUNCTIONS.match(frame.function):
        return True
    return bool(frame.file and NEVER_FILES.match(frame.file))


def describe(frame: Frame) -> str:
    """function (file:line) in object.so; an unnamed function is named by its object."""
    name = _object_name(frame)
    if not frame.named:
        return f"?? in {name}" if name else "??"
    where = f" ({frame.file.rsplit('/', 1)[-1]}:{frame.line})" if frame.file and frame.line else ""
    return f"{frame.function}{where}" + (f" in {name}" if name else "")


def faulting_thread(threads: Sequence[Thread], recorded: int | None) -> Thread | None:
    """The thread that was handling the signal (or called abort): not always the one a core records
    first, since Apache re-raises the signal with kill(), which any thread may take."""
    handling = [t for t in threads if t.in_signal_handler]
    if len(handling) == 1:
        return handling[0]
    if handling:  # several: the one the core names, else the first
        return next((t for t in handling if t.ident == recorded), handling[0])
    if recorded is not None:
        found = next((t for t in threads if t.ident == recorded), None)
        if found is not None:
            return found
    return next((t for t in threads if t.current), threads[0] if threads else None)


def culprit(threads: Sequence[Thread], recorded: int | None, app_dir: str | None) -> Culprit:
    thread = faulting_thread(threads, recorded)
    if thread is None:
        return Culprit(None, None, None, None)
    frames = thread.frames
    # Below the outermost signal-handler frame are the frames that were running when the signal came
    # (inner handler frames are Apache re-raising it to dump core).
    marks = [i for i, f in enumerate(frames) if f.function in SIGNAL_FRAMES]
    running = frames[marks[-1] + 1 :] if marks else frames
    native = [f for f in running if f.kind == "C"]
    chosen = next((f for f in native if not never(f)), None)
    python = next((f for f in running if f.kind == "Python"), None)
    app = next((f for f in running if f.kind == "Python" and app_dir and f.file.startswith(app_dir)), None)
    caller = None
    if chosen is not None and not chosen.named:
        caller = next((f for f in native[native.index(chosen) + 1 :] if f.named), None)
    runtime = None
    if chosen is None:
        runtime = next((f for f in native if f.named and not _in_c_library(f)), None)
    return Culprit(chosen, python, app, thread.ident, caller, runtime)


def _in_c_library(frame: Frame) -> bool:
    """The C library's and the loader's own frames, and the signal and abort paths in any object."""
    name = _object_name(frame)
    if name and _LIBC_OBJECTS.match(name):
        return True
    if frame.function in SIGNAL_FRAMES or _C_LIBRARY_PATHS.match(frame.function):
        return True
    return bool(frame.file and frame.file.startswith(("../sysdeps/", "./nptl/", "./stdlib/", "./malloc/")))


_C_LIBRARY_PATHS = re.compile(
    r"^(?:__restore_rt|raise|abort|__GI_\w+|__pthread_kill\w*|pthread_kill\w*|__libc_\w+|malloc_printerr"
    r"|_int_free\w*|_int_malloc|__fortify_fail|__stack_chk_fail|__assert_fail\w*|_start|start_thread|clone3?)$"
)


_LIBC_OBJECTS = re.compile(r"^(?:libc[.-]|libc\.so|ld-linux|ld64|libpthread)")
_LIBC_FUNCTIONS = re.compile(
    r"^(?:__\w+|pthread_\w+|sem_\w+|futex\w*|poll|select|epoll_\w+|read|write|recv\w*|accept\w*|nanosleep"
    r"|clock_nanosleep\w*|syscall|\?\?\??)$"
)


def blocking_frame(thread: Thread) -> Frame | None:
    """Where a stuck thread waits: its innermost named C frame outside the C library (take_gil,
    PyThread_acquire_lock_timed, a package's own lock)."""
    for frame in thread.frames:
        if frame.kind != "C" or not frame.named:
            continue
        name = _object_name(frame)
        if (name and _LIBC_OBJECTS.match(name)) or (not name and _LIBC_FUNCTIONS.match(frame.function)):
            continue
        if frame.file and NEVER_FILES.match(frame.file) and frame.file.startswith(("../sysdeps/", "./nptl/")):
            continue
        return frame
    return None
