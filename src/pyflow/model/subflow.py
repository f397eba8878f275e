"""Subflows: a flow used as a node.

A flow's boundary nodes define its ports when it is used inside another flow: each `pyflow.flow.input`
node is an input port (named and typed by its literal `name` and `type`, optionally with a `default`),
each `pyflow.flow.output` node an output port. A node whose spec_id is `flow:<flow id>` uses that
flow; the repository offers one pseudo-nodespec per stored flow under that id, so flows are checked,
linked and typed against subflows exactly as against nodespecs. The engine expands subflows into the
parent plan (engine/expand.py); this module only describes and checks them.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

from .errors import detail, pointer
from .nodespec import InputPort, NodeSpec, OutputPort, parse_nodespec
from .types import DEFAULT_TYPE, PORT_TYPES, is_known_type

FLOW_PREFIX = "flow:"
INPUT_SPEC = "pyflow.flow.input"
OUTPUT_SPEC = "pyflow.flow.output"
BOUNDARY_SPECS = frozenset({INPUT_SPEC, OUTPUT_SPEC})
PORT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")
MAX_DEPTH = 32  # subflows inside subflows, at most this deep

# The boundary nodespecs, also kept in the standard library (repository/nodespecs) for the palette.
# They are offered to every flow even when the repository lacks them, since subflows need them.
BOUNDARY_DOCS = {
    INPUT_SPEC: {
        "id": INPUT_SPEC, "title": "Flow input", "tags": ["flow"],
        "description": "an input port of this flow when it is used as a node in another flow; outputs the "
                       "value arriving there (default when the flow runs on its own)",
        "port": {"input": [{"name": "name", "order": 0, "type": "String", "required": True},
                           {"name": "type", "order": 1, "type": "String", "default": "Any"},
                           {"name": "default", "order": 2, "type": "Any"}],
                 "output": [{"name": "out", "type": "Any"}]},
        "func": "def func(name, type='Any', default=None):\n    return default\n",
    },
    OUTPUT_SPEC: {
        "id": OUTPUT_SPEC, "title": "Flow output", "tags": ["flow"],
        "description": "an output port of this flow when it is used as a node in another flow",
        "port": {"input": [{"name": "name", "order": 0, "type": "String", "required": True},
                           {"name": "type", "order": 1, "type": "String", "default": "Any"},
                           {"name": "value", "order": 2, "type": "Any", "required": True}],
                 "output": [{"name": "out", "type": "Any"}]},
        "func": "def func(name, type='Any', value=None):\n    return value\n",
    },
}


def flow_spec_id(flow_id: str) -> str:
    return FLOW_PREFIX + flow_id


def subflow_id(spec_id: str) -> str | None:
    """The flow id a `flow:<id>` spec id names, else None."""
    return spec_id[len(FLOW_PREFIX):] if isinstance(spec_id, str) and spec_id.startswith(FLOW_PREFIX) else None


def _literal(node: dict, port: str) -> Any:
    ports = node.get("ports")
    if not isinstance(ports, list):
        return None
    return next((p.get("value") for p in ports if isinstance(p, dict) and p.get("name") == port), None)


def boundary_nodes(doc: dict, spec_id: str) -> list[tuple[int, dict]]:
    return [(i, nd) for i, nd in enumerate(doc.get("nodes") or [])
            if isinstance(nd, dict) and nd.get("spec_id") == spec_id]


def boundary_problems(doc: dict) -> list[dict]:
    """Boundary nodes need a port name (a valid, unique one) and a known type."""
    problems = []
    for spec_id, kind in ((INPUT_SPEC, "input"), (OUTPUT_SPEC, "output")):
        seen: set[str] = set()
        for i, node in boundary_nodes(doc, spec_id):
            name, ptype = _literal(node, "name"), _literal(node, "type")
            path = pointer("nodes", i, "ports")
            if not isinstance(name, str) or not PORT_NAME.fullmatch(name):
                problems.append(detail(path, f"the flow {kind} node {node.get('id')!r} needs a port name: a letter "
                                             f"or _ then letters, digits or _ (not {name!r})"))
            elif name in seen:
                problems.append(detail(path, f"two flow {kind} nodes are named {name!r}; port names are unique"))
            seen.add(name)
            if ptype not in (None, "") and not is_known_type(ptype):
                problems.append(detail(path, f"unknown port type {ptype!r} on flow {kind} node {node.get('id')!r}; "
                                             f"known types: {', '.join(PORT_TYPES)}"))
    return problems


def flow_nodespec(doc: dict) -> NodeSpec:
    """The pseudo-nodespec of a stored flow: its ports are its boundary nodes, in node order."""
    inputs, outputs = [], []
    for order, (_, node) in enumerate(boundary_nodes(doc, INPUT_SPEC)):
        name, default = _literal(node, "name"), _literal(node, "default")
        if isinstance(name, str) and PORT_NAME.fullmatch(name) and all(p.name != name for p in inputs):
            inputs.append(InputPort(name=name, type=_type(node), order=order, default=default,
                                    required=default is None, has_default=default is not None))
    for _, node in boundary_nodes(doc, OUTPUT_SPEC):
        name = _literal(node, "name")
        if isinstance(name, str) and PORT_NAME.fullmatch(name) and all(p.name != name for p in outputs):
            outputs.append(OutputPort(name, _type(node)))
    return NodeSpec(id=flow_spec_id(doc["id"]), title=doc.get("name") or doc["id"], func="",
                    inputs=tuple(inputs), outputs=tuple(outputs), doc=doc, flow=doc)


def _type(node: dict) -> str:
    ptype = _literal(node, "type")
    return ptype if isinstance(ptype, str) and is_known_type(ptype) else DEFAULT_TYPE


def with_flows(specs: Mapping[str, NodeSpec], flows: Iterable[dict]) -> dict[str, NodeSpec]:
    """`specs` plus the boundary nodespecs (when absent) and one pseudo-nodespec per flow document."""
    merged = dict(specs)
    for spec_id, doc in BOUNDARY_DOCS.items():
        merged.setdefault(spec_id, parse_nodespec(doc))
    for doc in flows:
        if isinstance(doc, dict) and isinstance(doc.get("id"), str) and isinstance(doc.get("nodes"), list):
            merged[flow_spec_id(doc["id"])] = flow_nodespec(doc)
    return merged


def flow_spec_docs(spec: NodeSpec) -> dict:
    """How a subflow's pseudo-nodespec is described to clients (the palette): id, title, ports."""
    return {"id": spec.id, "title": spec.title, "flow": subflow_id(spec.id), "tags": ["flow"],
            "port": {"input": [{"name": p.name, "order": p.order, "type": p.type, "required": p.required,
                                **({"default": p.default} if p.has_default else {})} for p in spec.inputs],
                     "output": [{"name": p.name, "type": p.type} for p in spec.outputs]}}


