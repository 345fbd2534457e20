# Ends its own process while being loaded, with status 0 and no signal: a run must never call that clean.
import os

os._exit(0)


def application(environ, start_response):  # never reached
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"unreachable\n"]
