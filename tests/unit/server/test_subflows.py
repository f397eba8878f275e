"""Subflows, maps and branches over the REST API, on a real server with the sandbox executor and the
standard library's sample "Map and branch" (a subflow mapped over a list, then an If)."""

import pytest
import requests

from tests.support.server import LiveServer

SAMPLE = "pyflow.samples.map_and_branch"
SUBFLOW = "pyflow.samples.square_plus_one"


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with LiveServer(tmp_path_factory.mktemp("subflows")) as live:
        yield live


def test_the_sample_maps_a_subflow_and_takes_one_branch(api):
    answer = requests.post(f"{api.url}/api/flows/{SAMPLE}/run", json={}).json()
    nodes = {n["id"]: n for n in answer["nodes"]}
    assert answer["status"] == "succeeded"
    assert nodes["each"]["outputs"] == {"y": [1.0, 2.0, 5.0, 10.0, 17.0, 26.0]}
    assert [i["status"] for i in nodes["each"]["items"]] == ["success"] * 6
    assert nodes["down"]["status"] == "skipped" and nodes["down"]["reason"] == "branch not taken"
    assert nodes["merge"]["outputs"] == {"out": 610.0}
    stored = requests.get(f"{api.url}/api/runs/{answer['run_id']}").json()
    assert SUBFLOW in stored["snapshot"]["subflow"]


def test_a_run_nests_inner_results_under_the_subflow_node(api):
    flow = {"id": "uses-sub", "nodes": [{"id": "sq", "spec_id": f"flow:{SUBFLOW}", "ports": [{"name": "x", "value": 4}]}],
            "links": []}
    answer = requests.post(f"{api.url}/api/run", json=flow).json()
    assert answer["status"] == "succeeded"
    assert [n["path"] for n in answer["nodes"]] == [["sq", "x"], ["sq", "square"], ["sq", "plus"], ["sq", "y"]]
    stored = requests.get(f"{api.url}/api/runs/{answer['run_id']}").json()
    assert stored["tree"][0]["id"] == "sq" and stored["tree"][0]["spec_id"] == f"flow:{SUBFLOW}"
    assert stored["tree"][0]["nodes"][-1]["outputs"] == {"out": 17.0}


def test_a_problem_inside_a_subflow_is_a_400_pointing_into_it(api):
    requests.put(f"{api.url}/api/flows/broken-inner", json={
        "id": "broken-inner", "nodes": [{"id": "x", "spec_id": "pyflow.flow.input", "ports": [{"name": "name", "value": "x"}]},
                                        {"id": "add", "spec_id": "pyflow.math.add"}],
        "links": [{"source": "x:out", "target": "add:a"}]})
    flow = {"id": "uses-broken", "links": [], "nodes": [{"id": "b", "spec_id": "flow:broken-inner"}]}
    answer = requests.post(f"{api.url}/api/run", json=flow)
    assert answer.status_code == 400
    assert any(d["path"] == "/nodes/0/ports" and "'x'" in d["message"] for d in answer.json()["details"])
    flow["nodes"][0]["ports"] = [{"name": "x", "value": 1}]
    answer = requests.post(f"{api.url}/api/run", json=flow)
    assert answer.status_code == 400
    assert [d["path"] for d in answer.json()["details"]] == ["/nodes/0/flow/nodes/1/ports"]
    assert "'b'" in answer.json()["details"][0]["message"] and "in subflow node 'b'" in answer.json()["details"][0]["message"]


def test_deleting_a_subflow_in_use_answers_409_with_the_users(api):
    answer = requests.delete(f"{api.url}/api/flows/{SUBFLOW}", headers={"X-Requested-With": "test"})
    assert answer.status_code == 409
    assert answer.json()["flows"] == [SAMPLE] and answer.json()["details"][0]["path"] == f"/flow/{SAMPLE}"


def test_subflows_are_listed_for_the_palette(api):
    listed = {s["id"]: s for s in requests.get(f"{api.url}/api/subflows").json()}
    sub = listed[f"flow:{SUBFLOW}"]
    assert sub["title"] == "Square plus one" and sub["port"]["input"][0]["name"] == "x"
    assert sub["port"]["input"][0]["required"] is False  # it has a default
