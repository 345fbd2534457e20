"""Fixture: two interpreters serving at the same time take two file locks in opposite orders (ABBA).

The first interpreter to load the app (it creates the role file) takes lock A, then B; the second (the file is
there) takes B, then A, and removes the role file for the next pair. flock() conflicts between two opens of a file
even within one process, and waits with the GIL released, so two interpreters serving at once deadlock for good;
one interpreter alone never waits.
"""

import fcntl
import os
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROLE = os.path.join(HERE, "first-loaded")

try:
    os.close(os.open(ROLE, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    ORDER = ("lock-a", "lock-b")
except OSError:  # the other interpreter of the pair loaded first
    ORDER = ("lock-b", "lock-a")
    try:
        os.unlink(ROLE)
    except OSError:
        pass


def _take(name):
    handle = open(os.path.join(HERE, name), "a")
    fcntl.flock(handle, fcntl.LOCK_EX)  # the second interpreter of the pair waits here forever
    return handle


def application(environ, start_response):
    first = _take(ORDER[0])
    time.sleep(0.3)  # both hold their first lock before either asks for its second
    second = _take(ORDER[1])
    second.close()
    first.close()
    body = b"locked in order\n"
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]
