"""An executor says, cheaply, whether a node could start now (for /api/health): a pool with an idle,
busy or starting worker can; one whose workers all failed to start cannot, until a start succeeds."""

from __future__ import annotations

import threading

from pyflow.executors.process import ProcessExecutor

from .conftest import make_task, wait_until

CRASH = "def func():\n    import os\n    os._exit(9)\n"
HOLD = "def func(path):\n    import os, time\n    while not os.path.exists(path):\n        time.sleep(0.01)\n"


class Flaky(ProcessExecutor):
    """Workers stop starting while `healthy` is false."""

    def __init__(self, **options):
        super().__init__(**options)
        self.healthy = True

    def spawn(self):
        if not self.healthy:
            raise OSError("no worker can start right now")
        return super().spawn()


def test_a_pool_whose_workers_cannot_start_is_not_ready_until_one_starts():
    executor = Flaky(pool_size=1, max_runs=100)
    executor.start()
    try:
        assert executor.readiness()["ready"] and executor.readiness()["idle"] == 1
        executor.healthy = False
        assert executor.run(make_task(CRASH)).violation == "crashed"  # its worker is gone for good
        seen = []
        assert wait_until(lambda: not seen.append(executor.readiness()) and not seen[-1]["ready"], timeout=30)
        state = seen[-1]
        assert "no worker can start right now" in state["detail"]
        executor.healthy = True
        assert executor.run(make_task("def func():\n    return 1\n")).value == 1
        assert executor.readiness()["ready"]
    finally:
        executor.close()


def test_a_pool_whose_workers_are_all_busy_is_ready(tmp_path):
    executor = ProcessExecutor(pool_size=1, max_runs=100)
    executor.start()
    gate = tmp_path / "gate"
    busy = threading.Thread(target=executor.run, args=(make_task(HOLD, str(gate)),))
    busy.start()
    try:
        assert wait_until(lambda: executor.readiness()["idle"] == 0)
        assert executor.readiness()["ready"]
    finally:
        gate.touch()
        busy.join()
        executor.close()


def test_a_fresh_worker_per_node_is_not_ready_after_a_start_failed():
    executor = ProcessExecutor(pool_size=0, python="/nonexistent/python3")
    try:
        assert executor.readiness()["ready"]  # nothing tried yet
        assert not executor.run(make_task("def func():\n    return 1\n")).ok
        state = executor.readiness()
        assert not state["ready"] and "nonexistent" in state["detail"]
    finally:
        executor.close()


def test_a_closed_executor_is_not_ready():
    executor = ProcessExecutor(pool_size=0)
    executor.close()
    assert not executor.readiness()["ready"]
