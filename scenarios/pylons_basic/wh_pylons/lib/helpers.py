"""Helpers made available to templates as ``h``."""
from webhelpers.html import HTML, escape, literal  # noqa: F401
