"""Starting the Dask side: the settings every PyFlow worker gets, and a loopback LocalCluster.

One home for what makes a Dask worker a PyFlow worker (the sandbox plugin and the resource that
steers nodes to it), used both by the LocalCluster the server starts without a scheduler address and
by `pyflow worker`; and for the scheduler setting PyFlow's retry rule needs.
"""

from __future__ import annotations

import logging

import dask

from ...engine.execution import ExecutorUnavailable
from .plugin import RESOURCE, SandboxPlugin

#: Dask itself must not re-run a task whose worker died: PyFlow retries such a node once, under a new
#: key that names the attempt, and then fails it with the reason.
SCHEDULER_CONFIG = {"distributed.scheduler.allowed-failures": 0}
#: On the scheduler's machine: `DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=0 dask scheduler`.
SCHEDULER_ENV = {"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"}


def worker_settings(nthreads: int, executor: str = "sandbox", options: dict | None = None) -> dict:
    """Keyword arguments for a Dask Worker (or Nanny) that runs PyFlow nodes: one sandbox slot per
    thread, and the plugin that starts the sandbox pool (or refuses to join)."""
    return {"nthreads": nthreads, "resources": {RESOURCE: nthreads},
            "plugins": {SandboxPlugin(executor, options)}}


def sandbox_problem(executor: str = "sandbox", options: dict | None = None) -> str | None:
    """Why nodes cannot run in `executor` on this machine, or None: one sandbox is started and ended,
    running nothing. Asked before starting workers here, so the reason reaches the one who started them
    (a worker that refuses to join only tells its own log)."""
    from .. import create_executor
    try:
        own = {k: v for k, v in (options or {}).items() if k != "artifacts_dir"}  # the plugin's, not the executor's
        probe = create_executor(executor, **{**own, "pool_size": 1})
    except (ExecutorUnavailable, ImportError) as exc:  # the docker executor connects when made
        return str(exc)
    try:
        probe.start()
    except ExecutorUnavailable as exc:
        return str(exc)
    finally:
        probe.close()
    return None


def local_cluster(n_workers: int = 2, threads_per_worker: int = 1, executor: str = "sandbox",
                  options: dict | None = None):
    """A LocalCluster on 127.0.0.1 only: the scheduler in this process, each worker in a process of its
    own (under a nanny that restarts it if it dies), no dashboard (the scheduler's small HTTP server,
    which Dask always starts, on a free loopback port)."""
    from distributed import LocalCluster
    problem = sandbox_problem(executor, options)
    if problem:
        raise ExecutorUnavailable(f"the local Dask cluster's workers cannot run nodes here: {problem}")
    settings = worker_settings(threads_per_worker, executor, options)
    nthreads = settings.pop("nthreads")
    with dask.config.set(SCHEDULER_CONFIG):
        return LocalCluster(n_workers=n_workers, threads_per_worker=nthreads, processes=True, host="127.0.0.1",
                            dashboard_address=None, worker_dashboard_address=None, silence_logs=logging.WARNING,
                            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}, **settings)
