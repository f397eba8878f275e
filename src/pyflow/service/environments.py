"""The runtime API's part for environments: list them with the nodespecs that use them, prepare one
ahead of a run, remove or prune them."""

from __future__ import annotations

import logging

from ..environments import EnvironmentFailed, EnvironmentStore
from ..model.errors import InvalidInput, NotFound, PyflowError, detail
from ..model.requirements import normalize_requirements

log = logging.getLogger(__name__)


class EnvironmentBuildFailed(PyflowError):
    """Preparing an environment failed: 409 with the installer's words (the request was well formed;
    the packages cannot be had as asked)."""

    status = 409


def users_by_key(store: EnvironmentStore, nodespecs) -> dict[str, list[str]]:
    """Environment key -> ids of the nodespecs whose requirements name it."""
    found: dict[str, list[str]] = {}
    for doc in nodespecs:
        reqs = doc.get("requirements") if isinstance(doc, dict) else None
        if not reqs:
            continue
        try:
            key = store.key_for(reqs).key
        except (InvalidInput, ValueError):
            continue
        found.setdefault(key, []).append(doc["id"])
    return found


def environment_list(store: EnvironmentStore, nodespecs, warm: list[str]) -> list[dict]:
    """Every environment: requirements, resolved packages, size, last use, nodespecs using it, warm or not."""
    users = users_by_key(store, nodespecs)
    records = []
    for record in store.records():
        record.pop("last_used_epoch", None)
        records.append({**record, "nodespecs": sorted(users.get(record["key"], [])), "warm": record["key"] in warm})
    return records


def prepare(store: EnvironmentStore, body) -> dict:
    """Build (or find) the environment of `{"requirements": [...]}` now; answers its record."""
    if not isinstance(body, dict) or not isinstance(body.get("requirements"), list):
        raise InvalidInput("missing requirements", [detail("/requirements", "requirements must be a list of "
                                                                            "requirement strings")])
    reqs = normalize_requirements(body["requirements"])
    if not reqs:
        raise InvalidInput("no requirements", [detail("/requirements", "name at least one package")])
    lines: list[str] = []
    try:
        env = store.environment(reqs, lambda phase, data: lines.append(data["line"]) if "line" in data else None)
    except EnvironmentFailed as exc:
        raise EnvironmentBuildFailed(str(exc), [detail("/requirements", str(exc))]) from None
    record = next((r for r in store.records() if r["key"] == env.key), {"key": env.key})
    record.pop("last_used_epoch", None)
    return {**record, "log": lines[-200:]}


def remove(store: EnvironmentStore, key: str, warm: list[str]) -> None:
    if key in warm:
        from ..model.errors import Conflict
        raise Conflict(f"environment {key} has warm sandboxes; prune it when the server is idle, or restart")
    if not store.remove(key):
        raise NotFound(f"no environment {key!r}", [detail("/key", "unknown environment")])


def prune(store: EnvironmentStore, body, warm: list[str]) -> dict:
    """Remove environments unused for `days`, and beyond `gb` the least recently used; never warm ones."""
    body = body if isinstance(body, dict) else {}
    days, gb = body.get("days"), body.get("gb", store.settings.envs_gb)
    for name, value in (("days", days), ("gb", gb)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
            raise InvalidInput(f"bad {name}", [detail(f"/{name}", f"{name} must be a number >= 0")])
    removed = store.prune(unused_days=days, max_gb=gb, keep=set(warm))
    return {"removed": [{"key": r["key"], "requirements": r["requirements"], "size_bytes": r.get("size_bytes", 0)}
                        for r in removed]}
