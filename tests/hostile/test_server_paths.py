"""Text from node code that UTF-8 cannot carry (lone surrogates), and values nested past the limit, on
every path through the server: a synchronous flow run, the same run served from the cache, an
asynchronous run and its events. Each node fails (or succeeds) with a clear, encodable result; the run
machinery stays up and later runs are served.
"""

from __future__ import annotations

import json

import requests

from .cases import FORGED_SURROGATE_ERROR, SURROGATE_EXCEPTION, SURROGATE_RESULT, SURROGATE_STDOUT, nested_source
from .support import spec_doc, wait_until

NODES = {
    "result": (SURROGATE_RESULT, "fail", "ResultError: the return value holds a lone surrogate (U+D800), which "
                                         "UTF-8 cannot carry"),
    "exception": (SURROGATE_EXCEPTION, "fail", "ValueError: a\ufffdb"),
    "forged-error": (FORGED_SURROGATE_ERROR, "fail", "Forged\ufffd: m\ufffd"),
    "stdout": (SURROGATE_STDOUT, "success", None),
    "too-deep": (nested_source(65), "fail", "ResultError: the return value is nested 65 levels deep, over the "
                                            "limit of 64"),
}
FINISHED = ("succeeded", "failed", "cancelled")


def test_unencodable_text_from_nodes_is_safe_on_every_server_path(target):
    url = target.live.url
    flow_id = f"hostile.paths.{target.ctx['token']}"
    for name, (source, _, _) in NODES.items():
        answer = requests.post(url + "/api/nodespecs", json=spec_doc(f"{flow_id}.{name}", name, source, [], {}),
                               timeout=30)
        assert answer.status_code == 201, answer.text
    flow = {"id": flow_id, "name": "unencodable text", "links": [],
            "nodes": [{"id": name, "spec_id": f"{flow_id}.{name}", "ports": []} for name in NODES]}
    answer = requests.post(url + "/api/flows", json=flow, timeout=30)
    assert answer.status_code == 201, answer.text

    for cache in (False, True, True):  # the second and third may be served from the cache
        answer = requests.post(f"{url}/api/flows/{flow_id}/run", json={"cache": cache}, timeout=120)
        assert answer.status_code == 200, answer.text[:2000]
        assert_nodes(answer.json())

    answer = requests.post(f"{url}/api/flows/{flow_id}/runs", json={"cache": False}, timeout=30)
    assert answer.status_code == 202, answer.text
    run_id = answer.json()["id"]
    assert wait_until(lambda: run_status(url, run_id) in FINISHED, timeout=60), run_status(url, run_id)
    assert_nodes(requests.get(f"{url}/api/runs/{run_id}", timeout=30).json())
    events = requests.get(f"{url}/api/runs/{run_id}/events", timeout=60)
    assert events.status_code == 200
    text = events.content.decode("utf-8")  # strict: every byte the server wrote is UTF-8
    assert "event: run_finished" in text and text.count("event: node_finished") == len(NODES), text[-2000:]
    assert "a\ufffdb" in text or "a\\ufffdb" in text, text[-2000:]

    target.runners["server"].serving()


def run_status(url: str, run_id: str) -> str:
    return requests.get(f"{url}/api/runs/{run_id}", timeout=30).json().get("status", "")


def assert_nodes(run: dict) -> None:
    assert run["status"] == "failed", json.dumps(run)[:2000]
    nodes = {node.get("node_id", node.get("id")): node for node in run["nodes"]}
    assert set(nodes) == set(NODES), list(nodes)
    for name, (_, status, error) in NODES.items():
        node = nodes[name]
        assert node["status"] == status, (name, node)
        if error is not None:
            said = f"{node['error']['type']}: {node['error']['message']}"
            assert said == error, (name, said)
    assert nodes["stdout"]["stdout"] == "raw \ufffd\ufffd\ufffd\nprinted \ufffd\ufffd\ufffd\n", nodes["stdout"]
    json.dumps(run, ensure_ascii=False).encode("utf-8")
