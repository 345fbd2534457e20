"""Private server roots, who owns them, and cleaning up after a harness that was killed.

Every server root sits under one runtime folder with an owner record beside it (written before the
root exists, outside it, so the server user cannot alter it). A root whose owning harness process
is gone is stale: ``clean`` kills every process whose command line names that root's httpd.conf
(the Apache parent, its children and the mod_wsgi daemons all carry ``-f ROOT/httpd.conf``) and
removes the root.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psutil

from harness.places import runtime_dir

OWNER_SUFFIX = ".owner.json"


def _process_start(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


@dataclass(frozen=True)
class Owner:
    root: Path
    harness_pid: int
    harness_started: float

    @property
    def record(self) -> Path:
        return self.root.with_name(self.root.name + OWNER_SUFFIX)

    def alive(self) -> bool:
        started = _process_start(self.harness_pid)
        return started is not None and abs(started - self.harness_started) < 1.0


def claim_root(label: str) -> Owner:
    """A new, not yet created server root, recorded as ours before anything is started in it."""
    token = f"{time.strftime('%H%M%S')}-{uuid.uuid4().hex[:6]}"
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in label)[:24]
    root = runtime_dir() / f"{safe}-{token}"
    me = os.getpid()
    owner = Owner(root=root, harness_pid=me, harness_started=_process_start(me) or 0.0)
    owner.record.write_text(
        json.dumps({"root": str(root), "harness_pid": me, "harness_started": owner.harness_started})
    )
    return owner


def server_processes(root: Path) -> list[psutil.Process]:
    """Every live process of the tree rooted at root: Apache's (its httpd.conf is there) or the
    embedding driver's (its progress file is), found by a command-line argument inside root."""
    needle = f"{root}/"
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(needle in arg for arg in proc.info["cmdline"] or ()):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def kill_tree(root: Path, timeout: float = 5.0) -> int:
    """SIGKILL what is left of a server tree; returns how many processes were found."""
    procs = server_processes(root)
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(procs, timeout=timeout)
    return len(procs)


def release(owner: Owner) -> None:
    shutil.rmtree(owner.root, ignore_errors=True)
    owner.record.unlink(missing_ok=True)


@dataclass(frozen=True)
class CleanReport:
    roots: int
    processes: int
    skipped_live: int


def clean(include_live: bool = False) -> CleanReport:
    """Kill and remove what killed runs left; roots of a live harness are kept unless include_live."""
    base = runtime_dir()
    roots = processes = skipped = 0
    for record in sorted(base.glob(f"*{OWNER_SUFFIX}")):
        try:
            data = json.loads(record.read_text())
            owner = Owner(Path(data["root"]), int(data["harness_pid"]), float(data["harness_started"]))
        except (OSError, ValueError, KeyError):
            owner = Owner(record.with_name(record.name[: -len(OWNER_SUFFIX)]), -1, 0.0)
        if owner.harness_pid == os.getpid() or (owner.alive() and not include_live):
            skipped += 1
            continue
        processes += kill_tree(owner.root)
        release(owner)
        roots += 1
    for orphan in base.iterdir():  # a root whose record was lost
        if orphan.is_dir() and not orphan.with_name(orphan.name + OWNER_SUFFIX).exists():
            processes += kill_tree(orphan)
            shutil.rmtree(orphan, ignore_errors=True)
            roots += 1
    return CleanReport(roots=roots, processes=processes, skipped_live=skipped)
