"""Pick registered things (mechanisms, layouts) by a comma list of names, or 'all'."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

T = TypeVar("T")


def select(names: str, known: Mapping[str, T], what: str) -> list[T]:
    """The named entries in the order given; ValueError lists the unknown ones and the known ones."""
    if names.strip() == "all":
        return list(known.values())
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise ValueError(f"unknown {what} {', '.join(unknown)} (known: all, {', '.join(known)})")
    return [known[n] for n in wanted]
