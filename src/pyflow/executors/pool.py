"""A pool of warm workers: the executor that runs each node on a worker process (channel.py).

`WorkerExecutor` runs each node on a worker, either a fresh one per node or one from a pool of warm ones
that are recycled after `max_runs` runs and after any violation. Subclasses say how to start a worker
(a plain subprocess, a bubblewrap sandbox, a Docker container) and what per-worker state it carries.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from ..engine.execution import Executor, NodeOutcome, NodeTask
from ..storage.artifacts import ArtifactRefused, ArtifactStore
from .artifacts import OutputGuard, Places, refuse_inputs, stage, take
from .channel import (POLL_S, CancelledRun, FrameTooLarge, Worker, WorkerDied, cancelled, clipped, ms,
                      outcome_of)

log = logging.getLogger(__name__)


class OutputOverflow(Exception):
    """A node wrote more into its output place than its artifacts may take; it was ended."""

# How long a worker may take to clean up after a run (reap, sweep, empty its scratch space) before the
# next run gives up on it and takes another.
CLEANUP_TIMEOUT_S = 30.0
GRACE_S = 2.0


class WorkerExecutor(Executor):
    """Runs each node on a worker process: fresh per node, or from a warm pool.

    Subclasses say how to start a worker (`spawn`) and may adjust a run before and after it (cgroup
    limits, reading out-of-memory counters). A worker is recycled after `max_runs` runs, after any
    violation (timeout, crash, memory, cancellation) and whenever it asks to be.
    """

    name = "worker"

    def __init__(self, pool_size: int = 0, max_runs: int = 200):
        self.pool_size = pool_size
        self.max_runs = max_runs
        self._idle: queue.Queue[Worker] = queue.Queue()
        self._live: set[Worker] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._spawn_errors = 0
        self._spawn_error: str | None = None  # why the latest start of a worker failed (see readiness)
        self._reserved = 0  # spawns under way on behalf of the pool (see _reserve)
        self._spawn_requests: queue.Queue = queue.Queue()
        self._spawner: threading.Thread | None = None
        self.artifacts: ArtifactStore | None = None

    # -- to override --------------------------------------------------------------------------------
    def spawn(self) -> Worker:
        raise NotImplementedError

    def prepare_payload(self, worker: Worker, task: NodeTask) -> dict:
        return task.payload()

    def before_run(self, worker: Worker, task: NodeTask) -> None:
        """Hook: set per-run limits on the worker's cgroup, for instance."""

    def after_run(self, worker: Worker, task: NodeTask, outcome: NodeOutcome) -> NodeOutcome:
        """Hook: refine the outcome (an out-of-memory kill seen in a cgroup counter, for instance)."""
        return outcome

    def discard(self, worker: Worker) -> None:
        """Hook: release what belongs to a worker that is ended for good."""

    # -- pool ---------------------------------------------------------------------------------------
    def start(self) -> None:
        """Fill the warm pool (no-op for fresh-per-node executors)."""
        for _ in range(self.pool_size):
            self._idle.put(self._started())

    def spawn_failure(self, worker: Worker) -> str:
        """Hook: what the worker's launcher reported when it failed to start."""
        return ""

    def _spawn_on_spawner(self) -> Worker:
        """Start workers from one long-lived thread: a parent-death signal (bwrap --die-with-parent)
        fires when the *thread* that started the process ends, so a short-lived thread would take its
        workers down with it."""
        with self._lock:
            if self._spawner is None or not self._spawner.is_alive():
                self._spawner = threading.Thread(target=self._spawn_loop, daemon=True, name="pyflow-spawner")
                self._spawner.start()
        reply: queue.Queue = queue.Queue(maxsize=1)
        self._spawn_requests.put(reply)
        ok, value = reply.get()
        if not ok:
            raise value
        return value

    def _spawn_loop(self) -> None:
        while True:
            reply = self._spawn_requests.get()
            if reply is None:
                return
            try:
                reply.put((True, self.spawn()))
            except BaseException as exc:  # handed to the caller, raised there
                reply.put((False, exc))

    def _started(self) -> Worker:
        worker = self._spawn_on_spawner()
        try:
            worker.wait_ready()
        except WorkerDied as exc:
            said = self.spawn_failure(worker)
            self._end(worker)
            raise WorkerDied(f"{exc}: {said}" if said else str(exc)) from None
        except BaseException:
            self._end(worker)
            raise
        with self._lock:
            closed = self._closed
            if not closed:
                self._live.add(worker)
        if closed:  # close() has already ended every live worker: this one must not outlive it
            self._end(worker)
            raise WorkerDied("executor is closed")
        return worker

    def _acquire(self, cancel: threading.Event | None) -> Worker:
        """An idle worker that has cleaned up after its last run; when the pool is short of workers
        (respawns failed or are slow) and none is being started, start one for this run, so a failure
        to spawn reaches the caller instead of leaving every later run waiting on an empty pool."""
        if self._closed:
            raise WorkerDied("executor is closed")
        if self.pool_size <= 0:
            return self._start_noting()
        while True:
            worker = self._next_idle(cancel)
            if self._cleaned_up(worker, cancel):
                return worker

    def _next_idle(self, cancel: threading.Event | None) -> Worker:
        while True:
            try:
                return self._idle.get(timeout=POLL_S)
            except queue.Empty:
                if cancel is not None and cancel.is_set():
                    raise CancelledRun() from None
                if self._closed:
                    raise WorkerDied("executor is closed") from None
            if self._reserve():
                return self._spawn_reserved()

    def _cleaned_up(self, worker: Worker, cancel: threading.Event | None) -> bool:
        """Whether `worker` may run the next node. A worker answers a run before it cleans up after it
        (so the cleanup overlaps the caller's work), then says whether the cleanup went well; one
        that says no, or says nothing in time, is ended and replaced, and the run takes another."""
        if not worker.cleanup_pending:
            return True
        try:
            reason = worker.read_cleanup_report(time.monotonic() + CLEANUP_TIMEOUT_S, cancel)
        except CancelledRun:
            self._idle.put(worker)  # its report is still to be read, by the next run
            raise
        except (WorkerDied, TimeoutError) as exc:
            reason = f"no word on its cleanup: {exc or 'timed out'}"
        if reason is None:
            return True
        log.info("%s: %s retired after its run: %s", self.name, worker.label, reason)
        self._release(worker, True)
        return False

    def _reserve(self) -> bool:
        """Claim the right to start one pool member, if live and starting workers are fewer than the pool."""
        with self._lock:
            if len(self._live) + self._reserved >= self.pool_size:
                return False
            self._reserved += 1
            return True

    def _spawn_reserved(self) -> Worker:
        try:
            return self._start_noting()
        finally:
            with self._lock:
                self._reserved -= 1

    def _release(self, worker: Worker, recycle: bool) -> None:
        """Back to the pool, or ended (and replaced, for a pool). A worker retired only because it has
        served `max_runs` runs, its last one fine, is ended on the replacing thread, off the run's path
        (ending a sandbox takes milliseconds); one recycled for a violation is ended before the run
        returns, so nothing of that run outlives it."""
        if self.pool_size <= 0 or self._closed:
            self._end(worker)
            return
        if not recycle and worker.runs < self.max_runs:
            self._idle.put(worker)
            return
        if recycle:
            self._end(worker)
        retired = None if recycle else worker
        threading.Thread(target=self._replace, args=(retired,), daemon=True, name="pyflow-respawn").start()

    def _replace(self, retired: Worker | None) -> None:
        if retired is not None:
            self._end(retired)
        self._replenish()

    def _replenish(self) -> None:
        """Start a replacement pool member, retrying a few times; each failure is logged with its reason
        and counted (readiness() reports the count as "spawn_errors", which /api/health shows)."""
        for attempt in range(5):
            if self._closed or not self._reserve():
                return
            try:
                self._idle.put(self._spawn_reserved())
                return
            except Exception as exc:
                with self._lock:
                    self._spawn_errors += 1
                log.warning("%s: starting a replacement worker failed (attempt %d of 5): %s", self.name,
                            attempt + 1, clipped(str(exc) or repr(exc)))
                time.sleep(0.2 * (attempt + 1))

    def _start_noting(self) -> Worker:
        """_started, remembering whether it failed, for readiness()."""
        try:
            worker = self._started()
        except BaseException as exc:
            self._spawn_error = clipped(str(exc) or repr(exc))
            raise
        self._spawn_error = None
        return worker

    def readiness(self) -> dict:
        """Whether a node could start now, from counts alone: a worker is idle, or busy or starting
        (it will serve), or, without a pool, the latest start of one did not fail."""
        idle, live, starting = self._idle.qsize(), len(self._live), self._reserved
        state = {"idle": idle, "live": live, "starting": starting, "spawn_errors": self._spawn_errors}
        if self._closed:
            return {"ready": False, "detail": "the executor is closed", **state}
        if self.pool_size > 0 and (idle or live or starting):
            return {"ready": True, "detail": f"{idle} idle, {live} live worker(s)", **state}
        if self._spawn_error is None:
            return {"ready": True, "detail": "workers start on demand", **state}
        return {"ready": False, "detail": f"no worker is idle or running, and starting one failed: "
                                          f"{self._spawn_error}", **state}

    def _end(self, worker: Worker) -> None:
        worker.kill()
        self.discard(worker)
        with self._lock:
            self._live.discard(worker)

    # -- Executor -----------------------------------------------------------------------------------
    def run(self, task: NodeTask, cancel: threading.Event | None = None) -> NodeOutcome:
        started = time.monotonic()
        try:
            worker = self._acquire(cancel)
        except CancelledRun:
            return cancelled(started)
        except Exception as exc:
            log.warning("%s: could not start a worker for node %s: %s", self.name, task.node_id, clipped(str(exc)))
            return NodeOutcome.failure(f"could not start a worker: {exc}", "ExecutorError", "crashed")
        return self._run_and_release(worker, task, cancel, started)

    def _run_and_release(self, worker: Worker, task: NodeTask, cancel, started: float) -> NodeOutcome:
        """Run the node on `worker`, then hand the worker back whatever happened.

        A worker that is neither idle nor ended still counts as live, so the pool would never replace it:
        a few runs that raised would leave every later run waiting forever. So the release is in a
        `finally`, and a failure of the executor's own becomes the node's error (and ends the worker)
        instead of an exception out of run()."""
        recycle = True
        try:
            outcome, recycle = self._run_on(worker, task, cancel, started)
            outcome = self.after_run(worker, task, outcome)
            recycle = recycle or outcome.violation is not None
            return outcome
        except Exception as exc:
            recycle = True
            log.exception("%s: the executor failed while running node %s", self.name, task.node_id)
            return NodeOutcome.failure(f"the executor failed while running the node: {clipped(repr(exc))}",
                                       "ExecutorError", "crashed", duration_ms=ms(started))
        finally:
            self._release(worker, recycle)

    def _run_on(self, worker: Worker, task: NodeTask, cancel, started: float) -> tuple[NodeOutcome, bool]:
        deadline = time.monotonic() + task.limits.timeout_s + GRACE_S
        try:
            self.before_run(worker, task)
        except OSError as exc:  # the worker's cgroup vanished, say: never raise out of run()
            return NodeOutcome.failure(f"could not prepare the node's worker: {exc}", "ExecutorError", "crashed",
                                       duration_ms=ms(started)), True
        payload = self.prepare_payload(worker, task)
        refused = self._stage_artifacts(worker, task, payload)
        if refused is not None:
            return NodeOutcome.failure(refused, "ArtifactError", duration_ms=ms(started)), False
        try:
            header, value = self._guarded_request(worker, task, payload, deadline, cancel)
        except OutputOverflow as exc:
            return NodeOutcome.failure(str(exc), "ResultTooLarge", "result_too_large", duration_ms=ms(started)), True
        except CancelledRun:
            return cancelled(started), True
        except TimeoutError:
            return NodeOutcome.failure(f"timed out after {task.limits.timeout_s:g} s", "Timeout", "timeout",
                                       duration_ms=ms(started)), True
        except FrameTooLarge as exc:
            return NodeOutcome.failure(f"the node's worker broke the protocol: {exc}", "ProtocolError", "crashed",
                                       duration_ms=ms(started)), True
        except (WorkerDied, ValueError) as exc:
            return NodeOutcome.failure(f"the node's worker process ended unexpectedly: {exc}", "NodeCrashed",
                                       "crashed", duration_ms=ms(started)), True
        outcome = outcome_of(header, value, started, task.limits.result_kb)
        if outcome.ok and header.get("artifacts") is not None:
            return self._take_artifacts(worker, task, header["artifacts"], outcome, deadline)
        return outcome, bool(header.get("recycle"))

    def _guarded_request(self, worker: Worker, task: NodeTask, payload: dict, deadline: float, cancel):
        """worker.request, with the output place watched while the node runs when there is one."""
        places = self.artifact_places(worker) if self.artifacts is not None else None
        if places is None:
            return worker.request(payload, deadline, cancel)
        cap = task.limits.result_mb * max(1, len(task.output_names)) << 20
        with OutputGuard(places.host_out, cap, worker.kill) as guard:
            try:
                return worker.request(payload, deadline, cancel)
            except (WorkerDied, TimeoutError, ValueError):
                if guard.tripped:
                    raise OutputOverflow(guard.tripped) from None
                raise

    # -- artifacts (values that are not JSON; see artifacts.py) --------------------------------------
    def use_artifacts(self, store: ArtifactStore) -> None:
        """Carry values that are not JSON as artifacts in `store` (set before start)."""
        self.artifacts = store

    def artifact_places(self, worker: Worker) -> Places | None:
        """Hook: the worker's artifact places, or None when this executor does not carry artifacts."""
        return None

    def _stage_artifacts(self, worker: Worker, task: NodeTask, payload: dict) -> str | None:
        places = self.artifact_places(worker) if self.artifacts is not None else None
        if places is None:
            return refuse_inputs(task)
        try:
            stage(self.artifacts, places, task, payload)
        except ArtifactRefused as exc:
            return exc.message
        return None

    def _take_artifacts(self, worker: Worker, task: NodeTask, claims, outcome: NodeOutcome,
                        deadline: float) -> tuple[NodeOutcome, bool]:
        """Take the run's artifacts once the worker has cleaned up after it (no process of the node is
        left to change a file after it was hashed); a worker that could not clean up is ended first."""
        places = self.artifact_places(worker) if self.artifacts is not None else None
        if places is None:
            return NodeOutcome.failure("the node's worker claimed artifacts it was not asked for", "ProtocolError",
                                       "crashed", outcome.stdout, outcome.duration_ms), True
        try:
            reason = worker.read_cleanup_report(deadline)
        except (WorkerDied, TimeoutError) as exc:
            reason = f"no word on its cleanup: {exc or 'timed out'}"
        if reason is not None:
            worker.kill()
        try:
            outcome.value = take(self.artifacts, places, claims, outcome.value, task.limits.result_mb << 20)
        except ArtifactRefused as exc:
            outcome = NodeOutcome.failure(exc.message, exc.kind, None, outcome.stdout, outcome.duration_ms)
        except OSError as exc:
            log.warning("%s: the artifacts of node %s could not be stored: %s", self.name, task.node_id, exc)
            outcome = NodeOutcome.failure(f"the node's artifacts could not be stored: {exc}", "StorageError", None,
                                          outcome.stdout, outcome.duration_ms)
        finally:
            places.empty()
        return outcome, reason is not None

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._spawn_requests.put(None)
        with self._lock:
            live = list(self._live)
        for worker in live:
            self._end(worker)
        while not self._idle.empty():  # ended above; a later run must not be handed one
            try:
                self._idle.get_nowait()
            except queue.Empty:
                break

    def live_pids(self) -> list[int]:
        with self._lock:
            return [z.pid for z in self._live]


