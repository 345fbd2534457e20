"""Shutdown-time use of a Pyrex-shaped extension from two sub-interpreters of one daemon.

Under the two-groups layout this script runs twice in one daemon process, in the sub-interpreters
app-a (/app) and app-b (/app2). The group that imports pyrex_pattern first runs its init, so the
fixture's borrowed C statics (__pyx_m, __pyx_b) name THAT interpreter's module and builtins; the
other group gets a copy of the module dict and its calls go through the same statics, i.e. into
the first group's interpreter. Both answer right while both interpreters live.

At daemon shutdown mod_wsgi destroys the sub-interpreters one after the other, running each one's
atexit callbacks first. The hook below calls into the fixture then; in the group destroyed second
it reads the first group's module and builtins after that interpreter has been torn down
(freed module, cleared builtins). Each hook writes one line to stderr (the Apache error log) with
its group, what the fixture's statics point at, and the result or the exception, and raises if
any answer is wrong (atexit prints the traceback to the error log); a crash there kills the
daemon with a signal.
"""

import atexit
import os
import sys

import pyrex_pattern

try:
    import mod_wsgi

    GROUP = mod_wsgi.application_group or "%{GLOBAL}"
except (ImportError, AttributeError):
    GROUP = "?"

def _report(text):
    line = "shutdown_atexit[group=%s pid=%d]: %s\n" % (GROUP, os.getpid(), text)
    try:
        sys.stderr.write(line)
        sys.stderr.flush()
    except Exception:
        os.write(2, line.encode("utf-8", "replace"))


def _at_shutdown():
    _report("atexit hook starts; statics %s" % pyrex_pattern.selfcheck())
    wrong = []
    for name, call, expected in (
        ("describe", lambda: pyrex_pattern.describe("atexit"), "pyrex_pattern 1.0 len=6 widget=widget:atexit"),
        ("lookup", lambda: pyrex_pattern.lookup("VERSION"), "pyrex_pattern 1.0"),
        ("count", lambda: pyrex_pattern.count([1, 2, 3]), 3),
    ):
        try:
            result = call()
        except Exception as exc:
            result = "ERROR %s: %s" % (type(exc).__name__, exc)
        _report("%s -> %r" % (name, result))
        if result != expected:
            wrong.append("%s gave %r, expected %r" % (name, result, expected))
    _report("atexit hook done")
    if wrong:
        # An exception in an atexit callback is printed with its traceback to the error log,
        # so a wrong answer at shutdown shows there even where nothing crashes.
        raise RuntimeError("pyrex_pattern misbehaved at shutdown in group %s: %s" % (GROUP, "; ".join(wrong)))


atexit.register(_at_shutdown)


def application(environ, start_response):
    body = (pyrex_pattern.describe("probe") + "\n").encode("utf-8")
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
