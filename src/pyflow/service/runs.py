"""Runs as first-class objects: a bounded queue, background execution, history, live events, cancel.

Each run is stored with a snapshot of the flow and nodespecs as they ran. While a run is live its events
are kept in memory (so a Server-Sent Events client hears of a node within milliseconds) and written to
the database in batches by one persister thread; a finished run replays its events from storage.

Nothing a node returns and nothing storage does stops this machinery: an error is caught where it
happens and fails the run it belongs to, saying why; what could not be written is kept, small, and
written once storage takes it again; a thread that dies anyway is restarted by a watchdog.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterator

from .. import process_identity
from ..engine import CompiledFlow, Executor, FlowRunner, Plan, PlanCache, RunOptions
from ..engine.execution import node_error
from ..jsontext import compact_json, compact_json_any
from ..model.errors import Conflict, PyflowError, ServiceUnavailable, StorageUnavailable, TooManyRequests
from ..storage import CacheAdapter, ResultCache, RunStore
from ..timestamps import now_iso
from ..storage.artifacts import ArtifactStore
from .artifacts import cached_usable, collect as collect_artifacts
from .config import Config
from .health import StorageGate
from .supervisor import Supervisor

log = logging.getLogger(__name__)

RUN_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled", "interrupted")
FINAL_STATES = frozenset(RUN_STATUSES[2:])
PREVIEW_BYTES = 1024
PERSIST_INTERVAL_S = 0.05
RETRY_UNSAVED_S = 1.0  # how often what storage refused is offered to it again
# More events than a run can emit between two persister passes, so a recovered run's final event id is
# above any id a client may have seen.
RECOVERY_EVENT_GAP = 1_000_000
PRUNE_CACHE_EVERY = 20  # finished runs between two trims of the result cache...
# ...or sooner, once this share of its byte budget has been written; no single result may take more.
CACHE_SHARE = 8


@dataclass
class LiveRun:
    id: str
    flow_id: str | None
    compiled: CompiledFlow
    use_cache: bool
    status: str = "queued"
    cancel: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    cond: threading.Condition = field(default_factory=threading.Condition)
    flushing: threading.Lock = field(default_factory=threading.Lock)
    events: list[dict] = field(default_factory=list)
    pending_events: list[dict] = field(default_factory=list)
    pending_results: dict = field(default_factory=dict)
    pending_outcome: dict | None = None
    statuses: dict = field(default_factory=dict)
    failure: str | None = None  # why storage could not keep up with this run: it fails with this reason
    final_event: dict | None = None
    listeners: list[Callable[[], None]] = field(default_factory=list)
    snapshot_json: str = "{}"
    environments: dict = field(default_factory=dict)  # key -> {requirements, packages} the nodes ran with

    def since(self, position: int) -> tuple[list[dict], bool]:
        """The events after id `position` and whether the run is done, without waiting."""
        with self.cond:
            fresh, done = self.events[position:], self.done.is_set()
        return with_text(fresh), done

    def tell_listeners(self) -> None:
        """Called with `cond` held, after each new event: listeners only schedule their own work."""
        for notify in self.listeners:
            notify()


SCALARS = (int, float, bool, type(None))


def preview(value, limit: int = PREVIEW_BYTES):
    """A size-capped view of node outputs for live events."""
    if isinstance(value, dict) and len(value) <= 16 and all(type(v) in SCALARS for v in value.values()):
        return value  # a few numbers: small whatever they are, no need to measure
    text = json.dumps(value, default=repr)
    if len(text) <= limit:
        return value
    return {"truncated": True, "preview": text[:limit], "bytes": len(text)}




def make_event(event_id: int, kind: str, data: dict) -> dict:
    """An event; its stream text is encoded once (`with_text`), for every client that follows it and for
    storage, by the first of them: the persister or a follower, not the run's thread, on whose path
    every node's two events would otherwise lie."""
    return {"id": event_id, "event": kind, "data": data, "at": now_iso(), "text": None}


def with_text(events: list[dict]) -> list[dict]:
    """`events`, each with its stream text (encoded here if no one has yet; two threads doing so at once
    write the same text)."""
    for event in events:
        if event["text"] is None:
            event["text"] = compact_json_any({**event["data"], "at": event["at"]})
    return events


