"""Bisect mod_wsgi releases: the first release where a scenario's verdict changes, by binary search over
the released versions between a good and a bad one, reusing every cell already built."""

from __future__ import annotations

import json
import sys
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from packaging.version import InvalidVersion, Version

from harness.errors import HarnessError
from harness.model.outcome import Outcome
from harness.model.spec import RunSpec
from harness.run.session import SessionPlan, run_session

PYPI_JSON = "https://pypi.org/pypi/mod_wsgi/json"


def released_versions(index_url: str = PYPI_JSON) -> list[str]:
    """mod_wsgi's final releases with files on PyPI, oldest first."""
    try:
        with urllib.request.urlopen(index_url, timeout=30) as answer:
            data = json.load(answer)
    except (OSError, ValueError) as exc:
        raise HarnessError(f"cannot read mod_wsgi's releases from {index_url}: {exc}; check access to PyPI") from None
    found = []
    for text, files in data.get("releases", {}).items():
        try:
            version = Version(text)
        except InvalidVersion:
            continue
        if files and not version.is_prerelease and not version.is_devrelease:
            found.append(text)
    return sorted(found, key=Version)


def between(versions: Sequence[str], good: str, bad: str) -> list[str]:
    """The releases from good to bad inclusive, in search order (good first), whichever is older."""
    try:
        low, high = sorted((Version(good), Version(bad)))
    except InvalidVersion as exc:
        raise HarnessError(f"--good/--bad: {exc}; give released versions (e.g. 4.9.4, 6.1.1)") from None
    span = [v for v in versions if low <= Version(v) <= high]
    for end in (good, bad):
        if end not in span:
            raise HarnessError(f"mod_wsgi {end} is not a release on PyPI; give released versions (e.g. 4.9.4, 6.1.1)")
    return span if span[0] == good else list(reversed(span))


Verdict = Callable[[str], Outcome]


def search(span: Sequence[str], verdict: Verdict) -> tuple[str, str]:
    """(last version with good's verdict, first version with another), probing as few as it can. A release
    whose cell is unsupported is stepped over; when only such releases lie between the two, the answer
    says which two runnable releases bound the change."""
    good_verdict, bad_verdict = verdict(span[0]), verdict(span[-1])
    if good_verdict is bad_verdict:
        raise HarnessError(f"{span[0]} and {span[-1]} both give '{good_verdict.value}': nothing to bisect")
    low, high = 0, len(span) - 1
    skipped: set[int] = set()
    while True:
        inside = [i for i in range(low + 1, high) if i not in skipped]
        if not inside:
            return span[low], span[high]
        mid = inside[len(inside) // 2]
        result = verdict(span[mid])
        if result is Outcome.UNSUPPORTED:
            skipped.add(mid)
        elif result is good_verdict:
            low = mid
        else:
            high = mid


def run(base: RunSpec, good: str, bad: str, folder: Path) -> tuple[str, str, dict[str, Outcome]]:
    """Bisect with real runs, one session per probed release under `folder`."""
    span = between(released_versions(), good, bad)
    print(f"bisecting {len(span)} releases: {', '.join(span)}", file=sys.stderr)
    seen: dict[str, Outcome] = {}

    def verdict(version: str) -> Outcome:
        if version not in seen:
            spec = replace(base, cell=replace(base.cell, mod_wsgi=version, mod_wsgi_version=None))
            _, record = run_session(SessionPlan((spec,), folder, jobs=1, session_dir=folder / f"modwsgi{version}"))
            seen[version] = record.runs[0].verdict
            print(f"  mod_wsgi {version}: {seen[version].value}", file=sys.stderr)
        return seen[version]

    last_good, first_bad = search(span, verdict)
    return last_good, first_bad, seen
