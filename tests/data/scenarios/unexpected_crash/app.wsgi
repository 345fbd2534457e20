# A bare WSGI app (Python 2.7 and 3.x) over the pyrex_pattern fixture: no framework, so what the
# driver mechanisms show is the fixture's doing alone. Every call's result, or the exception it
# raised, is one line of the body; the probe compares the whole text.
import pyrex_pattern

LABEL = "plain"


def _line(name, call):
    try:
        value = call()
    except Exception as exc:  # shown in the body, not raised: a wrong answer is the observation
        value = "ERROR %s: %s" % (type(exc).__name__, exc)
    return "%s: %s\n" % (name, value)


def _widget():
    widget = pyrex_pattern.make_widget(LABEL)
    return "%s %s %s" % (type(widget).__name__, widget.kind, widget.label)


def application(environ, start_response):
    body = "".join([
        _line("version", pyrex_pattern.version),
        _line("lookup", lambda: pyrex_pattern.lookup("VERSION")),
        _line("count", lambda: pyrex_pattern.count(("a", "b", "c"))),
        _line("widget", _widget),
        _line("describe", lambda: pyrex_pattern.describe(LABEL)),
    ])
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode("utf-8")]
