"""A run's node results nested under their subflow nodes, beside the flat list.

Results are stored flat, one per planned node, each with its `path` (the node ids from the outermost
flow down: ["outer", "inner"] for node "outer/inner"). Readers that show a flow at a time (the editor's
drill-down, `pyflow runs show`) want them under the subflow node that holds them, with a status for
that node; the flat list stays for everyone else.
"""

from __future__ import annotations

SEVERITY = ("fail", "cancelled", "running", "skipped", "success")


def nest_results(nodes: list[dict], snapshot: dict | None) -> list[dict]:
    """Top-level entries in order; a subflow node's entry has its inner entries under `nodes`."""
    names = _node_names(snapshot or {})
    root: list[dict] = []
    groups: dict[tuple, dict] = {}
    for result in nodes:
        path = tuple(result.get("path") or [result["id"]])
        level = root
        for depth in range(1, len(path)):
            prefix = path[:depth]
            group = groups.get(prefix)
            if group is None:
                spec_id, name = names.get(prefix, (None, prefix[-1]))
                group = groups[prefix] = {"id": "/".join(prefix), "name": name, "spec_id": spec_id,
                                          "path": list(prefix), "status": "success", "nodes": []}
                level.append(group)
            level = group["nodes"]
        level.append(result)
    for prefix in sorted(groups, key=len, reverse=True):  # innermost first: outer groups read their status
        group = groups[prefix]
        group["status"] = _summary({n["status"] for n in group["nodes"]})
    return root


def _summary(statuses: set[str]) -> str:
    """A subflow node's status from its inner nodes': the worst of them, skipped only when all were."""
    for status in SEVERITY[:3]:
        if status in statuses:
            return status
    return "skipped" if statuses == {"skipped"} else "success"


def _node_names(snapshot: dict) -> dict[tuple, tuple[str, str]]:
    """(spec_id, name) of every subflow node, by path, from the run's snapshot (breadth-first)."""
    subflows = snapshot.get("subflow") or {}
    found: dict[tuple, tuple[str, str]] = {}
    pending = [((), snapshot.get("flow") or {})]
    while pending:
        prefix, flow = pending.pop()
        for node in flow.get("nodes") or []:
            spec_id = node.get("spec_id") or ""
            if not spec_id.startswith("flow:") or len(prefix) > 64:
                continue
            path = prefix + (node.get("id"),)
            found[path] = (spec_id, node.get("name") or node.get("id"))
            inner = subflows.get(spec_id[len("flow:"):])
            if inner is not None:
                pending.append((path, inner))
    return found
