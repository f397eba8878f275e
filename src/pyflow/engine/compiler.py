"""Compile a flow document into a checked, runnable plan before anything runs.

Every problem is reported together: unknown nodespecs and ports, links that are not output -> input,
two links into one input, cycles (naming the nodes on the cycle), required inputs with neither a link
nor a value, and run-time values for unknown nodes or ports. Only the targets (nodes marked is_end, else
every sink) and their ancestors are planned.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..model.errors import InvalidInput, detail, pointer
from ..model.flow import FlowGraph, FlowNode, LinkTable, analyze_flow, link_table
from ..model.nodespec import NodeSpec
from ..model.subflow import BOUNDARY_SPECS
from .expand import TooLarge, expand_graph, expansion_problem, has_subflows


@dataclass(slots=True)
class PlannedNode:
    """One node to run: its spec, literal values, where each linked input comes from, its cache key."""

    id: str
    name: str
    index: int
    spec: NodeSpec
    literals: dict[str, Any]
    inbound: dict[str, tuple[str, str]]
    cache_key: str | None = None
    path: tuple[str, ...] = ()  # node ids from the outermost flow down (one id outside subflows)
    map: tuple[str, ...] = ()  # mapped input ports (engine/mapping.py)
    map_errors: str = "fail"
    max_items: int = 10_000
    item_key: str | None = None  # a mapped node's cache key without its mapped inputs: items add theirs
    passthrough: bool = False  # a subflow boundary node: its value is forwarded, no code runs
    subplan: "CompiledFlow | None" = None  # a mapped subflow node's own flow, run once per item


@dataclass
class CompiledFlow:
    flow_id: str
    name: str
    nodes: dict[str, PlannedNode]
    links: LinkTable  # who feeds whom among the planned nodes, as the scheduler reads it
    targets: list[str] = field(default_factory=list)
    order: list[str] = field(default_factory=list)  # planned nodes, upstream before downstream
    subflows: dict[str, dict] = field(default_factory=dict)  # every flow used as a subflow, by id
    not_run: dict[str, str] = field(default_factory=dict)  # left out as incomplete: {node id: why}


def compile_flow(doc: Any, specs: Mapping[str, NodeSpec], values: dict | None = None,
                 cache_keys: bool = True) -> CompiledFlow:
    """Check `doc` against `specs` and plan its run; raise InvalidInput listing every problem.

    `values` overrides literal port values for this run only: {node id: {port: value}}. Without
    `cache_keys` (a run that will not use the cache) nodes are not hashed.
    """
    graph, problems = analyze_flow(doc, specs)
    if graph is None:
        raise InvalidInput("invalid flow", problems)
    problems += _override_problems(graph, specs, values or {})
    for node_id, ports in (values or {}).items():
        if node_id in graph.nodes and isinstance(ports, dict):
            graph.nodes[node_id].values = {**graph.nodes[node_id].values, **ports}
    subflows: dict[str, dict] = {}
    expanded = not problems and has_subflows(graph, specs)
    if expanded:
        try:
            graph, targets, inner_problems, subflows = expand_graph(graph, specs)
        except TooLarge:
            raise InvalidInput("invalid flow", expansion_problem(graph)) from None
        if inner_problems:
            raise InvalidInput("invalid flow", problems + inner_problems)
    else:
        targets = _targets(graph)
    missing_at = _missing_everywhere(graph, specs)
    not_run = {} if problems else _incomplete_sinks(graph, targets, missing_at)
    targets = [t for t in targets if t not in not_run]
    # Every node of a flow feeds some sink, so when the sinks are the targets, all nodes are planned.
    everything = not expanded and not not_run and not any(node.is_end for node in graph.nodes.values())
    planned = graph.nodes if everything else _ancestors(graph, targets)
    nodes = {}
    for node_id, node in graph.nodes.items():  # in index order, as analyze_flow and expand_graph add them
        if node_id not in planned:
            continue
        spec = specs.get(node.spec_id)
        if spec is None:
            continue
        if node_id in missing_at:
            problems += _required_problems(node, missing_at[node_id])
        nodes[node_id] = _planned(node, spec, graph.inbound[node_id], specs, cache_keys, subflows)
    if problems:
        raise InvalidInput("invalid flow", problems)
    if len(nodes) == len(graph.nodes):
        links, order = graph.links, graph.order
    else:
        links, order = link_table(nodes, graph.inbound), [n for n in graph.order if n in nodes]
    compiled = CompiledFlow(graph.id, graph.name, nodes, links, targets, order, subflows, not_run)
    if cache_keys:
        assign_cache_keys(compiled)
    return compiled


def _planned(node: FlowNode, spec: NodeSpec, inbound: dict, specs: Mapping[str, NodeSpec], cache_keys: bool,
             subflows: dict) -> PlannedNode:
    planned = PlannedNode(node.id, node.name, node.index, spec, node.values, inbound,
                          path=node.path or (node.id,), map=node.map, map_errors=node.map_errors,
                          max_items=node.max_items, passthrough=spec.id in BOUNDARY_SPECS)
    if spec.flow is not None:  # a mapped subflow: its flow is planned once, and run per item
        planned.subplan = compile_flow(spec.flow, specs, cache_keys=cache_keys)
        subflows[spec.flow["id"]] = spec.flow
        subflows.update(planned.subplan.subflows)
    return planned


def _targets(graph: FlowGraph) -> list[str]:
    ends = [n for n, node in graph.nodes.items() if node.is_end]
    return ends or graph.sinks()


def _missing_inputs(spec: NodeSpec, literals: dict, inbound: dict) -> list[str]:
    return [port.name for port in spec.inputs
            if port.required and port.name not in inbound and literals.get(port.name) is None
            and not (port.has_default and port.default is not None)] if spec.inputs else []


def _missing_everywhere(graph: FlowGraph, specs: Mapping[str, NodeSpec]) -> dict[str, list[str]]:
    """The required inputs each node lacks (neither link nor value), for the nodes lacking any."""
    missing_at = {}
    for node_id, node in graph.nodes.items():
        spec = specs.get(node.spec_id)
        if spec is not None and spec.inputs:
            missing = _missing_inputs(spec, node.values, graph.inbound[node_id])
            if missing:
                missing_at[node_id] = missing
    return missing_at


def _incomplete_sinks(graph: FlowGraph, targets: list[str], missing_at: dict[str, list[str]]) -> dict[str, str]:
    """Without end nodes every sink is a target, so a node just dropped and not yet filled in would block
    the whole run: the nodes missing an input and everything downstream of them are left out (and said
    why), as long as some target remains to run. Marked end nodes are what the user asked for: their
    ancestors are never left out (an incomplete one is reported instead)."""
    if not missing_at or any(node.is_end for node in graph.nodes.values()):
        return {}
    why: dict[str, str] = {}
    for node_id in graph.order:
        missing = missing_at.get(node_id)
        if missing:
            why[node_id] = "missing input " + ", ".join(repr(name) for name in missing)
            continue
        predecessors = graph.predecessors[node_id]
        if not why or why.keys().isdisjoint(predecessors):
            continue
        upstream = next((p for p in sorted(predecessors, key=lambda p: graph.nodes[p].index) if p in why), None)
        if upstream is not None:
            origin = why[upstream] if why[upstream].startswith("upstream") else \
                f"upstream node {graph.nodes[upstream].name!r} is {why[upstream]}"
            why[node_id] = origin
    if all(t in why for t in targets):
        return {}
    return why


def _ancestors(graph: FlowGraph, targets: list[str]) -> set[str]:
    """The targets and everything upstream of them (iterative: no recursion on graph size)."""
    seen = set(targets)
    queue = deque(targets)
    while queue:
        for pred in graph.predecessors[queue.popleft()]:
            if pred not in seen:
                seen.add(pred)
                queue.append(pred)
    return seen


def _required_problems(node: FlowNode, missing: list[str]) -> list[dict]:
    where = node.where or pointer("nodes", node.index)
    found = [detail(where + "/ports", f"required input {port!r} of node {node.name!r} has neither a link nor a value")
             for port in missing]
    if len(node.path) > 1:  # inside a subflow: say which, as the pointer does
        found = [{**d, "message": f"in subflow node {'/'.join(node.path[:-1])!r}: {d['message']}"} for d in found]
    return found


def _override_problems(graph: FlowGraph, specs: Mapping[str, NodeSpec], values: dict) -> list[dict]:
    problems = []
    for node_id, ports in values.items():
        node = graph.nodes.get(node_id)
        if node is None or not isinstance(ports, dict):
            problems.append(detail(pointer("values", node_id), f"the flow has no node {node_id!r}"))
            continue
        spec = specs.get(node.spec_id)
        for port in ports:
            if spec is not None and spec.input(port) is None:
                problems.append(detail(pointer("values", node_id, port),
                                       f"node {node_id!r} ({spec.id}) has no input port {port!r}"))
            elif port in graph.inbound.get(node_id, {}):
                source = ":".join(graph.inbound[node_id][port])
                problems.append(detail(pointer("values", node_id, port),
                                       f"input {port!r} of node {node_id!r} is linked from {source!r}; "
                                       f"a run value cannot replace a link"))
    return problems


def spec_fingerprint(spec: NodeSpec) -> str:
    """Hash of what in a nodespec affects its results: source, ports, captured-output limit, image.
    Kept on the nodespec object once worked out (as a cached_property would be): a NodeSpec never
    changes, the repository parses a new one for every change, and every run of its flows asks again."""
    known = spec.__dict__.get("_fingerprint")
    if known is not None:
        return known
    material = {
        "func": spec.func,
        "inputs": [(p.name, p.type, p.order, p.default) for p in spec.inputs],
        "outputs": [(p.name, p.type) for p in spec.outputs],
        "stdout_kb": spec.limits.get("stdout_kb"),
        "image": spec.image,
        "requirements": list(spec.requirements),
    }
    fingerprint = spec.__dict__["_fingerprint"] = _digest(material)
    return fingerprint


# One encoder for every digest: json.dumps with options builds a new encoder on every call.
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=repr)


def _digest(material: Any) -> str:
    return hashlib.sha256(_ENCODER.encode(material).encode("utf-8")).hexdigest()


def assign_cache_keys(compiled: CompiledFlow) -> None:
    """Key each node by its nodespec, literal inputs and the keys of the nodes feeding it.

    A nodespec with "cache": false gets no key, and neither does anything downstream of it, so those
    nodes always run.
    """
    fingerprints: dict[str, str] = {}
    for node_id in compiled.order:
        node = compiled.nodes[node_id]
        if not node.spec.cache:
            continue
        upstream = {}
        for port, (src, src_port) in node.inbound.items():
            src_key = compiled.nodes[src].cache_key
            if src_key is None:
                break
            upstream[port] = (src_key, src_port)
        else:
            fp = fingerprints.get(node.spec.id) or fingerprints.setdefault(node.spec.id, _fingerprint(node))
            if fp is None:
                continue
            literals = {k: v for k, v in node.literals.items() if k not in node.inbound} if node.literals else {}
            node.cache_key = _node_key(fp, literals, upstream, node.map)
            if node.map:
                node.item_key = _node_key(fp, {k: v for k, v in literals.items() if k not in node.map},
                                          {k: v for k, v in upstream.items() if k not in node.map}, node.map)


def _node_key(fingerprint: str, literals: dict, upstream: dict, mapped: tuple) -> str:
    """The digest of one node's key material, written so that no two materials give one text: input
    port names are identifiers (ended by "="), keys 64 hex digits, output port names never hold ":"
    (which ends each link), and the literals one JSON object. Only the literals need JSON: this runs
    once per node, and encoding the whole material as JSON costs twice as much."""
    links = "".join(f"{port}={key}{src_port}:" for port, (key, src_port) in sorted(upstream.items()))
    text = f"{fingerprint}|{_ENCODER.encode(literals) if literals else '{}'}|{links}|{','.join(mapped)}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _fingerprint(node: PlannedNode) -> str | None:
    """A nodespec's fingerprint; a mapped subflow's is its planned nodes' keys (None when one of them
    is never cached)."""
    if node.subplan is None:
        return spec_fingerprint(node.spec)
    keys = [(n, node.subplan.nodes[n].cache_key) for n in node.subplan.order]
    return None if any(key is None for _, key in keys) else _digest(keys)

