"""The "dask" executor, server side: each node a Dask task, retried once when its worker dies.

The engine hands this executor one ready node at a time, as to any other; it submits the node as a
Dask task keyed `pyflow:<run>:<node>:<attempt>` that may only run on a worker with a PyFlow sandbox
(plugin.RESOURCE), waits for it while watching the run's cancel event, and returns its outcome, which
names the worker. The worker pushes a small outcome to the server as the node ends (plugin.push), so
the server fetches nothing; a bigger one stays on its worker, and inputs that come from such a node go
as its future, so Dask hands the value over between workers (or leaves it where it is) instead of the
server sending it again; those futures are kept until the engine says the run is over (`finish_run`).
"""

from __future__ import annotations

import logging
import os
import pickle
import threading
import time
import uuid
from dataclasses import replace

from ...engine.execution import Executor, ExecutorUnavailable, NodeOutcome, NodeTask
from ..channel import POLL_S, cancelled, clipped, ms
from .cluster import SCHEDULER_ENV, local_cluster
from .plugin import OUTCOME_TOPIC, RESOURCE, run_node

log = logging.getLogger(__name__)

ATTEMPTS = 2  # a node whose worker dies is run once more, elsewhere if the cluster can
REFRESH_S = 2.0  # how often the count of sandbox workers is read from the scheduler
NO_WORKER_GRACE_S = 30.0  # a node waiting while no sandbox worker is connected fails after this long
CONNECT_TIMEOUT_S = 30.0
#: How long the client may hold a message to the scheduler to batch it with others (Dask's own is 10 ms):
#: a node's submission waited up to that long whenever another node had been submitted just before.
CLIENT_BATCH_S = 0.001
WORKER_OPTIONS = ("max_runs", "tmp_mb", "user", "python", "cgroups",  # passed to a LocalCluster's sandboxes
                  "artifacts_dir")


def node_key(run_id: str, node_id: str, attempt: int) -> str:
    """The Dask key of one attempt at one node of one run (node tests get a run id of their own)."""
    return f"pyflow:{run_id}:{node_id}:{attempt}"


