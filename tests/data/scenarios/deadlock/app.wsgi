"""Fixture: a real deadlock. A thread started at load takes a lock and then waits for an event that only a
request would set after taking the same lock: every request blocks on the lock for good."""

import threading

_lock = threading.Lock()
_held = threading.Event()
_release = threading.Event()


def _holder():
    with _lock:
        _held.set()
        _release.wait()


threading.Thread(target=_holder, name="lock-holder", daemon=True).start()
_held.wait()


def application(environ, start_response):
    with _lock:  # never granted: the holder waits for _release, which only this line's caller would set
        _release.set()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"unreachable\n"]
