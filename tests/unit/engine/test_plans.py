"""Plans: reused for the same flow, values and nodespecs; compiled afresh when any of them changes."""

import json

import pytest

from pyflow.engine import PlanCache
from pyflow.model.errors import InvalidInput

from .helpers import SPECS, flow, spec

DOC = flow([("a", "t.inc", {"a": 1}), ("b", "t.inc", {}, True), ("c", "t.add", {"a": 1, "b": 2})],
           [("a:out", "b:a")])


class Loads:
    """A stored flow's loader that counts its reads and can report a newer revision."""

    def __init__(self, doc, revision):
        self.doc, self.revision, self.calls = doc, revision, 0

    def __call__(self):
        self.calls += 1
        return self.doc, self.revision


def test_the_same_document_reuses_its_plan_even_as_a_fresh_copy():
    plans = PlanCache()
    first = plans.for_document(DOC, SPECS)
    again = plans.for_document(json.loads(json.dumps(DOC)), dict(SPECS))
    assert again is first
    assert set(first.compiled.nodes) == {"a", "b"}
    assert len(plans) == 1


def test_values_and_the_cache_setting_each_get_their_own_plan():
    plans = PlanCache()
    base = plans.for_document(DOC, SPECS)
    other = plans.for_document(DOC, SPECS, values={"a": {"a": 5}})
    uncached = plans.for_document(DOC, SPECS, cache_keys=False)
    assert len({id(base), id(other), id(uncached)}) == 3
    assert other.compiled.nodes["a"].literals["a"] == 5
    assert base.compiled.nodes["a"].cache_key != other.compiled.nodes["a"].cache_key
    assert uncached.compiled.nodes["a"].cache_key is None


def test_a_changed_nodespec_object_means_compiling_again():
    plans = PlanCache()
    first = plans.for_document(DOC, SPECS)
    edited = {**SPECS, "t.inc": spec("t.inc", "def func(a):\n    return a + 2\n",
                                     [{"name": "a", "type": "Int", "required": True}],
                                     [{"name": "out", "type": "Int"}])}
    second = plans.for_document(DOC, edited)
    assert second is not first
    assert second.compiled.nodes["a"].spec is edited["t.inc"]
    assert second.compiled.nodes["a"].cache_key != first.compiled.nodes["a"].cache_key


def test_an_unplanned_nodes_spec_counts_too():
    """Node c is not planned (b is the only target), yet removing its nodespec makes the flow invalid."""
    plans = PlanCache()
    plans.for_document(DOC, SPECS)
    without_add = {k: v for k, v in SPECS.items() if k != "t.add"}
    with pytest.raises(InvalidInput):
        plans.for_document(DOC, without_add)


def test_an_invalid_flow_raises_and_is_not_kept():
    plans = PlanCache()
    bad = flow([("a", "t.inc", {})])
    for _ in range(2):
        with pytest.raises(InvalidInput):
            plans.for_document(bad, SPECS)
    assert len(plans) == 0


def test_a_stored_flow_at_a_known_revision_is_not_read_again():
    plans = PlanCache()
    load = Loads(DOC, 7)
    first = plans.for_stored("f", 7, load, SPECS)
    assert plans.for_stored("f", 7, load, SPECS) is first
    assert load.calls == 1
    newer = Loads(flow([("a", "t.inc", {"a": 3})]), 9)
    assert plans.for_stored("f", 9, newer, SPECS).compiled.nodes["a"].literals["a"] == 3
    assert newer.calls == 1


def test_a_flow_saved_between_asking_and_reading_is_not_kept_under_the_old_revision():
    plans = PlanCache()
    racing = Loads(flow([("a", "t.inc", {"a": 3})]), 8)  # asked for revision 7, read revision 8
    plan = plans.for_stored("f", 7, racing, SPECS)
    assert plan.compiled.nodes["a"].literals["a"] == 3
    plans.for_stored("f", 7, racing, SPECS)
    assert racing.calls == 2
    assert len(plans) == 0


def test_the_snapshot_holds_the_flow_and_every_nodespec_it_names():
    plan = PlanCache().for_document(DOC, SPECS)
    snapshot = json.loads(plan.snapshot_json)
    assert snapshot["flow"] == DOC
    assert snapshot["nodespec"] == {"t.add": SPECS["t.add"].doc, "t.inc": SPECS["t.inc"].doc}


def test_the_least_recently_used_plan_goes_first():
    plans = PlanCache(size=2)
    docs = [flow([("a", "t.inc", {"a": i})]) for i in range(3)]
    first = plans.for_document(docs[0], SPECS)
    plans.for_document(docs[1], SPECS)
    assert plans.for_document(docs[0], SPECS) is first  # used again: now the most recent
    plans.for_document(docs[2], SPECS)  # evicts docs[1]
    assert len(plans) == 2
    assert plans.for_document(docs[0], SPECS) is first


def test_documents_that_are_not_json_are_compiled_without_caching():
    plans = PlanCache()
    odd = flow([("a", "t.inc", {"a": float("nan")})])  # NaN has no JSON form, so no key
    first = plans.for_document(odd, SPECS)
    assert plans.for_document(odd, SPECS) is not first
    assert len(plans) == 0
