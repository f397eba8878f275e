"""Compiled plans of recently run flows, kept so that running an unchanged flow again skips compiling it.

Compiling checks every node, port and link and hashes every node's cache key; reading and encoding the
flow for the run's snapshot costs as much again. For a flow of a few hundred nodes that is most of what
an unchanged, fully cached re-run costs, so a plan is kept with its snapshot and reused for the same
flow, run values and cache setting while every nodespec the flow names is still the very object it was
compiled against. The repository parses nodespecs afresh whenever anything in it changes, so an edited,
added or removed nodespec never meets an old plan.

A flow is known by its content (an inline document is hashed) or, when stored, by its id and revision:
revisions are never reused, so an unchanged stored flow is found without even reading it.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Mapping

from ..jsontext import compact_json
from ..model.nodespec import NodeSpec
from .compiler import CompiledFlow, compile_flow


@dataclass(frozen=True)
class Plan:
    """A compiled flow with what it was compiled from. Shared between runs: nothing may change it."""

    compiled: CompiledFlow
    doc: Any
    specs_named: dict[str, NodeSpec | None] = field(repr=False)  # each spec id the flow names, as compiled

    @cached_property
    def snapshot_json(self) -> str:
        """The flow and the nodespecs of its nodes (planned or not) as they ran, encoded once for every
        run of this plan."""
        used = {sid: spec.doc for sid, spec in sorted(self.specs_named.items())
                if spec is not None and spec.flow is None}
        snapshot = {"flow": self.doc, "nodespec": used}
        if self.compiled.subflows:  # every flow the run expanded, as it ran
            snapshot["subflow"] = dict(sorted(self.compiled.subflows.items()))
        return compact_json(snapshot)

    def fits(self, specs: Mapping[str, NodeSpec]) -> bool:
        return all(specs.get(sid) is spec for sid, spec in self.specs_named.items())


class PlanCache:
    """A small least-recently-used map from (flow, values, cache setting) to plans."""

    def __init__(self, size: int = 32):
        self.size = size
        self._plans: OrderedDict[tuple, Plan] = OrderedDict()
        self._lock = threading.Lock()

    def for_document(self, doc: Any, specs: Mapping[str, NodeSpec], values: dict | None = None,
                     cache_keys: bool = True) -> Plan:
        """The plan of an inline flow document; raises InvalidInput as compile_flow does."""
        digest = _digest(doc)
        return self._plan(None if digest is None else ("document", digest), lambda: (doc, True),
                          specs, values, cache_keys)

    def for_stored(self, flow_id: str, revision: int, load: Callable[[], tuple[Any, int]],
                   specs: Mapping[str, NodeSpec], values: dict | None = None, cache_keys: bool = True) -> Plan:
        """The plan of stored flow `flow_id` at `revision`; `load` reads (document, revision) when
        there is none. A flow saved again in between is compiled as read, but not kept under the old
        revision."""
        def load_at_revision() -> tuple[Any, bool]:
            doc, read = load()
            return doc, read == revision
        return self._plan(("stored", flow_id, revision), load_at_revision, specs, values, cache_keys)

    def _plan(self, source: tuple | None, load: Callable[[], tuple[Any, bool]],
              specs: Mapping[str, NodeSpec], values: dict | None, cache_keys: bool) -> Plan:
        """The kept plan for `source`, or one compiled from `load()`: (document, whether it is still
        what `source` names, so may be kept)."""
        options = _digest([values or {}, bool(cache_keys)])
        key = None if source is None or options is None or self.size <= 0 else (*source, options)
        plan = self._get(key)
        if plan is not None and plan.fits(specs):
            return plan
        doc, keepable = load()
        compiled = compile_flow(doc, specs, values, cache_keys)  # raises on a bad flow: nothing is kept
        named = [node["spec_id"] for flow in (doc, *compiled.subflows.values()) for node in flow["nodes"]]
        plan = Plan(compiled, doc, {spec_id: specs.get(spec_id) for spec_id in named})
        if key is not None and keepable:
            self._put(key, plan)
        return plan

    def _get(self, key: tuple | None) -> Plan | None:
        if key is None:
            return None
        with self._lock:
            plan = self._plans.get(key)
            if plan is not None:
                self._plans.move_to_end(key)
            return plan

    def _put(self, key: tuple, plan: Plan) -> None:
        with self._lock:
            self._plans[key] = plan
            self._plans.move_to_end(key)
            while len(self._plans) > self.size:
                self._plans.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._plans)


def _digest(value: Any) -> bytes | None:
    """A digest of a JSON value, or None when it cannot be encoded (compiling will say what is wrong)."""
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        return None
    return hashlib.blake2b(text.encode("utf-8"), digest_size=20).digest()
