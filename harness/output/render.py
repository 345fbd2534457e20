"""The jinja2 environments of the output: HTML with every value escaped, and plain text (Markdown, shell) where
the caller quotes what it puts in."""

from __future__ import annotations

import jinja2

HTML = jinja2.Environment(
    loader=jinja2.PackageLoader("harness.output", "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=jinja2.StrictUndefined,
)
TEXT = jinja2.Environment(
    loader=jinja2.PackageLoader("harness.output", "templates"),
    autoescape=False,  # Markdown and shell: every value that reaches a shell is quoted by the caller
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    undefined=jinja2.StrictUndefined,
)
