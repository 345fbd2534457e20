"""The embedding driver for the driver mechanisms: compiled once per interpreter.

The C source (``wsgi_driver.c`` beside this file) is linked against the target interpreter's own libpython, so
each interpreter gets its own binary, kept in the cache under a key made of the source, the
interpreter and its build flags: a changed source or a rebuilt Python compiles again, nothing else
does. An interpreter the driver cannot be built for is ``Unsupported`` with the compiler's words.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from importlib import resources
from pathlib import Path

from harness import proc
from harness.cells.build import PythonInfo, Unsupported
from harness.cells.cache import folder, locked
from harness.errors import HarnessError

SOURCE = "wsgi_driver.c"
BINARY = "wsgi_driver"
COMPILE_TIMEOUT = 120.0

# Runs under the target interpreter (2.7 too): where its headers and libpython are.
_QUERY = (
    "import json, sysconfig as s; print(json.dumps(dict((k, s.get_config_var(k)) for k in "
    "('INCLUDEPY', 'LIBDIR', 'LIBPL', 'LDLIBRARY', 'VERSION', 'Py_ENABLE_SHARED', 'LIBS', 'SYSLIBS', "
    "'LINKFORSHARED'))))"
)


def link_arguments(python_executable: str) -> list[str]:
    """gcc arguments that compile against and link with this interpreter's libpython; the rpath lets
    the driver find a libpython outside the system's library path (a pyenv)."""
    done = proc.run([python_executable, "-c", _QUERY], timeout=30)
    try:
        config = json.loads(done.stdout)
    except ValueError:
        raise HarnessError(f"cannot read the build settings of {python_executable}: {done.last_line()}") from None
    include, libdir = config["INCLUDEPY"], config["LIBDIR"]
    args = [f"-I{include}"]
    if config["Py_ENABLE_SHARED"]:
        args += [f"-L{libdir}", f"-l:{config['LDLIBRARY']}", f"-Wl,-rpath,{libdir}"]
    else:  # a static libpython: extension modules need its symbols exported from the executable
        args += [f"-L{config['LIBPL']}", f"-lpython{config['VERSION']}", *(config["LINKFORSHARED"] or "").split()]
    args += (config["LIBS"] or "").split() + (config["SYSLIBS"] or "").split()
    return args


def _source() -> bytes:
    return resources.files("harness.engines.driver").joinpath(SOURCE).read_bytes()


def _key(python: PythonInfo, flags: list[str]) -> str:
    digest = hashlib.sha256()
    for part in (_source(), python.executable.encode(), python.version.encode(), *map(str.encode, flags)):
        digest.update(part)
        digest.update(b"\0")
    return digest.hexdigest()[:10]


def ensure_driver(python: PythonInfo) -> Path | Unsupported:
    """The driver binary for this interpreter, compiled now if the cache has none."""
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        raise HarnessError("no C compiler for the embedding driver: install gcc (apt-get install gcc)")
    flags = link_arguments(python.executable)
    place = folder("drivers") / f"py{python.version}-{_key(python, flags)}"
    binary = place / BINARY
    with locked(place.with_suffix(".lock")):
        if binary.is_file():
            return binary
        place.mkdir(parents=True, exist_ok=True)
        place.chmod(0o755)  # the server user runs it
        source = place / SOURCE
        source.write_bytes(_source())
        partial = place / (BINARY + ".partial")
        warnings = ["-Wall", "-Wno-deprecated-declarations"]  # Py_SetProgramName: deprecated, kept for 2.7-3.13
        command = [compiler, "-O1", "-g", "-pthread", *warnings, str(source), *flags, "-o", str(partial)]
        done = proc.run(command, timeout=COMPILE_TIMEOUT)
        log = " ".join(command) + "\n" + done.output
        (place / "build.log").write_text(log)
        if not done.ok:
            reason = f"the embedding driver does not compile against Python {python.version}: {done.last_line()}"
            return Unsupported(reason, log)
        partial.chmod(0o755)
        partial.rename(binary)
    return binary
