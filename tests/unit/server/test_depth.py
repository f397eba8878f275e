"""Nesting depth at the boundary: every JSON body (and every file a route reads) is refused with 400 and
the pointer of the first place nested deeper than the limit, before anything is stored; a body nested
100,000 levels deep answers 400 like any other."""

import json

import pytest
import requests

from tests.support.server import LiveServer

LIMIT = 64  # the documented limit (README, REST API)
ECHO = {"id": "test.echo", "title": "Echo", "func": "def func(a):\n    return a\n",
        "port": {"input": [{"name": "a", "order": 0, "type": "Any"}], "output": [{"name": "out", "type": "Any"}]}}


def flow_text(flow_id: str, value: str) -> str:
    return ('{"id": "%s", "name": "Deep", "links": [], "nodes": [{"id": "n1", "spec_id": "test.echo", '
            '"is_end": true, "ports": [{"name": "a", "value": %s}]}]}' % (flow_id, value))


FLOW_AT = "/nodes/0/ports/0/value"
# route, method, body template (VALUE is where the nesting goes), pointer of VALUE, status when accepted
ROUTES = [
    ("/api/flows", "POST", flow_text("deep.api", "VALUE"), FLOW_AT, 201),
    ("/api/flows/deep.put", "PUT", flow_text("deep.put", "VALUE"), FLOW_AT, 201),
    ("/api/nodespecs", "POST", '{"id": "test.deepspec", "title": "D", "func": "def func(a):\\n    return a\\n", '
                               '"port": {"input": [{"name": "a", "order": 0, "default": VALUE}]}}',
     "/port/input/0/default", 201),
    ("/api/run", "POST", '{"flow": %s}' % flow_text("deep.run", "VALUE"), "/flow" + FLOW_AT, 200),
    ("/api/runs", "POST", '{"flow": %s}' % flow_text("deep.runs", "VALUE"), "/flow" + FLOW_AT, 202),
    ("/api/flows/test.flow/runs", "POST", '{"values": {"n1": {"a": VALUE}}}', "/values/n1/a", 202),
    ("/api/nodespecs/test.echo/test", "POST", '{"inputs": {"a": VALUE}}', "/inputs/a", 200),
    ("/api/repository/import", "POST", '{"format_version": 2, "nodespec": {}, "flow": {"deep.import": %s}}'
     % flow_text("deep.import", "VALUE"), "/flow/deep.import" + FLOW_AT, 200),
    ("/flows", "POST", flow_text("deep.legacy", "VALUE"), FLOW_AT, 200),
    ("/nodes", "POST", '{"id": "test.deepnode", "title": "D", "func": "def func(a):\\n    return a\\n", '
                       '"port": {"input": [{"name": "a", "order": 0, "default": VALUE}]}}',
     "/port/input/0/default", 200),
    ("/runflow", "POST", flow_text("deep.runflow", "VALUE"), FLOW_AT, 200),
    ("/loadrepo", "POST", '{"path": "none.json", "note": VALUE}', "/note", 400),  # accepted, then no such file
]


def enclosing(template: str) -> int:
    """How many arrays and objects enclose VALUE in a template (no template has brackets in strings)."""
    before = template.split("VALUE")[0]
    return before.count("[") + before.count("{") - before.count("]") - before.count("}")


def body(template: str, levels: int) -> bytes:
    return template.replace("VALUE", "[" * levels + '"x"' + "]" * levels).encode()


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with LiveServer(tmp_path_factory.mktemp("depth"), args=("--no-stdlib",)) as live:
        assert requests.post(live.url + "/api/nodespecs", json=ECHO).status_code == 201
        flow = json.loads(flow_text("test.flow", '"1"'))
        assert requests.post(live.url + "/api/flows", json=flow).status_code == 201
        yield live


def send(api, route, method, data: bytes, content_type="application/json"):
    return requests.request(method, api.url + route, data=data, headers={"Content-Type": content_type}, timeout=120)


