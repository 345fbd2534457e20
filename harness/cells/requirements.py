"""A scenario's requirements, installed for one cell into a folder of their own (cached per set), which
the app gets on its path: the cell stays bare, and two scenarios never share what they installed."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from harness import proc
from harness.cells.build import BUILD_TIMEOUT, Cell, Unsupported, pip_tells_ignored, requirement_exists_nowhere
from harness.cells.cache import locked

_BUILD_LEFTOVERS = {"build", "dist", "__pycache__"}


def fingerprint(requirement: str) -> str:
    """A requirement as part of the cache key: a local path stands for its content, so an edited fixture
    or a newer sdist builds again under the same name."""
    path = Path(requirement)
    if not path.is_absolute() or not path.exists():
        return requirement
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        parts = file.relative_to(path).parts if file != path else ()
        if _BUILD_LEFTOVERS & set(parts) or any(part.endswith(".egg-info") for part in parts):
            continue
        digest.update(str(parts).encode())
        digest.update(file.read_bytes())
    return f"{requirement}@{digest.hexdigest()[:16]}"


def install(cell: Cell, requirements: Sequence[str]) -> Path | Unsupported | None:
    """The folder holding these requirements for this cell; Unsupported when they do not install there
    (a package with no build for that Python), a user error when one exists on no index at all."""
    if not requirements:
        return None
    digest = hashlib.sha256("\n".join(sorted(map(fingerprint, requirements))).encode()).hexdigest()[:12]
    target = Path(cell.env_dir).with_name(Path(cell.env_dir).name + f"-deps-{digest}")
    with locked(target.with_suffix(".lock")):
        if (target / ".complete").is_file():
            return target
        shutil.rmtree(target, ignore_errors=True)
        done = proc.run(
            [
                str(cell.env_python),
                "-m",
                "pip",
                "install",
                "--no-input",
                "--disable-pip-version-check",
                "--target",
                str(target),
                *requirements,
            ],
            timeout=BUILD_TIMEOUT,
        )
        if not done.ok:
            tells = pip_tells_ignored(cell.env_python)
            nowhere = any(
                requirement_exists_nowhere(done.output, r, tells) for r in requirements if not r.startswith("/")
            )
            if nowhere:
                reason = (f"a requirement of {', '.join(requirements)} exists on no package index pip can reach "
                          f"({done.last_line()}); check its name and version")  # fmt: skip
            else:
                reason = f"requirements {', '.join(requirements)} do not install for this cell: {done.last_line()}"
            return Unsupported(reason, done.output or (done.problem or ""), user_error=nowhere)
        (target / ".complete").write_text("")
        return target


def freeze(cell: Cell, site_dirs: Sequence[Path]) -> list[str]:
    """`pip freeze` of the environment the app really ran in: the cell plus its requirement folders."""
    args = [str(cell.env_python), "-m", "pip", "freeze", "--all", "--disable-pip-version-check"]
    lines = proc.run(args, timeout=120).stdout.splitlines()
    for folder in site_dirs:
        lines += proc.run([*args, "--path", str(folder)], timeout=120).stdout.splitlines()
    return sorted(set(lines), key=str.lower)


def refuses(cell: Cell, package: str) -> str | None:
    """pip's last line when it cannot install this one package on its own (no dependencies), else None: a
    hand-in package that is broken in itself, as opposed to one that does not suit this cell's Python."""
    with tempfile.TemporaryDirectory(prefix="harness-handin-") as scratch:
        done = proc.run(
            [str(cell.env_python), "-m", "pip", "install", "--no-input", "--disable-pip-version-check", "--no-deps",
             "--target", scratch, package],
            timeout=BUILD_TIMEOUT,
        )  # fmt: skip
    return None if done.ok else done.last_line()
