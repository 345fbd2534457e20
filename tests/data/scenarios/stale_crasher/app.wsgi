"""Clean control: answers a fixed body and touches nothing outside pure Python."""


def application(environ, start_response):
    body = b"hello from mod_wsgi\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
