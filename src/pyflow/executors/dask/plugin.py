"""The worker side: a Dask worker plugin that owns that machine's sandbox pool, and the task function.

Every Dask worker that takes PyFlow nodes carries `SandboxPlugin`. At setup it starts one executor for
the whole worker process (the bubblewrap sandbox's warm pool, sized to the worker's threads, or the
Docker executor where the worker is configured so); when that executor cannot run here, setup raises
and the worker does not join the cluster, saying why. The worker also advertises the resource
`RESOURCE` with one unit per thread: PyFlow submits every node with that resource, so nodes only ever
go to workers that have a sandbox, and a plain Dask worker in the same cluster never sees one.

Node code never runs in the Dask worker process: `run_node` hands the node to the plugin's executor,
which runs it in a sandbox and reads its answer as hostile, exactly as on a single machine. As the node
ends, `push` sends its outcome to the server on the scheduler's event stream (OUTCOME_TOPIC).

Cancellation: when a future is cancelled (or its client, the server, goes away), the scheduler tells
the worker to forget the key; the worker's state machine moves the executing task to "released", and
the plugin's `transition` hook sets that node's cancel event, which kills its sandbox at once.
"""

from __future__ import annotations

import logging
import pickle
import threading
from typing import Any

from distributed import WorkerPlugin, get_worker

from ...engine.execution import ExecutorUnavailable, NodeOutcome, NodeTask
from ...model.types import ConversionError, convert

log = logging.getLogger(__name__)

PLUGIN_NAME = "pyflow-sandbox"
RESOURCE = "pyflow-sandbox"
#: Executors a worker may run nodes with: those that isolate node code from the worker process.
ISOLATING = ("sandbox", "docker")
#: Task states in which the worker is running the task's function, and the states a running task is
#: sent to when the worker lets go of its key (cancelled, or its client gone).
RUNNING_STATES = ("executing", "long-running")
LET_GO = ("released", "cancelled", "forgotten")
#: Keys cancelled before their function started (remembered so a late start does not run), bounded.
REMEMBERED_CANCELS = 10_000
#: The topic on which a worker sends each node's outcome to the server as the node ends (see `push`).
OUTCOME_TOPIC = "pyflow-outcome"
#: Outcomes larger than this (pickled) are not pushed, only the node's end: the scheduler keeps its last
#: 1,000 events in memory, so big values are fetched from the worker as the task's result instead.
PUSH_LIMIT = 16 * 1024


class SandboxPlugin(WorkerPlugin):
    """Starts the worker's sandbox executor, runs nodes on it, and kills the sandboxes of released keys.

    Picklable (it travels to worker processes that a LocalCluster or `pyflow worker` starts): only the
    executor's name and options are carried; the executor is made in `setup`."""

    name = PLUGIN_NAME
    idempotent = True

    def __init__(self, executor: str = "sandbox", options: dict | None = None):
        if executor not in ISOLATING:
            raise ValueError(f"a PyFlow Dask worker runs nodes in a sandbox: executor must be one of "
                             f"{', '.join(ISOLATING)}, not {executor!r}")
        self.executor_name = executor
        self.options = dict(options or {})
        self._init_state()

    def _init_state(self) -> None:
        self.executor = None
        self._environments = None  # this machine's environment store, made on first use
        self.address: str | None = None
        self._running: dict[str, threading.Event] = {}
        self._cancelled: dict[str, None] = {}
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        return {"executor_name": self.executor_name, "options": self.options}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._init_state()

    def setup(self, worker) -> None:
        """Start this worker's executor; raising here keeps the worker out of the cluster."""
        from .. import create_executor
        options = {"pool_size": max(1, worker.state.nthreads), **self.options}
        artifacts_dir = options.pop("artifacts_dir", None)
        refusal = "this Dask worker cannot run PyFlow nodes, so it does not join: {}"
        try:
            executor = create_executor(self.executor_name, **options)
            if artifacts_dir and hasattr(executor, "use_artifacts"):
                executor.use_artifacts(worker_artifacts(artifacts_dir))
        except (ExecutorUnavailable, ImportError) as exc:
            raise ExecutorUnavailable(refusal.format(exc)) from None
        try:
            executor.start()
        except ExecutorUnavailable as exc:
            executor.close()
            raise ExecutorUnavailable(refusal.format(exc)) from None
        self.executor, self.address = executor, worker.address
        log.info("PyFlow %s executor ready on Dask worker %s (%d slots)", executor.name, worker.address,
                 options["pool_size"])

    def teardown(self, worker) -> None:
        if self.executor is not None:
            self.executor.close()

    def transition(self, key, start: str, finish: str, *args, **kwargs) -> None:
        """A running node whose key the worker lets go of (its future was cancelled, or the server that
        held it is gone) is ended now, not when its own timeout comes."""
        if start in RUNNING_STATES and finish in LET_GO:
            self.cancel(str(key))

    def cancel(self, key: str) -> None:
        with self._lock:
            event = self._running.get(key)
            if event is None:
                self._cancelled[key] = None
                while len(self._cancelled) > REMEMBERED_CANCELS:
                    self._cancelled.pop(next(iter(self._cancelled)))
        if event is not None:
            event.set()

    def run(self, key: str, task: NodeTask) -> NodeOutcome:
        """Run one node in this worker's sandbox, ended early when its key is released."""
        cancel = threading.Event()
        with self._lock:
            if self._cancelled.pop(key, None) is None and key not in self._running:
                self._running[key] = cancel
            else:
                cancel.set()
        try:
            outcome = self._localize(task, cancel) or self.executor.run(task, cancel)
        finally:
            with self._lock:
                if self._running.get(key) is cancel:
                    del self._running[key]
        outcome.worker = self.address
        return outcome

    def _localize(self, task: NodeTask, cancel: threading.Event) -> NodeOutcome | None:
        """Give the task this machine's copy of its environment, installed from the server's lock on
        first use (the same versions wherever the node runs); a failure fails the node saying so."""
        if task.environment is None or self.executor_name != "sandbox":
            return None  # the Docker executor installs the lock into its image itself
        try:
            task.environment = self.environments().environment_from_lock(task.environment, cancel=cancel)
        except Exception as exc:  # the installer's words become the node's error
            return NodeOutcome.failure(f"could not prepare the node's environment on Dask worker {self.address}: "
                                       f"{exc}", "EnvironmentError")
        return None

    def environments(self):
        """This worker's environments: $PYFLOW_ENVS_DIR, else envs/ in PyFlow's data folder; the index
        settings are this machine's (pip's and uv's environment variables)."""
        if self._environments is None:
            import os
            from ...environments import EnvironmentSettings, EnvironmentStore
            from ...service.config import data_home
            folder = os.environ.get("PYFLOW_ENVS_DIR") or data_home() / "envs"
            self._environments = EnvironmentStore(EnvironmentSettings(folder), python=self.options.get("python")
                                                  or "/usr/bin/python3")
            self._environments.after_build = self._environment_built
        return self._environments

    def _environment_built(self, key: str) -> None:
        """As the server does with its own: this machine's environments stay within their budget."""
        pools = getattr(self.executor, "environments", None)
        self._environments.keep_within_budget(key, pools.keys() if pools is not None else ())

    def running(self) -> list[str]:
        with self._lock:
            return sorted(self._running)


