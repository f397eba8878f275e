"""Requirements end to end on a real server with the real sandbox, installing from a wheelhouse served on
127.0.0.1: two versions of one package in one flow, install events, the lock in the run's snapshot,
checks at save, the requirements policy, /api/environments and `pyflow envs`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import requests

from tests.support.server import NO_FORM, ROOT, LiveServer
from tests.unit.environments.conftest import wheelhouse  # noqa: F401 (fixture)


def spec(spec_id: str, requirements: list[str]) -> dict:
    return {"id": spec_id, "title": spec_id, "requirements": requirements,
            "func": "import tinypkg\n\ndef func(x):\n    return [x, tinypkg.VALUE]\n",
            "port": {"input": [{"name": "x", "type": "Int", "required": True}], "output": [{"name": "out", "type": "Json"}]}}


FLOW = {"id": "two-versions", "name": "two versions",
        "nodes": [{"id": "a", "spec_id": "uses.v1", "name": "v1", "is_end": True, "ports": [{"name": "x", "value": 1}]},
                  {"id": "b", "spec_id": "uses.v2", "name": "v2", "is_end": True, "ports": [{"name": "x", "value": 2}]}],
        "links": []}


@pytest.fixture(scope="module")
def server(tmp_path_factory, wheelhouse):  # noqa: F811
    policy = tmp_path_factory.mktemp("policy") / "allowed.txt"
    policy.write_text("# what this server permits\ntinypkg\ntinydep\nnosuchpackage\nsdistonly\n")
    live = LiveServer(tmp_path_factory.mktemp("envs-server"), executor="sandbox",
                      args=("--no-index", "--find-links", wheelhouse.url, "--requirements-policy", str(policy)),
                      env={"PIP_NO_INDEX": "", "PIP_FIND_LINKS": ""})
    with live:
        for doc in (spec("uses.v1", ["tinypkg==1.0"]), spec("uses.v2", ["tinypkg>=2"])):
            assert requests.post(live.url + "/api/nodespecs", json=doc, timeout=30).status_code == 201
        assert requests.post(live.url + "/api/flows", json=FLOW, timeout=30).status_code == 201
        yield live


def run_flow(live, flow_id="two-versions") -> dict:
    answer = requests.post(f"{live.url}/api/flows/{flow_id}/run", json={"cache": False}, timeout=300)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_two_versions_of_one_package_in_one_flow_with_the_lock_recorded(server):
    result = run_flow(server)
    assert result["status"] == "succeeded", [(n["id"], n["error"]) for n in result["nodes"]]
    outputs = {n["id"]: n["outputs"]["out"] for n in result["nodes"]}
    assert outputs == {"a": [1, 1], "b": [2, 2]}
    run = requests.get(f"{server.url}/api/runs/{result['run_id']}", timeout=30).json()
    recorded = {tuple(e["requirements"]): e["packages"] for e in run["snapshot"]["environments"].values()}
    assert recorded == {("tinypkg==1.0",): ["tinypkg==1.0"], ("tinypkg>=2",): ["tinydep==0.5", "tinypkg==2.0"]}
    assert {n["id"]: n["environment"]["packages"] for n in run["nodes"]}["a"] == ["tinypkg==1.0"]


def test_a_first_use_reports_its_install_as_events_and_in_pyflow_run(server):
    doc = {**spec("uses.dep", ["tinydep"]), "func": "import tinydep\n\ndef func(x):\n    return tinydep.X + x\n"}
    assert requests.post(server.url + "/api/nodespecs", json=doc, timeout=30).status_code == 201
    flow = {"id": "dep-flow", "name": "dep", "links": [],
            "nodes": [{"id": "d", "spec_id": "uses.dep", "name": "dep", "is_end": True, "ports": [{"name": "x", "value": 1}]}]}
    assert requests.post(server.url + "/api/flows", json=flow, timeout=30).status_code == 201
    out = subprocess.run([sys.executable, "-m", "pyflow", "run", "dep-flow", "--server", server.url],
                         capture_output=True, text=True, timeout=300, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert out.returncode == 0, out.stderr
    assert "installing tinydep" in out.stderr and "installed tinydep==0.5" in out.stderr
    runs = requests.get(server.url + "/api/runs", params={"flow": "dep-flow"}, timeout=30).json()["runs"]
    events = requests.get(f"{server.url}/api/runs/{runs[0]['id']}/events", timeout=30).text
    phases = [json.loads(line[5:])["phase"] for line in events.splitlines()
              if line.startswith("data:") and '"phase"' in line]
    assert phases[0] == "started" and "finished" in phases and phases[-1] == "ready"


def test_a_failed_install_fails_its_node_with_the_reason_and_the_rest_runs(server):
    docs = [spec("uses.missing", ["nosuchpackage"]), spec("uses.sdist", ["sdistonly"])]
    for doc in docs:
        assert requests.post(server.url + "/api/nodespecs", json=doc, timeout=30).status_code == 201
    flow = {"id": "missing", "name": "missing", "links": [],
            "nodes": [{"id": "m", "spec_id": "uses.missing", "name": "m", "is_end": True, "ports": [{"name": "x", "value": 1}]},
                      {"id": "s", "spec_id": "uses.sdist", "name": "s", "is_end": True, "ports": [{"name": "x", "value": 1}]},
                      {"id": "ok", "spec_id": "uses.v1", "name": "ok", "is_end": True, "ports": [{"name": "x", "value": 3}]}]}
    assert requests.post(server.url + "/api/flows", json=flow, timeout=30).status_code == 201
    nodes = {n["id"]: n for n in run_flow(server, "missing")["nodes"]}
    assert nodes["ok"]["status"] == "success"
    assert nodes["m"]["error"]["type"] == "EnvironmentError" and "nosuchpackage" in nodes["m"]["error"]["message"]
    assert "wheels only" in nodes["s"]["error"]["message"]


@pytest.mark.parametrize("entry", ["-e .", "pkg @ https://example.com/pkg.whl", "./local/path", "--index-url=x",
                                   "file:///tmp/x.whl", "not a requirement!"])
def test_urls_paths_and_options_are_refused_at_save_naming_the_entry(server, entry):
    doc = spec("bad.requirement", ["tinypkg", entry])
    answer = requests.post(server.url + "/api/nodespecs", json=doc, timeout=30)
    assert answer.status_code == 400, answer.text
    assert answer.json()["details"][0]["path"] == "/requirements/1"
    assert requests.get(server.url + "/api/nodespecs/bad.requirement", timeout=30).status_code == 404


def test_the_requirements_policy_refuses_unlisted_packages(server):
    answer = requests.post(server.url + "/api/nodespecs", json=spec("uses.other", ["tinypkg", "otherpkg"]), timeout=30)
    assert answer.status_code == 403, answer.text
    assert answer.json()["details"] == [{"path": "/requirements/1", "message": answer.json()["details"][0]["message"]}]
    assert "otherpkg" in answer.json()["details"][0]["message"]
    prepared = requests.post(server.url + "/api/environments", json={"requirements": ["otherpkg"]}, timeout=60)
    assert prepared.status_code == 403


def test_prepare_list_and_prune_over_rest_and_the_cli(server):
    prepared = requests.post(server.url + "/api/environments", json={"requirements": ["tinypkg==1.0"]}, timeout=120)
    assert prepared.status_code == 200, prepared.text
    assert prepared.json()["packages"] == ["tinypkg==1.0"]
    listed = {e["key"]: e for e in requests.get(server.url + "/api/environments", timeout=30).json()}
    assert listed[prepared.json()["key"]]["nodespecs"] == ["uses.v1"]
    failed = requests.post(server.url + "/api/environments", json={"requirements": ["nosuchpackage"]}, timeout=120)
    assert failed.status_code == 409 and "nosuchpackage" in failed.json()["error"]
    out = subprocess.run([sys.executable, "-m", "pyflow", "envs", "list", "--server", server.url], capture_output=True,
                         text=True, timeout=60, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert out.returncode == 0 and "tinypkg==1.0" in out.stdout and "uses.v1" in out.stdout, out
    pruned = requests.post(server.url + "/api/environments/prune", json={"days": 0}, headers=NO_FORM, timeout=60)
    assert pruned.status_code == 200
    left = requests.get(server.url + "/api/environments", timeout=30).json()
    assert all(e["warm"] for e in left)  # only environments with warm sandboxes are kept
