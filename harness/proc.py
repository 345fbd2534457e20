"""One way to run a helper program (pip, gcc, gdb, pystack, apxs...): a timeout always, never a shell,
and a result that says what went wrong instead of raising for a missing tool or a slow one."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Done:
    args: tuple[str, ...]
    returncode: int | None  # None: it never ran to the end (see problem)
    stdout: str = ""
    stderr: str = ""
    problem: str | None = None  # "not installed", "took longer than 60s", an OSError

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def last_line(self, limit: int = 200) -> str:
        """The last non-empty line of stderr (else stdout), or the problem: pip's or gcc's own reason."""
        if self.problem is not None:
            return self.problem
        for text in (self.stderr, self.stdout):
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            if lines:
                return lines[-1][:limit]
        return f"exit status {self.returncode}, no output"


def run(
    args: Sequence[str | Path],
    timeout: float,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    **popen: Any,
) -> Done:
    argv = tuple(str(a) for a in args)
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            **popen,
        )
    except FileNotFoundError:
        return Done(argv, None, problem=f"{Path(argv[0]).name} is not installed")
    except subprocess.TimeoutExpired:
        return Done(argv, None, problem=f"{Path(argv[0]).name} took longer than {timeout:.0f}s")
    except OSError as exc:
        return Done(argv, None, problem=f"{Path(argv[0]).name} cannot run: {exc.strerror or exc}")
    return Done(argv, done.returncode, done.stdout, done.stderr)