def worker_artifacts(where: str):
    """The artifact store a worker's sandboxes write to and read from: the server's folder (shared), or
    the same fsspec URL with a local copy of what this worker made or needed."""
    from ...service.config import data_home
    from ...storage.artifacts import ArtifactStore
    return ArtifactStore(where, cache_dir=data_home() / "artifacts-cache")


def run_node(key: str, task: NodeTask, upstream: dict[str, NodeOutcome]) -> NodeOutcome:
    """The Dask task of one node: its inputs that come from other nodes' results (`upstream`, which Dask
    resolved from their futures on this cluster) are filled in, then the node runs in the sandbox."""
    worker = get_worker()
    plugin = worker.plugins.get(PLUGIN_NAME)
    if not isinstance(plugin, SandboxPlugin) or plugin.executor is None:
        return NodeOutcome.failure(f"the Dask worker {worker.address} has no PyFlow sandbox (start workers "
                                   f"with `pyflow worker`)", "ExecutorError", "crashed")
    if upstream:
        try:
            task.args = filled_args(task, upstream)
        except ConversionError as exc:  # the server converted the same values: only a changed value gets here
            return NodeOutcome.failure(f"an input from another node could not be converted: {exc}", "ConversionError")
    outcome = plugin.run(key, task)
    if outcome.violation != "cancelled":  # the key was let go of: the server knows why better than this
        push(worker, key, outcome)
    return outcome


def push(worker, key: str, outcome: NodeOutcome) -> None:
    """Send a small outcome to the server with the node's end, on the worker's stream to the scheduler,
    which forwards it to the server on its stream: the server then needs no second round trip (through
    the scheduler to this worker and back) to fetch the result, which was most of a node's cost on Dask
    beyond the sandbox. The task still returns the outcome, for nodes downstream and for big values (then
    the message only says that the node ended, with no outcome: the server fetches the task's result)."""
    data = pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL)
    worker.log_event(OUTCOME_TOPIC, {"key": key, "outcome": data if len(data) <= PUSH_LIMIT else None})


def filled_args(task: NodeTask, upstream: dict[str, NodeOutcome]) -> list:
    """The task's arguments with every one whose source node's result is in `upstream` taken from it,
    converted as the engine converts it (to the output port's type, then to the input port's)."""
    args = list(task.args)
    for index, source in enumerate(task.sources):
        if source is None or source.node not in upstream:
            continue
        value: Any = upstream[source.node].value
        raw = value if source.whole else value[source.port]
        args[index] = convert(source.in_type, convert(source.out_type, raw))
    return args
