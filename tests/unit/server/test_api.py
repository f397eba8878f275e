"""The REST API against a real server (sandbox executor, SQLite file) on a free port."""

import json

import pytest
import requests

from tests.support.server import NO_FORM, LiveServer

SPEC = {"id": "test.inc", "title": "Inc", "func": "def func(a):\n    return a + 1\n",
        "port": {"input": [{"name": "a", "order": 0, "type": "Int"}], "output": [{"name": "out", "type": "Int"}]}}
FLOW = {"id": "test.flow", "name": "Two incs",
        "nodes": [{"id": "n1", "spec_id": "test.inc", "name": "first", "ports": [{"name": "a", "value": "1"}],
                   "ui": {"x": "10px", "y": 20}},
                  {"id": "n2", "spec_id": "test.inc", "name": "second", "ports": [], "is_end": 1}],
        "links": [{"source": "n1:out", "target": "n2:a"}]}


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with LiveServer(tmp_path_factory.mktemp("api"), args=("--max-body-mb", "1")) as live:
        yield live


def url(api, path):
    return api.url + path


def snapshot(api):
    return requests.get(url(api, "/api/repository/export")).json()


def test_health_and_port_types(api):
    health = requests.get(url(api, "/api/health")).json()
    assert health["status"] == "ok" and health["executor"]["name"] == "sandbox"
    types = requests.get(url(api, "/api/port-types")).json()
    assert {t["name"] for t in types} == {"String", "Int", "Float", "Boolean", "List", "Json", "Dict", "Any", "Object",
                                          "Array", "DataFrame", "Image"}
    boolean = next(t for t in types if t["name"] == "Boolean")
    assert {"true", "yes", "1"} <= set(boolean["true_words"]) and {"false", "no", "0"} <= set(boolean["false_words"])


def test_the_schemas_the_server_checks_with_are_served(api):
    nodespec = requests.get(url(api, "/api/schemas/nodespec")).json()
    assert nodespec["$defs"]["objectId"]["pattern"].startswith("^")
    missing = requests.get(url(api, "/api/schemas/nope"))
    assert missing.status_code == 404 and missing.json()["details"][0]["path"] == "/name"


def test_standard_library_is_loaded_on_an_empty_database(api):
    ids = {s["id"] for s in requests.get(url(api, "/api/nodespecs")).json()}
    assert {"pyflow.math.add", "pyflow.string.split", "pyflow.control.select", "pyflow.json.parse"} <= ids
    flows = {f["id"] for f in requests.get(url(api, "/api/flows")).json()}
    assert "pyflow.samples.arithmetic" in flows


def test_nodespec_lifecycle_with_revisions(api):
    created = requests.post(url(api, "/api/nodespecs"), json=SPEC)
    assert created.status_code == 201
    assert created.headers["Location"].endswith("/api/nodespecs/test.inc")
    etag = created.headers["ETag"]
    assert requests.post(url(api, "/api/nodespecs"), json=SPEC).status_code == 409
    got = requests.get(url(api, "/api/nodespecs/test.inc"))
    assert got.json() == SPEC and got.headers["ETag"] == etag
    updated = requests.put(url(api, "/api/nodespecs/test.inc"), json={**SPEC, "title": "Increment"},
                           headers={"If-Match": etag})
    assert updated.status_code == 200 and updated.headers["ETag"] != etag
    stale = requests.put(url(api, "/api/nodespecs/test.inc"), json={**SPEC, "title": "Lost"}, headers={"If-Match": etag})
    assert stale.status_code == 412 and "changed since revision" in stale.json()["error"]
    assert requests.get(url(api, "/api/nodespecs/test.inc")).json()["title"] == "Increment"
    assert requests.delete(url(api, "/api/nodespecs/test.inc"), headers={"If-Match": etag, **NO_FORM}).status_code == 412
    requests.put(url(api, "/api/nodespecs/test.inc"), json=SPEC)


def test_invalid_nodespec_lists_every_problem_and_stores_nothing(api):
    before = snapshot(api)
    bad = {"id": "test.bad", "title": "", "func": "def func(a):\n    return (a\n",
           "port": {"input": [{"name": "a", "type": "Integer"}]}}
    answer = requests.post(url(api, "/api/nodespecs"), json=bad)
    assert answer.status_code == 400
    body = answer.json()
    assert body["error"] and {d["path"] for d in body["details"]} == {"/title"}
    bad["title"] = "Bad"
    details = requests.post(url(api, "/api/nodespecs"), json=bad).json()["details"]
    paths = {d["path"]: d["message"] for d in details}
    assert "unknown port type 'Integer'" in paths["/port/input/0/type"]
    assert "line 2" in paths["/func"] and "column" in paths["/func"]
    assert snapshot(api) == before


