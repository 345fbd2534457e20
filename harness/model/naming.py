"""Pick registered things (mechanisms, layouts) by a comma list of names, or 'all'."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

T = TypeVar("T")


def select(names: str, known: Mapping[str, T], what: str) -> list[T]:
    """The named entries in the order given, each once; ValueError names the unknown or missing ones."""
    if names.strip() == "all":
        return list(known.values())
    wanted = list(dict.fromkeys(n.strip() for n in names.split(",") if n.strip()))
    if not wanted:
        raise ValueError(f"--{what}: no {what} named; give a comma list or 'all' (known: {', '.join(known)})")
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise ValueError(f"--{what}: unknown {what} {', '.join(unknown)} (known: all, {', '.join(known)})")
    return [known[n] for n in wanted]
