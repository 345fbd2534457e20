"""Fixture: answers every request right, and dies by SIGSEGV in an atexit hook when its process stops, with
faulthandler turned off first, so no line in the log says so: only the process's exit status and its core."""

import atexit
import ctypes
import faulthandler


def _die_silently():
    faulthandler.disable()
    ctypes.string_at(0)


atexit.register(_die_silently)


def application(environ, start_response):
    body = b"fine until the stop\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
