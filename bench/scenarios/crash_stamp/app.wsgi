"""Bench-only crasher: logs the moment of death, then dies by SIGSEGV (NULL read through ctypes).

The stamp goes straight to file descriptor 2 with os.write: under Apache that is the error_log, under
the embedding driver its stderr (the run's error_log), so it is never left in a buffer when the process
dies a microsecond later. bench/run_benchmarks.py compares it with the cycle's outcome_recorded.
"""

import ctypes
import os
import time


def application(environ, start_response):
    os.write(2, ("BENCH-DEATH pid=%d t=%.6f\n" % (os.getpid(), time.time())).encode("ascii"))
    ctypes.string_at(0)
    body = b"unreachable\n"
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]
