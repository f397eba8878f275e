"""Warm hardened containers of one image."""

from __future__ import annotations

import logging
import shutil
import threading
import time
import uuid
from dataclasses import replace

from ...engine.execution import Limits, NodeOutcome, NodeTask
from ..cgroups import memory_events_file, oom_kill_count
from ..channel import CancelledRun, Worker, WorkerDied, ms
from ..artifacts import Places
from ..pool import WorkerExecutor
from .cleanup import Reaper
from .names import ContainerName, container_name, node_labels
from .settings import (ARTIFACTS_IN, ARTIFACTS_OUT, Hardening, artifact_binds, container_options, memory_bytes,
                       process_limit)
from .transport import ContainerState, ContainerWorker

log = logging.getLogger(__name__)


class _TaskSlot(threading.local):
    """The task a container is being started for, on the thread that starts it (None for the pool)."""

    task: NodeTask | None = None


class ContainerPool(WorkerExecutor):
    """Warm hardened containers of one image (or a fresh container per node when pool_size is 0)."""

    name = "docker"

    def __init__(self, client, image: str, reaper: Reaper, owner: str, instance: str, hardening: Hardening,
                 pool_size: int, max_runs: int):
        super().__init__(pool_size=pool_size, max_runs=max_runs)
        self.client = client
        self.image = image
        self.reaper = reaper
        self.owner = owner
        self.instance = instance
        self.hardening = hardening
        self.last_used = time.monotonic()
        self.in_use = 0
        self._local = _TaskSlot()
        self._started_once = threading.Lock()
        self._is_started = False
        self._replenishing = 0

    # -- containers --------------------------------------------------------------------------------
    def spawn(self) -> Worker:
        """Create, attach to (before start, so nothing is missed) and start one worker container.

        A container for one node (pool size 0) is labelled and named for its run and node; a warm one
        is named idle and renamed for each node it runs (labels cannot change after creation)."""
        task = self._local.task
        limits = task.limits if task is not None else Limits()
        own_task = task if self.pool_size <= 0 else None
        labels = node_labels(self.owner, self.instance, self.image, own_task)
        token = uuid.uuid4().hex[:12]
        name = container_name(token, own_task)
        places = self._new_places()
        try:
            container = self.client.containers.create(name=name, **container_options(
                self.image, limits, labels, self.hardening, artifact_binds(places)))
        except BaseException:
            if places is not None:
                shutil.rmtree(places.root, ignore_errors=True)
            raise
        try:
            sock = self.client.api.attach_socket(container.id, params={"stdin": 1, "stdout": 1, "stderr": 1,
                                                                       "stream": 1})
            worker = ContainerWorker(container, sock, self.reaper, ContainerState(limits, places=places))
            if own_task is None:
                worker.state.naming = ContainerName(self.client, container.id, token)
            container.start()
            worker.state.host_pid = int(self.client.api.inspect_container(container.id)["State"].get("Pid") or 0)
            worker.state.oom_file = memory_events_file(worker.state.host_pid)
        except BaseException:
            self.reaper.remove(container.id)
            if places is not None:
                shutil.rmtree(places.root, ignore_errors=True)
            raise
        return worker

    def _new_places(self) -> Places | None:
        """The container's artifact places (inputs bound read-only, its output place writable by the
        node user), when artifacts are carried."""
        if self.artifacts is None:
            return None
        uid = self.hardening.user.partition(":")[0]
        root = self.artifacts.workspace(int(uid) if uid.isdigit() else None)
        return Places(root, ARTIFACTS_IN, ARTIFACTS_OUT)

    def artifact_places(self, worker: Worker) -> Places | None:
        return getattr(worker.state, "places", None)

    def discard(self, worker: Worker) -> None:
        places = getattr(worker.state, "places", None)
        if places is not None:
            shutil.rmtree(places.root, ignore_errors=True)

    def _spawn_on_spawner(self) -> Worker:
        """Containers do not die with the thread that created them (the reason the base class starts
        workers from one long-lived thread), so create them on the caller's thread: pools fill side by
        side, and a per-node container sees the task it is labelled for."""
        return self.spawn()

    def spawn_failure(self, worker: Worker) -> str:
        """What the container wrote on stderr before it failed (python3 missing from an image, say)."""
        tail = worker.stderr_tail().strip() if isinstance(worker, ContainerWorker) else ""
        return f"container stderr: {tail[-600:]}" if tail else ""

    def _started(self) -> Worker:
        try:
            return super()._started()
        except WorkerDied as exc:
            raise WorkerDied(f"the worker container for image {self.image} did not start: {exc}") from None

    def start(self) -> None:
        """Fill the pool, starting the containers side by side (each takes about a second)."""
        with self._started_once:
            if self._is_started:
                return
            errors: list[BaseException] = []
            threads = [threading.Thread(target=self._fill_one, args=(errors,), daemon=True)
                       for _ in range(self.pool_size)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            if errors:
                self.close()
                raise errors[0]
            self._is_started = True

    def _fill_one(self, errors: list) -> None:
        try:
            self._idle.put(self._started())
        except BaseException as exc:  # reported by start()
            errors.append(exc)

    # -- one node run ------------------------------------------------------------------------------
    def run(self, task: NodeTask, cancel: threading.Event | None = None) -> NodeOutcome:
        """Take a container, give it the node's limits, run the node, recycle it when needed."""
        started = time.monotonic()
        with self._lock:
            self.last_used, self.in_use = started, self.in_use + 1
        try:
            worker = self._take(task, cancel, started)
            if isinstance(worker, NodeOutcome):
                return worker
            problem = self._apply_limits(worker, task.limits)
            if problem:
                self._release(worker, True)
                return NodeOutcome.failure(problem, "ExecutorError", duration_ms=ms(started))
            return self._run_and_release(worker, task, cancel, started)
        finally:
            with self._lock:
                self.in_use -= 1

    def _take(self, task: NodeTask, cancel, started: float):
        """A ready container, or the outcome that says why there is none."""
        self._local.task = task
        try:
            if self._pool_is_empty_for_good():
                return self._started()  # retry here: an engine that is back serves the node, else its error
            return self._acquire(cancel)
        except CancelledRun:
            return NodeOutcome.failure("the run was cancelled", "Cancelled", "cancelled", duration_ms=ms(started))
        except Exception as exc:
            log.warning("could not start a container of image %s for node %s: %s", self.image, task.node_id, exc)
            return NodeOutcome.failure(f"could not start a container for the node: {exc}", "ExecutorError",
                                       "crashed", duration_ms=ms(started))
        finally:
            self._local.task = None

    def _pool_is_empty_for_good(self) -> bool:
        """No container idle, none alive, none being started: waiting for one would wait forever (the
        engine failed every replacement)."""
        with self._lock:
            return self.pool_size > 0 and self._idle.empty() and not self._live and not self._replenishing

    def _replenish(self) -> None:
        with self._lock:
            self._replenishing += 1
        try:
            super()._replenish()
        finally:
            with self._lock:
                self._replenishing -= 1

    def _apply_limits(self, worker: ContainerWorker, limits: Limits) -> str | None:
        """Update a warm container's memory and process limits to this node's, when they differ.

        Through the engine's update endpoint directly: docker-py's update_container has no PidsLimit."""
        wanted = (memory_bytes(limits), process_limit(limits))
        if wanted == (memory_bytes(worker.state.limits), process_limit(worker.state.limits)):
            return None
        body = {"Memory": wanted[0], "MemorySwap": wanted[0], "PidsLimit": wanted[1]}
        api = self.client.api
        try:
            response = api._post_json(api._url("/containers/{0}/update", worker.container.id), data=body)
            api._raise_for_status(response)
        except Exception as exc:
            return f"could not set the node's limits on its container: {exc}"
        worker.state.limits = limits
        return None

    def prepare_payload(self, worker: Worker, task: NodeTask) -> dict:
        payload = task.payload()
        payload["scratch"] = "/tmp"
        payload["memory_rlimit"] = False  # the container's memory cgroup holds the limit
        return payload

    def before_run(self, worker: Worker, task: NodeTask) -> None:
        """Name a warm container for the node's run and node; a container that cannot be named so does
        not run the node (the OSError fails the node and recycles the container)."""
        if isinstance(worker, ContainerWorker):
            if worker.state.naming is not None:
                try:
                    worker.state.naming.rename_now(container_name(worker.state.naming.token, task))
                except Exception as exc:
                    raise OSError(f"could not name the container for run {task.run_id}, node {task.node_id}: "
                                  f"{exc}") from None
            worker.state.oom_before = oom_kill_count(worker.state.oom_file)

    def after_run(self, worker: Worker, task: NodeTask, outcome: NodeOutcome) -> NodeOutcome:
        """A failed run during which the kernel killed a process of the container for memory failed
        because of the node's memory limit, whatever the node made of it (a child it waited for, say).
        A warm container is renamed idle shortly after, unless its next node comes first."""
        if isinstance(worker, ContainerWorker) and worker.state.naming is not None:
            self.reaper.rename_idle(worker.state.naming, worker.state.naming.idle)
        if outcome.ok or not isinstance(worker, ContainerWorker):
            return outcome
        if worker.state.oom_file is not None:
            hit = oom_kill_count(worker.state.oom_file) > worker.state.oom_before
        else:
            hit = self._peak_reached_limit(worker)
        if not hit:
            return self._explain_crash(worker, outcome)
        return NodeOutcome.failure(f"memory limit of {task.limits.memory_mb} MB exceeded (the kernel's "
                                   f"out-of-memory killer ended a process of the node)", "MemoryLimit", "memory",
                                   outcome.stdout, outcome.duration_ms)

    def _peak_reached_limit(self, worker: ContainerWorker) -> bool:
        """Where the container's cgroup cannot be read (a remote engine, a server in a container): the
        engine's peak memory of the container at its limit. Containers are replaced after any memory
        violation, so a peak at the limit means this run."""
        try:
            stats = self.client.api.stats(worker.container.id, stream=False, one_shot=True)
        except Exception as exc:
            log.warning("could not read the memory peak of %s: %s", worker.label, exc)
            return False
        memory = stats.get("memory_stats") or {}
        peak, limit = memory.get("max_usage") or memory.get("usage") or 0, memory.get("limit") or 0
        return bool(limit) and peak >= limit - 4 * 1024 * 1024

    def _explain_crash(self, worker: Worker, outcome: NodeOutcome) -> NodeOutcome:
        """Add what the worker wrote on stderr when the whole container ended under the node."""
        tail = worker.stderr_tail().strip() if isinstance(worker, ContainerWorker) else ""
        if outcome.violation == "crashed" and tail and outcome.error and "ended unexpectedly" in \
                outcome.error.get("message", ""):
            error = dict(outcome.error, message=outcome.error["message"] + f" (container stderr: {tail[-400:]})")
            return replace(outcome, error=error)
        return outcome
