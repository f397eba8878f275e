"""The standard library (nodespecs and sample flows) offered to the repository on every start.

An empty repository gets all of it. A repository in use gets only the library's objects it was never
offered and does not have: a newer version's additions appear, while the user's own versions of library
objects, and the ones they deleted, stay as they are. What was offered is kept in the repository's
settings. A repository filled before that record existed (by an older version, or with --no-stdlib)
gets nothing now, as before; from then on it is offered what later versions add if it holds any of the
library, and nothing ever if it holds none of it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..model.bundle import load_bundle_file
from ..model.errors import InvalidInput
from ..storage import ObjectStore

log = logging.getLogger(__name__)

OFFERED = "standard_library.offered"  # a JSON list of kind/id, or DECLINED
DECLINED = "declined"


def offer_library(objects: ObjectStore, root: Path) -> dict:
    """Import from the library at `root` what `objects` was never offered and does not have; nodespecs
    first, then flows, each as one import. A part that no longer fits the repository (a sample flow over
    a nodespec the user changed) is left out, logged and offered again on the next start, and the
    server starts all the same. Returns {"created": [...], "left_out": [...]}, as kind/id."""
    recorded = objects.setting(OFFERED)
    if recorded == DECLINED:  # decided once: no library files read on later starts
        return {"created": [], "left_out": []}
    bundle = load_bundle_file(root)
    everything = {f"{kind}/{key}" for kind in ("nodespec", "flow") for key in bundle.get(kind, {})}
    if recorded is None and not objects.is_empty():
        objects.put_setting(OFFERED, json.dumps(sorted(everything)) if _holds_any(objects, everything) else DECLINED)
        return {"created": [], "left_out": []}
    offered = set(json.loads(recorded or "[]"))
    created, left_out = [], []
    for kind in ("nodespec", "flow"):
        fresh = {key: doc for key, doc in bundle.get(kind, {}).items()
                 if f"{kind}/{key}" not in offered and not objects.has(kind, key)}
        if not fresh:
            continue
        try:
            objects.import_bundle({"nodespec": {}, "flow": {}, kind: fresh}, mode="merge")
        except InvalidInput as exc:
            left_out += [f"{kind}/{key}" for key in fresh]
            log.warning("the standard library's new %ss %s were left out: %s %s", kind, sorted(fresh),
                        exc.message, exc.details[:5])
            continue
        created += [f"{kind}/{key}" for key in fresh]
    objects.put_setting(OFFERED, json.dumps(sorted((offered | everything) - set(left_out))))
    return {"created": created, "left_out": left_out}


def _holds_any(objects: ObjectStore, names) -> bool:
    return any(objects.has(*name.split("/", 1)) for name in names)
