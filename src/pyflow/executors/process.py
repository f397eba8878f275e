"""The "unsafe-process" executor: a fresh worker subprocess per node, with rlimits only.

It gives crash and timeout isolation but no sandbox: node code can read and write whatever the server's
user can, and reach the network. Use it only where bubblewrap cannot run and Docker is not available,
knowingly; the server warns at start and the UI shows the warning.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass

from ..engine.execution import NodeTask
from .channel import Worker, worker_path
from .artifacts import Places
from .pool import WorkerExecutor

WARNING = ("node code runs with the server's own permissions (executor unsafe-process: rlimits only, "
           "no sandbox)")


@dataclass
class ProcessState:
    """What the unsafe-process executor keeps per worker."""

    scratch: str  # the worker's working directory, removed with the worker
    places: Places | None = None  # its artifact places (used where they are: no sandbox), when carried


class ProcessExecutor(WorkerExecutor):
    name = "unsafe-process"

    def __init__(self, pool_size: int = 0, max_runs: int = 1, python: str | None = None, **_ignored):
        super().__init__(pool_size=pool_size, max_runs=max_runs)
        self.python = python or sys.executable

    def spawn(self) -> Worker:
        scratch = tempfile.mkdtemp(prefix="pyflow-node-")
        proc = subprocess.Popen([self.python, "-I", str(worker_path())], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True,
                                cwd=scratch, env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": scratch})
        places = None
        if self.artifacts is not None:
            root = self.artifacts.workspace()
            places = Places(root, str(root / "in"), str(root / "out"))
        return Worker(proc, "worker process", ProcessState(scratch, places))

    def artifact_places(self, worker: Worker) -> Places | None:
        return worker.state.places

    def prepare_payload(self, worker: Worker, task: NodeTask) -> dict:
        payload = task.payload()
        payload["scratch"] = worker.state.scratch
        payload["memory_rlimit"] = True
        if task.environment is not None:  # no sandbox to bind it into: the child adds the folder itself
            payload["site"] = task.environment.path
        return payload

    def discard(self, worker: Worker) -> None:
        shutil.rmtree(worker.state.scratch, ignore_errors=True)
        if worker.state.places is not None:
            shutil.rmtree(worker.state.places.root, ignore_errors=True)

    def describe(self) -> dict:
        return {"name": self.name, "isolation": "process (rlimits only)", "warnings": [WARNING]}