def test_flows_check_references(api):
    requests.put(url(api, "/api/nodespecs/test.inc"), json=SPEC)
    before = snapshot(api)
    bad = json.loads(json.dumps(FLOW))
    bad["nodes"][1]["spec_id"] = "test.nope"
    bad["links"][0]["target"] = "n1:zzz"
    answer = requests.post(url(api, "/api/flows"), json=bad)
    assert answer.status_code == 400
    paths = {d["path"] for d in answer.json()["details"]}
    assert {"/nodes/1/spec_id", "/links/0/target"} <= paths
    assert snapshot(api) == before
    assert requests.post(url(api, "/api/flows"), json=FLOW).status_code == 201


def test_flow_list_summary(api):
    requests.put(url(api, "/api/nodespecs/test.inc"), json=SPEC)
    requests.put(url(api, "/api/flows/test.flow"), json=FLOW)
    entries = {e["id"]: e for e in requests.get(url(api, "/api/flows?summary=true")).json()}
    entry = entries["test.flow"]
    assert entry["name"] == "Two incs" and entry["node_count"] == 2 and entry["link_count"] == 1
    assert "nodes" not in entry and entry["revision"] >= 1


def test_deleting_a_used_nodespec_names_the_flows(api):
    requests.put(url(api, "/api/nodespecs/test.inc"), json=SPEC)
    requests.put(url(api, "/api/flows/test.flow"), json=FLOW)
    answer = requests.delete(url(api, "/api/nodespecs/test.inc"), headers=NO_FORM)
    assert answer.status_code == 409 and answer.json()["flows"] == ["test.flow"]
    assert requests.get(url(api, "/api/nodespecs/test.inc")).status_code == 200


def test_a_nodespec_change_that_breaks_a_flow_answers_409(api):
    requests.put(url(api, "/api/nodespecs/test.inc"), json=SPEC)
    requests.put(url(api, "/api/flows/test.flow"), json=FLOW)
    renamed = {**SPEC, "port": {"input": [{"name": "x", "type": "Int"}]}, "func": "def func(x):\n    return x\n"}
    answer = requests.put(url(api, "/api/nodespecs/test.inc"), json=renamed)
    assert answer.status_code == 409 and answer.json()["flows"] == ["test.flow"]
    assert {d["path"] for d in answer.json()["details"]} >= {"/flow/test.flow/nodes/0/ports/0/name"}
    assert requests.get(url(api, "/api/nodespecs/test.inc")).json() == SPEC
    assert requests.put(url(api, "/api/nodespecs/test.inc?force=true"), json=renamed).status_code == 200
    requests.put(url(api, "/api/nodespecs/test.inc?force=true"), json=SPEC)


def test_run_a_stored_flow_and_an_inline_flow(api):
    requests.put(url(api, "/api/nodespecs/test.inc"), json=SPEC)
    requests.put(url(api, "/api/flows/test.flow"), json=FLOW)
    result = requests.post(url(api, "/api/flows/test.flow/run"), json={"cache": False}).json()
    assert result["status"] == "succeeded"
    nodes = {n["id"]: n for n in result["nodes"]}
    assert nodes["n2"]["outputs"] == {"out": 3} and nodes["n2"]["inputs"] == {"a": 2}
    inline = requests.post(url(api, "/api/run"), json=FLOW).json()
    assert inline["status"] == "succeeded"
    with_values = requests.post(url(api, "/api/run"), json={"flow": FLOW, "values": {"n1": {"a": 40}}}).json()
    assert {n["id"]: n for n in with_values["nodes"]}["n2"]["outputs"] == {"out": 42}


def test_run_errors(api):
    assert requests.post(url(api, "/api/flows/none/run"), json={}).status_code == 404
    missing = {"id": "t", "nodes": [{"id": "n", "spec_id": "pyflow.math.add", "ports": [{"name": "a", "value": 1}]}],
               "links": []}
    answer = requests.post(url(api, "/api/run"), json=missing)
    assert answer.status_code == 400
    assert answer.json()["details"] == [{"path": "/nodes/0/ports", "message": "required input 'b' of node 'n' has "
                                                                              "neither a link nor a value"}]
    answer = requests.post(url(api, "/api/run"), json={"flow": missing, "values": {"n": {"b": 2}, "zz": {}}})
    assert answer.status_code == 400 and answer.json()["details"][0]["path"] == "/values/zz"


