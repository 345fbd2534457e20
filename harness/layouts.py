"""Layouts: which interpreter(s) the app lives in, rendered as Apache directives from apache_conf/."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from string import Template

from harness import naming

APACHE_CONF = Path(__file__).resolve().parent.parent / "apache_conf"
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

    @property
    def primary_group(self) -> str:
        """express's own handler (and the --reload-on-changes monitor) lives here."""
        return self.mounts[0].application_group


LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        Layout("global", "the main interpreter, %{GLOBAL}", (Mount("/app", GLOBAL),)),
        Layout("named", "one named sub-interpreter", (Mount("/app", "app"),)),
        Layout(
            "two-groups",
            "two named sub-interpreters in one daemon process",
            (Mount("/app", "app-a"), Mount("/app2", "app-b")),
        ),
        Layout(
            "two-groups-orphan",
            "two-groups with --orphan-interpreter: at shutdown mod_wsgi leaves the sub-interpreters alone "
            "(the control for shutdown-time crashes)",
            (Mount("/app", "app-a"), Mount("/app2", "app-b")),
            express_options=("--orphan-interpreter",),
        ),
        Layout(
            "global+named",
            "%{GLOBAL} plus a named sub-interpreter in one daemon process",
            (Mount("/app", GLOBAL), Mount("/app2", "app-b")),
        ),
    )
}

LAYOUT_NAMES = tuple(LAYOUTS)


def select(names: str) -> list[Layout]:
    """Layouts from a comma list; 'all' is every one. ValueError names the unknown ones."""
    return naming.select(names, LAYOUTS, "layout")


def _template(name: str) -> Template:
    return Template((APACHE_CONF / name).read_text())


def render_include(
    layout: Layout, script: Path, embedded: bool, script_reloading: bool, cores_dir: Path, process_group: str
) -> str:
    """The include file for one run: a mount per application group, the app directory, and where
    cores go."""
    mount = _template("mount.conf")
    parts = [
        mount.substitute(
            prefix=m.prefix,
            script=script,
            process_group=GLOBAL if embedded else process_group,
            application_group=m.application_group,
        )
        for m in layout.mounts
    ]
    parts.append(
        _template("app-directory.conf").substitute(
            app_dir=script.parent, script_reloading="On" if script_reloading else "Off"
        )
    )
    parts.append(_template("cores.conf").substitute(cores_dir=cores_dir))
    return "\n".join(parts)
