"""The reload mechanisms: how each is triggered from outside the server and how it is confirmed.

Modern mod_wsgi replaces the whole daemon process on every reload, so most mechanisms are
confirmed by the daemon pid changing. Embedded mode re-executes the script in the same process,
so there the proof is the log line that says the script was loaded again.
"""

from __future__ import annotations

import enum
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from harness.model import naming
from harness.model.layouts import LAYOUTS


class Controls(Protocol):
    """What a trigger may do to a running server; implemented by the server module."""

    @property
    def script(self) -> Path: ...

    @property
    def watch_file(self) -> Path: ...

    def daemon_pids(self) -> set[int]: ...

    def signal_daemons(self, signum: int) -> None: ...

    def apachectl(self, command: str) -> None: ...

    def request_filler(self) -> None: ...

    def prime_reloader(self) -> None: ...


class Confirm(str, enum.Enum):
    DAEMON_PID = "daemon-pid"  # every daemon that served before the trigger is gone, a new one is up
    SCRIPT_LOAD = "script-load"  # the log says the script was loaded again


def touch(path: Path) -> None:
    """Set the mtime to now, and at least one second past the old one: mod_wsgi compares mtimes,
    and two touches within one tick of a coarse clock would otherwise look like no change."""
    mtime = max(time.time_ns(), path.stat().st_mtime_ns + 1_000_000_000)
    os.utime(path, ns=(mtime, mtime))


MAXIMUM_REQUESTS = 4
RESTART_INTERVAL = 2
INACTIVITY_TIMEOUT = 2


def _fill_requests(controls: Controls) -> None:
    """Send requests that count against --maximum-requests until the daemon is replaced."""
    before = controls.daemon_pids()
    for _ in range(MAXIMUM_REQUESTS * 2):
        controls.request_filler()
        if not before & controls.daemon_pids():
            return


def _edit_watched_module(controls: Controls) -> None:
    """The monitor thread lives in express's handler, which is loaded on its first request (with
    %{GLOBAL} express 6.1.1 does not preload it), and it records mtimes on its first scan: make sure
    it runs and has looked once before the edit, or the edit would go unseen."""
    controls.prime_reloader()
    touch(controls.watch_file)


@dataclass(frozen=True)
class Mechanism:
    name: str
    summary: str
    trigger: Callable[[Controls], None]
    express_options: tuple[str, ...] = ()
    embedded: bool = False
    fires_on_request: bool = False  # takes effect when the next request arrives
    confirm: Confirm = Confirm.DAEMON_PID
    script_reloading: bool = True  # WSGIScriptReloading for the app's directory
    deadline: float = 15.0  # seconds from trigger to confirmed reload
    driver: bool = False  # run by the embedding driver (engines/driver/wsgi_driver.c), not by Apache
    layouts: tuple[str, ...] = ()  # the only layouts it has (the driver's kinds of interpreter); empty: any Apache one


def _noop(controls: Controls) -> None:
    """Timer-driven mechanisms fire by themselves; the harness only waits."""


