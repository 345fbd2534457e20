"""Read an error_log incrementally, keeping a copy of every line in the run's results as it comes."""

from __future__ import annotations

from pathlib import Path


class LogTail:
    """New complete lines since the last read; a half-written last line waits for its newline."""

    def __init__(self, path: Path, mirror: Path | None = None) -> None:
        self.path = path
        self.mirror = mirror
        self._offset = 0
        self._partial = b""

    def read(self) -> list[str]:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self._offset)
                data = handle.read()
        except FileNotFoundError:
            return []
        self._offset += len(data)
        data = self._partial + data
        complete, newline, self._partial = data.rpartition(b"\n")
        if not newline:
            return []
        text = complete.decode("utf-8", errors="replace")
        if self.mirror is not None:
            with open(self.mirror, "a", encoding="utf-8") as out:
                out.write(text + "\n")
        return text.split("\n")

    def flush(self) -> list[str]:
        """Everything left, including a last line with no newline (the server has stopped)."""
        lines = self.read()
        if self._partial:
            rest, self._partial = self._partial.decode("utf-8", errors="replace"), b""
            if self.mirror is not None:
                with open(self.mirror, "a", encoding="utf-8") as out:
                    out.write(rest + "\n")
            lines.append(rest)
        return lines
