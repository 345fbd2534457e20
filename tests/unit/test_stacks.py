"""Reading stacks: recorded pystack and gdb output from real cores and a real hung daemon, parsed into
threads (evidence/frames.py) and read for the culprit and the blocking frame (evidence/signature.py).
The same tools on live servers are tested in tests/live/test_live_evidence.py."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness import proc
from harness.evidence import collector, frames, signature, stacks
from harness.evidence.collector import EvidencePlan, RunEvidence
from harness.evidence.frames import Frame, Thread
from harness.evidence.stacks import Stacks
from tests.conftest import DATA

DAEMON_APP = "/tmp/mod-wsgi-harness-0/segfault_sigusr1_global-011852-a1e1e7/app"
EMBEDDED_APP = "/tmp/scratch-bt/emb"
BLOCK_APP = "/tmp/mod-wsgi-harness-0/block_script-touch_globa-011545-4dd046/app"
CTYPES = "?? in _ctypes.cpython-311-x86_64-linux-gnu.so via ffi_call"
EMBEDDED_MAIN = 14468  # the idle main thread: the one the kernel recorded first in the embedded core
# py-spy's `dump --native --full-filenames` layout (no recorded dump in tests/data: written here by hand)
PYSPY = """Process 16460: apache2 (wsgi:harness) -k start
Python v3.11.2 (/usr/sbin/apache2)

Thread 0x7F3A2B4C5740 (idle): "MainThread"
    PyThread_acquire_lock_timed (thread_pthread.h:483)
    wait (/usr/lib/python3.11/threading.py:320)
    application (/tmp/mod-wsgi-harness-0/block_script-touch_globa-011545-4dd046/app/app.wsgi:9)
Thread 16465 (idle)
    epoll_wait (epoll_wait.c:30)
"""


def read(name: str) -> str:
    return (DATA / name).read_text()


def test_pystack_threads_come_innermost_first_with_their_objects() -> None:
    threads = frames.pystack(read("pystack-daemon-core.txt"))
    assert [t.ident for t in threads] == [18671, 18654]
    crashed = threads[0]
    assert crashed.frames[0] == Frame("C", "__pthread_kill_implementation", "./nptl/pthread_kill.c", 44, "libc.so.6")
    assert crashed.frames[-1].function == "__clone3" and crashed.in_signal_handler
    inlined = next(f for f in crashed.frames if f.function == "wsgi_daemon_worker")  # "(inlined)" is no object
    assert inlined.obj == "mod_wsgi-py311.cpython-311-x86_64-linux-gnu.so"


def test_daemon_core_blames_the_extension_not_libc_and_names_the_python_lines() -> None:
    found = signature.culprit(frames.pystack(read("pystack-daemon-core.txt")), None, DAEMON_APP)
    assert found.thread == 18671
    assert found.describe() == CTYPES  # __strlen_evex is libc's: never the culprit
    assert found.frame is not None and found.frame.obj == "_ctypes.cpython-311-x86_64-linux-gnu.so"
    assert str(found.python_frame) == "/usr/lib/python3.11/ctypes/__init__.py:519 in string_at"
    assert found.app_frame is not None and found.app_frame.within(DAEMON_APP) == "app.wsgi:7 in application"


def test_embedded_core_picks_the_thread_in_the_signal_handler_not_the_recorded_one() -> None:
    """The kernel recorded the idle main thread (Apache re-raised the signal with kill(), which any
    thread may take); the culprit is in the thread that was handling the signal."""
    threads = frames.pystack(read("pystack-embedded-core.txt"))
    faulting = signature.faulting_thread(threads, recorded=EMBEDDED_MAIN)
    assert faulting is not None and faulting.ident == 14489
    found = signature.culprit(threads, EMBEDDED_MAIN, EMBEDDED_APP)
    assert found.describe() == CTYPES
    assert found.app_frame is not None and found.app_frame.within(EMBEDDED_APP) == "app.wsgi:3 in application"
    assert str(found.python_frame).endswith("ctypes/__init__.py:519 in string_at")  # not mod_wsgi's runtime.py


def test_gdb_reads_lwps_the_current_thread_and_the_outermost_signal_handler() -> None:
    threads = frames.gdb(read("gdb-embedded-core.txt"))
    assert [t.ident for t in threads] == [14489, 14494, 14493, 14492, 14491, 14490, 14468]
    assert [t.ident for t in threads if t.current] == [EMBEDDED_MAIN]
    crashed = threads[0]
    handlers = [i for i, f in enumerate(crashed.frames) if f.function in frames.SIGNAL_FRAMES]
    assert handlers == [1, 5]  # Apache's re-raise, then the real fault
    assert crashed.frames[handlers[-1] + 1].function == "__strlen_evex"
    assert crashed.frames[7].obj == "/usr/lib/python3.11/lib-dynload/_ctypes.cpython-311-x86_64-linux-gnu.so"


def test_gdb_and_pystack_give_one_signature_for_one_crash() -> None:
    """The signature groups crashes across cycles and runs, so it must not depend on which tool read the core."""
    by_gdb = signature.culprit(frames.gdb(read("gdb-embedded-core.txt")), EMBEDDED_MAIN, EMBEDDED_APP)
    by_pystack = signature.culprit(frames.pystack(read("pystack-embedded-core.txt")), EMBEDDED_MAIN, EMBEDDED_APP)
    assert by_gdb.thread == by_pystack.thread == 14489
    assert by_gdb.describe() == by_pystack.describe() == CTYPES
    assert by_gdb.python_frame is None  # no python-gdb script was loaded for that dump


def test_hang_dump_shows_the_blocking_app_line_and_the_lock_it_waits_on() -> None:
    threads = frames.pystack(read("pystack-remote-block.txt"))
    stuck = next(t for t in threads if frames.innermost(t, "Python", BLOCK_APP))
    app = frames.innermost(stuck, "Python", BLOCK_APP)
    assert app is not None and app.within(BLOCK_APP) == "app.wsgi:9 in application"
    blocking = signature.blocking_frame(stuck)  # below it: libc's futex and semaphore frames, skipped
    assert (
        blocking is not None and signature.describe(blocking) == "PyThread_acquire_lock_timed in libpython3.11.so.1.0"
    )


def test_a_hung_process_dump_is_written_and_summarised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The collector keeps the whole dump in the run folder and the app line and lock in the record."""
    text = read("pystack-remote-block.txt")
    monkeypatch.setattr(
        collector, "live_stacks", lambda pid, accept, gdb: Stacks("pystack", frames.pystack(text), text)
    )
    plan = EvidencePlan(tmp_path, (), "no cores in unit tests", "/usr/sbin/apache2", "/usr/bin/python3.11", BLOCK_APP)
    (dump,) = RunEvidence(plan).dump_hung(1, {16460}, "cycle 1: no answer from /app/")
    assert dump.app_frames == ("app.wsgi:9 in application",)
    assert dump.native_frames == ("PyThread_acquire_lock_timed in libpython3.11.so.1.0",)
    assert (tmp_path / dump.file).read_text().startswith("# cycle 1: no answer from /app/\n")


