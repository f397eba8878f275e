"""Expand subflow nodes into the parent's graph, so that the scheduler sees only plain nodes.

A node whose nodespec is a flow (`flow:<id>`) is replaced by that flow's nodes, with ids namespaced
under it (`outer/inner`, `outer/mid/inner`). A link into its input port `p` becomes a link into the
`default` port of the inner `pyflow.flow.input` node named `p` (its literal value likewise); a link
from its output port `q` comes from the inner `pyflow.flow.output` node named `q`. The boundary nodes
stay in the plan as pass-through nodes (the runner forwards their value without running code), so
caching, cancellation, skips and events work for expanded nodes as for any other.

A mapped subflow node (one with `map`) is not expanded: it runs its flow once per item, from a plan
compiled here once (see engine/mapping.py).
"""

from __future__ import annotations

from typing import Mapping

from ..model.errors import detail, pointer
from ..model.flow import FlowGraph, FlowNode, analyze_flow
from ..model.nodespec import NodeSpec
from ..model.subflow import INPUT_SPEC, OUTPUT_SPEC

MAX_EXPANDED_NODES = 100_000  # planned nodes after expansion: a flow nests subflows that each use others many times


class _Expansion:
    """The flat graph under construction, and the flows analysed for it (each analysed once)."""

    def __init__(self, specs: Mapping[str, NodeSpec]):
        self.specs = specs
        self.nodes: dict[str, FlowNode] = {}
        self.inbound: dict[str, dict[str, tuple[str, str]]] = {}
        self.problems: list[dict] = []
        self.graphs: dict[str, FlowGraph | None] = {}
        self.subflows: dict[str, dict] = {}  # every flow expanded, by id: for the run's snapshot
        self.order: list[str] = []

    def inner_graph(self, spec: NodeSpec, where: str) -> FlowGraph | None:
        flow_id = spec.flow["id"]
        if flow_id not in self.graphs:
            graph, problems = analyze_flow(spec.flow, self.specs)
            self.problems += [detail(where + d["path"], f"in subflow {flow_id!r}: {d['message']}") for d in problems]
            self.graphs[flow_id] = None if problems else graph
            self.subflows[flow_id] = spec.flow
        return self.graphs[flow_id]


def has_subflows(graph: FlowGraph, specs: Mapping[str, NodeSpec]) -> bool:
    return any(_is_expandable(node, specs) for node in graph.nodes.values())


def _is_expandable(node: FlowNode, specs: Mapping[str, NodeSpec]) -> bool:
    spec = specs.get(node.spec_id)
    return spec is not None and spec.flow is not None and not node.map


def expand_graph(graph: FlowGraph, specs: Mapping[str, NodeSpec]) -> tuple[FlowGraph, list[str], list[dict],
                                                                           dict[str, dict]]:
    """(flat graph, its targets, problems inside subflows, every flow expanded by id)."""
    state = _Expansion(specs)
    targets, state.order = _expand_into(state, graph, prefix="", path=(), where="")
    flat = FlowGraph(id=graph.id, name=graph.name, nodes=state.nodes, inbound=state.inbound, order=state.order)
    return flat, targets, state.problems, state.subflows


