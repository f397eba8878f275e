"""Fixtures of the Dask executor's tests: a real LocalCluster of two worker processes on loopback (each
with its own sandbox pool), reached through the "dask" executor, and the local sandbox beside it.

Run with:  .venv/bin/python -m pytest tests/dask -p no:cacheprovider   (make test-dask)
"""

from __future__ import annotations

import os
import signal

import pytest

from pyflow.engine.execution import NodeTask, resolve_limits
from pyflow.executors import create_executor
from tests.support.waiting import wait_until

pytest.importorskip("distributed", reason="the dask executor needs dask[distributed]: pip install '.[dask]'")

SMALL = {"timeout_s": 20, "memory_mb": 128, "cpu_s": 20}
# Sets the node process's name, so a test can find it on the host (and see it gone).
NAMED = "def func(name, seconds):\n    import ctypes, time\n    ctypes.CDLL(None).prctl(15, name.encode(), 0, 0, 0)\n" \
        "    time.sleep(seconds)\n    return name\n"


def make_task(func: str, *args, node_id: str = "n", run_id: str | None = None, sources=(), **limits) -> NodeTask:
    return NodeTask(node_id=node_id, node_name=node_id, spec_id="t", func=func, args=list(args),
                    arg_names=[f"a{i}" for i in range(len(args))], limits=resolve_limits({**SMALL, **limits}),
                    run_id=run_id, sources=tuple(sources))


@pytest.fixture(scope="session")
def dask_executor():
    """The "dask" executor with a LocalCluster of two worker processes, one sandbox slot each."""
    executor = create_executor("dask", pool_size=2, n_workers=2)
    executor.start()
    yield executor
    executor.close()


@pytest.fixture(scope="session")
def bare_scheduler():
    """A scheduler with no worker, as `dask scheduler` starts it (Dask's own allowed-failures): for
    workers the tests start themselves."""
    from distributed import LocalCluster
    with LocalCluster(n_workers=0, processes=True, host="127.0.0.1", dashboard_address=None,
                      scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}) as cluster:
        yield cluster.scheduler_address


@pytest.fixture(scope="session")
def sandbox_executor():
    executor = create_executor("sandbox", pool_size=2)
    executor.start()
    yield executor
    executor.close()


def worker_pids(executor) -> dict[str, int]:
    """Each sandbox worker's process id, by address: processes this test session's cluster started."""
    return executor.client.run(os.getpid, on_error="ignore")


def running_on(executor) -> dict[str, list[str]]:
    """The keys each worker's plugin is running now, by worker address."""
    return executor.client.run(_running, on_error="ignore")


def _running(dask_worker):
    return dask_worker.plugins["pyflow-sandbox"].running()


def worker_running(executor, key: str) -> str | None:
    return next((address for address, keys in running_on(executor).items() if key in keys), None)


def kill_worker(executor, address: str) -> None:
    """SIGKILL one worker process of our own cluster (its nanny starts a new one)."""
    os.kill(worker_pids(executor)[address], signal.SIGKILL)


def wait_for_workers(executor, count: int = 2, timeout: float = 120) -> None:
    wait_until(lambda: len(executor.read_workers()) >= count, timeout=timeout, interval=0.2,
               fail=f"fewer than {count} sandbox workers")
