"""The executor interface: run one node with its inputs and limits, return what happened.

Every way of running node code (the bubblewrap sandbox, a plain subprocess, a Docker container,
in-process for tests and benchmarks) implements `Executor`; more come as packages with a
`pyflow.executors` entry point. The engine knows nothing else about
them. Values cross this boundary as JSON-compatible data only.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, fields, replace
from typing import Any

from ..jsontext import safe_text


class ExecutorUnavailable(OSError):
    """An executor cannot run on this machine (no bubblewrap, no Docker engine, ...); the message says
    why and names the alternatives. The server refuses to start rather than degrade silently."""


@dataclass(frozen=True)
class Limits:
    """Resource limits of one node run. Sizes in MiB/KiB as named; times in seconds."""

    timeout_s: float = 30.0
    memory_mb: int = 256
    cpu_s: float = 30.0
    processes: int = 32
    open_files: int = 256
    file_size_mb: int = 64
    stdout_kb: int = 1024
    result_kb: int = 16384
    result_mb: int = 1024  # each artifact (a value carried as a file, not as JSON)

    def clamp(self, maxima: "Limits") -> "Limits":
        """Each limit no higher than the server's maximum."""
        return replace(self, **{f.name: min(getattr(self, f.name), getattr(maxima, f.name)) for f in fields(self)})

    def to_dict(self) -> dict:
        """A fresh dict of the limits (every value a number: no deep copy needed, unlike asdict)."""
        return {name: getattr(self, name) for name in LIMIT_NAMES}


DEFAULT_LIMITS = Limits()
MAX_LIMITS = Limits(timeout_s=3600.0, memory_mb=8192, cpu_s=3600.0, processes=512, open_files=4096,
                    file_size_mb=1024, stdout_kb=16384, result_kb=262144, result_mb=16384)
LIMIT_NAMES = tuple(f.name for f in fields(Limits))


_RESOLVED: dict = {}  # (limits as given, defaults, maxima) -> Limits: every run resolves the same few
_RESOLVED_MAX = 1024


def resolve_limits(spec_limits: dict | None, defaults: Limits = DEFAULT_LIMITS,
                   maxima: Limits = MAX_LIMITS) -> Limits:
    """A nodespec's limits over the server defaults, capped by the server maxima."""
    try:
        key = (tuple((k, type(v), v) for k, v in spec_limits.items()) if spec_limits else (), defaults, maxima)
        return _RESOLVED[key]
    except KeyError:
        pass
    except TypeError:  # a value that cannot be a key (a list, say): worked out every time
        key = None
    chosen = {k: v for k, v in (spec_limits or {}).items() if k in LIMIT_NAMES and v is not None}
    limits = replace(defaults, **chosen).clamp(maxima)
    if key is not None and len(_RESOLVED) < _RESOLVED_MAX:
        _RESOLVED[key] = limits
    return limits


@dataclass(frozen=True)
class Environment:
    """A ready environment of third-party packages (see pyflow.environments), as executors need it.

    :param key: its identity (hash of requirements, interpreter and index settings).
    :param path: the host folder of its installed packages, bound read-only where node code runs.
    :param packages: the lock: `name==version` of every package in it.
    :param libraries: host shared libraries its extension modules load (bound read-only too).
    :param modules: the top-level import names it provides (what a warm sandbox may import ahead).
    """

    key: str
    path: str
    packages: tuple[str, ...] = ()
    libraries: tuple[str, ...] = ()
    modules: tuple[str, ...] = ()

    def summary(self) -> dict:
        """What a run records of the environment it ran with."""
        return {"key": self.key, "packages": list(self.packages)}


@dataclass(frozen=True)
class ArgSource:
    """Where a linked input's value comes from: output `port` of node `node` (its whole return value
    when `whole`, the node having one output), converted to `out_type` and then to `in_type`, as the
    engine converts it. An executor that keeps results where they were computed (Dask) hands the
    upstream result over there instead of sending the value again; `NodeTask.args` holds it anyway."""

    node: str
    port: str
    whole: bool
    out_type: str
    in_type: str


