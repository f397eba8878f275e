"""Mapped nodes: once per item, outputs as per-item lists in order, per-item records, caching and errors."""

import threading

import pytest

from pyflow.engine import RunOptions, compile_flow, run_flow
from pyflow.executors.inprocess import InProcessExecutor
from pyflow.model.errors import InvalidInput
from pyflow.model.subflow import with_flows

from .helpers import SPECS, DictCache, flow, spec, wrapper

FLAKY = spec("t.flaky", "def func(a):\n    if a == 3:\n        raise ValueError('three')\n    return a * 10\n",
             [{"name": "a", "type": "Int"}], [{"name": "out", "type": "Int"}])
ALL = {**with_flows(SPECS, [wrapper("inner", "t.inc")]), FLAKY.id: FLAKY}


def mapped(node_id, spec_id, values, ports=("a",), **extra):
    doc = flow([(node_id, spec_id, values)])
    doc["nodes"][0].update(map=list(ports), **extra)
    return doc


def run(doc, cache=None, concurrency=4, cancel=None, executor=None, events=None):
    return run_flow(compile_flow(doc, ALL), executor or InProcessExecutor(), RunOptions(concurrency=concurrency),
                    cache=cache, cancel=cancel, on_event=(lambda k, d: events.append((k, d))) if events is not None else None)


def test_a_mapped_node_runs_per_item_and_its_output_is_the_list_of_results_in_order():
    events = []
    outcome = run(mapped("m", "t.inc", {"a": [5, 1, 9]}), events=events)
    node = outcome.nodes[0]
    assert outcome.status == "succeeded" and node["outputs"] == {"out": [6, 2, 10]}
    assert [i["index"] for i in node["items"]] == [0, 1, 2] and all(i["status"] == "success" for i in node["items"])
    progress = [d for k, d in events if k == "node_progress"]
    assert progress[-1] == {"node": "m", "path": ["m"], "done": 3, "total": 3, "failed": 0}


def test_several_mapped_inputs_are_zipped_and_must_be_as_long_as_each_other():
    node = run(mapped("m", "t.add", {"a": [1, 2], "b": [10, 20]}, ports=("a", "b"))).nodes[0]
    assert node["outputs"] == {"out": [11, 22]}
    node = run(mapped("m", "t.add", {"a": [1, 2], "b": [10]}, ports=("a", "b"))).nodes[0]
    assert node["status"] == "fail" and "different lengths" in node["error"]["message"]


def test_one_failing_item_fails_the_node_but_every_item_is_recorded():
    outcome = run(mapped("m", "t.flaky", {"a": [1, 2, 3, 4]}))
    node = outcome.nodes[0]
    assert outcome.status == "failed" and node["status"] == "fail"
    assert "1 of 4 items failed; item 2: three" in node["error"]["message"]
    assert [i["status"] for i in node["items"]] == ["success", "success", "fail", "success"]
    assert node["items"][2]["error"]["message"] == "three"


def test_skip_mode_leaves_failed_items_out_and_the_run_succeeds():
    outcome = run(mapped("m", "t.flaky", {"a": [1, 2, 3, 4]}, map_errors="skip"))
    node = outcome.nodes[0]
    assert outcome.status == "succeeded" and node["outputs"] == {"out": [10, 20, 40]}
    assert node["items"][2]["status"] == "fail"


def test_items_are_cached_one_by_one():
    cache = DictCache()
    run(mapped("m", "t.inc", {"a": [1, 2]}), cache=cache)
    node = run(mapped("m", "t.inc", {"a": [1, 2, 3]}), cache=cache).nodes[0]
    assert [i["cached"] for i in node["items"]] == [True, True, False] and node["outputs"] == {"out": [2, 3, 4]}


def test_max_items_limits_a_map():
    node = run(mapped("m", "t.inc", {"a": list(range(6))}, max_items=5)).nodes[0]
    assert node["status"] == "fail" and "6 items" in node["error"]["message"] and "max_items" in node["error"]["message"]


def test_mapping_over_a_port_the_node_lacks_is_refused():
    with pytest.raises(InvalidInput) as caught:
        compile_flow(mapped("m", "t.inc", {"a": [1]}, ports=("nope",)), ALL)
    assert caught.value.details[0]["path"] == "/nodes/0/map/0"


def test_a_subflow_mapped_over_100_items_runs_the_whole_flow_per_item():
    outcome = run(mapped("s", "flow:inner", {"x": list(range(100))}, ports=("x",)))
    node = outcome.nodes[0]
    assert outcome.status == "succeeded" and node["outputs"] == {"y": [i + 1 for i in range(100)]}
    assert len(node["items"]) == 100


def test_a_mapped_subflow_with_a_failing_item_in_both_error_modes():
    specs = {**with_flows(ALL, [wrapper("flaky", "t.flaky")])}
    doc = mapped("s", "flow:flaky", {"x": [1, 3, 5]}, ports=("x",))
    node = run_flow(compile_flow(doc, specs), InProcessExecutor(), RunOptions(concurrency=2)).nodes[0]
    assert node["status"] == "fail" and "three" in node["error"]["message"] and "step" in node["error"]["message"]
    doc["nodes"][0]["map_errors"] = "skip"
    node = run_flow(compile_flow(doc, specs), InProcessExecutor(), RunOptions(concurrency=2)).nodes[0]
    assert node["status"] == "success" and node["outputs"] == {"y": [10, 50]}


class GateExecutor(InProcessExecutor):
    """Runs nodes in process, but holds every run until the test lets them go (or cancels)."""

    inline = False

    def __init__(self):
        super().__init__()
        self.started = threading.Semaphore(0)

    def run(self, task, cancel=None):
        self.started.release()
        cancel.wait(30)
        return super().run(task, cancel)


def test_cancelling_inside_a_mapped_subflow_ends_the_node_cancelled():
    executor = GateExecutor()
    cancel = threading.Event()
    answer = {}
    doc = mapped("s", "flow:inner", {"x": list(range(50))}, ports=("x",))
    worker = threading.Thread(target=lambda: answer.update(o=run(doc, concurrency=2, cancel=cancel, executor=executor)))
    worker.start()
    assert executor.started.acquire(timeout=30)
    cancel.set()
    worker.join(60)
    outcome = answer["o"]
    node = outcome.nodes[0]
    assert outcome.status == "cancelled" and node["status"] == "cancelled"
    assert sum(1 for i in node["items"] if i["status"] == "cancelled") >= 48


def test_a_mapped_subflow_is_cached_item_by_item_through_its_inner_nodes():
    cache = DictCache()
    run(mapped("s", "flow:inner", {"x": [1, 2]}, ports=("x",)), cache=cache)
    node = run(mapped("s", "flow:inner", {"x": [1, 2, 3]}, ports=("x",)), cache=cache).nodes[0]
    assert [i["cached"] for i in node["items"]] == [True, True, False] and node["outputs"] == {"y": [2, 3, 4]}
