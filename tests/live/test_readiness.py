"""`harness readiness` on the README's four packages, in one invocation on Debian's 3.11, 3.12 and 3.13: a current
numpy, a PyO3 package (rpds-py), a Cython 3 package (msgpack) and a pure-Python one (six, clean everywhere). Each
package's Markdown is a paste-ready page under 4 KB; Chromium draws the HTML grid (checked by its screenshot)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.model.outcome import POLICY, Outcome
from harness.output import report
from tests.conftest import harness, require_apache, session_record

pytestmark = pytest.mark.live
PACKAGES = ("numpy==2.4.6", "rpds-py==2026.9.1", "msgpack==1.2.4", "six==1.17.0")
PAGE_LIMIT = 4096


@pytest.fixture(autouse=True)
def _apache() -> None:
    require_apache()


def test_four_packages_in_one_invocation(tmp_path: Path) -> None:
    from PIL import Image

    done = harness("readiness", *PACKAGES, "--python", "/usr/bin/python3.11,3.12,3.13", "--results", str(tmp_path),
                   timeout=3000)  # fmt: skip
    assert done.returncode in (0, 1), done.stderr[-3000:]
    (folder,) = [p for p in tmp_path.iterdir() if p.name.startswith("readiness-")]
    record = session_record(tmp_path)
    packages = {r.spec.scenario.package.requirements for r in record.runs if r.spec.scenario.package}
    assert packages == {(p,) for p in PACKAGES}, done.stdout
    pages = sorted(folder.glob("readiness-*.md"))
    assert len(pages) == 4, pages
    for page in pages:
        text = page.read_text()
        assert len(text.encode()) < PAGE_LIMIT, (page.name, len(text.encode()))
        assert "| mode | Python 3.11" in text and "| None" not in text and "None |" not in text
    six = (folder / "readiness-package-six.md").read_text()
    assert "Fails in" not in six and "Clean on every Python tested in: **global, named" in six, six
    assert "six==1.17.0: clean everywhere in global, named" in done.stdout
    rpds = (folder / "readiness-package-rpds-py.md").read_text()
    assert "| global | clean 3/3 | clean 3/3 | clean 3/3 |" in rpds, "rpds-py installs rpds, and the probe imports it"
    # A failure names its exact message or signature as a numbered note, not just a colour.
    failing = [p.read_text() for p in pages if "Fails in" in p.read_text()]
    assert all("\n1. `" in text for text in failing), failing
    if report.chromium() is None:
        pytest.fail("Chromium is not installed (apt-get install chromium); .ci/setup installs it")
    image = Image.open(folder / "readiness.png").convert("RGB")
    width, height = image.size
    assert width >= 900 and height >= 400, image.size
    colours = {colour for _, colour in image.getcolors(maxcolors=1 << 20)}  # type: ignore[union-attr]
    clean = POLICY[Outcome.CLEAN].colour
    assert tuple(int(clean[i : i + 2], 16) for i in (1, 3, 5)) in colours, "six's clean cells are drawn"
