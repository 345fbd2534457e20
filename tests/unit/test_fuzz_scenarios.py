"""A seeded random-mutation fuzz of the shipped scenario files: whatever a damaged file holds, loading it
either works or raises a HarnessError of one line. Anything else is a traceback a user would see."""

from __future__ import annotations

import random
import shutil
import traceback
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.model import scenario

SEED = 20261129
MUTATIONS = 3000
FRAGMENTS = (
    "[app]\n",
    "[[probe]]\n",
    '[[probe]]\npath = "/"\ngroup = "app-b"\n',
    "[expect]\n",
    "[[expect.case]]\n",
    '[[expect.case]]\nverdict = "crashed"\npython = "<3"\nmod_wsgi = ">=4,<5"\nnote = "x"\n',
    '[[expect.case]]\nverdict = "clean"\npython = "==3.*"\nmechanism = "sigusr1"\nlayout = "two-groups"\n',
    "[[expect.case]]\npython = []\n",
    '"sigusr1@two-groups" = "hung"\n',
    '"sigusr1@" = "hung"\n',
    '"@global" = "hung"\n',
    "case = 3\n",
    "[load]\n",
    '[load]\norder = ["app-b", "app-a"]\npreload = false\n',
    '[load]\norder = ["%{GLOBAL}"]\n',
    'layouts = ["two-groups"]\n',
    "layouts = []\n",
    'layouts = ["global", "global"]\n',
    "control = 1\n",
    'name = "../../etc"\n',
    'name = "' + "n" * 70 + '"\n',
    'script = "../../../etc/passwd"\n',
    'script = "/etc/passwd"\n',
    'watch = "app.wsgi"\n',
    'watch = "nope.py"\n',
    'requirements = ["--index-url", "http://x"]\n',
    'requirements = ["./../../nowhere"]\n',
    'requirements = ["./"]\n',
    'local_packages = ["-e", "Py Protocols"]\n',
    "threads = 0\n",
    "threads = 1e3\n",
    'threads = "4"\n',
    "status = 99\n",
    "status = 600\n",
    "timeout = 0\n",
    "timeout = inf\n",
    "timeout = nan\n",
    "timeout = -0.0\n",
    "timeout = 1e400\n",
    "status = 99999999999999999999999999\n",
    "body_regex = '(?P<'\n",
    "body_regex = '[z-\\na]'\n",
    "body_regex = '(((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((a)))'\n",
    'body_regex = "' + "(" * 200 + "a" + ")" * 200 + '"\n',
    "body_equals = 3\n",
    'body_contains = ["a"]\n',
    'path = "/a b"\n',
    'path = "/\\u0000"\n',
    'path = "no-slash"\n',
    'path = ""\n',
    "path = 1979-05-27T07:32:00Z\n",
    "path = 07:32:00\n",
    "path = { a = 1 }\n",
    'group = "%{GLOBAL}"\n',
    'group = "app-z"\n',
    '"key\\nwith newline" = 1\n',
    '"\\u2028" = "clean"\n',
    '"\\u0085x" = 1\n',
    "a.b.c = 1\n",
    "app = 1\n",
    "probe = 1\n",
    "probe = []\n",
    "probe = [1, 2]\n",
    "expect = []\n",
    "expect = { default = 3 }\n",
    "[app.script]\n",
    "[[app]]\n",
    "[probe]\n",
    "'''\n",
    'x = """\n',
    "= 1\n",
    "[\n",
    "]]\n",
    "x = [" * 50 + "]" * 50 + "\n",
    "x = " + "{a=" * 40 + "1" + "}" * 40 + "\n",
    "\\\n",
    "\x00\n",
)
UNICODE = ("\u00e9", "\u2603", "\U0001f4a5", "\u202e", "\u200b", "\ufeff", "\u0000", "\x7f", "\u2028", "\x85", "\r",
            "\t", "\u0301", "\uff01", "\ud7ff", "\U0010ffff")  # fmt: skip
EXTREMES = ("0", "-1", "1e999", "true", "[]", "{}", '""', "'\\'", '"' + "x" * 5000 + '"', "9" * 40, "nan", "inf")


