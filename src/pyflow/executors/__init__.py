"""Executors: where node code runs. Pick one by name; more are found through the "pyflow.executors"
entry-point group, so a package can add its own without touching PyFlow.

Built in: "sandbox" (bubblewrap + warm fork-server pool; the default), "docker" (a hardened container
per image, warm), "dask" (nodes as tasks on a Dask cluster, each in its worker's sandbox),
"unsafe-process" (a plain subprocess with rlimits), "none" (serve the editor and repository but run no
node), and "inprocess" (tests and benchmarks only).
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import entry_points

from ..engine.execution import Executor

BUILTIN = {
    "sandbox": "pyflow.executors.sandbox:SandboxExecutor",
    "unsafe-process": "pyflow.executors.process:ProcessExecutor",
    "inprocess": "pyflow.executors.inprocess:InProcessExecutor",
    "none": "pyflow.executors.disabled:DisabledExecutor",
    "docker": "pyflow.executors.docker:DockerExecutor",
    "dask": "pyflow.executors.dask:DaskExecutor",
}
SERVER_FORBIDDEN = {"inprocess"}


class UnknownExecutor(LookupError):
    pass


def _load(target: str):
    module, _, attr = target.partition(":")
    return getattr(import_module(module), attr)


def available() -> dict[str, str]:
    """Executor names and where they come from (built-in or an installed entry point)."""
    names = dict(BUILTIN)
    for ep in entry_points(group="pyflow.executors"):
        names.setdefault(ep.name, ep.value)
    return names


def executor_class(name: str):
    names = available()
    if name not in names:
        raise UnknownExecutor(f"unknown executor {name!r}; available: {', '.join(sorted(names))}")
    return _load(names[name])


def create_executor(name: str, **options) -> Executor:
    """Build executor `name` with its options (pool size, limits, image, ...)."""
    return executor_class(name)(**options)