class DaskExecutor(Executor):
    """Runs nodes on a Dask cluster: the scheduler at `scheduler` (else $PYFLOW_DASK_SCHEDULER), or,
    without an address, a LocalCluster on 127.0.0.1 with `n_workers` worker processes of
    `threads_per_worker` sandbox slots each (default: `pool_size` slots in all). Other options
    (max_runs, tmp_mb, ...) go to each LocalCluster worker's sandbox executor."""

    name = "dask"

    def __init__(self, scheduler: str | None = None, pool_size: int = 2, n_workers: int = 2,
                 threads_per_worker: int | None = None, worker_executor: str = "sandbox",
                 connect_timeout_s: float = CONNECT_TIMEOUT_S, **worker_options):
        self.address = scheduler or os.environ.get("PYFLOW_DASK_SCHEDULER") or None
        self.pool_size = max(1, int(pool_size))
        self.n_workers = max(1, int(n_workers))
        self.threads_per_worker = int(threads_per_worker or max(1, -(-self.pool_size // self.n_workers)))
        self.worker_executor = worker_executor
        self.worker_options = {k: v for k, v in worker_options.items() if k in WORKER_OPTIONS}
        self.connect_timeout_s = float(connect_timeout_s)
        self.cluster = None
        self.client = None
        self.warnings: list[str] = []
        self._workers: dict[str, dict] = {}  # sandbox workers as last read from the scheduler
        self._runs: dict[str, dict[str, object]] = {}  # run id -> node id -> future of a result that feeds others
        self._held: dict[str, list] = {}  # run id -> futures of its nodes' results, let go of when it ends
        self._submitted: dict[str, dict[str, int]] = {}  # run id -> node id -> times the run ran it
        self._waiting: dict[str, threading.Event] = {}  # key of a node being awaited -> set when it ends
        self._pushed: dict[str, bytes] = {}  # key -> its outcome as the worker pushed it (plugin.push)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._refresher: threading.Thread | None = None

    def use_artifacts(self, store) -> None:
        """Values that are not JSON: the LocalCluster's workers keep them in the same store as the server
        (their sandboxes write and read its files; the server reads metadata and previews there). Workers
        of a scheduler elsewhere are started with `pyflow worker --artifacts-dir` naming a folder they
        share with the server, or the same fsspec URL."""
        self.worker_options.setdefault("artifacts_dir", str(store.remote.url if store.remote else store.root))

    # -- start and stop ------------------------------------------------------------------------------
    def start(self) -> None:
        from distributed import Client
        # Dask logs every client, key cancel and worker change at INFO: in the server's log, only its warnings.
        logging.getLogger("distributed").setLevel(max(logging.WARNING, logging.getLogger("distributed").level))
        try:
            if self.address is None:
                self.cluster = local_cluster(self.n_workers, self.threads_per_worker, self.worker_executor,
                                             self.worker_options)
                self.client = Client(self.cluster, set_as_default=False)
            else:
                self.client = Client(self.address, timeout=self.connect_timeout_s, set_as_default=False)
        except ExecutorUnavailable:
            self.close()
            raise
        except Exception as exc:
            self.close()
            where = f"the Dask scheduler at {self.address}" if self.address else "a local Dask cluster"
            raise ExecutorUnavailable(f"cannot start {where}: {clipped(str(exc) or repr(exc))}") from None
        self._check_scheduler()
        self._listen()
        self.read_workers()
        self._refresher = threading.Thread(target=self._refresh_loop, daemon=True, name="pyflow-dask-workers")
        self._refresher.start()

    def _check_scheduler(self) -> None:
        """Warn when the scheduler re-runs tasks of dead workers itself: a node could then run more than
        twice, under the same key."""
        try:
            allowed = self.client.run_on_scheduler(_allowed_failures)
        except Exception as exc:
            allowed = None
            log.warning("cannot read the Dask scheduler's allowed-failures: %s", exc)
        if allowed:
            name, value = next(iter(SCHEDULER_ENV.items()))
            self.warnings.append(f"the Dask scheduler re-runs a task whose worker died up to {allowed} times "
                                 f"before PyFlow's own single retry; start it with {name}={value}")

    def _listen(self) -> None:
        """Receive the outcomes workers push as nodes end, and send submissions without Dask's batching
        delay (an attribute of the client's stream to the scheduler; left alone where it is missing)."""
        self.client.subscribe_topic(OUTCOME_TOPIC, self._on_pushed)
        self._tune_stream()

    def _tune_stream(self) -> None:
        """Shorten the batching delay of the client's stream to the scheduler. Done again at every
        refresh: a client that reconnects (the scheduler restarted) opens a new stream with Dask's own."""
        stream = getattr(self.client, "scheduler_comm", None)
        if stream is not None and getattr(stream, "interval", 0) > CLIENT_BATCH_S:
            stream.interval = CLIENT_BATCH_S

    def _on_pushed(self, event) -> None:
        """On the client's event loop: keep the outcome for the node's waiting thread, and wake it. An
        outcome nobody waits for (cancelled, or another server's) is dropped."""
        _, msg = event
        key = msg.get("key") if isinstance(msg, dict) else None
        with self._lock:
            done = self._waiting.get(key)
            if done is not None:
                self._pushed[key] = msg.get("outcome") or b""
        if done is not None:
            done.set()

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            self._runs.clear()
            self._held.clear()
            self._submitted.clear()
        for part in (self.client, self.cluster):
            if part is not None:
                try:
                    part.close()
                except Exception as exc:  # shutting down: say so, go on closing the rest
                    log.warning("closing %s failed: %s", type(part).__name__, exc)
        self.client = self.cluster = None

    def finish_run(self, run_id: str | None) -> None:
        """Let go of the run's futures: the workers drop the results they were keeping for it."""
        if run_id is not None:
            with self._lock:
                self._runs.pop(run_id, None)
                futures = self._held.pop(run_id, None)
                self._submitted.pop(run_id, None)
            if futures:
                futures.clear()

    # -- workers ---------------------------------------------------------------------------------------
    def _refresh_loop(self) -> None:
        while not self._stop.wait(REFRESH_S):
            self._tune_stream()
            self.read_workers()

    def read_workers(self) -> dict[str, dict]:
        """The workers that have a PyFlow sandbox, from the scheduler (one round trip)."""
        try:
            info = self.client.scheduler_info(n_workers=-1)
        except Exception as exc:
            if not self._stop.is_set():
                log.warning("cannot read the Dask workers from the scheduler: %s", exc)
            return self._workers
        self._workers = {address: w for address, w in info.get("workers", {}).items()
                         if w.get("resources", {}).get(RESOURCE)}
        return self._workers

    def slots(self) -> int:
        """Sandbox slots in the cluster (as last read): how many nodes can run at once."""
        return int(sum(w["resources"][RESOURCE] for w in self._workers.values()))

    def readiness(self) -> dict:
        if self.client is None:
            return {"ready": False, "detail": "the executor is closed"}
        workers, slots = len(self._workers), self.slots()
        state = {"workers": workers, "slots": slots, "scheduler": self.scheduler_address()}
        if not workers:
            return {"ready": False, "detail": "no Dask worker with a PyFlow sandbox is connected to the scheduler "
                                              "(start some with `pyflow worker SCHEDULER`)", **state}
        return {"ready": True, "detail": f"{workers} Dask worker(s), {slots} sandbox slot(s)", **state}

    def scheduler_address(self) -> str | None:
        return self.cluster.scheduler_address if self.cluster is not None else self.address

    def describe(self) -> dict:
        where = ("a local Dask cluster on 127.0.0.1" if self.cluster is not None
                 else f"the Dask cluster at {self.address}")
        return {"name": self.name, "scheduler": self.scheduler_address(), "workers": sorted(self._workers),
                "isolation": f"bubblewrap sandbox on each worker of {where} (warm pool per worker process)",
                "warnings": list(self.warnings)}

    # -- running nodes -----------------------------------------------------------------------------
    def run(self, task: NodeTask, cancel: threading.Event | None = None) -> NodeOutcome:
        started = time.monotonic()
        if self.client is None:
            return NodeOutcome.failure("the executor is closed", "ExecutorError", "crashed")
        run_id = task.run_id or f"test-{uuid.uuid4().hex}"
        name = self._key_name(run_id, task.node_id) if task.run_id else task.node_id
        died = None
        for attempt in range(1, ATTEMPTS + 1):
            if not self._workers and not self.read_workers():
                return NodeOutcome.failure(self.readiness()["detail"], "ExecutorError", "crashed",
                                           duration_ms=ms(started))
            key = node_key(run_id, name, attempt)
            done = threading.Event()
            with self._lock:
                self._waiting[key] = done
            try:
                future = self._submit(task, key)
            except Exception as exc:  # the client closed or lost its scheduler: the node's error, never a raise
                self._forget(key)
                log.warning("node %s of run %s could not be submitted to Dask: %s", task.node_id, run_id, exc)
                why = clipped(str(exc) or repr(exc))
                return NodeOutcome.failure(f"could not submit the node to the Dask cluster: {why}", "ExecutorError",
                                           "crashed", duration_ms=ms(started))
            try:
                outcome, died, pushed = self._await(future, done, cancel, started)
            finally:
                self._forget(key)
            if died is None:
                self._keep(task, future, outcome, feeds=not pushed)
                return outcome
            future.release()
            log.warning("node %s of run %s: its Dask worker died (attempt %d of %d): %s", task.node_id,
                        run_id, attempt, ATTEMPTS, died)
        return NodeOutcome.failure(f"the Dask worker running the node died, {ATTEMPTS} times: {died}",
                                   "WorkerDied", "crashed", duration_ms=ms(started))

    def _key_name(self, run_id: str, node_id: str) -> str:
        """The node's name in its key: its id, with "~N" added when the same run runs it again (Dask
        would answer a second task under a key it holds with the first one's result)."""
        with self._lock:
            seen = self._submitted.setdefault(run_id, {})
            count = seen[node_id] = seen.get(node_id, 0) + 1
        return node_id if count == 1 else f"{node_id}~{count}"

    def _submit(self, task: NodeTask, key: str):
        """Submit the node; inputs whose source node's future this run keeps go as that future."""
        with self._lock:
            kept = self._runs.get(task.run_id, {}) if task.run_id else {}
            upstream = {s.node: kept[s.node] for s in task.sources if s is not None and s.node in kept}
        if upstream:
            task = replace(task, args=[None if s is not None and s.node in upstream else a
                                       for a, s in zip(task.args, task.sources)])
        return self.client.submit(run_node, key, task, upstream, key=key, resources={RESOURCE: 1}, pure=False)

    def _forget(self, key: str) -> None:
        with self._lock:
            self._waiting.pop(key, None)
            self._pushed.pop(key, None)

    def _keep(self, task: NodeTask, future, outcome: NodeOutcome, feeds: bool) -> None:
        """Keep the future until the run ends; with `feeds`, for the nodes it feeds too. A pushed (small)
        outcome does not feed them: the server has the value and sends it with their task, so it waits
        on no other task. Its key is still let go of only with the run's: releasing keys one by one
        sends the worker a message each, which holds the next node's start up to Dask's 5 ms batching."""
        if task.run_id and outcome.ok:
            with self._lock:
                self._held.setdefault(task.run_id, []).append(future)
                if feeds:
                    self._runs.setdefault(task.run_id, {})[task.node_id] = future

    def _await(self, future, done: threading.Event, cancel: threading.Event | None,
               started: float) -> tuple[NodeOutcome | None, str | None, bool]:
        """(outcome, None, whether it was pushed), or (None, why, False) when the worker running the node
        died. `done` is set when the worker says the node ended (with its outcome, or that it is too big
        to push); a task that ends otherwise (its worker died, the cluster dropped it) is seen within
        POLL_S. No done-callback on the future: Dask runs those on a thread of their own, one more
        thread hand-off per node."""
        idle_since = None
        while not done.wait(POLL_S):
            if future.done():
                break
            if cancel is not None and cancel.is_set():
                _drop(future)  # the worker's plugin kills the node's sandbox when it lets go of the key
                return cancelled(started), None, False
            idle_since = None if self._workers else (idle_since or time.monotonic())
            if idle_since is not None and time.monotonic() - idle_since > NO_WORKER_GRACE_S:
                _drop(future)
                return NodeOutcome.failure(self.readiness()["detail"], "ExecutorError", "crashed",
                                           duration_ms=ms(started)), None, False
        with self._lock:
            pushed = self._pushed.pop(future.key, None)
        if pushed:
            try:
                return pickle.loads(pushed), None, True
            except Exception as exc:  # not what plugin.push sends: fetch the task's result instead
                log.warning("Dask node task %s: unreadable pushed outcome: %r", future.key, exc)
        return *self._outcome_of(future, started), False

    def _outcome_of(self, future, started: float) -> tuple[NodeOutcome | None, str | None]:
        from distributed.scheduler import KilledWorker
        if future.status == "cancelled":  # not by this run (that returned earlier): the cluster dropped it
            return NodeOutcome.failure("the Dask cluster dropped the node's task (the scheduler restarted, or the "
                                       "connection to it was lost)", "ExecutorError", "crashed",
                                       duration_ms=ms(started)), None
        try:
            outcome = future.result()
        except KilledWorker as exc:
            return None, _killed_reason(exc)
        except Exception as exc:
            log.warning("Dask failed node task %s: %r", future.key, exc)
            return NodeOutcome.failure(f"the Dask cluster failed to run the node: {clipped(repr(exc))}",
                                       "ExecutorError", "crashed", duration_ms=ms(started)), None
        if not isinstance(outcome, NodeOutcome):
            return NodeOutcome.failure(f"the Dask worker answered {type(outcome).__name__}, not a node outcome",
                                       "ExecutorError", "crashed", duration_ms=ms(started)), None
        return outcome, None


def _drop(future) -> None:
    """Cancel a node's future; a client that is closing or has lost its scheduler drops it anyway."""
    try:
        future.cancel()
    except Exception as exc:
        log.warning("cancelling Dask task %s failed: %s", future.key, exc)


def _killed_reason(exc) -> str:
    worker = getattr(exc, "last_worker", None)
    address = getattr(worker, "address", None) or str(worker or "")
    return f"worker {address} ended while running it" if address else clipped(str(exc))


def _allowed_failures(dask_scheduler) -> int:
    return dask_scheduler.allowed_failures