def describe_error(exc: Exception) -> str:
    """A run's failure reason for an exception: a domain error's own message, else its repr."""
    return exc.message if isinstance(exc, PyflowError) else f"internal error: {exc!r}"


def unstored(result: dict, failure: str) -> dict:
    """A node result that storage would not take, made small: no values, and failed, saying why."""
    error = result.get("error")
    if result["status"] == "success":
        error = node_error("StorageError", f"the node's result could not be stored: {failure}")
    return {**result, "status": "fail" if result["status"] == "success" else result["status"],
            "inputs": {}, "outputs": {}, "stdout": "", "error": error}


def with_environments(snapshot_json: str, environments: dict) -> str:
    """The run's snapshot with the environments its nodes ran with (key -> requirements and the exact
    packages), so a run says what it ran with."""
    snapshot = json.loads(snapshot_json)
    snapshot["environments"] = environments
    return compact_json(snapshot)


def node_event_data(result: dict) -> dict:
    error = result.get("error")
    data = {"node": result["id"], "name": result["name"], "status": result["status"],
            "cached": result.get("cached", False), "duration_ms": result.get("duration_ms", 0.0),
            "outputs": preview(result.get("outputs") or {}),
            "error": {"type": error.get("type"), "message": error.get("message")} if error else None,
            "path": result.get("path") or [result["id"]]}
    if result.get("reason"):
        data["reason"] = result["reason"]
    if result.get("items") is not None:  # a mapped node: how its items went
        items = result["items"]
        data["items"] = {"total": len(items), "failed": sum(1 for i in items if i["status"] != "success")}
    if result.get("worker"):  # the cluster's worker that ran it
        data["worker"] = result["worker"]
    return data


