"""What an executor keeps per worker is a declared dataclass in `Worker.state`, never attributes hung on
the worker after it was made; a replacement worker that fails to start is logged with the reason and
counted for /api/health."""

from __future__ import annotations

import dataclasses
import logging
import os

import pytest

from pyflow.executors.channel import Worker
from pyflow.executors.process import ProcessExecutor, ProcessState
from pyflow.executors.sandbox import SandboxExecutor, SandboxState

from .conftest import make_task, needs_root, wait_until

CRASH = "def func():\n    import os\n    os._exit(9)\n"


def attributes(worker: Worker) -> set[str]:
    return set(vars(worker))


def test_a_process_workers_scratch_directory_is_its_declared_state_and_goes_with_it():
    executor = ProcessExecutor(pool_size=1, max_runs=100)
    executor.start()
    try:
        worker = executor._idle.queue[0]
        before = attributes(worker)
        assert isinstance(worker.state, ProcessState) and os.path.isdir(worker.state.scratch)
        assert executor.run(make_task("def func():\n    import os\n    return os.getcwd()\n")).value == \
            worker.state.scratch
        assert attributes(worker) == before
    finally:
        executor.close()
    assert not os.path.exists(worker.state.scratch)


@needs_root
def test_a_sandboxs_cgroup_and_its_counters_are_its_declared_state():
    executor = SandboxExecutor(pool_size=1, max_runs=100)
    executor.start()
    try:
        worker = executor._idle.queue[0]
        before = attributes(worker)
        state = worker.state
        assert isinstance(state, SandboxState) and {f.name for f in dataclasses.fields(state)} == \
            {"errors", "cgroup", "oom_seen", "cgroup_limits", "places", "base_memory"}
        if state.cgroup is None:
            pytest.skip("no writable cgroups here")
        assert executor.run(make_task("def func():\n    return 1\n", memory_mb=64)).value == 1
        assert state.cgroup_limits is not None and state.cgroup_limits[0] > 64 * 1024 * 1024
        assert attributes(worker) == before and worker.state is state
    finally:
        executor.close()


class Flaky(ProcessExecutor):
    """Workers stop starting while `healthy` is false."""

    healthy = True

    def spawn(self):
        if not self.healthy:
            raise OSError("no worker can start right now")
        return super().spawn()


def test_a_failed_respawn_is_logged_with_its_reason_and_counted(caplog):
    executor = Flaky(pool_size=1, max_runs=100)
    executor.start()
    try:
        executor.healthy = False
        with caplog.at_level(logging.WARNING, logger="pyflow.executors.pool"):
            assert executor.run(make_task(CRASH)).violation == "crashed"
            assert wait_until(lambda: executor.readiness()["spawn_errors"] >= 2, timeout=30)
        said = [r.getMessage() for r in caplog.records if r.name == "pyflow.executors.pool"]
        assert len(said) >= 2 and all("no worker can start right now" in line for line in said), said
    finally:
        executor.close()
