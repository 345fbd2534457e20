"""harness list: the scenarios, mechanisms and layouts there are."""

from __future__ import annotations

import argparse

from harness.errors import HarnessError
from harness.model import layouts, mechanisms
from harness.model import scenario as scenarios


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("list", help="show scenarios, mechanisms and layouts")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    print("scenarios:")
    for name, path in scenarios.discover().items():
        try:
            loaded = scenarios.load(path)
        except HarnessError as exc:
            print(f"  {name:18} (invalid: {exc})")
            continue
        kind = "control " if loaded.control else ""
        print(f"  {name:18} {kind}{loaded.description}")
    print("mechanisms:")
    for mechanism in mechanisms.MECHANISMS.values():
        print(f"  {mechanism.name:22} {mechanism.summary}")
    print("layouts:")
    for layout in layouts.LAYOUTS.values():
        print(f"  {layout.name:18} {layout.summary}")
    return 0
