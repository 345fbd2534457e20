"""Bisect mod_wsgi releases: the first release where a scenario's verdict changes, by binary search
over the released versions between a good and a bad one, reusing every cell already built."""

from __future__ import annotations

import dataclasses
import json
import re
import sys
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from harness.errors import HarnessError
from harness.session import Selection, run_session

PYPI_JSON = "https://pypi.org/pypi/mod_wsgi/json"
_RELEASE = re.compile(r"^\d+(\.\d+)*$")


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def released_versions(index_url: str = PYPI_JSON) -> list[str]:
    """mod_wsgi's final releases with files on PyPI, oldest first."""
    try:
        with urllib.request.urlopen(index_url, timeout=30) as answer:
            data = json.load(answer)
    except (OSError, ValueError) as exc:
        raise HarnessError(f"cannot read mod_wsgi's releases from {index_url}: {exc}; check access to PyPI") from None
    found = [v for v, files in data.get("releases", {}).items() if files and _RELEASE.match(v)]
    return sorted(found, key=version_key)


def between(versions: Sequence[str], good: str, bad: str) -> list[str]:
    """The releases from good to bad inclusive, in search order (good first), whichever is older."""
    low, high = sorted((good, bad), key=version_key)
    span = [v for v in versions if version_key(low) <= version_key(v) <= version_key(high)]
    for end in (good, bad):
        if end not in span:
            raise HarnessError(f"mod_wsgi {end} is not a release on PyPI; give released versions (e.g. 4.9.4, 6.1.1)")
    return span if span[0] == good else list(reversed(span))


Verdict = Callable[[str], str]


def search(span: Sequence[str], verdict: Verdict) -> tuple[str, str]:
    """(last version with good's verdict, first version with another), probing as few as it can.
    A release whose cell is unsupported is stepped over; when only such releases lie between the two,
    the change is somewhere among them and the answer says which two runnable releases bound it."""
    good_verdict, bad_verdict = verdict(span[0]), verdict(span[-1])
    if good_verdict == bad_verdict:
        raise HarnessError(f"{span[0]} and {span[-1]} both give '{good_verdict}': nothing to bisect")
    low, high = 0, len(span) - 1
    skipped: set[int] = set()
    while True:
        inside = [i for i in range(low + 1, high) if i not in skipped]
        if not inside:
            return span[low], span[high]
        mid = inside[len(inside) // 2]
        result = verdict(span[mid])
        if result == "unsupported":
            skipped.add(mid)
        elif result == good_verdict:
            low = mid
        else:
            high = mid


def run(base: Selection, python: Path | None, good: str, bad: str, folder: Path) -> tuple[str, str, dict[str, str]]:
    """Bisect with real runs, one session per probed release under `folder`."""
    if len(base.specs()) != 1:
        raise HarnessError("bisect needs exactly one scenario, one mechanism and one layout")
    span = between(released_versions(), good, bad)
    print(f"bisecting {len(span)} releases: {', '.join(span)}", file=sys.stderr)
    seen: dict[str, str] = {}

    def verdict(version: str) -> str:
        if version not in seen:
            selection = dataclasses.replace(
                base, python=python, mod_wsgi=version, session_dir=folder / f"modwsgi{version}"
            )
            _, summaries = run_session(selection)
            seen[version] = summaries[0]["verdict"]
            print(f"  mod_wsgi {version}: {seen[version]}", file=sys.stderr)
        return seen[version]

    last_good, first_bad = search(span, verdict)
    return last_good, first_bad, seen