def stored(api) -> dict:
    return requests.get(api.url + "/api/repository/export").json()


@pytest.mark.parametrize("route, method, template, at, accepted", ROUTES, ids=[r[0] + " " + r[1] for r in ROUTES])
def test_a_body_at_the_limit_is_accepted(api, route, method, template, at, accepted):
    levels = LIMIT - enclosing(template)
    answer = send(api, route, method, body(template, levels))
    assert answer.status_code == accepted, answer.text
    if accepted == 400:
        assert "does not exist" in answer.text


@pytest.mark.parametrize("extra", [1, 5_000, 100_000])
@pytest.mark.parametrize("route, method, template, at, accepted", ROUTES, ids=[r[0] + " " + r[1] for r in ROUTES])
def test_a_body_over_the_limit_is_refused_with_the_pointer_and_stores_nothing(api, route, method, template, at,
                                                                               accepted, extra):
    before = stored(api)
    levels = LIMIT - enclosing(template) + extra
    answer = send(api, route, method, body(template, levels))
    assert answer.status_code == 400, answer.text[:500]
    error = answer.json()
    assert "nested deeper than 64" in error["error"]
    # the first place deeper than the limit: the array at level 65, inside VALUE
    assert error["details"][0]["path"] == at + "/0" * (LIMIT - enclosing(template))
    assert stored(api) == before


def test_the_legacy_form_post_is_refused_before_its_depth_matters(api):
    """Form posts are refused outright (any web page can send one), however deep their data."""
    template = flow_text("deep.form", "VALUE")
    before = stored(api)
    for levels in (LIMIT - enclosing(template), 100_000):
        answer = requests.post(api.url + "/flows", data={"data": body(template, levels).decode()}, timeout=60)
        assert answer.status_code == 415, answer.text[:300]
    assert stored(api) == before


def test_loadrepo_refuses_a_repository_file_nested_too_deep(api):
    repos = api.workdir / "repos"
    repos.mkdir(exist_ok=True)
    template = '{"format_version": 2, "nodespec": {}, "flow": {"deep.file": %s}}' % flow_text("deep.file", "VALUE")
    (repos / "deep.json").write_bytes(body(template, 5_000))
    before = stored(api)
    answer = requests.post(api.url + "/loadrepo", json={"path": "deep.json"})
    assert answer.status_code == 400, answer.text[:300]
    assert answer.json()["details"][0]["path"] == "/flow/deep.file" + FLOW_AT + "/0" * (LIMIT - enclosing(template))
    folder = repos / "tree"
    (folder / "flows").mkdir(parents=True)
    (folder / "nodespecs").mkdir()
    flow_template = flow_text("deep.dir", "VALUE")
    (folder / "flows" / "deep.dir.json").write_bytes(body(flow_template, 100_000))
    answer = requests.post(api.url + "/loadrepo", json={"path": "tree"})
    assert answer.status_code == 400, answer.text[:300]
    assert answer.json()["details"][0]["path"] == "/flow/deep.dir" + FLOW_AT + "/0" * (LIMIT - enclosing(flow_template))
    assert stored(api) == before


def test_a_flow_at_the_limit_reads_back_exports_and_runs(api):
    template = flow_text("deep.roundtrip", "VALUE")
    assert send(api, "/api/flows", "POST", body(template, LIMIT - enclosing(template))).status_code == 201
    doc = requests.get(api.url + "/api/flows/deep.roundtrip").json()
    assert stored(api)["flow"]["deep.roundtrip"] == doc
    run = requests.post(api.url + "/api/flows/deep.roundtrip/run", json={}).json()
    assert run["status"] == "succeeded", run
    assert run["nodes"][0]["outputs"]["out"] == doc["nodes"][0]["ports"][0]["value"]
    assert requests.get(api.url + f"/api/runs/{run['run_id']}").status_code == 200
