"""Flows: checking a document against the nodespecs it uses, and the graph it describes.

The document format is the original PyFlow's, quirks included ("77px" positions, is_end 1, string port
values). `analyze_flow` reports every structural problem at once, each with a JSON pointer, and returns
a `FlowGraph` the engine schedules from.
"""

from __future__ import annotations

import graphlib
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any, Iterable, Mapping

from .errors import InvalidInput, detail, pointer
from .nodespec import NodeSpec
from .quickcheck import flow_certainly_valid
from .subflow import BOUNDARY_SPECS, FLOW_PREFIX, boundary_problems, cycle_problems
from .types import truthy
from .validation import schema_errors

DEFAULT_MAX_ITEMS = 10_000
#: The values of a node that sets none, shared and read-only: a flow of 10,000 such nodes would
#: otherwise hold 10,000 empty dicts through its run.
NO_VALUES: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class Link:
    source_node: str
    source_port: str
    target_node: str
    target_port: str


@dataclass(slots=True)
class FlowNode:
    id: str
    spec_id: str
    name: str
    values: Mapping[str, Any]  # never changed in place: replaced, when a run's values override them
    is_end: bool
    index: int
    map: tuple[str, ...] = ()  # input ports mapped over: the node runs once per item of their lists
    map_errors: str = "fail"  # or "skip": failed items are left out of the node's output lists
    max_items: int = DEFAULT_MAX_ITEMS
    where: str | None = None  # the JSON pointer of the node, when not /nodes/<index> (inside a subflow)
    path: tuple[str, ...] = ()  # the node ids from the outermost flow down, for a node inside subflows


@dataclass(frozen=True)
class LinkTable:
    """Who feeds whom, with no container per node: `indegree[n]` is how many distinct nodes feed n, and
    n's successors are `successors[first[n]:first[n] + count[n]]`, each in node order.

    Why one flat list and dicts of numbers: a container per node (a set of predecessors, a list of
    successors) is one more object per node that a large flow keeps alive through its compile and run,
    which the garbage collector promotes and scans again; dicts of numbers and strings it does not
    track at all (docs/performance.md)."""

    indegree: dict[str, int]
    first: dict[str, int]
    count: dict[str, int]
    successors: list[str]

    def successors_of(self, node: str) -> list[str]:
        start = self.first[node]
        return self.successors[start:start + self.count[node]]


@dataclass
class FlowGraph:
    """Nodes by id, for each node the links that feed it (input port -> source endpoint), and the
    table of who feeds whom (`links`) that ordering and scheduling read."""

    id: str
    name: str
    nodes: dict[str, FlowNode]
    inbound: dict[str, dict[str, tuple[str, str]]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)  # a topological order, when there is no cycle
    links: LinkTable | None = None

    def __post_init__(self):
        if self.links is None:
            self.links = link_table(self.nodes, self.inbound)

    @cached_property
    def predecessors(self) -> dict[str, tuple[str, ...]]:
        """Each node's predecessors, for the few paths that walk upstream (made when first asked)."""
        return predecessors_of(self.nodes, self.inbound)

    def sinks(self) -> list[str]:
        """The nodes that feed no other node, in node order."""
        count = self.links.count
        return [n for n in self.nodes if not count[n]]


def split_endpoint(endpoint: str) -> tuple[str, str]:
    """'node1:out' -> ('node1', 'out')."""
    node, _, port = endpoint.partition(":")
    return node, port


def node_values(node_doc: dict) -> dict[str, Any]:
    """The literal port values of a node document: {port name: value}."""
    return {p["name"]: p.get("value") for p in node_doc.get("ports") or [] if "value" in p}


def analyze_flow(doc: Any, specs: Mapping[str, NodeSpec]) -> tuple[FlowGraph | None, list[dict]]:
    """Check `doc` against `specs` and build its graph; return (graph or None, every problem found)."""
    if not flow_certainly_valid(doc):
        problems = schema_errors("flow", doc)
        if problems:
            return None, problems
    nodes, problems = _collect_nodes(doc, specs)
    inbound: dict[str, dict[str, tuple[str, str]]] = {n: {} for n in nodes}
    problems += _collect_links(doc, specs, nodes, inbound)
    graph = FlowGraph(id=doc["id"], name=doc.get("name") or doc["id"], nodes=nodes, inbound=inbound)
    problems += _cycle_problems(graph)
    if any(node.spec_id in BOUNDARY_SPECS or node.spec_id.startswith(FLOW_PREFIX) for node in nodes.values()):
        problems += boundary_problems(doc) + cycle_problems(doc, specs)
    return graph, problems


