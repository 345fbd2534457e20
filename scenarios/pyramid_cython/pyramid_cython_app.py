"""Pyramid views that call into the cython_single_phase fixture on every request.

cython_single_phase (scenarios/fixtures/cython_single_phase) is a Cython module built with
multi-phase init turned off: its module, module dict, builtins module and cached builtins are C
statics set by PyInit, once per process. A later sub-interpreter gets either a copy of the
first one's module dict (whose functions still read the first interpreter's globals) or, once
the first interpreter has ended, the first interpreter's own module object handed back by
Cython's re-import guard. The view renders every call's result (or the exception it raised) as
one line of fixed text, so a misbehaving fixture shows up as a wrong body; a crash kills the
process.
"""

import cython_single_phase
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
    widget = cython_single_phase.make_widget(LABEL)
    return "%s %s %s" % (type(widget).__name__, widget.kind, widget.label)


def fixture_view(request):
    body = "".join(
        [
            _line("version", cython_single_phase.version),
            _line("count", lambda: cython_single_phase.count(("a", "b", "c"))),
            _line("widget", _widget),
            _line("register", lambda: cython_single_phase.register(LABEL)),
            _line("describe", lambda: cython_single_phase.describe(LABEL)),
        ]
    )
    return Response(body, content_type="text/plain", charset="utf-8")


def main(global_config, **settings):
    config = Configurator(settings=settings)
    config.add_route("fixture", "/")
    config.add_view(fixture_view, route_name="fixture")
    return config.make_wsgi_app()
