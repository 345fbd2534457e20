"""Apache from PyPI: the mod-wsgi-httpd package, which builds an httpd (with APR, APR-util and PCRE2 from the
sources its sdist carries) into a Python package. No system packages and no root are needed, and any of its
releases can sit beside Debian's: each is an Apache axis value, "bundled:2.4.69".

The build takes minutes, so it happens once per httpd release: the sdist is unpacked into the cache and set
up once there (its setup.py builds httpd at import and marks the build done), and each cell then gets a
wheel made from that tree for its own Python in seconds (only a tiny extension module is compiled) and
installs it before mod_wsgi, whose setup finds the bundled Apache through ``mod_wsgi_packages.httpd``.
"""

from __future__ import annotations

import glob
import hashlib
import json
import shutil
import sys
import tarfile
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from harness import proc
from harness.cells.apache import ApacheInfo
from harness.cells.cache import folder, locked
from harness.errors import HarnessError

PACKAGE = "mod-wsgi-httpd"
PYPI_JSON = "https://pypi.org/pypi/mod-wsgi-httpd/json"
BUILD_TIMEOUT = 1800
ORIGIN = "bundled"


def _releases() -> dict[Version, dict[str, Any]]:
    """mod-wsgi-httpd's releases on PyPI with their sdist (url, sha256). pip cannot be asked for the sdist alone:
    preparing its metadata runs its setup.py, which builds all of httpd."""
    try:
        with urllib.request.urlopen(PYPI_JSON, timeout=60) as answer:
            data = json.load(answer)
    except (OSError, ValueError) as exc:
        raise HarnessError(f"--apache bundled: cannot read {PACKAGE}'s releases from {PYPI_JSON} ({exc}); check access "
                           "to PyPI") from None  # fmt: skip
    found = {}
    for text, files in data.get("releases", {}).items():
        sdists = [f for f in files if f.get("packagetype") == "sdist"]
        try:
            release = Version(text)
        except InvalidVersion:
            continue
        if sdists:
            found[release] = sdists[0]
    return found


def _choose(version: str | None) -> tuple[Version, dict[str, Any]]:
    """The newest mod-wsgi-httpd release of an httpd version (2.4.68 is 2.4.68.N, the largest N)."""
    releases = _releases()
    if version is not None:
        try:
            wanted = Version(version)
        except InvalidVersion:
            raise HarnessError(f"--apache bundled:{version}: not an httpd version; give e.g. bundled:2.4.69") from None
        releases = {r: f for r, f in releases.items() if r.release[:3] == wanted.release[:3]}
    if not releases:
        known = sorted({".".join(map(str, r.release[:3])) for r in _releases()}, key=Version)
        raise HarnessError(f"--apache bundled:{version}: no such httpd release of {PACKAGE}; known: {', '.join(known)}")
    release = max(releases)
    return release, releases[release]


def _download(sdist: dict[str, Any], target: Path) -> None:
    digest = hashlib.sha256()
    partial = target.with_suffix(".partial")
    try:
        url = urllib.parse.urljoin(PYPI_JSON, str(sdist["url"]))  # a mirror may answer with relative links
        with urllib.request.urlopen(url, timeout=600) as answer, open(partial, "wb") as out:
            while chunk := answer.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise HarnessError(
            f"--apache bundled: cannot download {sdist['filename']} ({exc}); check access to PyPI"
        ) from None
    if digest.hexdigest() != sdist.get("digests", {}).get("sha256"):
        partial.unlink(missing_ok=True)
        raise HarnessError(f"--apache bundled: {sdist['filename']} does not match PyPI's sha256; try again")
    partial.rename(target)


def source_tree(version: str | None) -> tuple[str, Path]:
    """(httpd version, the set-up source tree) of a release, built into the cache on first use."""
    place = folder("httpd")
    release, sdist = _choose(version)
    httpd = ".".join(map(str, release.release[:3]))
    tree = place / f"mod_wsgi_httpd-{release}"
    with locked(tree.with_suffix(".lock")):
        if (tree / ".built").is_file():
            return httpd, tree
        archive_file = place / str(sdist["filename"])
        if not archive_file.is_file():
            _download(sdist, archive_file)
        shutil.rmtree(tree, ignore_errors=True)
        scratch = Path(tempfile.mkdtemp(prefix="unpack-", dir=place))
        with tarfile.open(archive_file) as archive:
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            archive.extractall(scratch, **safe)  # type: ignore[arg-type]
        (unpacked,) = [p for p in scratch.iterdir() if p.is_dir()]
        if not (unpacked / "upstream").is_dir():
            shutil.rmtree(scratch, ignore_errors=True)
            raise HarnessError(
                f"--apache bundled:{httpd}: {sdist['filename']} does not carry httpd's sources (its setup.py would "
                "download them from apache.org); choose a release that does, e.g. bundled:2.4.69 or bundled:2.4.68"
            )
        unpacked.rename(tree)
        shutil.rmtree(scratch, ignore_errors=True)
        print(
            f"note: building Apache httpd {httpd} from {sdist['filename']} once into {tree} (minutes)", file=sys.stderr
        )
        built = proc.run([sys.executable, "setup.py", "--name"], timeout=BUILD_TIMEOUT, cwd=tree)
        (tree / "build.log").write_text(built.output or (built.problem or ""))
        if not built.ok or not (tree / "src" / "httpd" / "bin").is_dir():
            raise HarnessError(
                f"--apache bundled:{httpd}: {sdist['filename']} does not build here ({built.last_line()}); "
                f"see {tree / 'build.log'}"
            )
        (tree / ".built").write_text("")
    return httpd, tree


def wheel_for(tree: Path, env_python: Path, log: list[str]) -> Path | str:
    """A wheel of the built tree for one environment's Python (the httpd build is not repeated); its path, or
    pip's reason when it cannot be made (its output goes to the cell's log)."""
    wheels = tree / "wheels"
    wheels.mkdir(exist_ok=True)
    args = [str(env_python), "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "--wheel-dir",
            str(wheels), str(tree)]  # fmt: skip
    done = proc.run(args, timeout=BUILD_TIMEOUT)
    log += ["$ " + " ".join(args), done.output or (done.problem or "")]
    if not done.ok:
        return done.last_line()
    tag = proc.run([str(env_python), "-c", "import sys; print('cp%d%d' % sys.version_info[:2])"], timeout=60).stdout
    found = sorted(glob.glob(str(wheels / f"mod_wsgi_httpd-*-{tag.strip()}-*.whl")))
    return Path(found[-1]) if found else f"pip made no wheel for {tag.strip()} in {wheels}"


def bundled_apache(version: str | None) -> ApacheInfo:
    """The Apache a bundled release stands for. Its httpd lives in each cell's environment; the apxs field
    names the built source tree the cells' wheels are made from."""
    httpd_version, tree = source_tree(version)
    return ApacheInfo(version=httpd_version, origin=f"{ORIGIN}:{httpd_version}", apxs=str(tree), httpd="")
