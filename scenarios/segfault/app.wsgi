"""Crash control: the process handling the request dies by SIGSEGV."""

import ctypes


def application(environ, start_response):
    ctypes.string_at(0)  # reads address 0: SIGSEGV, with a faulthandler dump if enabled
    body = b"unreachable\n"
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]
