"""Fixture: two application groups of one daemon import a Pyrex-shaped extension; only group app-b calls it from
an atexit hook. The group that imports it first runs its init, and its borrowed statics name that group's
interpreter. mod_wsgi destroys the groups in its hash table's order, which is random per daemon process: when
app-a loaded first and is destroyed first, app-b's hook then reads through statics into a freed interpreter (a
crash); when app-b loaded first, the statics name its own interpreter, alive while its hook runs."""

import atexit

import pyrex_pattern

try:
    import mod_wsgi

    GROUP = mod_wsgi.application_group or "%{GLOBAL}"
except (ImportError, AttributeError):
    GROUP = "?"


def _at_shutdown():
    result = pyrex_pattern.describe("atexit")
    if result != "pyrex_pattern 1.0 len=6 widget=widget:atexit":
        raise RuntimeError("group %s: pyrex_pattern answered %r at shutdown" % (GROUP, result))


if GROUP == "app-b":
    atexit.register(_at_shutdown)


def application(environ, start_response):
    body = ("%s %s\n" % (GROUP, pyrex_pattern.describe("probe"))).encode("utf-8")
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
