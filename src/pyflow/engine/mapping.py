"""Mapped nodes: a node with `"map": ["items"]` runs once per item of the list arriving at each mapped
input (several mapped inputs are zipped, and must be as long as each other), in parallel up to the
run's concurrency; each output becomes the list of per-item results, in item order.

Every item is cached on its own (its key is the node's key without the mapped inputs, plus the item),
so a list that grows by one runs one more item. A failed item fails the node, unless the node says
`"map_errors": "skip"`: then failed items are left out of the output lists. Either way every item's
status, error and duration are kept in the node's result under `items`.

A mapped subflow node runs its whole flow per item, inline on the item's thread, sharing the run's
executor, cache and cancellation.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ..markers import BRANCH_NOT_TAKEN, is_skip
from ..model.subflow import INPUT_SPEC, OUTPUT_SPEC
from ..model.types import ConversionError, convert
from .compiler import CompiledFlow, PlannedNode, assign_cache_keys
from .execution import NodeOutcome, NodeTask, node_error

if TYPE_CHECKING:
    from .runner import FlowRunner

PROGRESS_STEPS = 100  # progress events per mapped node, at most (plus the last one)


@dataclass
class MapTask:
    """The items of one mapped node: per item, its arguments in port order."""

    node_id: str
    items: list[list]
    args: list = field(default_factory=list)  # the arguments with each mapped input as its whole list


@dataclass
class MapOutcome:
    ok: bool
    outputs: dict = field(default_factory=dict)
    items: list[dict] = field(default_factory=list)
    error: dict | None = None
    duration_ms: float = 0.0
    cancelled: bool = False


def map_items(node: PlannedNode, args: list) -> list[list]:
    """Per-item argument lists (mapped inputs zipped), or ConversionError saying why there are none."""
    positions = [i for i, port in enumerate(node.spec.inputs) if port.name in node.map]
    lists = [args[i] for i in positions]
    lengths = {len(values) for values in lists}
    if len(lengths) > 1:
        raise ConversionError(f"node {node.name!r} ({node.id}): its mapped inputs "
                              f"({', '.join(node.map)}) are lists of different lengths ({sorted(lengths)})")
    count = lengths.pop() if lengths else 0
    if count > node.max_items:
        raise ConversionError(f"node {node.name!r} ({node.id}): {count} items to map over, more than its limit "
                              f"of {node.max_items} (max_items)")
    items = []
    for index in range(count):
        item = list(args)
        for position in positions:
            port = node.spec.inputs[position]
            try:
                item[position] = convert(port.type, args[position][index])
            except ConversionError as exc:
                raise ConversionError(f"node {node.name!r} ({node.id}): item {index} of mapped input {port.name!r} "
                                      f"expects {port.type}: {exc}") from None
        items.append(item)
    return items


def _item_key(node: PlannedNode, item: list) -> str | None:
    if node.item_key is None:
        return None
    mapped = [v for p, v in zip(node.spec.inputs, item) if p.name in node.map]
    text = json.dumps([node.item_key, mapped], sort_keys=True, separators=(",", ":"), default=repr)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def run_map(runner: "FlowRunner", node: PlannedNode, task: MapTask) -> MapOutcome:
    """Run every item of `task` (from the cache where it can), in parallel up to the concurrency."""
    started = time.perf_counter()
    total = len(task.items)
    keys = [_item_key(node, item) for item in task.items] if runner.cache is not None and not node.subplan else []
    cached = runner.cache.get_many([k for k in keys if k]) if any(keys) else {}
    results: list[dict | None] = [None] * total
    progress = _Progress(runner, node, total)

    def one(index: int) -> None:
        key = keys[index] if keys else None
        if key is not None and key in cached:
            results[index] = {"ok": True, "value": cached[key]["value"], "cached": True, "duration_ms": 0.0}
        elif runner.cancel.is_set():
            results[index] = {"ok": False, "cancelled": True, "error": node_error("Cancelled", "the run was cancelled")}
        else:
            results[index] = _run_item(runner, node, task.items[index], index)
            if key is not None and results[index]["ok"]:
                runner.cache.put(key, {"outputs": {}, "value": results[index]["value"]})
        progress.step(results[index]["ok"])

    workers = max(1, int(runner.options.concurrency))
    if workers == 1 or runner.executor.inline or total <= 1:
        for index in range(total):
            one(index)
    else:
        with ThreadPoolExecutor(max_workers=min(workers, total), thread_name_prefix="pyflow-item") as pool:
            list(pool.map(one, range(total)))
    return _gather(node, results, (time.perf_counter() - started) * 1000, runner.cancel.is_set())


class _Progress:
    """node_progress events: done/total as items finish, at most PROGRESS_STEPS of them per node."""

    def __init__(self, runner: "FlowRunner", node: PlannedNode, total: int):
        self.runner, self.node, self.total = runner, node, total
        self.done = self.failed = 0
        self.every = max(1, total // PROGRESS_STEPS)
        self.lock = threading.Lock()

    def step(self, ok: bool) -> None:
        with self.lock:
            self.done += 1
            self.failed += 0 if ok else 1
            if self.done % self.every and self.done != self.total:
                return
            data = {"node": self.node.id, "path": list(self.node.path), "done": self.done,
                    "total": self.total, "failed": self.failed}
        self.runner.emit("node_progress", data)


def _run_item(runner: "FlowRunner", node: PlannedNode, item: list, index: int) -> dict:
    if node.subplan is not None:
        return _run_subflow_item(runner, node, item)
    task = NodeTask(node_id=node.id, node_name=f"{node.name}[{index}]", spec_id=node.spec.id, func=node.spec.func,
                    args=item, arg_names=[p.name for p in node.spec.inputs], limits=runner.limits_of(node),
                    run_id=runner.options.run_id, image=node.spec.image, requirements=node.spec.requirements,
                    arg_types=tuple(p.type for p in node.spec.inputs),
                    output_names=tuple(p.name for p in node.spec.outputs))
    try:
        outcome = runner.attach_environment(task) if task.requirements and runner.environments is not None else None
        outcome = outcome or runner.executor.run(task, runner.cancel)
    except Exception as exc:  # an executor bug fails this item, not the run
        outcome = NodeOutcome.failure(f"executor error: {exc!r}")
    if not outcome.ok:
        return {"ok": False, "error": outcome.error, "duration_ms": outcome.duration_ms,
                "cancelled": outcome.violation == "cancelled"}
    return {"ok": True, "value": outcome.value, "duration_ms": outcome.duration_ms}


def item_plan(subplan: CompiledFlow, inputs: dict[str, Any], cache_keys: bool) -> CompiledFlow:
    """The subflow's plan with its input boundary nodes set to one item's values."""
    nodes = {}
    for node_id, planned in subplan.nodes.items():
        literals = planned.literals
        if planned.spec.id == INPUT_SPEC and literals.get("name") in inputs and "default" not in planned.inbound:
            literals = {**literals, "default": inputs[literals["name"]]}
        nodes[node_id] = replace(planned, literals=literals, cache_key=None)
    compiled = replace(subplan, nodes=nodes)
    if cache_keys:
        assign_cache_keys(compiled)
    return compiled


def _run_subflow_item(runner: "FlowRunner", node: PlannedNode, item: list) -> dict:
    from .runner import FlowRunner  # the runner imports this module: imported when first needed
    inputs = {p.name: v for p, v in zip(node.spec.inputs, item) if v is not None}
    plan = item_plan(node.subplan, inputs, runner.cache is not None)
    options = replace(runner.options, concurrency=1)
    outcome = FlowRunner(plan, runner.executor, options, runner.cache, cancel=runner.cancel).run()
    duration = sum(r.get("duration_ms") or 0.0 for r in outcome.nodes)
    if outcome.status != "succeeded":
        bad = next((r for r in outcome.nodes if r["status"] not in ("success", "skipped")), None) or \
            next((r for r in outcome.nodes if r["status"] != "success"), None)
        error = dict(bad["error"] or node_error("Failed", f"node {bad['id']} was {bad['status']}")) if bad else None
        if error is not None and bad is not None:
            error["message"] = f"{bad['name']} ({bad['id']}): {error['message']}"
        return {"ok": False, "error": error, "duration_ms": duration, "cancelled": outcome.status == "cancelled"}
    value = {r["inputs"].get("name"): r["outputs"].get("out") for r in outcome.nodes
             if r["spec_id"] == OUTPUT_SPEC and r["status"] == "success"}
    return {"ok": True, "value": value, "duration_ms": duration,
            "cached": all(r.get("cached") for r in outcome.nodes if r["spec_id"] not in (INPUT_SPEC, OUTPUT_SPEC))}


def _gather(node: PlannedNode, results: list[dict], duration_ms: float, cancelled: bool) -> MapOutcome:
    """Per-port lists of the items that succeeded, in item order, and each item's record. An item that
    returned pyflow.SKIP (or, in a subflow, whose output was a branch not taken) is left out of the
    list it did not give a value to: a mapped node can filter."""
    from .runner import split_outputs  # the runner imports this module: imported when first needed
    outputs = {p.name: [] for p in node.spec.outputs}
    items, first_error = [], None
    for index, result in enumerate(results):
        record = {"index": index, "status": "success", "duration_ms": round(result.get("duration_ms") or 0.0, 3),
                  "cached": bool(result.get("cached")), "error": None}
        if result["ok"] and node.subplan is None and is_skip(result["value"]):
            record.update(status="skipped", reason=BRANCH_NOT_TAKEN)
        elif result["ok"]:
            try:
                split = result["value"] if node.subplan is not None else split_outputs(node, result["value"])
            except ConversionError as exc:
                result = {"ok": False, "error": node_error("OutputError", str(exc))}
            else:
                for port, value in split.items():
                    if port in outputs and not is_skip(value):
                        outputs[port].append(value)
        if not result["ok"]:
            record.update(status="cancelled" if result.get("cancelled") else "fail", error=result["error"])
            first_error = first_error or (index, result["error"])
        items.append(record)
    if cancelled:
        return MapOutcome(False, outputs, items, node_error("Cancelled", "the run was cancelled"), duration_ms, True)
    if first_error is not None and node.map_errors != "skip":
        index, error = first_error
        failed = sum(1 for r in items if r["status"] in ("fail", "cancelled"))
        message = f"{failed} of {len(items)} items failed; item {index}: {(error or {}).get('message')}"
        return MapOutcome(False, outputs, items, node_error((error or {}).get("type", "MapError"), message,
                                                            (error or {}).get("traceback") or ()), duration_ms)
    return MapOutcome(True, outputs, items, None, duration_ms)