def _expand_into(state: _Expansion, graph: FlowGraph, prefix: str, path: tuple,
                 where: str) -> tuple[list[str], list[str]]:
    """Add `graph`'s nodes under `prefix`, in document order; answer its targets and a topological
    order of what it added (flat ids): the graph's own order with each subflow's nodes in its place,
    since what feeds a subflow comes before it and what it feeds after. Recursion is bounded by the
    subflow depth limit that analyze_flow enforces."""
    exits: dict[str, dict[str, tuple[str, str]]] = {}  # subflow node -> its output port -> flat source
    entries: dict[str, dict[str, str]] = {}  # subflow node -> its input port -> flat input boundary node
    targets: list[str] = []
    placed: dict[str, list[str]] = {}  # node id -> the flat ids it became, in order
    own_targets = set(_graph_targets(graph))
    for node_id in sorted(graph.nodes, key=lambda n: graph.nodes[n].index):
        node = graph.nodes[node_id]
        node_where = f"{where}/nodes/{node.index}"
        if _is_expandable(node, state.specs):
            state.problems += _unfed_inputs(node, graph.inbound[node_id], state.specs[node.spec_id], node_where)
            inner_targets, placed[node_id] = _expand_subflow(state, node, prefix, path, node_where, exits, entries)
            if node_id in own_targets:
                targets += inner_targets
            continue
        flat_id = prefix + node_id
        state.nodes[flat_id] = FlowNode(flat_id, node.spec_id, node.name, node.values, node.is_end,
                                        len(state.nodes), node.map, node.map_errors, node.max_items, node_where,
                                        path + (node_id,))
        placed[node_id] = [flat_id]
        state.inbound[flat_id] = {}
        if node_id in own_targets:
            targets.append(flat_id)
        if len(state.nodes) > MAX_EXPANDED_NODES:
            raise TooLarge()
    _wire(state, graph, prefix, exits, entries)
    return targets, [flat_id for node_id in graph.order for flat_id in placed[node_id]]


class TooLarge(Exception):
    """Expansion passed MAX_EXPANDED_NODES: subflows that use others many times over, level after level."""


def _expand_subflow(state: _Expansion, node: FlowNode, prefix: str, path: tuple, where: str,
                    exits: dict, entries: dict) -> tuple[list[str], list[str]]:
    """Add the nodes of subflow node `node`; note where its ports lead; answer (targets, order)."""
    spec = state.specs[node.spec_id]
    inner = state.inner_graph(spec, where + "/flow")
    if inner is None:
        entries[node.id], exits[node.id] = {}, {}
        return [], []
    inner_prefix = f"{prefix}{node.id}/"
    targets, order = _expand_into(state, inner, inner_prefix, path + (node.id,), where + "/flow")
    ports_in, ports_out = {}, {}
    for inner_node in inner.nodes.values():
        name = inner_node.values.get("name")
        if inner_node.spec_id == INPUT_SPEC:
            ports_in[name] = inner_prefix + inner_node.id
            if name in node.values and node.values[name] is not None:
                flat = state.nodes[inner_prefix + inner_node.id]
                flat.values = {**flat.values, "default": node.values[name]}
        elif inner_node.spec_id == OUTPUT_SPEC:
            ports_out[name] = (inner_prefix + inner_node.id, "out")
            targets.append(inner_prefix + inner_node.id)
    entries[node.id], exits[node.id] = ports_in, ports_out
    return list(dict.fromkeys(targets)), order


def _unfed_inputs(node: FlowNode, inbound: dict, spec: NodeSpec, where: str) -> list[dict]:
    """A subflow's input without a default needs a link or a value on the subflow node."""
    return [detail(where + "/ports", f"required input {port.name!r} of node {node.name!r} has neither a link "
                                     f"nor a value")
            for port in spec.inputs
            if port.required and port.name not in inbound and node.values.get(port.name) is None]


def _wire(state: _Expansion, graph: FlowGraph, prefix: str, exits: dict, entries: dict) -> None:
    """The links of `graph`, between flat nodes: through subflow nodes to their boundary nodes."""
    for node_id, ports in graph.inbound.items():
        for port, (src, src_port) in ports.items():
            source = exits[src].get(src_port) if src in exits else (prefix + src, src_port)
            if source is None:
                continue
            if node_id in entries:
                target = entries[node_id].get(port)
                if target is not None:
                    state.inbound[target]["default"] = source
            else:
                state.inbound[prefix + node_id][port] = source


def _graph_targets(graph: FlowGraph) -> list[str]:
    ends = [n for n, node in graph.nodes.items() if node.is_end]
    return ends or graph.sinks()


def expansion_problem(graph: FlowGraph) -> list[dict]:
    return [detail(pointer("nodes"), f"expanding the subflows of flow {graph.id!r} gives more than "
                                     f"{MAX_EXPANDED_NODES} nodes")]

