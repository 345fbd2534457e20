"""Reading stacks: recorded pystack and gdb output from real cores and a real hung daemon (the same
tools on live servers are tested in test_live_evidence)."""

from __future__ import annotations

from pathlib import Path

from harness import stacks
from harness.evidence import app_frames

DATA = Path(__file__).parent / "data"
DAEMON_APP = "/tmp/mod-wsgi-harness-0/segfault_sigusr1_global-011852-a1e1e7/app"
BLOCK_APP = "/tmp/mod-wsgi-harness-0/block_script-touch_globa-011545-4dd046/app"


def test_daemon_core_names_the_c_function_and_the_python_lines() -> None:
    per_thread = stacks.threads((DATA / "pystack-daemon-core.txt").read_text())
    assert len(per_thread) == 2
    frames = stacks.crashing_thread(per_thread, recorded=None)
    function, python, app = stacks.crash_site(frames, DAEMON_APP)
    assert function is not None and function.startswith("__strlen_evex (")
    assert python == "/usr/lib/python3.11/ctypes/__init__.py:519 in string_at"
    assert app == "app.wsgi:7 in application"


def test_embedded_core_picks_the_thread_in_the_signal_handler_not_the_first() -> None:
    """The kernel recorded the idle main thread first (Apache re-raised the signal with kill())."""
    per_thread = stacks.threads((DATA / "pystack-embedded-core.txt").read_text())
    first = next(iter(per_thread))
    frames = stacks.crashing_thread(per_thread, recorded=first)
    function, _, app = stacks.crash_site(frames, "/tmp/scratch-bt/emb")
    assert function is not None and "strlen" in function
    assert app == "app.wsgi:3 in application"


def test_gdb_fallback_finds_the_frame_below_the_outermost_signal_handler() -> None:
    assert stacks.gdb_crashing_function((DATA / "gdb-embedded-core.txt").read_text()) == "__strlen_evex"


def test_hang_dump_shows_the_blocking_app_line() -> None:
    text = (DATA / "pystack-remote-block.txt").read_text()
    assert app_frames(text, BLOCK_APP) == ["app.wsgi:9 in application"]
