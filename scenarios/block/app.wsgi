"""Hang control: the request never returns."""

import threading

_never = threading.Event()


def application(environ, start_response):
    _never.wait()  # blocks this request thread for good
    body = b"unreachable\n"
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]
