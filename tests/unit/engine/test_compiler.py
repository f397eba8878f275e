import pytest

from pyflow.engine import compile_flow
from pyflow.model.errors import InvalidInput

from .helpers import SPECS, flow, spec


def test_targets_are_end_nodes_and_only_their_ancestors_run():
    doc = flow([("a", "t.inc", {"a": 1}), ("b", "t.inc", {}, True), ("c", "t.inc", {"a": 5}),
                ("d", "t.inc", {})], [("a:out", "b:a"), ("c:out", "d:a")])
    compiled = compile_flow(doc, SPECS)
    assert compiled.targets == ["b"]
    assert set(compiled.nodes) == {"a", "b"}


def test_without_end_nodes_every_sink_is_a_target():
    doc = flow([("a", "t.inc", {"a": 1}), ("b", "t.inc", {}), ("c", "t.inc", {"a": 5})], [("a:out", "b:a")])
    assert sorted(compile_flow(doc, SPECS).targets) == ["b", "c"]


def test_required_inputs_and_structure_are_reported_together():
    doc = flow([("a", "t.inc", {}), ("b", "t.missing", {}), ("c", "t.inc", {"a": 2}), ("d", "t.inc", {})],
               [("c:out", "d:a"), ("d:out", "c:a")])
    with pytest.raises(InvalidInput) as info:
        compile_flow(doc, SPECS)
    text = " | ".join(d["path"] + " " + d["message"] for d in info.value.details)
    assert "required input 'a' of node 'a' has neither a link nor a value" in text
    assert "unknown nodespec 't.missing'" in text
    assert "cycle" in text


def test_run_values_override_literals_and_are_checked():
    doc = flow([("a", "t.inc", {"a": 1}), ("b", "t.inc", {})], [("a:out", "b:a")])
    assert compile_flow(doc, SPECS, {"a": {"a": 7}}).nodes["a"].literals == {"a": 7}
    with pytest.raises(InvalidInput) as info:
        compile_flow(doc, SPECS, {"zz": {"a": 1}, "a": {"nope": 1}, "b": {"a": 3}})
    assert {d["path"] for d in info.value.details} == {"/values/zz", "/values/a/nope", "/values/b/a"}


def chain(values):
    return flow([("n0", "t.inc", {"a": values[0]})] + [(f"n{i}", "t.add", {"b": v}) for i, v in enumerate(values[1:], 1)],
                [(f"n{i - 1}:out", f"n{i}:a") for i in range(1, len(values))])


def test_cache_keys_change_only_downstream_of_a_change():
    before = compile_flow(chain([1, 2, 3, 4, 5]), SPECS)
    after = compile_flow(chain([1, 2, 30, 4, 5]), SPECS)
    same = [n for n in before.nodes if before.nodes[n].cache_key == after.nodes[n].cache_key]
    assert same == ["n0", "n1"]


def test_uncached_nodespec_unkeys_itself_and_downstream():
    specs = {**SPECS, "t.rand": spec("t.rand", "def func():\n    return 4\n", cache=False)}
    doc = flow([("r", "t.rand", {}), ("x", "t.inc", {}), ("y", "t.inc", {"a": 1})], [("r:out", "x:a")])
    nodes = compile_flow(doc, specs).nodes
    assert nodes["r"].cache_key is None and nodes["x"].cache_key is None
    assert nodes["y"].cache_key is not None


def test_changed_function_source_changes_the_key():
    doc = flow([("a", "t.inc", {"a": 1})])
    other = {**SPECS, "t.inc": spec("t.inc", "def func(a):\n    return a + 2\n", [{"name": "a", "type": "Int"}])}
    assert compile_flow(doc, SPECS).nodes["a"].cache_key != compile_flow(doc, other).nodes["a"].cache_key


def test_an_incomplete_node_that_feeds_no_end_node_does_not_block_the_run():
    doc = flow([("a", "t.inc", {"a": 1}), ("b", "t.inc", {}), ("c", "t.inc", {}), ("d", "t.inc", {})],
               [("a:out", "b:a"), ("c:out", "d:a")])
    compiled = compile_flow(doc, SPECS)
    assert compiled.targets == ["b"] and set(compiled.nodes) == {"a", "b"}
    assert compiled.not_run == {"c": "missing input 'a'", "d": "upstream node 'c' is missing input 'a'"}
    marked = flow([("a", "t.inc", {"a": 1}), ("b", "t.inc", {}, True), ("c", "t.inc", {})], [("a:out", "b:a")])
    assert set(compile_flow(marked, SPECS).nodes) == {"a", "b"}


def test_when_every_end_needs_an_incomplete_node_the_run_is_refused_in_plain_words():
    doc = flow([("a", "t.inc", {}), ("b", "t.inc", {}, True)], [("a:out", "b:a")])
    with pytest.raises(InvalidInput) as info:
        compile_flow(doc, SPECS)
    assert [d["message"] for d in info.value.details] == ["required input 'a' of node 'a' has neither a link nor a value"]
    with pytest.raises(InvalidInput):
        compile_flow(flow([("c", "t.inc", {})], []), SPECS)


def test_cache_keys_are_those_stored_results_were_filed_under():
    """Results cached by earlier versions must still be found: the key of a fixed flow is pinned (asked
    twice, so that a fingerprint kept on the nodespec gives the same key as one worked out)."""
    from pyflow.model.nodespec import parse_nodespec
    inc = parse_nodespec({"id": "t.inc", "title": "t.inc", "func": "def func(a):\n    return a + 1\n",
                          "port": {"input": [{"name": "a", "type": "Int", "required": True}],
                                   "output": [{"name": "out", "type": "Int"}]}})
    doc = {"id": "f", "name": "f", "nodes": [{"id": "a", "spec_id": "t.inc", "ports": [{"name": "a", "value": "2"}]},
                                             {"id": "b", "spec_id": "t.inc", "ports": []}],
           "links": [{"source": "a:out", "target": "b:a"}]}
    for _ in range(2):
        nodes = compile_flow(doc, {"t.inc": inc}).nodes
        assert nodes["a"].cache_key == "743f207e5cb30fcd2973784f3819e7bbb4dd9aabd99096f32657f409500b54f6"
        assert nodes["b"].cache_key == "bc3c81e725cbe73ed7173f24ca522d9a1cc5c542d85a85eec7b456c34705e85b"
