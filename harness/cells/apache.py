"""Which Apache a cell is built against, found through its apxs, and its version read from its headers
(so nothing of Apache runs as root, not even ``httpd -v``)."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from harness import proc
from harness.errors import HarnessError
from harness.model.spec import ApacheRef


@dataclass(frozen=True)
class ApacheInfo:
    version: str
    origin: str  # "debian" for the distribution's package, "bundled:<version>", else "apxs:<path>"
    apxs: str
    httpd: str

    def ref(self) -> ApacheRef:
        return ApacheRef(version=self.version, origin=self.origin, apxs=self.apxs)


def _query(apxs: str, name: str) -> str:
    return proc.run([apxs, "-q", name], timeout=30).stdout.strip()


def header_version(include_dir: str) -> str:
    """The version from the development headers (ap_release.h)."""
    try:
        text = (Path(include_dir) / "ap_release.h").read_text(errors="replace")
    except OSError:
        return "unknown"
    parts = [
        re.search(rf"#define AP_SERVER_{name}_NUMBER\s+(\d+)", text)
        for name in ("MAJORVERSION", "MINORVERSION", "PATCHLEVEL")
    ]
    return ".".join(m[1] for m in parts if m) if all(parts) else "unknown"


def find_apache(apxs: str | None = None, origin: str | None = None) -> ApacheInfo:
    """Apache via apxs: the one given, else $APXS, else the apxs on PATH (Debian's apache2-dev)."""
    apxs = apxs or os.environ.get("APXS") or shutil.which("apxs") or shutil.which("apxs2")
    if not apxs:
        raise HarnessError(
            "Apache development files not found: install them (apt-get install apache2 apache2-dev), "
            "set APXS=/path/to/apxs, or use --apache bundled"
        )
    if not os.access(apxs, os.X_OK):
        raise HarnessError(f"--apache/APXS: {apxs} is not an executable apxs; give the path of one")
    sbindir, target = _query(apxs, "SBINDIR"), _query(apxs, "PROGNAME") or _query(apxs, "TARGET")
    httpd = str(Path(sbindir) / target)
    if not (sbindir and target and Path(httpd).is_file() and os.access(httpd, os.X_OK)):
        raise HarnessError(f"apxs at {apxs} names httpd {httpd}, which is not executable; install Apache or fix APXS")
    version = header_version(_query(apxs, "INCLUDEDIR"))
    if origin is None:
        debian = Path("/etc/debian_version").exists() and Path(apxs).resolve() == Path("/usr/bin/apxs").resolve()
        origin = "debian" if debian else f"apxs:{apxs}"
    return ApacheInfo(version=version, origin=origin, apxs=apxs, httpd=httpd)
