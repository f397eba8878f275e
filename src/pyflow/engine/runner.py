"""Run a compiled flow: order nodes by their links, run ready nodes concurrently, collect results.

A node becomes ready when every node feeding it is done (a count of unfinished predecessors per node,
kept by the scheduler: the compiler has already ruled out cycles). Up to `concurrency` nodes run at
once on worker threads, each handing its node to the executor (which runs it in another process and
waits). A failed node marks everything downstream "skipped" with the reason, while independent branches
go on. Nothing here recurses on graph size, and the work per node does not grow with it.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from ..markers import BRANCH_NOT_TAKEN, SKIP, is_skip
from ..model.artifacts import ArtifactRef, is_reference_shape, revive_outputs
from ..model.types import ConversionError, convert
from ..timestamps import now_iso
from .compiler import CompiledFlow, PlannedNode
from .execution import (
    DEFAULT_LIMITS,
    MAX_LIMITS,
    Environment,
    ArgSource,
    Executor,
    Limits,
    NodeOutcome,
    NodeTask,
    node_error,
    resolve_limits,
)
from .mapping import MapOutcome, MapTask, map_items, run_map

logger = logging.getLogger(__name__)

EventSink = Callable[[str, dict], None]
_NONE: dict = {}  # read only: what a node that left no outputs offers


class EnvironmentProvider(Protocol):
    """Where nodes with `requirements` get their packages (pyflow.environments.EnvironmentStore)."""

    def environment(self, requirements, listener: Callable[[str, dict], None] | None = None,
                    cancel: threading.Event | None = None) -> Environment:
        """The ready environment, built first when needed (calling `listener(phase, data)` as it goes);
        raises an exception whose message says why when it cannot be had."""


class CacheStore(Protocol):
    """Where cached node results live (the repository's database, in the server)."""

    def get_many(self, keys: list[str]) -> dict[str, dict]:
        """The records stored under any of `keys` (one lookup for a whole run)."""

    def put(self, key: str, record: dict) -> None: ...


CPUS = os.cpu_count() or 1  # asked once: it reads /sys on every call


@dataclass
class RunOptions:
    concurrency: int = CPUS
    use_cache: bool = True
    run_id: str | None = None
    default_limits: Limits = DEFAULT_LIMITS
    max_limits: Limits = MAX_LIMITS


@dataclass
class RunOutcome:
    status: str  # succeeded | failed | cancelled
    nodes: list[dict]


def node_result(node: PlannedNode, status: str, **fields_) -> dict:
    """The per-node result every interface reports. Its "path" is the plan's own tuple (a JSON list once
    encoded), not a list per node: a 10,000-node run keeps its results until it ends, and every container
    the garbage collector tracks through the run is scanned again by each full collection
    (docs/performance.md)."""
    result = {"id": node.id, "name": node.name, "spec_id": node.spec.id, "status": status,
              "inputs": {}, "outputs": {}, "error": None, "stdout": "", "started_at": None,
              "duration_ms": 0.0, "cached": False, "path": node.path or (node.id,)}
    result.update(fields_)
    return result


class NodeThreads:
    """The run's worker threads: each takes a ready node, has the executor run it, and posts the outcome
    back to the scheduler (`work`). The scheduler never submits more nodes than there are threads.

    Why not concurrent.futures: a Future, a work item and a semaphore per node, that nobody reads,
    cost about 10 % of the host's CPU per sandboxed node on a wide flow (docs/performance.md)."""

    def __init__(self, count: int, work: Callable[[str, NodeTask], None]):
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._work = work
        self._threads = [threading.Thread(target=self._serve, name=f"pyflow-node_{i}", daemon=True)
                         for i in range(count)]
        for thread in self._threads:
            thread.start()

    def submit(self, node_id: str, task: NodeTask) -> None:
        self._queue.put((node_id, task))

    def close(self) -> None:
        """Let the nodes under way finish, then end the threads."""
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()

    def _serve(self) -> None:
        while (item := self._queue.get()) is not None:
            self._work(*item)


class FlowRunner:
    """Runs one compiled flow with one executor. Create one per run."""

    def __init__(self, compiled: CompiledFlow, executor: Executor, options: RunOptions | None = None,
                 cache: CacheStore | None = None, on_event: EventSink | None = None,
                 cancel: threading.Event | None = None, environments: EnvironmentProvider | None = None):
        self.compiled = compiled
        self.environments = environments
        self._ready_envs: set[str] = set()
        self._env_lock = threading.Lock()
        self.executor = executor
        self.options = options or RunOptions()
        self.cache = cache if self.options.use_cache else None
        self.emit = on_event or (lambda kind, data: None)
        self.cancel = cancel or threading.Event()
        self.results: dict[str, dict] = {}
        self.outputs: dict[str, dict] = {}
        self._limits: dict[str, Limits] = {}
        self._ports: dict[str, tuple] = {}
        self._started: dict[str, str] = {}
        self._finished: queue.SimpleQueue = queue.SimpleQueue()
        self._listened = on_event is not None

    def run(self) -> RunOutcome:
        self._cached = self._prefetch()
        workers = max(1, int(self.options.concurrency))
        inline = workers == 1 or self.executor.inline
        pool = None if inline else NodeThreads(workers, self._execute_async)
        try:
            self._schedule(pool, workers)
        finally:
            if pool is not None:
                pool.close()
            self.executor.finish_run(self.options.run_id)
        results = self.results  # in flow order: the compiler keeps planned nodes in index order
        ordered = [results[node_id] for node_id in self.compiled.nodes if node_id in results]
        return RunOutcome(self._run_status(), ordered)

    def _run_status(self) -> str:
        if self.cancel.is_set():
            return "cancelled"
        if all(r["status"] == "success" or not_taken(r) for r in self.results.values()):
            return "succeeded"
        return "failed"

    def _schedule(self, pool, workers: int) -> None:
        """Dispatch ready nodes (at most `workers` at once) and settle them as they finish. A node is
        ready once its count of unfinished predecessors is zero; ready nodes start in the order they
        became ready (sources in flow order first)."""
        links = self.compiled.links
        unfinished = dict(links.indegree)
        first, count, successors = links.first, links.count, links.successors
        ready = deque(node_id for node_id, waiting in unfinished.items() if not waiting)
        settled = running = 0

        def done(node_id: str) -> None:
            start = first[node_id]
            for successor in successors[start:start + count[node_id]]:
                unfinished[successor] -= 1
                if not unfinished[successor]:
                    ready.append(successor)

        while ready or running:
            while ready and (pool is None or running < workers):
                node_id = ready.popleft()
                task = self._prepare(node_id)
                if task is not None:
                    # The only node that can run now (nothing else running or ready: a chain, say) runs on
                    # this thread: a hand-off to the pool and back would only add two thread switches.
                    if pool is not None and (running or ready):
                        pool.submit(node_id, task)
                        running += 1
                        continue
                    self._complete(node_id, task, self._execute_guarded(node_id, task))
                done(node_id)
                settled += 1
            if running:
                node_id, task, outcome = self._finished.get()
                self._complete(node_id, task, outcome)
                done(node_id)
                settled += 1
                running -= 1
        if settled != len(unfinished):
            raise RuntimeError("scheduler stalled: nodes remain but none is ready")

    def _prepare(self, node_id: str) -> NodeTask | None:
        """Build the task for a ready node, or settle it (skipped, cached, bad input) and return None."""
        node = self.compiled.nodes[node_id]
        if self.cancel.is_set():
            self._settle(node, "skipped", "node_skipped", error=node_error("Cancelled", "the run was cancelled"))
            return None
        blocker = self._blocker(node)
        if blocker == BRANCH_NOT_TAKEN:
            self.outputs[node.id] = {p.name: SKIP for p in node.spec.outputs}
            self._settle(node, "skipped", "node_skipped", reason=BRANCH_NOT_TAKEN)
            return None
        if blocker is not None:
            self._settle(node, "skipped", "node_skipped", error=node_error("Skipped", blocker))
            return None
        try:
            args = self._arguments(node)
            items = map_items(node, args) if node.map else None
        except ConversionError as exc:
            self._settle(node, "fail", "node_finished", error=node_error("ConversionError", str(exc)),
                         started_at=now_iso())
            return None
        if node.passthrough:
            self._pass_through(node, args)
            return None
        if items is not None:
            return MapTask(node.id, items, args)
        if node.cache_key is not None and self._from_cache(node, args):
            return None
        spec = node.spec
        arg_names, arg_types, output_names = self._ports.get(spec.id) or self._port_names(spec)
        return NodeTask(node_id=node.id, node_name=node.name, spec_id=spec.id, func=spec.func, args=args,
                        arg_names=list(arg_names), limits=self.limits_of(node), run_id=self.options.run_id,
                        image=spec.image, requirements=spec.requirements, arg_types=arg_types,
                        output_names=output_names, sources=self._sources(node))

    def _port_names(self, spec) -> tuple:
        """(input names, input types, output names) of a nodespec, worked out once per run."""
        names = self._ports[spec.id] = (tuple(p.name for p in spec.inputs), tuple(p.type for p in spec.inputs),
                                        tuple(p.name for p in spec.outputs))
        return names

    def _sources(self, node: PlannedNode) -> tuple:
        """Where each linked input comes from, for executors that pass results along where they are.
        Only from nodes that are deterministic by their spec (`cache`), since such an executor may
        compute a lost result again."""
        if not node.inbound:
            return (None,) * len(node.spec.inputs)
        sources = []
        for port in node.spec.inputs:
            src, src_port = node.inbound.get(port.name, (None, None))
            upstream = self.compiled.nodes[src].spec if src is not None else None
            if upstream is None or not upstream.cache:
                sources.append(None)
                continue
            out = upstream.outputs_by_name[src_port]
            sources.append(ArgSource(src, src_port, len(upstream.outputs) == 1, out.type, port.type))
        return tuple(sources)

    def limits_of(self, node: PlannedNode) -> Limits:
        """Limits per nodespec, worked out once per run rather than once per node."""
        limits = self._limits.get(node.spec.id)
        if limits is None:
            limits = self._limits[node.spec.id] = resolve_limits(node.spec.limits, self.options.default_limits,
                                                                 self.options.max_limits)
        return limits

    def _blocker(self, node: PlannedNode) -> str | None:
        """Why `node` cannot run: an upstream node that failed (or was skipped or cancelled), or
        BRANCH_NOT_TAKEN when a required input, or every linked input, comes from a branch not taken."""
        missing = []
        for port, (src, src_port) in node.inbound.items():
            upstream = self.results.get(src)
            if upstream is not None and upstream["status"] != "success" and not not_taken(upstream):
                verb = "failed" if upstream["status"] == "fail" else f"was {upstream['status']}"
                return f"upstream node {upstream['name']!r} ({src}) {verb}"
            if is_skip(self.outputs.get(src, _NONE).get(src_port)):
                missing.append(port)
        if missing and (len(missing) == len(node.inbound) or any(node.spec.input(p).required for p in missing)):
            return BRANCH_NOT_TAKEN
        return None

    def _pass_through(self, node: PlannedNode, args: list) -> None:
        """A subflow boundary node forwards its value, converted to the boundary's type; no code runs."""
        named = _named(node, args)
        value = named.get("default" if "default" in named else "value")
        try:
            value = convert(named.get("type") or "Any", value)
        except (ConversionError, KeyError) as exc:
            self._settle(node, "fail", "node_finished", started_at=now_iso(), inputs=named,
                         error=node_error("ConversionError", f"{node.name!r} ({node.id}): {named.get('name')!r} "
                                                             f"expects {named.get('type')}: {exc}"))
            return
        self.outputs[node.id] = {"out": value}
        self._settle(node, "success", "node_finished", inputs=named, outputs={"out": value}, started_at=now_iso())

    def _arguments(self, node: PlannedNode) -> list:
        """Input values in port order, each converted to its port's type."""
        args = []
        for port in node.spec.inputs:
            if port.name in node.inbound:
                src, src_port = node.inbound[port.name]
                raw = self.outputs[src].get(src_port)
                if is_skip(raw):
                    raw = port.default
            elif node.literals.get(port.name) is not None:
                raw = node.literals[port.name]
            else:
                raw = port.default
            try:
                args.append(convert("List" if port.name in node.map else port.type, raw))
            except ConversionError as exc:
                raise ConversionError(f"node {node.name!r} ({node.id}): input port {port.name!r} expects "
                                      f"{port.type}, cannot convert {_short(raw)}: {exc}") from None
        return args

    def _prefetch(self) -> dict[str, dict]:
        """Every cached record this run can use, fetched at once rather than node by node."""
        if self.cache is None:
            return {}
        keys = [n.cache_key for n in self.compiled.nodes.values() if n.cache_key is not None]
        return self.cache.get_many(keys) if keys else {}

    def _from_cache(self, node: PlannedNode, args: list) -> bool:
        if node.cache_key is None:
            return False
        record = self._cached.get(node.cache_key)
        if record is None:
            return False
        outputs = self.outputs[node.id] = revive_outputs(record["outputs"])
        if record.get("skipped"):
            self._settle(node, "skipped", "node_skipped", cached=True, reason=BRANCH_NOT_TAKEN,
                         inputs=_named(node, args), stdout=record.get("stdout", ""), started_at=now_iso())
            return True
        self._settle(node, "success", "node_cached", cached=True, outputs=_taken(outputs),
                     inputs=_named(node, args), stdout=record.get("stdout", ""), started_at=now_iso())
        return True

    def _execute_async(self, node_id: str, task: NodeTask) -> None:
        self._finished.put((node_id, task, self._execute_guarded(node_id, task)))

    def _execute_guarded(self, node_id: str, task: NodeTask) -> NodeOutcome:
        try:
            return self._execute(task)
        except BaseException as exc:  # an executor bug must not hang the scheduler, and must be seen
            logger.exception("the executor failed on node %s", node_id)
            return NodeOutcome.failure(f"executor error: {exc!r}")

    def _execute(self, task: NodeTask) -> NodeOutcome:
        node = self.compiled.nodes[task.node_id]
        started = self._started[task.node_id] = now_iso()
        if self._listened:  # nobody listens in-process: the event is not even made
            self.emit("node_started", {"node": node.id, "name": node.name, "spec_id": node.spec.id,
                                       "started_at": started, "path": node.path})
        if isinstance(task, MapTask):
            return run_map(self, node, task)
        if task.requirements and self.environments is not None:
            failure = self.attach_environment(task)
            if failure is not None:
                return failure
        return self.executor.run(task, self.cancel)

    def attach_environment(self, task: NodeTask) -> NodeOutcome | None:
        """Give the task its environment (built now if it is the first use), reporting the build as
        "environment" events on the node; a build that fails fails the node with the installer's words."""
        started = time.monotonic()

        def listener(phase: str, data: dict) -> None:
            self.emit("environment", {**data, "phase": phase, "node": task.node_id})

        try:
            env = self.environments.environment(task.requirements, listener, self.cancel)
        except Exception as exc:  # the provider's reason (installer output, policy) becomes the node's error
            logger.warning("node %s: no environment for %s: %s", task.node_id, ", ".join(task.requirements), exc,
                           exc_info=not hasattr(exc, "status") and type(exc).__name__ != "EnvironmentFailed")
            if self.cancel.is_set():
                return NodeOutcome.failure("the run was cancelled while its environment was prepared",
                                           "Cancelled", "cancelled", duration_ms=(time.monotonic() - started) * 1000)
            return NodeOutcome.failure(str(exc), "EnvironmentError", duration_ms=(time.monotonic() - started) * 1000)
        task.environment = env
        with self._env_lock:
            first = env.key not in self._ready_envs
            self._ready_envs.add(env.key)
        if first:
            self.emit("environment", {"phase": "ready", "node": task.node_id, "requirements": list(task.requirements),
                                      **env.summary()})
        return None

    def _complete(self, node_id: str, task: NodeTask, outcome: NodeOutcome) -> None:
        node = self.compiled.nodes[node_id]
        started = self._started[node_id]
        inputs = _named(node, task.args)
        if isinstance(outcome, MapOutcome):
            self._complete_map(node, inputs, started, outcome)
            return
        common = dict(inputs=inputs, stdout=outcome.stdout, started_at=started, duration_ms=outcome.duration_ms)
        if outcome.worker is not None:
            common["worker"] = outcome.worker
        if task.environment is not None:
            common["environment"] = task.environment.summary()
        if is_skip(outcome.value) and outcome.ok:
            self.outputs[node_id] = {p.name: SKIP for p in node.spec.outputs}
            self._settle(node, "skipped", "node_skipped", reason=BRANCH_NOT_TAKEN, **common)
            self._cache_put(node, {"outputs": self.outputs[node_id], "stdout": outcome.stdout, "skipped": True})
            return
        if not outcome.ok:
            status = "cancelled" if outcome.violation == "cancelled" else "fail"
            self._settle(node, status, "node_finished", error=outcome.error, **common)
            return
        try:
            outputs = split_outputs(node, outcome.value)
        except ConversionError as exc:
            self._settle(node, "fail", "node_finished", error=node_error("OutputError", str(exc)), **common)
            return
        self.outputs[node_id] = outputs
        self._settle(node, "success", "node_finished", outputs=_taken(outputs), **common)
        self._cache_put(node, {"outputs": outputs, "stdout": outcome.stdout})

    def _cache_put(self, node: PlannedNode, record: dict) -> None:
        if self.cache is not None and node.cache_key is not None:
            self.cache.put(node.cache_key, record)

    def _complete_map(self, node: PlannedNode, inputs: dict, started: str, outcome: MapOutcome) -> None:
        common = dict(inputs=inputs, started_at=started, duration_ms=outcome.duration_ms, items=outcome.items)
        if not outcome.ok:
            status = "cancelled" if outcome.cancelled else "fail"
            self._settle(node, status, "node_finished", error=outcome.error, outputs=outcome.outputs, **common)
            return
        self.outputs[node.id] = outcome.outputs
        self._settle(node, "success", "node_finished", outputs=outcome.outputs,
                     cached=bool(outcome.items) and all(i["cached"] for i in outcome.items), **common)

    def _settle(self, node: PlannedNode, status: str, event: str, **fields_) -> None:
        result = node_result(node, status, **fields_)
        self.results[node.id] = result
        self.emit(event, result)


def split_outputs(node: PlannedNode, value: Any) -> dict:
    """Map a function's return value onto its output ports and convert each to its type.

    One output port takes the whole value; several need a dict keyed by port name.
    """
    ports = node.spec.outputs
    if len(ports) == 1:
        raw = {ports[0].name: value}
    elif not isinstance(value, dict):
        raise ConversionError(f"node {node.name!r} ({node.id}) has {len(ports)} output ports, so func must "
                              f"return a dict keyed by their names ({', '.join(p.name for p in ports)}); "
                              f"it returned {type(value).__name__}")
    else:
        missing = [p.name for p in ports if p.name not in value]
        if missing:
            raise ConversionError(f"node {node.name!r} ({node.id}): func returned no value for output "
                                  f"port{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}")
        raw = value
    outputs = {}
    for port in ports:
        if is_skip(raw[port.name]):
            outputs[port.name] = SKIP
            continue
        if is_reference_shape(raw[port.name]) and not isinstance(raw[port.name], ArtifactRef):
            raise ConversionError(f"node {node.name!r} ({node.id}): output port {port.name!r} holds a JSON value "
                                  f"shaped like an artifact reference, which only the server makes")
        try:
            outputs[port.name] = convert(port.type, raw[port.name])
        except ConversionError as exc:
            raise ConversionError(f"node {node.name!r} ({node.id}): output port {port.name!r} expects "
                                  f"{port.type}, cannot convert {_short(raw[port.name])}: {exc}") from None
    return outputs


def not_taken(result: dict) -> bool:
    """Whether a node result is a branch not taken (skipped without anything having gone wrong)."""
    return result["status"] == "skipped" and result.get("reason") == BRANCH_NOT_TAKEN


def _taken(outputs: dict) -> dict:
    """Outputs as reported: a branch not taken has no value (None). Without one, the outputs themselves
    (neither the run nor its readers change a node's outputs once settled): a copy per node is memory
    a large run keeps to its end."""
    if not any(is_skip(v) for v in outputs.values()):
        return outputs
    return {k: None if is_skip(v) else v for k, v in outputs.items()}


def _named(node: PlannedNode, args: list) -> dict:
    return {p.name: v for p, v in zip(node.spec.inputs, args)}


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def run_flow(compiled: CompiledFlow, executor: Executor, options: RunOptions | None = None,
             cache: CacheStore | None = None, on_event: EventSink | None = None,
             cancel: threading.Event | None = None, environments: EnvironmentProvider | None = None) -> RunOutcome:
    """Run `compiled` with `executor` and return every planned node's result."""
    return FlowRunner(compiled, executor, options, cache, on_event, cancel, environments).run()