@dataclass(slots=True)
class NodeTask:
    """Everything an executor needs to run one node, as plain data (slots: one is made per node run)."""

    node_id: str
    node_name: str
    spec_id: str
    func: str
    args: list
    arg_names: list[str]
    limits: Limits = DEFAULT_LIMITS
    run_id: str | None = None
    image: str | None = None
    requirements: tuple[str, ...] = ()
    environment: Environment | None = None  # set by the runner when `requirements` is not empty
    arg_types: tuple[str, ...] = ()  # the input ports' types, for conversions made where values are loaded
    output_names: tuple[str, ...] = ()  # with several, each non-JSON member of the returned dict is an artifact
    #: Per argument, where it comes from (ArgSource) or None (a literal, a default, a cached or
    #: non-deterministic upstream); empty when nobody said.
    sources: tuple = ()

    def payload(self) -> dict:
        """The JSON message a worker process receives."""
        return {"func": self.func, "filename": f"<node {self.spec_id}>", "args": self.args,
                "limits": self.limits.to_dict()}


def node_error(kind: str, message: str, traceback: list | tuple = ()) -> dict:
    """A node's error as every reader expects it: {"type", "message", "traceback": [lines]}. Lone
    surrogates (from an exception message, say) become U+FFFD: storage, events and HTTP all write
    UTF-8, which cannot carry them."""
    return {"type": safe_text(str(kind)), "message": safe_text(str(message)),
            "traceback": [safe_text(str(line)) for line in traceback]}


@dataclass
class NodeOutcome:
    """What running a node produced: a return value, or an error; plus captured output and timing.

    error is {"type", "message", "traceback": [lines of the node's own code]}. `violation` names a
    limit that was hit or a forced end ("timeout", "memory", "cancelled", "crashed", ...) so executors
    can recycle what ran the node.
    """

    ok: bool
    value: Any = None
    error: dict | None = None
    stdout: str = ""
    duration_ms: float = 0.0
    violation: str | None = None
    worker: str | None = None  # which machine's worker ran the node, for executors spanning several

    @classmethod
    def failure(cls, message: str, kind: str = "ExecutionError", violation: str | None = None,
                stdout: str = "", duration_ms: float = 0.0) -> "NodeOutcome":
        return cls(ok=False, error=node_error(kind, message),
                   stdout=stdout, duration_ms=duration_ms, violation=violation)


class Executor(ABC):
    """Runs node functions somewhere other than the caller's interpreter (except `inprocess`)."""

    name: str = "executor"
    #: True when run() does its work on the calling thread without waiting on anything, so the
    #: scheduler gains nothing from worker threads (the in-process executor).
    inline: bool = False

    def start(self) -> None:
        """Make the executor ready to run nodes (check the machine, fill warm pools), or raise
        ExecutorUnavailable saying why it cannot run here. Called once, before the first run()."""

    @abstractmethod
    def run(self, task: NodeTask, cancel: threading.Event | None = None) -> NodeOutcome:
        """Run one node. Must return (never raise) for anything the node code does, and must return
        promptly once `cancel` is set, ending whatever runs the node."""

    def finish_run(self, run_id: str | None) -> None:
        """Hook: the run `run_id` has ended; let go of what was kept for it (results left on a cluster)."""

    def close(self) -> None:
        """Release processes, containers and pools. Safe to call twice."""

    def describe(self) -> dict:
        """What this executor is and how it isolates node code, for /api/health and the UI."""
        return {"name": self.name, "isolation": "none", "warnings": []}

    def readiness(self) -> dict:
        """Whether a node could start now, for /api/health: {"ready": bool, "detail": text, ...}. Must
        be cheap (counts, no waiting on workers)."""
        return {"ready": True, "detail": "ready"}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

