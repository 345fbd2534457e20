"""Layouts: which interpreter(s) the app lives in, and in what order they first load.

A layout is data. The Apache engine renders it into ``WSGIScriptAlias`` lines (``apache_conf/``); the
embedding driver reads only whether the app gets the main interpreter, a legacy sub-interpreter, or
an isolated one. Which application group loads first decides, through mod_wsgi's interpreter
dictionary, which one is destroyed first at daemon shutdown (insertion order on Python 3, hash
order on 2.7), so the order is part of what a run asks for, not an accident of the config.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.model import naming

PROCESS_GROUP = "harness"
GLOBAL = "%{GLOBAL}"


@dataclass(frozen=True)
class Mount:
    prefix: str  # URL prefix the script is mounted at
    application_group: str


@dataclass(frozen=True)
class Layout:
    name: str
    summary: str
    mounts: tuple[Mount, ...]
    express_options: tuple[str, ...] = ()
    own_gil: bool = False  # each named group gets its own GIL (mod_wsgi >= 6.0, Python >= 3.12)
    driver_only: bool = False  # a kind of interpreter only the embedding driver makes
    free_threaded: bool = False  # needs a Python built without the GIL (PEP 703)

    @property
    def primary_group(self) -> str:
        """express's own handler (and the --reload-on-changes monitor) lives here."""
        return self.mounts[0].application_group

    @property
    def groups(self) -> tuple[str, ...]:
        return tuple(m.application_group for m in self.mounts)

    def mount_of(self, group: str) -> Mount | None:
        return next((m for m in self.mounts if m.application_group == group), None)

    def ordered(self, order: tuple[str, ...]) -> tuple[Mount, ...]:
        """The mounts in the order their groups should first load: those named in `order` first, in
        that order, then the rest as declared."""
        named = [m for group in order if (m := self.mount_of(group)) is not None]
        return (*named, *(m for m in self.mounts if m not in named))


_TWO = (Mount("/app", "app-a"), Mount("/app2", "app-b"))
LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        Layout("global", "the main interpreter, %{GLOBAL}", (Mount("/app", GLOBAL),)),
        Layout("named", "one named sub-interpreter", (Mount("/app", "app"),)),
        Layout("two-groups", "two named sub-interpreters in one daemon process", _TWO),
        Layout(
            "two-groups-orphan",
            "two-groups with --orphan-interpreter: at shutdown mod_wsgi leaves the sub-interpreters alone "
            "(the control for shutdown-time crashes)",
            _TWO,
            express_options=("--orphan-interpreter",),
        ),
        Layout(
            "global+named",
            "%{GLOBAL} plus a named sub-interpreter in one daemon process",
            (Mount("/app", GLOBAL), Mount("/app2", "app-b")),
        ),
        Layout(
            "own-gil",
            "one named sub-interpreter with a GIL of its own (WSGIPerInterpreterGIL; mod_wsgi >= 6.0, Python >= 3.12)",
            (Mount("/app", "app"),),
            own_gil=True,
        ),
        Layout(
            "two-groups-own-gil",
            "two named sub-interpreters, each with a GIL of its own, in one daemon process",
            _TWO,
            own_gil=True,
        ),
        Layout(
            "free-threaded",
            "the main interpreter of a free-threaded Python build (python3.13t: no GIL at all, PEP 703)",
            (Mount("/app", GLOBAL),),
            free_threaded=True,
        ),
        Layout(
            "isolated",
            "embedding driver only: Py_NewInterpreterFromConfig with an own GIL and "
            "check_multi_interp_extensions (Python >= 3.12), as PEP 684 isolated interpreters",
            (Mount("/app", "app"),),
            own_gil=True,
            driver_only=True,
        ),
    )
}

LAYOUT_NAMES = tuple(LAYOUTS)


def select(names: str) -> list[Layout]:
    """Layouts from a comma list; 'all' is every one an Apache server can have. ValueError names the unknown."""
    if names.strip() == "all":
        return [layout for layout in LAYOUTS.values() if not layout.driver_only]
    return naming.select(names, LAYOUTS, "layout")