def flip_bytes(data: bytes, rng: random.Random) -> bytes:
    if not data:
        return bytes([rng.randrange(256)])
    raw = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        at = rng.randrange(len(raw))
        raw[at] = raw[at] ^ (1 << rng.randrange(8)) if rng.random() < 0.7 else rng.randrange(256)
    return bytes(raw)


def lines_of(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True) or [b""]


def delete_line(data: bytes, rng: random.Random) -> bytes:
    lines = lines_of(data)
    del lines[rng.randrange(len(lines))]
    return b"".join(lines)


def duplicate_line(data: bytes, rng: random.Random) -> bytes:
    lines = lines_of(data)
    at = rng.randrange(len(lines))
    lines.insert(rng.randrange(len(lines) + 1), lines[at])
    return b"".join(lines)


def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(len(data) + 1)]


def swap_values(data: bytes, rng: random.Random) -> bytes:
    lines = lines_of(data)
    pairs = [i for i, line in enumerate(lines) if b" = " in line]
    if len(pairs) < 2:
        return duplicate_line(data, rng)
    a, b = rng.sample(pairs, 2)
    key_a, value_a = lines[a].split(b" = ", 1)
    key_b, value_b = lines[b].split(b" = ", 1)
    lines[a], lines[b] = key_a + b" = " + value_b, key_b + b" = " + value_a
    return b"".join(lines)


def extreme_value(data: bytes, rng: random.Random) -> bytes:
    lines = lines_of(data)
    pairs = [i for i, line in enumerate(lines) if b" = " in line]
    if not pairs:
        return insert_fragment(data, rng)
    at = rng.choice(pairs)
    lines[at] = lines[at].split(b" = ", 1)[0] + b" = " + rng.choice(EXTREMES).encode() + b"\n"
    return b"".join(lines)


def insert_fragment(data: bytes, rng: random.Random) -> bytes:
    lines = lines_of(data)
    lines.insert(rng.randrange(len(lines) + 1), rng.choice(FRAGMENTS).encode())
    return b"".join(lines)


def insert_unicode(data: bytes, rng: random.Random) -> bytes:
    text = data.decode("utf-8", errors="replace")
    at = rng.randrange(len(text) + 1)
    return (text[:at] + "".join(rng.choices(UNICODE, k=rng.randint(1, 3))) + text[at:]).encode("utf-8")


MUTATORS: tuple[Callable[[bytes, random.Random], bytes], ...] = (
    flip_bytes,
    delete_line,
    duplicate_line,
    truncate,
    swap_values,
    extreme_value,
    insert_fragment,
    insert_unicode,
)


def mutate(data: bytes, rng: random.Random) -> tuple[bytes, list[str]]:
    """One to three mutations stacked, and their names (to say what broke when one does)."""
    applied = []
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        mutator = rng.choice(MUTATORS)
        data = mutator(data, rng)
        applied.append(mutator.__name__)
    return data, applied


def test_mutated_shipped_scenarios_load_or_fail_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(SEED)
    copy = tmp_path / "scenarios"  # every folder, fixtures too: scripts and ./../fixtures paths resolve
    shutil.copytree(scenario.shipped_dir(), copy, ignore=shutil.ignore_patterns("__pycache__"))
    originals = {name: path.read_bytes() for name, path in scenario.discover(copy).items()}
    assert len(originals) >= 10
    names = sorted(originals)
    tracebacks: list[str] = []
    outcomes = {"loaded": 0, "refused": 0}
    for index in range(MUTATIONS):
        name = names[index % len(names)]
        data, applied = mutate(originals[name], rng)
        path = copy / name / scenario.SCENARIO_FILE
        path.write_bytes(data)
        try:
            scenario.load(path)
            outcomes["loaded"] += 1
        except HarnessError as exc:
            if len(str(exc).splitlines()) != 1:
                tracebacks.append(f"#{index} {name} {applied}: message of {len(str(exc).splitlines())} lines: {exc!r}")
            outcomes["refused"] += 1
        except Exception:
            tracebacks.append(f"#{index} {name} {applied}:\n{traceback.format_exc()}")
    assert outcomes["loaded"] > 0 and outcomes["refused"] > 0  # the mutations neither all break nor all miss
    with capsys.disabled():
        print(f"\n{MUTATIONS} mutations: {len(tracebacks)} tracebacks")
    assert len(tracebacks) == 0, "\n".join(tracebacks[:5])
