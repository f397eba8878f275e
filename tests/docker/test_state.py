"""What the docker executor keeps per container is its declared `ContainerState`: the limits the
container has now, its init's host pid, its out-of-memory counter file and its name keeper."""

from __future__ import annotations

from pyflow.engine.execution import Limits
from pyflow.executors.docker import ContainerState, ContainerWorker

from .conftest import task


def test_a_warm_containers_state_follows_its_runs(executor):
    assert executor.run(task("def func():\n    return 1\n")).ok
    worker = executor.default._idle.queue[0]
    before = set(vars(worker))
    assert isinstance(worker, ContainerWorker) and isinstance(worker.state, ContainerState)
    assert worker.state.host_pid > 0 and worker.state.naming is not None
    limits = Limits(timeout_s=20, memory_mb=96, processes=12)
    for _ in range(len(executor.default._idle.queue)):  # every warm container runs a node with these limits
        assert executor.run(task("def func():\n    return 2\n", limits=limits)).value == 2
    assert any(w.state.limits == limits for w in executor.default._idle.queue)
    assert set(vars(worker)) == before
