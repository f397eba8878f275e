"""Subflows through the service: stored flows used as nodes, 409 for deleting or breaking one in use,
snapshots with every expanded flow, nested results, events with paths, imports and exports."""

import pytest

from pyflow.model.bundle import read_directory, write_directory
from pyflow.model.errors import Conflict, InvalidInput

from .support import finished, first, make_service

INC = {"id": "t.inc", "title": "Inc", "func": "def func(a):\n    return a + 1\n",
       "port": {"input": [{"name": "a", "type": "Int", "required": True}], "output": [{"name": "out", "type": "Int"}]}}


def boundary(node_id, kind, name, **extra):
    ports = [{"name": "name", "value": name}] + [{"name": k, "value": v} for k, v in extra.items()]
    return {"id": node_id, "spec_id": f"pyflow.flow.{kind}", "ports": ports}


def inner(flow_id="inner", step="t.inc"):
    return {"id": flow_id, "name": "Inner", "nodes": [boundary("x", "input", "x", type="Int"),
                                                       {"id": "step", "spec_id": step},
                                                       boundary("y", "output", "y")],
            "links": [{"source": "x:out", "target": "step:a" if step == "t.inc" else "step:x"},
                      {"source": "step:out" if step == "t.inc" else "step:y", "target": "y:value"}]}


OUTER = {"id": "outer", "nodes": [{"id": "s", "spec_id": "flow:inner", "ports": [{"name": "x", "value": 1}]},
                                  {"id": "b", "spec_id": "t.inc"}],
         "links": [{"source": "s:y", "target": "b:a"}]}


@pytest.fixture()
def service(tmp_path):
    svc = make_service(tmp_path)
    svc.upsert("nodespec", INC)
    svc.upsert("flow", inner())
    svc.upsert("flow", OUTER)
    yield svc
    svc.close()


def test_a_stored_flow_runs_with_its_subflow_expanded_and_results_nested(service):
    run = service.run_now("outer")
    assert run["status"] == "succeeded"
    stored = service.get_run(run["id"])
    assert [n["id"] for n in stored["nodes"]] == ["s/x", "s/step", "s/y", "b"]
    assert stored["snapshot"]["subflow"]["inner"] == inner()
    assert "t.inc" in stored["snapshot"]["nodespec"] and "flow:inner" not in stored["snapshot"]["nodespec"]
    top = stored["tree"]
    assert [e["id"] for e in top] == ["s", "b"]
    assert top[0]["spec_id"] == "flow:inner" and top[0]["status"] == "success"
    assert [n["id"] for n in top[0]["nodes"]] == ["s/x", "s/step", "s/y"]
    events = [e["data"] for e in service.history.events(run["id"]) if e["event"] == "node_finished"]
    assert {tuple(e["path"]) for e in events} >= {("s", "step"), ("b",)}


def test_deleting_a_flow_used_as_a_subflow_answers_409_unless_forced(service):
    with pytest.raises(Conflict) as caught:
        service.delete("flow", "inner")
    assert caught.value.status == 409 and caught.value.details[0]["path"] == "/flow/outer"
    service.delete("flow", "inner", force=True)
    with pytest.raises(Exception):
        service.get("flow", "inner")


def test_a_change_that_breaks_a_flow_using_the_subflow_answers_409(service):
    renamed = inner()
    renamed["nodes"][2] = boundary("y", "output", "result")  # outer links from s:y
    with pytest.raises(Conflict) as caught:
        service.put("flow", "inner", renamed)
    assert caught.value.extra["flows"] == ["outer"]
    assert "outer" in caught.value.details[0]["path"]
    harmless = inner()
    harmless["name"] = "Inner, renamed"
    service.put("flow", "inner", harmless)
    service.put("flow", "inner", renamed, force=True)
    assert service.get("flow", "inner").doc == renamed


def test_a_flow_cannot_contain_itself_through_another(service):
    looping = inner(step="flow:outer")
    looping["links"] = [{"source": "x:out", "target": "step:x"}]
    with pytest.raises(InvalidInput) as caught:
        service.put("flow", "inner", looping, force=True)
    messages = [d["message"] for d in caught.value.details]
    assert any("inner -> outer -> inner" in m for m in messages)


def test_subflows_are_listed_as_nodes_for_the_palette(service):
    listed = {s["id"]: s for s in service.subflows()}
    assert listed["flow:inner"]["port"]["input"][0] == {"name": "x", "order": 0, "type": "Int", "required": True}
    assert listed["flow:inner"]["port"]["output"] == [{"name": "y", "type": "Any"}]


def test_bundles_and_directories_carry_subflows_both_ways(service, tmp_path):
    bundle = service.export_bundle()
    assert {"inner", "outer"} <= set(bundle["flow"])
    write_directory(bundle, tmp_path / "repo")
    other = make_service(tmp_path / "other")
    try:
        other.import_bundle(read_directory(tmp_path / "repo"), mode="replace")
        assert other.get("flow", "outer").doc == OUTER and other.run_now("outer")["status"] == "succeeded"
        with pytest.raises(Conflict):
            other.delete("flow", "inner")
    finally:
        other.close()


def test_an_import_whose_flow_uses_a_missing_subflow_is_refused(tmp_path):
    svc = make_service(tmp_path)
    try:
        with pytest.raises(InvalidInput) as caught:
            svc.import_bundle({"format_version": 2, "nodespec": {"t.inc": INC}, "flow": {"outer": OUTER}})
        assert "unknown nodespec 'flow:inner'" in caught.value.details[0]["message"]
    finally:
        svc.close()


def test_a_subflow_is_read_again_only_when_it_changed(service):
    """Writes elsewhere leave a flow's subflow form (and so the plans compiled against it) as it was."""
    before = service.specs()["flow:inner"]
    service.upsert("nodespec", {**INC, "id": "t.other"})
    service.upsert("flow", {**OUTER, "id": "outer2"})
    assert service.specs()["flow:inner"] is before
    service.put("flow", "inner", {**inner(), "name": "Renamed"})
    after = service.specs()["flow:inner"]
    assert after is not before and after.title == "Renamed"
    service.delete("flow", "outer", force=True)
    service.delete("flow", "outer2", force=True)
    service.delete("flow", "inner")
    assert "flow:inner" not in service.specs()


def test_cancelling_a_run_inside_a_mapped_subflow(service, tmp_path):
    """Items wait at a gate inside the subflow; the run is cancelled, then the gate opens: the items
    that had not started are cancelled, and so are the node and the run."""
    gate = tmp_path / "gate"
    wait = {"id": "waits", "nodes": [boundary("p", "input", "path", type="String"), {"id": "g", "spec_id": "t.gate"},
                                     boundary("out", "output", "out")],
            "links": [{"source": "p:out", "target": "g:path"}, {"source": "g:out", "target": "out:value"}]}
    service.upsert("flow", wait)
    doc = {"id": "cancel-me", "links": [], "nodes": [{"id": "m", "spec_id": "flow:waits", "map": ["path"],
                                                      "ports": [{"name": "path", "value": [str(gate)] * 20}]}]}
    run_id = service.start_run(flow=doc)["id"]
    def quiet():
        return None
    live = service.listen(run_id, quiet)
    assert first(lambda: any(e["event"] == "node_started" for e in live.since(0)[0]), bool)  # items at the gate
    service.unlisten(live, quiet)
    service.cancel_run(run_id)
    gate.write_text("open")
    run = finished(service, run_id)
    node = run["nodes"][0]
    assert run["status"] == "cancelled" and node["status"] == "cancelled"
    assert sum(1 for i in node["items"] if i["status"] == "cancelled") >= 10