class RunManager:
    """Queues, executes and follows runs; writes them to `store` and caches node results in `cache`
    (often one repository, as both interfaces are)."""

    def __init__(self, store: RunStore, cache: ResultCache, executor: Executor, config: Config,
                 environments=None, artifacts: ArtifactStore | None = None):
        self.store = store
        self.environments = environments
        self.artifacts = artifacts
        self.executor = executor
        self.config = config
        self.owner = process_identity.current()
        self._finished_runs = 0
        self.gate = StorageGate(store, config.min_free_mb)
        self._cache = CacheAdapter(cache, max_entry_bytes=config.cache_bytes // CACHE_SHARE,
                                   on_error=self._storage_trouble,
                                   usable=cached_usable(artifacts) if artifacts is not None else None)
        self.plans = PlanCache()
        self._queue: deque[LiveRun] = deque()
        self._live: dict[str, LiveRun] = {}
        self._lock = threading.Condition()
        self._stopping = False
        self._reserved = 0  # queue places taken by submits still writing their run
        self._dirty: set[str] = set()
        self._unsaved: set[str] = set()  # live runs with writes storage refused, offered again later
        self._retry_at = 0.0
        self._current: dict[str, LiveRun] = {}  # run thread name -> the run it executes
        self.supervisor = Supervisor(config.watchdog_s, self._thread_died)
        for i in range(max(1, config.max_running)):
            self.supervisor.add(f"pyflow-run-{i}", self._work)
        self.supervisor.add("pyflow-persist", self._persist_loop)

    def start(self) -> None:
        self.recover()
        self._maintain(prune_runs_of=None)
        self.supervisor.start()

    def threads(self) -> list[threading.Thread]:
        """The run threads and the event persister, as running now."""
        return self.supervisor.threads()

    def dead_threads(self) -> list[str]:
        return [] if self._stopping else self.supervisor.dead()

    def watchdog_pass(self) -> list[str]:
        """Restart dead threads now (the watchdog does this every `watchdog_s` seconds)."""
        return self.supervisor.check()

    # ---------------------------------------------------------------------------------- recovery
    def recover(self) -> list[str]:
        """Runs left queued or running by a process that died become interrupted, with the reason.

        Runs of a process that is still alive (another server, or `pyflow run`, on the same database)
        are left alone. The final event's id leaves a gap after the last stored one: events of the last
        moments before the crash may have reached a client without reaching the database, and a client
        resuming from one of those must still be told how the run ended.
        """
        ids = []
        for run in self.store.unfinished_runs():
            owner = run.get("owner")
            if owner and process_identity.alive(owner) is not False:
                continue  # its process is alive, or on another host: not ours to judge
            reason = f"the server stopped while the run was {run['status']}"
            last = self.store.events(run["id"], after=0, limit=1_000_000, parse=False)
            seq = last[-1]["id"] if last else 0
            event = make_event(seq + RECOVERY_EVENT_GAP, "run_finished", {"status": "interrupted", "reason": reason})
            self.store.save_progress(run["id"], with_text([event]), [])
            self.store.update_run(run["id"], status="interrupted", reason=reason, finished_at=now_iso())
            ids.append(run["id"])
        return ids

    # ------------------------------------------------------------------------------------ submit
    def submit(self, plan: Plan, values: dict | None = None, use_cache: bool = True,
               flow_id: str | None = None) -> dict:
        """Queue a run of a compiled plan; answers its id and status. Raises TooManyRequests, and
        StorageUnavailable while the run could not be stored."""
        self.gate.admit()
        live = LiveRun(id=uuid.uuid4().hex, flow_id=flow_id, compiled=plan.compiled, use_cache=use_cache,
                       snapshot_json=plan.snapshot_json)
        with self._lock:
            if len(self._queue) + self._reserved >= self.config.max_queue:
                raise TooManyRequests(f"the run queue is full ({self.config.max_queue} runs waiting); "
                                      f"try again shortly", retry_after=self._retry_after())
            self._reserved += 1
        try:  # written outside the lock: run threads and health checks never wait on a write
            self.store.create_run({"id": live.id, "flow_id": flow_id, "status": "queued",
                                        "snapshot_json": plan.snapshot_json, "created_at": now_iso(),
                                        "owner": self.owner, "request": {"values": values or {}, "cache": use_cache}})
        except BaseException as exc:
            with self._lock:
                self._reserved -= 1
            if isinstance(exc, StorageUnavailable):
                self.gate.failed(exc.message)
            raise
        with self._lock:
            self._reserved -= 1
            self._live[live.id] = live
        self._emit(live, "run_queued", {"run": live.id, "flow_id": flow_id, "nodes": list(plan.compiled.nodes)})
        with self._lock:
            self._queue.append(live)
            self._lock.notify_all()
        return {"id": live.id, "flow_id": flow_id, "status": "queued"}

    def _retry_after(self) -> int:
        return max(1, min(60, len(self._queue) // max(1, self.config.max_running)))

    # -------------------------------------------------------------------------------- execution
    def _work(self) -> None:
        name = threading.current_thread().name
        while True:
            with self._lock:
                while not self._queue and not self._stopping:
                    self._lock.wait()
                if self._stopping:
                    return
                live = self._queue.popleft()
                self._current[name] = live
            try:
                self._execute(live)
            except Exception as exc:  # _execute guards itself; this is the line behind it
                log.exception("run %s: the run thread failed", live.id)
                self._abandon(live, describe_error(exc))
            with self._lock:  # not in a `finally`: a thread that dies leaves its run to the watchdog
                self._current.pop(name, None)

    def _execute(self, live: LiveRun) -> None:
        started = time.monotonic()
        live.status = "running"
        try:
            self.store.update_run(live.id, status="running", started_at=now_iso())
            self._emit(live, "run_started", {"run": live.id, "flow_id": live.flow_id,
                                             "nodes": list(live.compiled.nodes)})
            outcome = FlowRunner(live.compiled, self.executor,
                                 RunOptions(concurrency=self.config.concurrency, use_cache=live.use_cache,
                                            run_id=live.id, default_limits=self.config.default_limits,
                                            max_limits=self.config.max_limits),
                                 cache=self._cache,
                                 on_event=lambda kind, data: self._node_event(live, kind, data),
                                 cancel=live.cancel, environments=self.environments).run()
            status, reason = outcome.status, None
        except Exception as exc:  # a bug in the engine, or storage failing, must still end the run
            log.exception("run %s failed in the run machinery", live.id)
            self._storage_trouble(exc)
            status, reason = "failed", describe_error(exc)
        self._finish(live, status, reason, started)

    def _node_event(self, live: LiveRun, kind: str, result: dict) -> None:
        if kind == "environment":
            if result.get("phase") == "ready":  # what the run's snapshot records it ran with
                live.environments[result["key"]] = {"requirements": result.get("requirements", []),
                                                    "packages": result.get("packages", [])}
            self._emit(live, kind, result)
        elif kind in ("node_started", "node_progress"):  # no result to store: passed on as they are
            self._emit(live, kind, result)
        else:
            self._emit(live, kind, node_event_data(result), result)

    def _finish(self, live: LiveRun, status: str, reason: str | None, started: float) -> None:
        """Store the run's outcome, then tell followers and waiters; never raises. When storage refuses
        the outcome, the run fails with what storage said, and that (smaller) record is written now or,
        failing that, by the persister once storage takes writes again."""
        if live.failure is not None:
            status, reason = "failed", live.failure
        self._conclude(live, status, reason, started)
        # Store the outcome before anyone hears of it, so a client that reads the run right after the
        # run_finished event sees it complete.
        saved = self._flush(live)
        if not saved:
            self._conclude(live, "failed", live.failure, started)
            saved = self._flush(live)
        with live.cond:
            live.events.append(live.final_event)
            live.cond.notify_all()
            live.tell_listeners()
        self._maintain(prune_runs_of=live)
        with self._lock:
            if saved:
                self._live.pop(live.id, None)
                self._unsaved.discard(live.id)
            else:
                self._unsaved.add(live.id)
        live.done.set()
        with live.cond:
            live.tell_listeners()

    def _conclude(self, live: LiveRun, status: str, reason: str | None, started: float) -> None:
        """Make the run's final event and outcome pending (replacing an earlier, unwritten one)."""
        with live.cond:
            counts: dict[str, int] = {}
            for node_status in live.statuses.values():
                counts[node_status] = counts.get(node_status, 0) + 1
            live.status = status
            final = {"run": live.id, "status": status, "reason": reason,
                     "duration_ms": round((time.monotonic() - started) * 1000, 3), "counts": counts}
            live.pending_events = [e for e in live.pending_events if e["event"] != "run_finished"]
            live.final_event = make_event(len(live.events) + 1, "run_finished", final)
            live.pending_events.append(live.final_event)
            live.pending_outcome = {"status": status, "reason": reason, "finished_at": now_iso()}
            if live.environments:
                live.pending_outcome["snapshot"] = with_environments(live.snapshot_json, live.environments)

    def _abandon(self, live: LiveRun, reason: str) -> None:
        """End a run whose own thread could not: failed with `reason`, its followers told."""
        if live.done.is_set():
            return
        live.cancel.set()
        live.failure = live.failure or reason
        try:
            self._finish(live, "failed", reason, time.monotonic())
        except Exception:
            log.exception("run %s could not be ended cleanly", live.id)
            with self._lock:
                self._unsaved.add(live.id)
            live.done.set()

    def _thread_died(self, name: str, error: BaseException | None) -> None:
        """The watchdog found run thread `name` dead: the run it held fails, saying so."""
        with self._lock:
            live = self._current.pop(name, None)
        if live is not None:
            self._abandon(live, f"the run thread {name} died ({error!r}); the run was stopped")

    def _maintain(self, prune_runs_of: LiveRun | None) -> None:
        """Retention and cache pruning after a run: housekeeping, so a failure is logged, not raised."""
        try:
            if prune_runs_of is not None:
                if self.config.retention > 0:
                    self.store.prune_runs(prune_runs_of.flow_id, self.config.retention)
                self._finished_runs += 1
                if not (self._finished_runs % PRUNE_CACHE_EVERY == 0
                        or self._cache.written_bytes > self.config.cache_bytes // CACHE_SHARE):
                    return
            self._cache.written_bytes = 0
            self._cache.cache.cache_prune(self.config.cache_entries, self.config.cache_bytes)
            self.collect_artifacts()
        except Exception as exc:
            log.warning("pruning run history or the result cache failed: %s", describe_error(exc))
            self._storage_trouble(exc)

    def collect_artifacts(self) -> dict | None:
        """Remove the artifacts that no kept run and no cached result references (after retention and
        the cache were trimmed, so what they dropped goes too)."""
        digests = getattr(self.store, "artifact_digests", None)
        if self.artifacts is None or digests is None:
            return None
        return collect_artifacts(self.artifacts, digests())

    def _storage_trouble(self, exc: Exception) -> None:
        if isinstance(exc, StorageUnavailable):
            self.gate.failed(exc.message)

    # ----------------------------------------------------------------------------------- events
    def _emit(self, live: LiveRun, kind: str, data: dict, result: dict | None = None) -> None:
        """Publish an event (and the node result it reports) to followers and to the persister."""
        event = make_event(0, kind, data)
        with live.cond:
            if result is not None:
                live.pending_results[result["id"]] = (live.compiled.nodes[result["id"]].index, result)
                live.statuses[result["id"]] = result["status"]
            event["id"] = len(live.events) + 1
            live.events.append(event)
            live.pending_events.append(event)
            live.cond.notify_all()
            live.tell_listeners()
        # Unlocked test: if the persister swaps the set right after, it still takes this event, which
        # is already pending.
        if live.id not in self._dirty:
            with self._lock:
                self._dirty.add(live.id)

    def _persist_loop(self) -> None:
        while not self._stopping:
            time.sleep(PERSIST_INTERVAL_S)
            try:
                self._persist_pass()
            except Exception:
                log.exception("the event persister's pass failed; it goes on")

    def _persist_pass(self) -> None:
        """Write what runs have pending; offer storage what it refused earlier, once a second."""
        with self._lock:
            dirty, self._dirty = self._dirty, set()
            if self._unsaved and time.monotonic() >= self._retry_at:
                self._unsaved &= self._live.keys()  # a run's own thread may have written it since
                dirty |= self._unsaved
                self._retry_at = time.monotonic() + RETRY_UNSAVED_S
            runs = [self._live[r] for r in dirty if r in self._live]
        for live in runs:
            saved = self._flush(live)
            with self._lock:
                if not saved:
                    self._unsaved.add(live.id)
                elif live.done.is_set() and live.id in self._unsaved:  # its outcome is stored at last
                    self._unsaved.discard(live.id)
                    self._live.pop(live.id, None)

    def _flush(self, live: LiveRun) -> bool:
        """Write what is pending (the run's outcome with it, when decided) in one transaction; answers
        whether it was written. One flush at a time per run: the finishing thread must not report the
        run complete while the persister still holds results it has taken but not yet written."""
        with live.flushing:
            with live.cond:
                events, live.pending_events = live.pending_events, []
                results, live.pending_results = live.pending_results, {}
                outcome, live.pending_outcome = live.pending_outcome, None
            if not (events or results or outcome):
                return True
            try:
                with self.store.transaction():
                    if events or results:
                        self.store.save_progress(live.id, with_text(events), list(results.values()))
                    if outcome:
                        self.store.update_run(live.id, **outcome)
                return True
            except Exception as exc:
                self._refused(live, exc, events, results, outcome)
                return False

    def _refused(self, live: LiveRun, exc: Exception, events: list, results: dict, outcome: dict | None) -> None:
        """Storage refused a run's writes: the run fails with the reason, and what was refused goes
        back to pending, its node results without their values (the likely cause, and never needed
        to tell how the run ended)."""
        reason = describe_error(exc)
        if not isinstance(exc, PyflowError):
            reason = f"the run's progress could not be stored: {exc!r}"
        if live.failure is None:
            log.error("run %s: storage refused its progress; the run fails", live.id, exc_info=exc)
            live.failure = reason
            live.cancel.set()
        self._storage_trouble(exc)
        with live.cond:
            live.pending_events[:0] = events
            for node_id, (index, result) in results.items():
                live.pending_results.setdefault(node_id, (index, unstored(result, live.failure)))
            if live.pending_outcome is None:
                live.pending_outcome = outcome

    def stream(self, run_id: str, after: int = 0, keepalive_s: float = 15.0) -> Iterator[list[dict]]:
        """Yield the run's events after id `after`, live until the run finishes, in batches: everything
        ready at once goes out together (a client catching up gets one write, not hundreds). An empty
        batch means nothing happened for `keepalive_s`."""
        with self._lock:
            live = self._live.get(run_id)
        if live is None:
            self.store.get_run(run_id, with_nodes=False)  # 404 for an unknown run
            yield from self._replay(run_id, after)
            return
        position = after
        while True:
            with live.cond:
                fresh = live.events[position:]
                if not fresh and not live.done.is_set():
                    live.cond.wait(timeout=keepalive_s)
                    fresh = live.events[position:]
            if fresh:
                position = fresh[-1]["id"]
                yield with_text(fresh)
                if fresh[-1]["event"] == "run_finished":
                    return
            elif live.done.is_set():
                return
            else:
                yield []

    def listen(self, run_id: str, notify: Callable[[], None]) -> LiveRun | None:
        """Follow a live run without a thread: `notify` is called from the run's threads after each new
        event (it must only schedule work, as an event loop's thread-safe callback does), and the
        follower reads them with `LiveRun.since`. None when the run is not live: its events are all
        stored, for `stream` to replay."""
        with self._lock:
            live = self._live.get(run_id)
            if live is not None:
                with live.cond:
                    live.listeners.append(notify)
        return live

    @staticmethod
    def unlisten(live: LiveRun, notify: Callable[[], None]) -> None:
        with live.cond:
            if notify in live.listeners:
                live.listeners.remove(notify)

    def _replay(self, run_id: str, after: int) -> Iterator[list[dict]]:
        while True:
            batch = self.store.events(run_id, after=after, limit=1000, parse=False)
            if batch:
                yield batch
            if len(batch) < 1000:
                return
            after = batch[-1]["id"]

    # ------------------------------------------------------------------------------- run control
    def wait(self, run_id: str, timeout: float | None = None) -> dict:
        """The finished run. ServiceUnavailable (naming the run, which goes on) when it has not finished
        within `timeout` seconds; StorageUnavailable when it finished but its outcome is not stored yet."""
        with self._lock:
            live = self._live.get(run_id)
        if live is None:
            return self.store.get_run(run_id)
        if not live.done.wait(timeout):
            raise ServiceUnavailable(f"run {run_id} did not finish within {timeout:g} s; it goes on, and its "
                                     f"outcome will be in the run history", retry_after=5, run=run_id)
        with self._lock:
            unsaved = run_id in self._unsaved
        if unsaved:
            raise StorageUnavailable(f"run {run_id} ended ({live.status}) but its outcome could not be stored "
                                     f"yet: {live.failure}", retry_after=10, run=run_id)
        return self.store.get_run(run_id)

    def cancel(self, run_id: str) -> dict:
        with self._lock:
            live = self._live.get(run_id)
            queued = live is not None and live in self._queue
            if queued:
                self._queue.remove(live)
        if live is None:
            run = self.store.get_run(run_id)
            if run["status"] in FINAL_STATES:
                return run
            raise Conflict(f"run {run_id} is {run['status']} on no live worker")
        live.cancel.set()
        if queued:
            self._finish(live, "cancelled", "cancelled while queued", time.monotonic())
        return self.store.get_run(run_id)

    def delete(self, run_id: str) -> None:
        with self._lock:
            live = self._live.get(run_id)
        if live is not None and live.done.is_set():
            raise Conflict(f"run {run_id} has ended but its outcome is not stored yet; try again shortly")
        if live is not None:
            raise Conflict(f"run {run_id} is still {live.status}; cancel it first")
        self.store.delete_run(run_id)

    def is_live(self, run_id: str) -> bool:
        with self._lock:
            return run_id in self._live

    def queue_length(self) -> int:
        return len(self._queue)  # without the lock: health checks never wait on it

    def shutdown(self, timeout: float = 5.0) -> None:
        """Cancel running runs; queued ones become interrupted (they never started)."""
        self.supervisor.stop()
        with self._lock:
            queued, self._queue = list(self._queue), deque()
            running = [r for r in self._live.values() if r not in queued]
            self._stopping = True
            self._lock.notify_all()
        for run in queued:
            run.cancel.set()
            self._finish(run, "interrupted", "the server shut down before the run started", time.monotonic())
        for run in running:
            run.cancel.set()
        for run in running:
            run.done.wait(timeout)
        with self._lock:
            unsaved = [self._live[r] for r in self._unsaved if r in self._live]
        for run in unsaved:  # a last offer to storage; whatever it still refuses, a restart interrupts
            self._flush(run)