def test_pyspy_dump_frames_are_python_or_native_by_their_file() -> None:
    (main, other) = frames.pyspy(PYSPY)
    assert (main.ident, other.ident) == (0x7F3A2B4C5740, 16465)
    assert [(f.kind, f.function) for f in main.frames] == [
        ("C", "PyThread_acquire_lock_timed"),
        ("Python", "wait"),
        ("Python", "application"),
    ]
    app = frames.innermost(main, "Python", BLOCK_APP)
    assert app is not None and app.line == 9


def thread(*frames_: Frame, ident: int = 1) -> Thread:
    return Thread(ident, list(frames_))


def c(function: str, obj: str = "", file: str = "") -> Frame:
    return Frame("C", function, file, 0, obj)


def test_an_abort_is_blamed_on_the_extension_below_libcs_heap_check() -> None:
    aborted = thread(
        c("__pthread_kill_implementation", "/lib/libc.so.6"),
        c("raise", "/lib/libc.so.6"),
        c("abort", "/lib/libc.so.6"),
        c("malloc_printerr", "/lib/libc.so.6"),
        c("_int_free", "/lib/libc.so.6"),
        c("PyObject_Free", "/usr/lib/libpython3.11.so.1.0"),
        c("widget_dealloc", "/site/pyrex_pattern.cpython-311-x86_64-linux-gnu.so"),
        c("_PyEval_EvalFrameDefault", "/usr/lib/libpython3.11.so.1.0"),
    )
    found = signature.culprit([aborted], None, None)
    assert found.describe() == "widget_dealloc in pyrex_pattern.cpython-311-x86_64-linux-gnu.so"


def test_frames_named_only_by_function_or_file_are_judged_without_an_object() -> None:
    """gdb without debug info for an object names no object: the tables still skip libc and CPython."""
    crashed = thread(c("__strlen_avx2"), c("visit_decref", file="Modules/gcmodule.c"), c("my_traverse"))
    assert signature.culprit([crashed], None, None).describe() == "my_traverse"


def test_no_culprit_when_every_frame_is_the_interpreters() -> None:
    assert signature.culprit([thread(c("_PyEval_EvalFrameDefault"), c("main"))], None, None).describe() is None
    assert signature.culprit([], None, None) == signature.Culprit(None, None, None, None)


def test_a_crash_with_no_culprit_outside_the_runtime_is_named_by_the_runtimes_frame() -> None:
    """Recorded: an event-MPM worker (no Python in it) died in APR while the server shut down. No frame is
    anyone else's, so the signature names APR's own frame rather than nothing."""
    threads = frames.gdb(read("gdb-apache-worker-core.txt"))
    found = signature.culprit(threads, 28643, None)
    assert found.describe() is None and found.python_frame is None
    assert found.runtime() == "apr_os_sock_get in libapr-1.so.0"
    abort = thread(c("__pthread_kill_implementation", obj="/lib/libc.so.6"), c("raise", obj="/lib/libc.so.6"),
                   c("fatal_error_exit", obj="/usr/lib/libpython3.11.so.1.0"))  # fmt: skip
    assert signature.culprit([abort], None, None).runtime() == "fatal_error_exit in libpython3.11.so.1.0"


