"""Answers with the mod_wsgi version serving it; the probe accepts only 4.x, so the verdict changes
at the first 5.x release: a known answer for bisect to find."""

import mod_wsgi


def application(environ, start_response):
    body = ("mod_wsgi %s\n" % ".".join(str(part) for part in mod_wsgi.version)).encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]
