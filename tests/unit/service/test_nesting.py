"""A run's results nested under their subflow nodes (service/nesting.py)."""

from pyflow.service.nesting import nest_results


def result(node_id, status="success"):
    return {"id": node_id, "status": status, "path": node_id.split("/")}


SNAPSHOT = {"flow": {"nodes": [{"id": "a", "spec_id": "t.inc"}, {"id": "s", "spec_id": "flow:mid", "name": "Mid"}]},
            "subflow": {"mid": {"nodes": [{"id": "t", "spec_id": "flow:leaf", "name": "Leaf"}]},
                        "leaf": {"nodes": [{"id": "x", "spec_id": "t.inc"}]}}}


def test_inner_results_nest_under_their_subflow_nodes_in_order():
    nodes = [result("a"), result("s/in"), result("s/t/x", "fail"), result("s/t/y", "skipped"), result("s/out", "skipped")]
    tree = nest_results(nodes, SNAPSHOT)
    assert [e["id"] for e in tree] == ["a", "s"]
    mid = tree[1]
    assert (mid["name"], mid["spec_id"], mid["path"], mid["status"]) == ("Mid", "flow:mid", ["s"], "fail")
    assert [e["id"] for e in mid["nodes"]] == ["s/in", "s/t", "s/out"]
    leaf = mid["nodes"][1]
    assert (leaf["name"], leaf["spec_id"], leaf["status"]) == ("Leaf", "flow:leaf", "fail")
    assert [e["id"] for e in leaf["nodes"]] == ["s/t/x", "s/t/y"]


def test_a_subflow_node_is_skipped_only_when_all_inside_were():
    tree = nest_results([result("s/a", "skipped"), result("s/b", "skipped")], SNAPSHOT)
    assert tree[0]["status"] == "skipped"
    tree = nest_results([result("s/a", "skipped"), result("s/b")], SNAPSHOT)
    assert tree[0]["status"] == "success"


def test_without_a_snapshot_the_group_is_named_by_its_id():
    tree = nest_results([result("q/a")], None)
    assert (tree[0]["name"], tree[0]["spec_id"]) == ("q", None)