MECHANISMS: dict[str, Mechanism] = {
    m.name: m
    for m in (
        Mechanism(
            "script-touch",
            "touch the WSGI script; the next request restarts the daemon process",
            trigger=lambda c: touch(c.script),
            fires_on_request=True,
        ),
        Mechanism(
            "script-touch-embedded",
            "touch the WSGI script in embedded mode; the next request re-executes it in the same interpreter",
            trigger=lambda c: touch(c.script),
            embedded=True,
            fires_on_request=True,
            confirm=Confirm.SCRIPT_LOAD,
        ),
        Mechanism(
            "reload-on-changes",
            "--reload-on-changes: edit a module file the app imported; the monitor thread restarts the daemon",
            trigger=_edit_watched_module,
            express_options=("--reload-on-changes",),
            script_reloading=False,
        ),
        Mechanism(
            "maximum-requests",
            f"--maximum-requests {MAXIMUM_REQUESTS}: send requests until the daemon retires",
            trigger=_fill_requests,
            express_options=("--maximum-requests", str(MAXIMUM_REQUESTS)),
        ),
        Mechanism(
            "restart-interval",
            f"--restart-interval {RESTART_INTERVAL}: wait for the daemon's restart timer",
            trigger=_noop,
            express_options=("--restart-interval", str(RESTART_INTERVAL)),
            deadline=RESTART_INTERVAL + 6.0,
        ),
        Mechanism(
            "inactivity-timeout",
            f"--inactivity-timeout {INACTIVITY_TIMEOUT}: stay idle until the daemon is retired",
            trigger=_noop,
            express_options=("--inactivity-timeout", str(INACTIVITY_TIMEOUT)),
            deadline=INACTIVITY_TIMEOUT + 6.0,
        ),
        Mechanism(
            "sigusr1",
            "SIGUSR1 to the daemon: graceful restart",
            trigger=lambda c: c.signal_daemons(signal.SIGUSR1),
        ),
        Mechanism(
            "sigint",
            "SIGINT to the daemon: shutdown, restarted by the Apache parent",
            trigger=lambda c: c.signal_daemons(signal.SIGINT),
        ),
        Mechanism(
            "sigterm",
            "SIGTERM to the daemon: shutdown, restarted by the Apache parent",
            trigger=lambda c: c.signal_daemons(signal.SIGTERM),
        ),
        Mechanism(
            "apache-graceful",
            "apachectl graceful: Apache graceful restart, daemons replaced",
            trigger=lambda c: c.apachectl("graceful"),
        ),
        Mechanism(
            "apache-restart",
            "apachectl restart: Apache full restart, daemons replaced",
            trigger=lambda c: c.apachectl("restart"),
        ),
        Mechanism(
            "interpreter-cycle",
            "embedding driver: end the app's sub-interpreter and make a new one in the same process "
            "(mod_wsgi 1.x's WSGIReloadMechanism Interpreter)",
            trigger=_noop,
            driver=True,
            layouts=("named", "isolated"),
        ),
        Mechanism(
            "interpreter-overlap",
            "embedding driver: make the next sub-interpreter and load the app while the previous one lives, "
            "then end the previous one and probe again (a mod_wsgi 1.x reload with a request in flight)",
            trigger=_noop,
            driver=True,
            layouts=("named", "isolated"),
        ),
        Mechanism(
            "interpreter-parallel",
            "embedding driver: two sub-interpreters load and serve the app at the same time on threads of their "
            "own (with layout isolated, each with its own GIL: true parallelism), then both end and two new ones "
            "follow",
            trigger=_noop,
            driver=True,
            layouts=("named", "isolated"),
        ),
        Mechanism(
            "finalize-reinit",
            "embedding driver: Py_Finalize and Py_Initialize in the same process (the Apache parent's restart path)",
            trigger=_noop,
            driver=True,
            layouts=("global",),
        ),
    )
}

APACHE_MECHANISM_NAMES = tuple(name for name, m in MECHANISMS.items() if not m.driver)
MECHANISM_NAMES = tuple(MECHANISMS)


def select(names: str) -> list[Mechanism]:
    """Mechanisms from a comma list; 'all' is every one. ValueError names the unknown ones."""
    return naming.select(names, MECHANISMS, "mechanism")


def layouts_for(mechanism: Mechanism, chosen: list[str]) -> tuple[list[str], list[str]]:
    """(layouts this mechanism runs in, chosen layouts it cannot have). A driver mechanism keeps its own
    kinds of interpreter: of the chosen layouts those it has, else its first; an Apache mechanism takes
    every chosen layout an Apache server can have."""
    if not mechanism.layouts:
        return [n for n in chosen if not LAYOUTS[n].driver_only], [n for n in chosen if LAYOUTS[n].driver_only]
    own = [n for n in chosen if n in mechanism.layouts]
    return (own or [mechanism.layouts[0]]), [n for n in chosen if n not in mechanism.layouts]