def cycle_problems(doc: dict, specs: Mapping[str, NodeSpec]) -> list[dict]:
    """A flow that contains itself, directly or through other flows, is refused naming the chain."""
    problems = []
    checked: dict[str, tuple] = {}  # child flow -> (chain back, too deep): a flow used often is walked once
    for i, node in enumerate(doc.get("nodes") or []):
        child = subflow_id(node.get("spec_id")) if isinstance(node, dict) else None
        if child is None:
            continue
        if child not in checked:
            chain = _chain_back(doc["id"], child, specs)
            checked[child] = (chain, chain is None and _too_deep(child, specs))
        chain, too_deep = checked[child]
        if chain is not None:
            problems.append(detail(pointer("nodes", i, "spec_id"),
                                   f"flow {doc['id']!r} would contain itself: {' -> '.join(chain)}"))
        elif too_deep:
            problems.append(detail(pointer("nodes", i, "spec_id"),
                                   f"subflows nest more than {MAX_DEPTH} levels deep under {child!r}"))
    return problems


def _chain_back(root: str, child: str, specs: Mapping[str, NodeSpec]) -> list[str] | None:
    """The chain root -> child -> ... -> root, when `child` leads back to `root` (iterative search)."""
    stack = [(child, [root, child])]
    seen: set[str] = set()
    while stack:
        flow_id, chain = stack.pop()
        if flow_id == root:
            return chain
        if flow_id in seen:
            continue
        seen.add(flow_id)
        spec = specs.get(flow_spec_id(flow_id))
        for node in (spec.flow.get("nodes") or []) if spec is not None and spec.flow else []:
            inner = subflow_id(node.get("spec_id")) if isinstance(node, dict) else None
            if inner is not None:
                stack.append((inner, chain + [inner]))
    return None


def _too_deep(flow_id: str, specs: Mapping[str, NodeSpec]) -> bool:
    """Whether subflows under `flow_id` nest deeper than MAX_DEPTH (breadth-first, by level)."""
    level = {flow_id}
    for _ in range(MAX_DEPTH):
        following = set()
        for fid in level:
            spec = specs.get(flow_spec_id(fid))
            for node in (spec.flow.get("nodes") or []) if spec is not None and spec.flow else []:
                inner = subflow_id(node.get("spec_id")) if isinstance(node, dict) else None
                if inner is not None:
                    following.add(inner)
        if not following:
            return False
        level = following
    return True


def referenced_flow_ids(doc: dict) -> set[str]:
    """The flows a flow document uses as subflows."""
    return {sid for nd in doc.get("nodes") or [] if isinstance(nd, dict)
            for sid in [subflow_id(nd.get("spec_id"))] if sid is not None}
