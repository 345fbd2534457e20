"""Errors the CLI turns into one line for the user instead of a traceback."""

from __future__ import annotations

# What str.splitlines() breaks a line at: none of these may reach a one-line message unescaped.
_LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


def one_line(text: str) -> str:
    """`text` with every line break escaped as Python would write it (a key or a regex from a file can hold one)."""
    return "".join(repr(ch)[1:-1] if ch in _LINE_BREAKS else ch for ch in text)


class HarnessError(Exception):
    """A problem the user can fix; its message is the whole story, on one line."""


class ScenarioError(HarnessError):
    """A scenario file is malformed: the message names the file, the field and the fix."""

    def __init__(self, path: object, field: str, problem: str, fix: str) -> None:
        field = one_line(field)
        super().__init__(one_line(f"{path}: field '{field}' {problem}; {fix}"))
        self.path = path
        self.field = field