def _collect_nodes(doc: dict, specs: Mapping[str, NodeSpec]) -> tuple[dict[str, FlowNode], list[dict]]:
    nodes: dict[str, FlowNode] = {}
    problems = []
    for i, nd in enumerate(doc["nodes"]):
        if nd["id"] in nodes:
            problems.append(detail(pointer("nodes", i, "id"), f"duplicate node id {nd['id']!r}"))
            continue
        spec = specs.get(nd["spec_id"])
        name = nd.get("name") or nd["id"]
        ports = nd.get("ports")
        if spec is None:
            problems.append(detail(pointer("nodes", i, "spec_id"),
                                   f"node {name!r} uses an unknown nodespec {nd['spec_id']!r}"))
        else:
            inputs = spec.inputs_by_name
            for j, pv in enumerate(ports or ()):
                if pv["name"] not in inputs:
                    problems.append(detail(pointer("nodes", i, "ports", j, "name"),
                                           f"node {name!r} has a value for {pv['name']!r}, but its nodespec "
                                           f"{spec.id!r} has no input port of that name"))
            if "map" in nd:
                problems += _map_problems(nd, i, spec)
        is_end = nd.get("is_end")
        nodes[nd["id"]] = FlowNode(nd["id"], nd["spec_id"], name,
                                   {p["name"]: p.get("value") for p in ports if "value" in p} if ports else NO_VALUES,
                                   is_end if type(is_end) is bool else truthy(is_end), i,
                                   tuple(nd.get("map") or ()), nd.get("map_errors") or "fail",
                                   nd.get("max_items") or DEFAULT_MAX_ITEMS, None, (nd["id"],))
    return nodes, problems


def _map_problems(nd: dict, index: int, spec: NodeSpec) -> list[dict]:
    """Mapped ports must be input ports of the node, each named once."""
    problems = []
    for j, port in enumerate(nd.get("map") or ()):
        if spec.input(port) is None:
            problems.append(detail(pointer("nodes", index, "map", j),
                                   f"cannot map over {port!r}: nodespec {spec.id!r} has no input port {port!r}"))
    if len(set(nd.get("map") or ())) != len(nd.get("map") or ()):
        problems.append(detail(pointer("nodes", index, "map"), "a port is named twice in map"))
    return problems


def _collect_links(doc: dict, specs: Mapping[str, NodeSpec], nodes: dict[str, FlowNode],
                   inbound: dict[str, dict[str, tuple[str, str]]]) -> list[dict]:
    problems = []
    for i, ln in enumerate(doc["links"]):
        src_node, _, src_port = ln["source"].partition(":")
        dst_node, _, dst_port = ln["target"].partition(":")
        source, target = nodes.get(src_node), nodes.get(dst_node)
        source_spec = specs.get(source.spec_id) if source is not None else None
        target_spec = specs.get(target.spec_id) if target is not None else None
        if (source_spec is None or src_port not in source_spec.outputs_by_name
                or target_spec is None or dst_port not in target_spec.inputs_by_name):
            found = (_endpoint_problem(nodes, specs, src_node, src_port, "output", i)
                     + _endpoint_problem(nodes, specs, dst_node, dst_port, "input", i))
            if found:
                problems += found
                continue
        # Kept as the node's own id and the nodespec's own port names, not the copies cut from the link's
        # text: a large flow holds one string fewer per endpoint, and every lookup by them later (each
        # node's inputs and outputs, each run) matches by identity.
        fed = inbound[target.id]
        port = target_spec.inputs_by_name[dst_port].name
        if port in fed:
            problems.append(detail(pointer("links", i, "target"), f"input {ln['target']!r} already has a link "
                                                                  f"from {':'.join(fed[port])!r}; an input takes one link"))
            continue
        fed[port] = (source.id, source_spec.outputs_by_name[src_port].name)
    return problems


def predecessors_of(nodes: Mapping[str, Any], inbound: Mapping[str, Mapping[str, tuple[str, str]]]
                    ) -> dict[str, tuple[str, ...]]:
    """Each node's predecessors (the nodes its links come from, each once, in link order), in node order."""
    return {node: sources_of(inbound.get(node) or {}) for node in nodes}