def test_among_several_handling_threads_the_recorded_one_wins() -> None:
    handler = c("<signal handler called>")
    first, second = thread(handler, c("f"), ident=1), thread(handler, c("g"), ident=2)
    assert signature.faulting_thread([first, second], recorded=2) is second
    assert signature.faulting_thread([first, second], recorded=None) is first
    idle, current = thread(c("poll"), ident=3), Thread(4, [c("h")], current=True)
    assert signature.faulting_thread([idle, current], recorded=None) is current


@pytest.fixture
def tools(monkeypatch: pytest.MonkeyPatch) -> dict[str, proc.Done]:
    """Scripted debugger answers by tool name; a tool left out is not installed."""
    answers: dict[str, proc.Done] = {}
    monkeypatch.setattr(stacks, "_tool", lambda name: name if name in answers else None)
    monkeypatch.setattr(shutil, "which", lambda name: name if name in answers else None)
    monkeypatch.setattr(proc, "run", lambda args, timeout, **kw: answers[Path(str(args[0])).name])
    return answers


def names_the_app(threads: list[Thread]) -> str | None:
    return None if any(frames.innermost(t, "Python", BLOCK_APP) for t in threads) else "names no frame of the app"


def test_the_first_tool_that_names_the_app_is_kept(tools: dict[str, proc.Done]) -> None:
    tools["pystack"] = proc.Done(("pystack",), 0, read("pystack-remote-block.txt"))
    found = stacks.live_stacks(16460, names_the_app, None)
    assert (found.tool, found.tried) == ("pystack", ["pystack: used"])
    assert found.text.startswith("# --- pystack ---\n")


def test_a_tool_that_fails_or_warns_hands_over_to_the_next(tools: dict[str, proc.Done]) -> None:
    """pystack before 3.11 warns that it skipped sub-interpreters: its dump may miss the stuck thread."""
    warned = read("pystack-remote-block.txt") + "\nWARNING: pystack can only handle subinterpreters for Python 3.11+\n"
    tools["pystack"] = proc.Done(("pystack",), 0, warned)
    tools["py-spy"] = proc.Done(("py-spy",), None, problem="py-spy took longer than 60s")
    tools["gdb"] = proc.Done(("gdb",), 1, "", "")
    found = stacks.live_stacks(16460, names_the_app, None)
    assert found.tried == [
        "pystack: can only handle subinterpreters",
        "py-spy: py-spy took longer than 60s",  # with --native
        "py-spy: py-spy took longer than 60s",  # without it
        "gdb: exit status 1, no output",
    ]
    assert found.tool == "pystack" and [t.ident for t in found.threads] == [16464, 16460]  # the best there was
    assert found.text.startswith("# --- pystack ---\n") and "# --- gdb ---" in found.text


def test_no_tool_at_all_is_said_not_raised(tools: dict[str, proc.Done]) -> None:
    found = stacks.live_stacks(16460, names_the_app, None)
    assert (found.tool, found.threads) == ("none", [])
    assert found.tried == [
        "pystack: not installed",
        "py-spy: not installed",
        "py-spy: not installed",
        "gdb: not installed",
    ]


def test_gdb_and_py_spy_name_the_same_thread_by_its_pthread() -> None:
    """py-spy names a thread by its pthread_t, gdb by its LWP and pthread_t: the hang dump joins them to
    add the native frame py-spy could not see."""
    (by_gdb,) = frames.gdb(
        "Thread 2 (Thread 0x7f4fb9edd6c0 (LWP 12650)):\n"
        "#0  0x00007f4fbb0a1e96 in __futex_abstimed_wait_common64 () from /lib/x86_64-linux-gnu/libc.so.6\n"
        "#1  0x00007f4fba5c2b0e in PyThread_acquire_lock_timed () at Python/thread_pthread.h:486\n"
    )
    (by_spy,) = frames.pyspy("Thread 0x7F4FB9EDD6C0 (idle)\n    application (/srv/app/app.wsgi:9)\n")
    assert by_gdb.ident == 12650 and by_gdb.pthread == 0x7F4FB9EDD6C0
    assert by_spy.same_as(by_gdb) and by_gdb.same_as(by_spy)
    blocking = signature.blocking_frame(by_gdb)
    assert blocking is not None and blocking.function == "PyThread_acquire_lock_timed"


def test_the_drivers_own_frames_are_never_the_culprit() -> None:
    """gdb names the driver's frames by file alone (its executable has no .so name): an abort in
    Py_EndInterpreter is the runtime's, named by its own frame, not by the harness's code that called it."""
    aborted = thread(
        c("__pthread_kill_implementation", "/lib/libc.so.6"),
        c("fatal_error_exit", file="Python/pylifecycle.c"),
        c("end_interpreter", file="wsgi_driver.c"),
        c("main", file="wsgi_driver.c"),
    )
    found = signature.culprit([aborted], None, None)
    assert found.describe() is None and found.runtime() == "fatal_error_exit"
