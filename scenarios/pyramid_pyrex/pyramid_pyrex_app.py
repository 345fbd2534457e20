"""Pyramid views that call into the pyrex_pattern fixture on every request.

pyrex_pattern (scenarios/fixtures/pyrex_pattern) is a C extension shaped like Pyrex output:
single-phase init, the module and the builtins module kept as BORROWED C statics and read on
every call. Where a second sub-interpreter in the process imports it, its calls go through the
statics of the interpreter that first imported it; once that interpreter is gone they read
freed or cleared objects. The view renders every call's result (or the exception it raised)
as one line of fixed text, so a misbehaving fixture shows up as a wrong body; a crash kills the
process.
"""

import pyrex_pattern
from pyramid.config import Configurator
from pyramid.response import Response

LABEL = "pyramid"


def _line(name, call):
    try:
        value = call()
    except Exception as exc:  # shown in the body: the probe compares text
        value = "ERROR %s: %s" % (type(exc).__name__, exc)
    return "%s: %s\n" % (name, value)


def _widget():
    widget = pyrex_pattern.make_widget(LABEL)
    return "%s %s %s" % (type(widget).__name__, widget.kind, widget.label)


def fixture_view(request):
    body = "".join(
        [
            _line("version", pyrex_pattern.version),
            _line("lookup", lambda: pyrex_pattern.lookup("VERSION")),
            _line("count", lambda: pyrex_pattern.count(("a", "b", "c"))),
            _line("widget", _widget),
            _line("register", lambda: pyrex_pattern.register(LABEL)),
            _line("describe", lambda: pyrex_pattern.describe(LABEL)),
        ]
    )
    return Response(body, content_type="text/plain", charset="utf-8")


def main(global_config, **settings):
    config = Configurator(settings=settings)
    config.add_route("fixture", "/")
    config.add_view(fixture_view, route_name="fixture")
    return config.make_wsgi_app()
