"""The original PyFlow server's routes, against a real server, with the original repository file."""

import json
from urllib.parse import urlencode

import pytest
import requests

from tests.support.server import LiveServer


@pytest.fixture(scope="module")
def legacy(tmp_path_factory, compat_bundle):
    with LiveServer(tmp_path_factory.mktemp("legacy"), args=("--no-stdlib",)) as live:
        answer = requests.post(live.url + "/api/repository/import", json=compat_bundle)
        assert answer.status_code == 200, answer.text
        yield live


def run(legacy, flow):
    answer = requests.post(legacy.url + "/runflow", json=flow)
    assert answer.status_code == 200, answer.text
    return {n["id"]: n for n in answer.json()}


def test_nodes_map_adds_the_default_output(legacy, compat_bundle):
    nodes = requests.get(legacy.url + "/nodes").json()
    assert set(nodes) == set(compat_bundle["nodespec"])
    spec = {"id": "legacy.noout", "title": "No output", "func": "def func(a):\n\treturn a\n",
            "port": {"input": [{"name": "a", "order": 0}]}}
    assert requests.post(legacy.url + "/nodes", json=spec).json() == spec
    assert requests.get(legacy.url + "/nodes").json()["legacy.noout"]["port"]["output"] == [{"name": "out"}]
    assert requests.get(legacy.url + "/nodes/legacy.noout").json() == spec
    assert requests.put(legacy.url + "/nodes/legacy.noout", json={**spec, "title": "T"}).json()["title"] == "T"
    assert requests.delete(legacy.url + "/nodes/legacy.noout", headers={"X-Requested-With": "script"}).json() == {"success": True}
    assert requests.get(legacy.url + "/nodes/legacy.noout").status_code == 404


def test_tree_and_port_types(legacy):
    tree = requests.get(legacy.url + "/nodestree").json()
    assert [n["id"] for n in tree] == ["pyflow"]
    assert {c["id"] for c in tree[0]["children"]} == {"logic", "math", "transform"}
    types = requests.get(legacy.url + "/ports/types").json()["types"]
    assert {"String", "Int", "Float", "Boolean", "List", "Json"} <= set(types)


def test_flows_list_get_and_post(legacy, compat_bundle):
    flows = requests.get(legacy.url + "/flows").json()
    assert isinstance(flows, list) and len(flows) == 4
    flow = compat_bundle["flow"]["pyflow.sample.math"]
    assert requests.get(legacy.url + "/flows/pyflow.sample.math").json() == flow
    assert requests.post(legacy.url + "/flows", json={**flow, "id": "legacy.json"}).json()["id"] == "legacy.json"


def test_the_old_form_posts_are_refused_as_any_page_could_send_them(legacy, compat_bundle):
    flow = compat_bundle["flow"]["pyflow.sample.math"]
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    posted = requests.post(legacy.url + "/flows", data=urlencode({"data": json.dumps({**flow, "id": "legacy.copy"})}),
                           headers=form)
    assert posted.status_code == 415 and "application/json" in posted.json()["error"]
    assert requests.get(legacy.url + "/flows/legacy.copy").status_code == 404
    ran = requests.post(legacy.url + "/runflow", data=urlencode({"data": json.dumps(flow)}), headers=form)
    assert ran.status_code == 415


def test_runflow_gives_the_listed_results(legacy, compat_bundle):
    flows = compat_bundle["flow"]
    math = run(legacy, flows["pyflow.sample.math"])["node1527101204754"]
    assert math["status"] == "success"  # STATUS_SUCCESS of the original's last version (src/fbp/node.py)
    assert math["outputs"] == [{"name": "out", "value": 9, "type": "Int"}]
    assert run(legacy, flows["pyflow.sample.xor"])["node1527108752672"]["outputs"][0]["value"] is False
    assert run(legacy, flows["pyflow.sample.xor1"])["node1527448391328"]["outputs"][0]["value"] is True
    error = run(legacy, flows["pyflow.sample.error"])
    assert error["node1527137688270"]["status"] == "fail"
    assert error["node1527137688270"]["error"] == "Always Failed!"
    assert error["node1527137684469"]["status"] == "skipped"
    assert error["node1527137681280"]["outputs"][0]["value"] == "abcd"
    assert {"name": "a", "value": "ab", "type": "String"} in error["node1527137681280"]["inputs"]


def test_dump_and_load_stay_inside_the_repository_directory(legacy):
    assert requests.post(legacy.url + "/dumprepo", json={"path": "backup.json"}).json() == {"path": "backup.json"}
    dumped = json.loads((legacy.workdir / "repos" / "backup.json").read_text())
    assert "pyflow.sample.math" in dumped["flow"]
    for escape in ("../outside.json", "/tmp/outside.json", "sub/../../x.json"):
        answer = requests.post(legacy.url + "/dumprepo", json={"path": escape})
        assert answer.status_code == 400 and answer.json()["details"][0]["path"] == "/path"
    assert not (legacy.workdir / "outside.json").exists()
    assert requests.post(legacy.url + "/loadrepo", json={"path": "../pyflow.db"}).status_code == 400
    assert requests.post(legacy.url + "/loadrepo", json={"path": "missing.json"}).status_code == 400
    assert requests.post(legacy.url + "/loadrepo", json={"path": "backup.json"}).status_code == 200
    assert requests.post(legacy.url + "/dumprepo", json={}).status_code == 400
