"""The palette tree: nodespecs grouped by the segments of their dotted ids."""

from __future__ import annotations


def nodespec_tree(specs: list[dict]) -> list[dict]:
    """[{id, title, path, children: [...]}, ...] with each nodespec as `value` of its leaf, as the
    original /nodestree answered. Built without recursion; sorted by id."""
    roots: list[dict] = []
    for spec in sorted(specs, key=lambda s: s["id"]):
        level = roots
        parts = spec["id"].split(".")
        for depth, part in enumerate(parts):
            path = ".".join(parts[: depth + 1])
            item = next((n for n in level if n["id"] == part), None)
            if item is None:
                item = {"id": part, "title": part, "path": path, "children": []}
                level.append(item)
            if depth == len(parts) - 1:
                item["value"] = spec
                item["title"] = spec.get("title") or part
            level = item["children"]
    return roots
