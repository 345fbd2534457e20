"""Fixture: every second interpreter of a process crashes on its first request (SIGSEGV). The count lives in
the process's C environment (os.putenv), which every sub-interpreter of the process shares and a fresh
process starts without."""

import ctypes
import os

NUMBER = int(os.environ.get("WH_FIXTURE_INTERPRETERS", "0")) + 1
os.putenv("WH_FIXTURE_INTERPRETERS", str(NUMBER))
os.environ["WH_FIXTURE_INTERPRETERS"] = str(NUMBER)


def application(environ, start_response):
    if NUMBER % 2 == 0:
        ctypes.string_at(0)
    body = ("interpreter %d\n" % NUMBER).encode("ascii")
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
