"""Fixture: an app that must be loaded by a process's main thread (as one that sets up signal handlers or an
event loop at import must be): it says which thread loaded it, and the probe wants the main one. mod_wsgi
preloads in the daemon's main thread; loaded lazily, the first request's thread loads it."""

import threading

LOADED_BY = threading.current_thread().name


def application(environ, start_response):
    body = ("loaded by %s\n" % LOADED_BY).encode("utf-8")
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
