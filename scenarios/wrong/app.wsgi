"""Wrong-answer control: a healthy 200 with the wrong body."""


def application(environ, start_response):
    body = b"goodbye from mod_wsgi\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
