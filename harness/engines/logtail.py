"""Read an error_log incrementally, keeping a copy of every line in the run's results as it comes."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from harness.storage import disk_error


class LogTail:
    """New complete lines since the last read; a half-written last line waits for its newline.

    The file stays open between reads (the confirmation loop reads every 50 ms), and each new chunk
    is appended to the mirror at once, so a killed harness still leaves the log in its results.
    """

    def __init__(self, path: Path, mirror: Path | None = None) -> None:
        self.path = path
        self.mirror = mirror
        self._handle: BinaryIO | None = None
        self._partial = b""
        self._finished = False
        self.count = 0  # lines handed out so far: line numbers in the mirror are count-based

    def _new_bytes(self) -> bytes:
        if self._finished:
            return b""
        if self._handle is None:
            try:
                self._handle = open(self.path, "rb")  # noqa: SIM115 - kept open across reads, closed in flush
            except FileNotFoundError:
                return b""
        return self._handle.read()

    def _keep(self, text: str) -> None:
        if self.mirror is not None:
            try:
                with open(self.mirror, "a", encoding="utf-8") as out:
                    out.write(text + "\n")
            except OSError as exc:
                raise disk_error(self.mirror, exc) from None

    def read(self) -> list[str]:
        data = self._partial + self._new_bytes()
        complete, newline, self._partial = data.rpartition(b"\n")
        if not newline:
            return []
        text = complete.decode("utf-8", errors="replace")
        self._keep(text)
        lines = text.split("\n")
        self.count += len(lines)
        return lines

    def flush(self) -> list[str]:
        """Everything left, including a last line with no newline (the server has stopped); later
        reads return nothing, so flushing twice never copies a line twice."""
        lines = self.read()
        if self._partial:
            rest, self._partial = self._partial.decode("utf-8", errors="replace"), b""
            self._keep(rest)
            lines.append(rest)
            self.count += 1
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        self._finished = True
        return lines
