"""The version matrix: the same runs in every cell (interpreter x mod_wsgi x Apache), all in one session
so cells run side by side, and a deterministic split of it into shards for several machines."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from harness.cells.apache import ApacheInfo
from harness.cells.build import PythonInfo
from harness.cells.setup import cell_spec
from harness.errors import HarnessError
from harness.model.spec import CellSpec, RunSpec

DEFAULT_MOD_WSGI = ("4.9.4", "5.0.2", "6.1.1")


def cells(pythons: Sequence[PythonInfo], mod_wsgi: Sequence[str], apaches: Sequence[ApacheInfo]) -> list[CellSpec]:
    return [cell_spec(p, v, a) for a in apaches for p in pythons for v in mod_wsgi]


def parse_shard(text: str) -> tuple[int, int]:
    """'2/3' -> (2, 3); one line naming the option otherwise."""
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise HarnessError(f"--shard {text}: give K/N, e.g. 2/3") from None
    if not 1 <= k <= n <= 1000:
        raise HarnessError(f"--shard {text}: K must be from 1 to N (N at most 1000)")
    return k, n


def shard_of(spec: RunSpec, n: int) -> int:
    """Which of n shards a run belongs to (1-based): a hash of what it is, the same on every machine."""
    key = f"{spec.cell.label}|{spec.run_id}"
    return int(hashlib.sha256(key.encode()).hexdigest(), 16) % n + 1


def shard(specs: Sequence[RunSpec], k: int, n: int) -> list[RunSpec]:
    return [s for s in specs if shard_of(s, n) == k]
