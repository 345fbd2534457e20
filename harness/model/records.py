"""The records a run leaves: one per cycle (cycles.jsonl), one per run (summary.json), one per session.

Plain frozen dataclasses that every later step reads by attribute, never by string key; ``serial``
turns them into JSON and back, and ``harness/model/schema/`` holds their JSON Schema. A reader refuses
a record of a newer major schema version in one line.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path

from harness.model import serial
from harness.model.outcome import Outcome
from harness.model.rates import Rate
from harness.model.spec import RunSpec

RESULT_SCHEMA = "2.0"
CYCLES = "cycles.jsonl"
SUMMARY = "summary.json"


class Phase(str, enum.Enum):
    SETUP = "setup"  # the run could not get going: unsupported, start-failed
    LOAD = "load"  # the app's first requests after start-up
    RELOAD = "reload"
    STOP = "stop"  # the server's (or driver's) own shutdown: interpreters destroyed, Python finalized


class EventKind(str, enum.Enum):
    """What a log line (or a direct observation) says happened."""

    SIGNAL_DEATH = "signal-death"  # killed by a crash signal (SEGV, ABRT, BUS, ILL, FPE, ...)
    KILLED = "killed"  # SIGKILL: something had to be forced down
    SIGNAL_EXIT = "signal-exit"  # TERM/INT/HUP/...: asked to stop, died of it
    FATAL_ERROR = "fatal-python-error"
    NATIVE_ABORT = "native-abort"  # glibc heap checks, stack protector, C assertions
    FAULTHANDLER = "faulthandler"
    TRACEBACK = "traceback"
    SCRIPT_FAILED = "script-failed"
    LOST_RESPONSE = "lost-response"  # the request in flight when a daemon went away
    SHUTDOWN_TIMEOUT = "shutdown-timeout"
    START_FAILURE = "start-failure"
    SCRIPT_LOADED = "script-loaded"  # a WSGI script was (re)executed
    RELOAD_REQUESTED = "reload-requested"  # a daemon or server was told to restart
    DAEMON_STARTED = "daemon-started"
    INTERPRETER_DESTROYED = "interpreter-destroyed"  # mod_wsgi destroying one sub-interpreter at shutdown
    EXITED = "exited"  # a process of the app ended mid-cycle without a signal (os._exit, a failed exec)
    HARNESS_FAULT = "harness-fault"  # the harness's own part failed (the driver's host): says nothing of the app

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class LogEvent:
    kind: EventKind
    line: str
    pid: int | None = None
    signal: int | None = None
    group: str | None = None  # the application group an interpreter event names


class Fired(str, enum.Enum):
    CONFIRMED = "confirmed"
    NOT_APPLICABLE = "not-applicable"  # the first load and the final stop: nothing to confirm
    NOT_FIRED = "not-fired"  # the old daemon is still serving and nothing asked it to go
    STUCK = "stuck"  # asked to go (the log says so), still there at the deadline
    NO_NEW_DAEMON = "no-new-daemon"  # the old one went, no new one came up
    SERVER_GONE = "server-gone"  # the Apache parent (or the driver) itself is not running


@dataclass(frozen=True)
class Confirmation:
    fired: Fired
    detail: str
    at: float | None = None


@dataclass(frozen=True)
class ProbeResult:
    url: str
    status: int | None  # None: no HTTP answer at all
    body: str
    error: str | None  # "timeout", "connection dropped: ...", "refused", "app raised ..."
    mismatch: str | None  # why the answer is wrong, if it is
    elapsed: float
    answered_at: float
    note: str = ""  # "again, after the previous interpreter ended", "fresh process"

    @property
    def timed_out(self) -> bool:
        return self.error == "timeout"

    @property
    def server_error(self) -> bool:
        return self.status is not None and self.status >= 500


class DeathSource(str, enum.Enum):
    EXIT_STATUS = "exit-status"  # read from the process itself (a zombie's status, or waitpid)
    LOG = "log"  # Apache's AH00051/AH00052
    CORE = "core"  # a core file the process left


@dataclass(frozen=True)
class Death:
    """A process of the run that died by a signal, as one source saw it."""

    pid: int | None
    signal: int
    source: DeathSource
    at: float | None = None
    line: str = ""


@dataclass(frozen=True)
class CoreRecord:
    file: str
    pid: int | None
    thread: int | None
    signal: int | None
    process: str
    size: int


@dataclass(frozen=True)
class StackDump:
    """Every thread of a process that may be hung, taken before anything killed it."""

    cycle: int
    pid: int
    tool: str  # the tool whose dump is kept: pystack, py-spy, gdb, or none
    file: str  # relative to the run folder
    app_frames: tuple[str, ...] = ()  # innermost app line per thread
    native_frames: tuple[str, ...] = ()  # the native function each stuck thread blocks in
    tried: tuple[str, ...] = ()  # each tool tried, and why the next one was needed


@dataclass(frozen=True)
class ProcessRow:
    pid: int
    role: str  # parent, worker, daemon, driver
    status: str
    threads: int | None = None


@dataclass(frozen=True)
class Timestamps:
    trigger_sent: float | None = None
    reload_confirmed: float | None = None
    probe_answered: float | None = None
    death_seen: float | None = None  # the first death the harness saw in this cycle
    outcome_recorded: float | None = None


@dataclass(frozen=True)
class CycleRecord:
    run: str
    cycle: int
    phase: Phase
    mechanism: str
    outcome: Outcome
    trial: bool  # a reload that really happened: only these count in rates
    confirmation: Confirmation
    evidence: tuple[str, ...] = ()
    why_not_trial: str | None = None
    probes: tuple[ProbeResult, ...] = ()
    events: tuple[LogEvent, ...] = ()
    deaths: tuple[Death, ...] = ()
    pids_before: tuple[int, ...] = ()
    pids_after: tuple[int, ...] = ()
    processes: tuple[ProcessRow, ...] = ()
    timestamps: Timestamps = field(default_factory=Timestamps)
    cores: tuple[CoreRecord, ...] = ()
    stacks: tuple[StackDump, ...] = ()
    faulthandler: tuple[str, ...] = ()
    log_lines: tuple[int, int] | None = None  # [first, last] line numbers in the run's error_log
    first_exception: str | None = None  # the first Python exception of the cycle, even when a crash follows
    destroy_order: tuple[str, ...] = ()  # the application groups in the order mod_wsgi destroyed them
    schema_version: str = RESULT_SCHEMA

    def to_json(self) -> dict[str, object]:
        return serial.dump(self)

    @staticmethod
    def from_json(data: object, source: str | Path) -> CycleRecord:
        return serial.load(CycleRecord, data, source, RESULT_SCHEMA)


@dataclass(frozen=True)
class Backtrace:
    tool: str  # pystack, gdb, pystack+gdb, or none
    file: str | None  # the full text, relative to the run folder
    faulting_thread: int | None = None
    culprit: str | None = None  # the innermost frame that is not libc, the loader, Python, Apache or mod_wsgi
    culprit_object: str | None = None  # the shared object holding it
    runtime_frame: str | None = None  # no culprit: the innermost named frame of Apache, APR or Python itself
    python_frame: str | None = None  # innermost Python frame of the faulting thread
    app_frame: str | None = None  # innermost Python frame in the app's own files
    abort_message: str | None = None  # glibc's or Python's words before an abort
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class CrashEvent:
    """One process that died by a signal: every source that saw it, its core and where it died."""

    cycle: int
    pid: int | None
    signal: int
    sources: tuple[DeathSource, ...]
    log_line: str | None = None
    faulthandler: tuple[str, ...] = ()
    core: str | None = None
    no_core: str | None = None  # why there is no core
    backtrace: Backtrace | None = None
    signature: str | None = None  # culprit + signal: groups crashes across cycles and runs


@dataclass(frozen=True)
class CellInfo:
    """The environment a run really had."""

    label: str
    python: str
    python_executable: str
    mod_wsgi: str | None = None  # the requirement asked for
    mod_wsgi_version: str | None = None  # what was installed
    apache: str | None = None
    apache_origin: str | None = None
    httpd: str | None = None
    env_dir: str | None = None
    compiled_now: bool = False
    private_view: str | None = None  # how the server user reaches the interpreter, when it must
    unsupported: str | None = None  # why the cell cannot exist here


@dataclass(frozen=True)
class CoreSettings:
    collected: bool
    note: str | None = None  # why cores cannot be collected here
    settings: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class EngineInfo:
    kind: str  # "apache" or "driver"
    user: str
    port: int | None = None
    command: tuple[str, ...] = ()  # mod_wsgi-express setup-server arguments, or the driver's argv
    mpm: str | None = None  # the Apache MPM that really ran
    apache: str | None = None  # the Apache version that really ran, from its start-up line


@dataclass(frozen=True)
class BaselineNote:
    file: str
    expected: Outcome | None  # the baseline records one verdict per run
    change: str | None  # "regression", "fix", "new" or None


@dataclass(frozen=True)
class SignatureCount:
    signature: str
    crashes: int
    cycles: tuple[int, ...]


@dataclass(frozen=True)
class ExceptionCount:
    """One Python exception line (addresses masked) and the cycles whose first exception it was."""

    exception: str
    cycles: tuple[int, ...]


@dataclass(frozen=True)
class RunResult:
    run: str
    spec: RunSpec
    cell: CellInfo
    verdict: Outcome
    expected: tuple[Outcome, ...]  # what the scenario expects here (one, or several it may show); () none
    matches: bool
    counts: dict[Outcome, int]
    cycles_requested: int
    cycles_recorded: int
    trials: int  # reload cycles that really happened
    rates: tuple[Rate, ...]
    stability: str
    engine: EngineInfo
    core_dumps: CoreSettings
    started: float
    finished: float
    expected_note: str = ""
    not_run: tuple[str, ...] = ()  # why requested reloads did not run, or were no trial
    load_outcome: Outcome | None = None
    stop_outcome: Outcome | None = None
    first_crash_cycle: int | None = None
    evidence: dict[Outcome, tuple[str, ...]] = field(default_factory=dict)
    crashes: tuple[CrashEvent, ...] = ()
    signatures: tuple[SignatureCount, ...] = ()
    exceptions: tuple[ExceptionCount, ...] = ()  # the cycles' first exceptions, most frequent first
    hangs: tuple[StackDump, ...] = ()
    first_exception: str | None = None
    reason: str | None = None  # why the run could not get going, or ended early
    extensions: tuple[tuple[str, str], ...] = ()  # C extension modules the app's first load imported
    site_dirs: tuple[str, ...] = ()  # where the scenario's requirements were installed for the cell
    destroy_order: tuple[str, ...] = ()
    interrupted: bool = False
    baseline: BaselineNote | None = None
    folder: str = ""  # the run's folder, relative to its session
    schema_version: str = RESULT_SCHEMA

    @property
    def scenario(self) -> str:
        return self.spec.scenario.name

    @property
    def mechanism(self) -> str:
        return self.spec.mechanism

    @property
    def layout(self) -> str:
        return self.spec.layout

    @property
    def control(self) -> bool:
        return self.spec.scenario.control

    @property
    def duration(self) -> float:
        return round(self.finished - self.started, 3)

    @property
    def slot(self) -> tuple[str, str, str]:
        return (self.cell.label, self.mechanism, self.layout)

    def to_json(self) -> dict[str, object]:
        return serial.dump(self)

    @staticmethod
    def from_json(data: object, source: str | Path) -> RunResult:
        return serial.load(RunResult, data, source, RESULT_SCHEMA)


@dataclass(frozen=True)
class BrokenSlot:
    cell: str
    mechanism: str
    layout: str
    reason: str
    controls: tuple[str, ...]  # the failing control runs


@dataclass(frozen=True)
class CellStatus:
    label: str
    status: str  # "ok", "unsupported", "error"
    reason: str | None = None
    cell: CellInfo | None = None


@dataclass(frozen=True)
class SessionRecord:
    session: str
    runs: tuple[RunResult, ...]
    skipped: tuple[tuple[str, str], ...] = ()  # (scenario, why it could not run here)
    broken: tuple[BrokenSlot, ...] = ()
    cells: tuple[CellStatus, ...] = ()
    compilations: int = 0  # cells built by this invocation (the rest came from the cache)
    interrupted: bool = False
    started: float = 0.0
    finished: float | None = None
    schema_version: str = RESULT_SCHEMA

    def to_json(self) -> dict[str, object]:
        return serial.dump(self)

    @staticmethod
    def from_json(data: object, source: str | Path) -> SessionRecord:
        return serial.load(SessionRecord, data, source, RESULT_SCHEMA)
