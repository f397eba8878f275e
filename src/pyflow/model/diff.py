"""What differs between a stored object and the one an import would put in its place, in plain words.

A merge that silently replaces a nodespec changes what every flow using it computes (Float ports become
Int, required inputs optional), so an import is previewed first: each clash is listed with these words.
"""

from __future__ import annotations

from typing import Any

from .types import DEFAULT_TYPE, truthy


def _ports(doc: dict, kind: str) -> dict[str, dict]:
    ports = (doc.get("port") or {}).get(kind) or ([{"name": "out"}] if kind == "output" else [])
    return {p.get("name"): p for p in ports if isinstance(p, dict)}


def _port_changes(kind: str, mine: dict[str, dict], theirs: dict[str, dict]) -> list[str]:
    changes = []
    removed = [name for name in mine if name not in theirs]
    added = [name for name in theirs if name not in mine]
    if removed:
        changes.append(f"{kind} ports removed: {', '.join(map(repr, removed))}")
    if added:
        changes.append(f"{kind} ports added: {', '.join(map(repr, added))}")
    for name in (n for n in mine if n in theirs):
        old, new = mine[name], theirs[name]
        old_type, new_type = old.get("type") or DEFAULT_TYPE, new.get("type") or DEFAULT_TYPE
        if old_type != new_type:
            changes.append(f"{kind} {name!r}: type {old_type} → {new_type}")
        if kind == "input":
            was, now = truthy(old.get("required", False)), truthy(new.get("required", False))
            if was != now:
                changes.append(f"{kind} {name!r}: {'required' if was else 'optional'} → {'required' if now else 'optional'}")
            if old.get("default") != new.get("default"):
                changes.append(f"{kind} {name!r}: default {old.get('default')!r} → {new.get('default')!r}")
    return changes


def nodespec_changes(mine: dict, theirs: dict) -> list[str]:
    """The differences between two nodespec documents: ports, types, requiredness, defaults, code, rest."""
    changes = _port_changes("input", _ports(mine, "input"), _ports(theirs, "input"))
    changes += _port_changes("output", _ports(mine, "output"), _ports(theirs, "output"))
    if mine.get("func") != theirs.get("func"):
        changes.append("code (func) differs")
    rest = sorted(k for k in set(mine) | set(theirs) if k not in ("port", "func") and mine.get(k) != theirs.get(k))
    if rest:
        changes.append(f"also differs: {', '.join(rest)}")
    return changes or ["differs in form only"]


def flow_changes(mine: dict, theirs: dict) -> list[str]:
    """The differences between two flow documents, counted: nodes, links, name."""
    def ids(doc: Any, key: str) -> set:
        items = doc.get(key) if isinstance(doc.get(key), list) else []
        if key == "links":
            return {(i.get("source"), i.get("target")) for i in items if isinstance(i, dict)}
        return {i.get("id") for i in items if isinstance(i, dict)}

    changes = []
    for key, word in (("nodes", "nodes"), ("links", "links")):
        old, new = ids(mine, key), ids(theirs, key)
        if old - new or new - old:
            changes.append(f"{word}: {len(new - old)} added, {len(old - new)} removed")
    if mine.get("name") != theirs.get("name"):
        changes.append(f"name {mine.get('name')!r} → {theirs.get('name')!r}")
    return changes or ["node values or layout differ"]
