"""Fixture: the script raises ImportError while it loads, as a package that refuses sub-interpreters does (PyO3:
"PyO3 modules do not yet support subinterpreters"; psycopg2 built against another libpq)."""

import importlib

importlib.import_module("harness_fixture_module_that_does_not_exist")


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"unreachable\n"]
