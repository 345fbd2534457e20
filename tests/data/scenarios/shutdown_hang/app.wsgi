"""Shutdown-hang fixture: from the second daemon on, the app's atexit hook blocks forever, so the
daemon never finishes when Apache tells it to stop; Apache's shutdown timeout has to kill it.

The first daemon (the one the reload replaces) exits normally, so the reload cycle stays clean and
only the stop cycle hangs. Daemons are counted in a file beside the script.
"""

import atexit
import os
import threading

_GENERATION = os.path.join(os.path.dirname(__file__), "generation.txt")


def _next_generation():
    try:
        with open(_GENERATION) as handle:
            seen = int(handle.read() or 0)
    except (OSError, ValueError):
        seen = 0
    with open(_GENERATION, "w") as handle:
        handle.write(str(seen + 1))
    return seen + 1


def _never_finish():
    threading.Event().wait()  # the daemon's shutdown blocks here for good


if _next_generation() >= 2:
    atexit.register(_never_finish)


def application(environ, start_response):
    body = b"hello from mod_wsgi\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
