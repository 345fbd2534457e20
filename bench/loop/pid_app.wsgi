"""The shell loop's app: answers with the pid of the daemon that served the request, so the loop can
tell that a reload really replaced the daemon process (the harness proves the same with daemon pids)."""

import os


def application(environ, start_response):
    body = ("pid=%d\n" % os.getpid()).encode("ascii")
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