def test_tree_test_and_infer(api):
    tree = requests.get(url(api, "/api/nodespecs/tree")).json()
    pyflow = next(n for n in tree if n["id"] == "pyflow")
    math = next(n for n in pyflow["children"] if n["id"] == "math")
    add = next(n for n in math["children"] if n["id"] == "add")
    assert add["value"]["id"] == "pyflow.math.add" and add["path"] == "pyflow.math.add"
    tested = requests.post(url(api, "/api/nodespecs/pyflow.math.add/test"), json={"inputs": {"a": "2", "b": 3}}).json()
    assert tested["status"] == "success" and tested["outputs"] == {"out": 5.0}
    draft = {**SPEC, "id": "draft.x", "func": "def func(a):\n    print('hi', a)\n    return a * 10\n"}
    tested = requests.post(url(api, "/api/nodespecs/test"), json={"nodespec": draft, "inputs": {"a": 4}}).json()
    assert tested["outputs"] == {"out": 40} and tested["stdout"] == "hi 4\n"
    assert requests.get(url(api, "/api/nodespecs/draft.x")).status_code == 404
    ports = requests.post(url(api, "/api/nodespecs/infer"), json={"func": "def f(x: int, y: str = 'a') -> bool:\n  pass"}).json()
    assert ports["input"][1] == {"name": "y", "order": 1, "type": "String", "default": "a"}
    assert ports["output"] == [{"name": "out", "type": "Boolean"}]


def test_http_errors_are_json(api):
    plain = requests.post(url(api, "/api/nodespecs"), data="id=1", headers={"Content-Type": "text/plain"})
    assert plain.status_code == 415 and "application/json" in plain.json()["error"]
    broken = requests.post(url(api, "/api/nodespecs"), data="{bad", headers={"Content-Type": "application/json"})
    assert broken.status_code == 400 and "line 1" in broken.json()["details"][0]["message"]
    assert requests.post(url(api, "/api/nodespecs"), json=[1]).status_code == 400
    missing = requests.get(url(api, "/api/nodespecs/no.such"))
    assert missing.status_code == 404 and missing.json()["error"] == "no nodespec 'no.such'"
    wrong = requests.patch(url(api, "/api/nodespecs"))
    assert wrong.status_code == 405 and "error" in wrong.json()
    assert requests.get(url(api, "/api/nothing")).json()["error"]
    huge = requests.post(url(api, "/api/nodespecs"), data=b"x" * (2 * 1024 * 1024),
                         headers={"Content-Type": "application/json"})
    assert huge.status_code == 413 and "1 MiB" in huge.json()["error"]
    bad_match = requests.put(url(api, "/api/nodespecs/test.inc"), json=SPEC, headers={"If-Match": "nonsense"})
    assert bad_match.status_code == 412


def test_export_and_import(api):
    bundle = requests.get(url(api, "/api/repository/export"))
    assert "attachment" in bundle.headers["Content-Disposition"]
    data = bundle.json()
    assert data["format_version"] == 2 and "pyflow.math.add" in data["nodespec"]
    bad = {"nodespec": {"x.y": {"id": "x.y"}}, "flow": {}}
    before = snapshot(api)
    answer = requests.post(url(api, "/api/repository/import?mode=merge"), json=bad)
    assert answer.status_code == 400 and len(answer.json()["details"]) >= 1
    assert requests.post(url(api, "/api/repository/import?mode=sideways"), json=data).status_code == 400
    assert snapshot(api) == before
    summary = requests.post(url(api, "/api/repository/import?mode=merge"), json=data).json()
    assert summary["unchanged"] == len(data["nodespec"]) + len(data["flow"])


EXPECTED = {"pyflow.sample.math": ("node1527101204754", "out", 9),
            "pyflow.sample.xor": ("node1527108752672", "out", False),
            "pyflow.sample.xor1": ("node1527448391328", "out", True)}


def test_original_repository_imports_unchanged_and_its_flows_give_their_results(api, compat_bundle):
    answer = requests.post(url(api, "/api/repository/import?mode=merge"), json=compat_bundle)
    assert answer.status_code == 200, answer.text
    for flow_id, (node, port, value) in EXPECTED.items():
        assert requests.get(url(api, f"/api/flows/{flow_id}")).json() == compat_bundle["flow"][flow_id]
        result = requests.post(url(api, f"/api/flows/{flow_id}/run"), json={}).json()
        assert result["status"] == "succeeded"
        outputs = {n["id"]: n["outputs"] for n in result["nodes"]}
        assert outputs[node][port] == value and type(outputs[node][port]) is type(value)
    result = requests.post(url(api, "/api/flows/pyflow.sample.error/run"), json={}).json()
    nodes = {n["id"]: n for n in result["nodes"]}
    assert result["status"] == "failed"
    assert nodes["node1527137688270"]["status"] == "fail"
    assert nodes["node1527137688270"]["error"]["message"] == "Always Failed!"
    assert nodes["node1527137684469"]["status"] == "skipped"
    assert nodes["node1527137681280"]["outputs"] == {"out": "abcd"}


def test_an_unknown_import_mode_is_refused_and_changes_nothing(api):
    before = snapshot(api)
    resp = requests.post(url(api, "/api/repository/import?mode=overwrite"), json={"nodespec": {}, "flow": {}})
    assert resp.status_code == 400 and resp.json()["details"][0]["path"] == "/mode"
    assert snapshot(api) == before