def sources_of(links: Mapping[str, tuple[str, str]]) -> tuple[str, ...]:
    """The nodes one node's links come from, each once, in link order."""
    return tuple(dict.fromkeys(src for src, _ in links.values()))


def _endpoint_problem(nodes: dict[str, FlowNode], specs: Mapping[str, NodeSpec], node_id: str, port: str,
                      role: str, link_index: int) -> list[dict]:
    node = nodes.get(node_id)
    spec = specs.get(node.spec_id) if node is not None else None
    if spec is not None and (spec.output(port) if role == "output" else spec.input(port)) is not None:
        return []  # the common case, kept free of any work for the messages below
    path = pointer("links", link_index, "source" if role == "output" else "target")
    if node is None:
        return [detail(path, f"unknown node {node_id!r}")]
    if spec is None:
        return [detail(path, f"node {node.name!r} uses an unknown nodespec {node.spec_id!r}")]
    other = spec.input(port) if role == "output" else spec.output(port)
    if other is not None:
        side = "source" if role == "output" else "target"
        return [detail(path, f"a link goes from an output to an input, but {port!r} of node {node.name!r} "
                             f"is an {'input' if role == 'output' else 'output'} port and cannot be a link {side}")]
    return [detail(path, f"node {node.name!r} ({spec.id}) has no {role} port {port!r}")]


def _cycle_problems(graph: FlowGraph) -> list[dict]:
    """Order the graph (kept for the engine), or name the nodes on a cycle."""
    order = topological_order(graph.links)
    if len(order) == len(graph.nodes):
        graph.order = order
        return []
    try:  # there is a cycle: graphlib finds one to name
        graphlib.TopologicalSorter(graph.predecessors).prepare()
    except graphlib.CycleError as exc:
        names = " -> ".join(exc.args[1])
        return [detail("/links", f"the links form a cycle: {names}")]
    raise AssertionError("a graph with no topological order has a cycle")


def topological_order(links: LinkTable) -> list[str]:
    """The nodes, each after every node it depends on: layer by layer, starting from the sources in
    node order (Kahn's algorithm, no recursion). Nodes on or after a cycle are left out, so a result
    shorter than the graph means there is a cycle."""
    unfinished = dict(links.indegree)
    first, count, successors = links.first, links.count, links.successors
    order = [node for node, waiting in unfinished.items() if not waiting]
    for node in order:  # grows as it goes
        start = first[node]
        for successor in successors[start:start + count[node]]:
            unfinished[successor] -= 1
            if not unfinished[successor]:
                order.append(successor)
    return order


def link_table(nodes: Iterable[str], inbound: Mapping[str, Mapping[str, tuple[str, str]]]) -> LinkTable:
    """The LinkTable of `nodes` (in their order) fed as `inbound` says; every source must be one of them."""
    indegree = dict.fromkeys(nodes, 0)
    count = dict.fromkeys(indegree, 0)
    several: dict[str, tuple[str, ...]] = {}  # nodes fed by more than one link: their sources, each once
    for node in indegree:
        links = inbound.get(node)
        if not links:
            continue
        if len(links) == 1:
            for src, _ in links.values():
                count[src] += 1
            indegree[node] = 1
            continue
        sources = several[node] = sources_of(links)
        indegree[node] = len(sources)
        for src in sources:
            count[src] += 1
    first, at = {}, 0
    for node, successors in count.items():
        first[node] = at
        at += successors
    flat: list = [None] * at
    free = dict(first)
    for node, waiting in indegree.items():
        if not waiting:
            continue
        for src in several.get(node) or (src for src, _ in inbound[node].values()):
            flat[free[src]] = node
            free[src] += 1
    return LinkTable(indegree, first, count, flat)


def require_valid_flow(doc: Any, specs: Mapping[str, NodeSpec]) -> FlowGraph:
    graph, problems = analyze_flow(doc, specs)
    if problems:
        raise InvalidInput("invalid flow", problems)
    return graph


def referenced_spec_ids(doc: dict) -> set[str]:
    """The nodespec ids a flow document uses."""
    return {nd.get("spec_id") for nd in doc.get("nodes") or [] if isinstance(nd, dict)} - {None}
