"""Errors the CLI turns into one line for the user instead of a traceback."""

from __future__ import annotations


class HarnessError(Exception):
    """A problem the user can fix; its message is the whole story, on one line."""


class ScenarioError(HarnessError):
    """A scenario file is malformed: the message names the file, the field and the fix."""

    def __init__(self, path: object, field: str, problem: str, fix: str) -> None:
        super().__init__(f"{path}: field '{field}' {problem}; {fix}")
        self.path = path
        self.field = field
