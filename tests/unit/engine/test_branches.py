"""Branches not taken: pyflow.SKIP, and the standard library's If, Switch and Merge."""

import json
from pathlib import Path

import pytest

from pyflow.engine import RunOptions, compile_flow, run_flow
from pyflow.executors.inprocess import InProcessExecutor
from pyflow.model.nodespec import parse_nodespec

from .helpers import SPECS, DictCache, flow, spec

ROOT = Path(__file__).resolve().parents[3] / "repository" / "nodespecs"
CONTROL = {d["id"]: parse_nodespec(d) for d in (json.loads((ROOT / f"pyflow.control.{n}.json").read_text())
                                                 for n in ("if", "switch", "merge"))}
OPT = spec("t.opt", "def func(a=None, b=None):\n    return [a, b]\n", ["a", "b"])
MAYBE = spec("t.maybe", "import pyflow\ndef func(a):\n    return pyflow.SKIP if a < 0 else a\n",
             [{"name": "a", "type": "Int", "required": True}])
ALL = {**SPECS, **CONTROL, OPT.id: OPT, MAYBE.id: MAYBE}


def run(doc, cache=None):
    return run_flow(compile_flow(doc, ALL), InProcessExecutor(), RunOptions(concurrency=2), cache=cache)


def by_id(outcome):
    return {n["id"]: n for n in outcome.nodes}


def if_flow(condition):
    return flow([("if", "pyflow.control.if", {"condition": condition, "value": 5}),
                 ("yes", "t.inc", {}, True), ("no", "t.inc", {}, True), ("after", "t.inc", {}, True)],
                [("if:true", "yes:a"), ("if:false", "no:a"), ("no:out", "after:a")])


@pytest.mark.parametrize("condition, taken, untaken", [(True, "yes", ("no", "after")), ("false", "no", ("yes",))])
def test_if_takes_one_branch_and_skips_the_other_and_the_run_succeeds(condition, taken, untaken):
    outcome = run(if_flow(condition))
    nodes = by_id(outcome)
    assert outcome.status == "succeeded" and nodes[taken]["outputs"] == {"out": 6}
    for name in untaken:
        assert nodes[name]["status"] == "skipped" and nodes[name]["reason"] == "branch not taken"
        assert nodes[name]["error"] is None


def test_switch_takes_the_output_of_the_matching_case_else_default():
    doc = flow([("sw", "pyflow.control.switch", {"value": "b", "case_0": "a", "case_1": "b"}),
                ("one", "t.opt", {}, True), ("two", "t.opt", {}, True), ("other", "t.opt", {}, True)],
               [("sw:out_0", "one:a"), ("sw:out_1", "two:a"), ("sw:default", "other:a")])
    nodes = by_id(run(doc))
    assert nodes["two"]["outputs"] == {"out": ["b", None]}
    assert nodes["one"]["reason"] == nodes["other"]["reason"] == "branch not taken"


def test_merge_takes_the_input_that_arrived():
    doc = flow([("if", "pyflow.control.if", {"condition": False, "value": 2}),
                ("up", "t.inc", {}), ("down", "t.inc", {}), ("m", "pyflow.control.merge", {}, True)],
               [("if:true", "up:a"), ("if:false", "down:a"), ("up:out", "m:a"), ("down:out", "m:b")])
    outcome = run(doc)
    assert outcome.status == "succeeded" and by_id(outcome)["m"]["outputs"] == {"out": 3}


def test_a_node_with_optional_inputs_runs_when_one_arrived():
    doc = flow([("if", "pyflow.control.if", {"condition": True, "value": 1}), ("both", "t.opt", {}, True)],
               [("if:true", "both:a"), ("if:false", "both:b")])
    assert by_id(run(doc))["both"]["outputs"] == {"out": [1, None]}


def test_returning_skip_ends_the_branch_and_is_cached_as_such():
    cache = DictCache()
    doc = flow([("m", "t.maybe", {"a": -1}), ("after", "t.inc", {})], [("m:out", "after:a")])
    for cached in (False, True):
        nodes = by_id(run(doc, cache))
        assert nodes["m"]["status"] == nodes["after"]["status"] == "skipped"
        assert nodes["m"]["reason"] == "branch not taken" and nodes["m"]["cached"] is cached


def test_a_failure_still_fails_the_run_beside_a_branch_not_taken():
    doc = flow([("m", "t.maybe", {"a": -1}), ("bad", "t.fail", {"a": 1})])
    assert run(doc).status == "failed"


def test_a_mapped_node_returning_skip_leaves_those_items_out():
    doc = flow([("m", "t.maybe", {"a": [3, -1, 4, -5]}), ("n", "t.inc", {})], [("m:out", "n:a")])
    doc["nodes"][0]["map"] = ["a"]
    doc["nodes"][1]["map"] = ["a"]
    outcome = run(doc)
    nodes = by_id(outcome)
    assert outcome.status == "succeeded" and nodes["m"]["outputs"] == {"out": [3, 4]}
    assert [i["status"] for i in nodes["m"]["items"]] == ["success", "skipped", "success", "skipped"]
    assert nodes["n"]["outputs"] == {"out": [4, 5]}
