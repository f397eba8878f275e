"""Expanding subflows (engine/expand.py): flow:<id> nodes replaced by their flows' nodes, with namespaced
ids, paths, caching, and problems that point into the subflow."""

import pytest

from pyflow.engine import RunOptions, compile_flow, run_flow
from pyflow.executors.inprocess import InProcessExecutor
from pyflow.model.errors import InvalidInput
from pyflow.model.subflow import with_flows

from .helpers import SPECS, DictCache, boundary, flow, wrapper


def by_id(outcome):
    return {n["id"]: n for n in outcome.nodes}


def run(doc, flows, cache=None, concurrency=2):
    specs = with_flows(SPECS, flows)
    return run_flow(compile_flow(doc, specs), InProcessExecutor(), RunOptions(concurrency=concurrency), cache=cache)


def test_a_subflow_is_expanded_with_namespaced_ids_and_paths():
    inner = wrapper("inner", "t.inc")
    doc = flow([("a", "t.inc", {"a": 1}), ("s", "flow:inner", {}), ("b", "t.inc", {})],
               [("a:out", "s:x"), ("s:y", "b:a")], "outer")
    outcome = run(doc, [inner])
    nodes = by_id(outcome)
    assert outcome.status == "succeeded"
    assert list(nodes) == ["a", "s/x", "s/step", "s/y", "b"]
    assert nodes["s/step"]["path"] == ("s", "step") and nodes["b"]["path"] == ("b",)
    assert nodes["s/step"]["outputs"] == {"out": 3} and nodes["b"]["outputs"] == {"out": 4}


def test_subflow_input_converts_to_its_boundary_type_and_a_literal_feeds_it():
    outcome = run(flow([("s", "flow:inner", {"x": "41"})], [], "outer"), [wrapper("inner", "t.inc")])
    assert by_id(outcome)["s/x"]["outputs"] == {"out": 41} and by_id(outcome)["s/y"]["outputs"] == {"out": 42}


def three_deep():
    level3 = wrapper("level3", "t.add", {"b": 100})
    level2 = wrapper("level2", "flow:level3")
    level2["nodes"][1]["ports"] = []
    level2["links"] = [{"source": "x:out", "target": "step:x"}, {"source": "step:y", "target": "y:value"}]
    level1 = {"id": "level1", "nodes": [boundary("x", "input", "x"), {"id": "mid", "spec_id": "flow:level2"},
                                        {"id": "side", "spec_id": "t.inc", "ports": [{"name": "a", "value": 5}]},
                                        boundary("y", "output", "y")],
              "links": [{"source": "x:out", "target": "mid:x"}, {"source": "mid:y", "target": "y:value"}]}
    return [level1, level2, level3]


def test_subflows_nested_three_deep_rerun_only_what_an_inner_change_affects():
    flows = three_deep()
    doc = flow([("start", "t.inc", {"a": 1}), ("top", "flow:level1", {}), ("end", "t.inc", {}),
                ("other", "t.inc", {"a": 7})], [("start:out", "top:x"), ("top:y", "end:a")], "outer")
    doc["nodes"][2]["is_end"] = True
    doc["nodes"][3]["is_end"] = True
    cache = DictCache()
    first = by_id(run(doc, flows, cache))
    assert first["top/mid/step/step"]["outputs"] == {"out": 102} and first["end"]["outputs"] == {"out": 103}
    assert first["top/mid/step/step"]["path"] == ("top", "mid", "step", "step")
    assert not any(n["cached"] for n in first.values())
    flows[2]["nodes"][1]["ports"] = [{"name": "b", "value": 200}]  # the innermost literal changes
    second = by_id(run(doc, flows, cache))
    assert second["end"]["outputs"] == {"out": 203}
    ran = {n for n, r in second.items() if not r["cached"] and not r["spec_id"].startswith("pyflow.flow.")}
    assert ran == {"top/mid/step/step", "end"}  # boundary nodes run no code: they forward values
    assert "top/side" not in second  # a side branch of a subflow that is not a target does not run
    assert second["start"]["cached"] and second["other"]["cached"]


def test_a_problem_inside_a_subflow_points_into_it():
    broken = wrapper("inner", "t.add")
    broken["links"].append({"source": "x:out", "target": "step:nope"})
    specs = with_flows(SPECS, [broken])
    with pytest.raises(InvalidInput) as caught:
        compile_flow(flow([("s", "flow:inner", {"x": 1})], [], "outer"), specs)
    paths = [d["path"] for d in caught.value.details]
    assert "/nodes/0/flow/links/2/target" in paths
    assert "in subflow 'inner'" in caught.value.details[0]["message"]


def test_a_required_subflow_input_needs_a_link_or_a_value():
    specs = with_flows(SPECS, [wrapper("inner", "t.inc")])
    with pytest.raises(InvalidInput) as caught:
        compile_flow(flow([("s", "flow:inner", {})], [], "outer"), specs)
    assert caught.value.details[0]["path"] == "/nodes/0/ports"
    assert "'x'" in caught.value.details[0]["message"]


def test_a_failure_inside_a_subflow_skips_what_follows_outside_it():
    outcome = run(flow([("s", "flow:inner", {"x": 1}), ("b", "t.inc", {})], [("s:y", "b:a")], "outer"),
                  [wrapper("inner", "t.fail")])
    nodes = by_id(outcome)
    assert outcome.status == "failed" and nodes["s/step"]["status"] == "fail"
    assert nodes["b"]["status"] == "skipped"


def test_subflows_that_multiply_beyond_the_limit_are_refused_without_building_them_all():
    """Each level uses the one below ten times: six levels would plan a million nodes."""
    flows = [{"id": "f0", "nodes": [boundary("x", "input", "x", default=1),
                                     {"id": "step", "spec_id": "t.inc"}, boundary("y", "output", "y")],
              "links": [{"source": "x:out", "target": "step:a"}, {"source": "step:out", "target": "y:value"}]}]
    for level in range(1, 6):
        flows.append({"id": f"f{level}", "links": [],
                      "nodes": [{"id": f"u{i}", "spec_id": f"flow:f{level - 1}"} for i in range(10)]})
    specs = with_flows(SPECS, flows)
    with pytest.raises(InvalidInput) as caught:
        compile_flow(flow([("top", "flow:f5", {})], [], "outer"), specs)
    assert "more than 100000 nodes" in caught.value.details[0]["message"]
    assert len(compile_flow(flow([("top", "flow:f3", {})], [], "outer"), specs).nodes) == 3000
