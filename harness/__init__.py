"""Crash-reproduction harness for Python web apps reloaded under Apache/mod_wsgi."""

__version__ = "0.1.0"
