"""Flaky control: every second request to this app crashes its process (SIGSEGV).

Requests are counted in a file beside the script, across processes, so the crashes alternate
between reload cycles whatever the mechanism does: a run of several reloads is crashed on about
half of them, which is what a flaky verdict looks like.
"""

import ctypes
import os

_COUNTER = os.path.join(os.path.dirname(__file__), "requests.txt")


def _count_request():
    try:
        with open(_COUNTER) as handle:
            seen = int(handle.read() or 0)
    except (OSError, ValueError):
        seen = 0
    with open(_COUNTER, "w") as handle:
        handle.write(str(seen + 1))
    return seen + 1


def application(environ, start_response):
    number = _count_request()
    if number % 2 == 0:
        ctypes.string_at(0)
    body = b"request %d\n" % number
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]
