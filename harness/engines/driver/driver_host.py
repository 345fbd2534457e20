# Run by wsgi_driver inside every interpreter it makes (Python 2.7 and 3.x alike): load the app's
# WSGI script the way mod_wsgi does, send the scenario's probes to it as synthetic requests, and
# append one JSON line with what came back. Judging is the harness's job, not this file's.
#
# The driver sets WH_CYCLE, WH_PHASE and WH_TASK ("load", "load-quiet": load without probing, or
# "probe-again") in __main__;
# the run's settings come from the JSON file named by $WH_DRIVER_CONFIG: script, module_name,
# app_dir, site_dirs, blocked, probes, mount, group, progress.
# It imports as little as it can (no hashlib: CPython 3.12.1 crashes importing it after a
# finalize-reinit), so that what breaks is the app's doing. An exception is written to the progress
# file in one line before its traceback is formatted: formatting reads source files (linecache),
# and a broken interpreter may crash right there, which must not lose the exception.
import codecs
import io
import json
import os
import site
import sys
import time

BODY_LIMIT = 16384
_TEXT = type(json.loads('""'))  # unicode on 2.7, str on 3.x


def _extension_modules():
    """Loaded modules that are C extensions, with their files: isolate's candidates."""
    found = []
    for name, module in sorted(sys.modules.items()):
        path = getattr(module, "__file__", None) or ""
        if path.endswith((".so", ".pyd")):
            found.append([name, path])
    return found


def _load(script, name):
    """The script as a module named as mod_wsgi names it, executed in a fresh namespace."""
    module = type(sys)(name)
    module.__file__ = script
    sys.modules[name] = module
    with open(script, "rb") as handle:
        code = compile(handle.read(), script, "exec", 0, True)
    exec(code, module.__dict__)
    return module.__dict__["application"]


def _environ(mount, path, group):
    path_info, _, query = path.partition("?")
    return {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": mount,
        "PATH_INFO": path_info,
        "QUERY_STRING": query,
        "CONTENT_LENGTH": "",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "localhost",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "mod_wsgi.process_group": "",
        "mod_wsgi.application_group": group,
    }


class _Host(object):
    def __init__(self, config, cycle, phase, task):
        self.config = config
        self.cycle = cycle
        self.phase = phase
        self.task = task

    def write(self, record):
        # No circular check: it keeps a dict of ids, which an interpreter the app has broken can trip over
        # (measured on 2.7 under interpreter-overlap); the records are flat.
        line = (json.dumps(record, check_circular=False) + "\n").encode("utf-8")
        fd = os.open(self.config["progress"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def step(self, name):
        """The harness's deadline depends on the step: say which one starts."""
        self.write({"cycle": self.cycle, "phase": self.phase, "step": name})

    def exception(self, where, exc):
        """One line naming the exception, written before anything formats its traceback."""
        text = "{}: {}".format(type(exc).__name__, str(exc)[:300])
        self.write({"cycle": self.cycle, "phase": self.phase, "step": "exception", "where": where, "error": text})
        return text

    def traceback(self):
        import traceback

        text = traceback.format_exc()
        sys.stderr.write(text)
        sys.stderr.flush()
        return text

    def call(self, application, path):
        """(status, body, error, traceback) of one request; never raises for the app's own errors."""
        answer = {}
        chunks = []

        def start_response(status, headers, exc_info=None):
            answer["status"] = int(str(status).split(" ", 1)[0])
            return chunks.append

        try:
            result = application(_environ(self.config["mount"], path, self.config["group"]), start_response)
            try:
                for chunk in result:
                    chunks.append(chunk)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        except BaseException as exc:  # the app's error is the observation
            error = self.exception("probe " + path, exc)
            return 500, "", "app raised " + error, self.traceback()
        body = b"".join(c if isinstance(c, bytes) else c.encode("utf-8") for c in chunks)
        return answer.get("status"), body[:BODY_LIMIT].decode("utf-8", "replace"), None, None


def _native(value):
    """Python 2 reads JSON strings as unicode; a unicode entry on sys.path makes every import encode
    it, and the first such encoding imports the codecs again: keep them native str."""
    if str is bytes and isinstance(value, _TEXT):
        return value.encode("utf-8")
    if isinstance(value, list):
        return [_native(item) for item in value]
    if isinstance(value, dict):
        return dict((_native(k), _native(v)) for k, v in value.items())
    return value


def _main(cycle, phase, task):
    codecs.lookup("utf-8")  # the codec registry, before anything below needs it
    with open(os.environ["WH_DRIVER_CONFIG"]) as handle:
        config = _native(json.load(handle))
    host = _Host(config, cycle, phase, task)
    for name in config["blocked"]:  # as a .pth line does under Apache: the package falls back
        sys.modules[name] = None
    for folder in config["site_dirs"]:
        site.addsitedir(folder)
    if config["app_dir"] not in sys.path:
        sys.path.insert(0, config["app_dir"])
    record = {"cycle": cycle, "phase": phase, "step": "done", "task": task, "load_error": None, "probes": []}
    started = time.time()
    if task == "probe-again":  # the app this interpreter loaded before, after another one ended
        application = globals().get("WH_APPLICATION")
    else:
        host.step("load")
        try:
            application = _load(config["script"], config["module_name"])
        except BaseException as exc:
            record["load_error"] = host.exception("load", exc)
            record["traceback"] = host.traceback()
            application = None
        globals()["WH_APPLICATION"] = application
    record["load_seconds"] = round(time.time() - started, 4)
    if application is not None and task != "load-quiet":
        for index, path in enumerate(config["probes"]):
            host.step("probe {}".format(index))
            began = time.time()
            status, body, error, text = host.call(application, path)
            record["probes"].append(
                {
                    "path": path,
                    "status": status,
                    "body": body,
                    "error": error,
                    "traceback": text,
                    "elapsed": round(time.time() - began, 4),
                    "answered_at": time.time(),
                }
            )
    record["extensions"] = _extension_modules()
    sys.stderr.flush()
    host.write(record)


try:
    _main(WH_CYCLE, WH_PHASE, WH_TASK)  # noqa: F821 - set by wsgi_driver
finally:
    for _stream in (sys.stdout, sys.stderr):
        try:
            _stream.flush()
        except Exception:
            pass
