"""Environments through the engine: a plain node and a mapped one get their packages, one build between
them, and an install that fails fails only the nodes that need it."""

from __future__ import annotations

from pyflow.engine import RunOptions, compile_flow, run_flow
from pyflow.executors import create_executor
from pyflow.model.nodespec import parse_nodespec

from .conftest import store_for

READ = "import tinypkg\n\ndef func(a):\n    return a * 10 + tinypkg.VALUE\n"


def specs(requirements):
    doc = {"id": "t.tiny", "title": "tiny", "func": READ, "requirements": requirements,
           "port": {"input": [{"name": "a", "type": "Int"}], "output": [{"name": "out", "type": "Int"}]}}
    return {"t.tiny": parse_nodespec(doc)}


def flow():
    return {"id": "f", "name": "f", "links": [],
            "nodes": [{"id": "one", "spec_id": "t.tiny", "name": "one", "ports": [{"name": "a", "value": 4}]},
                      {"id": "many", "spec_id": "t.tiny", "name": "many", "map": ["a"],
                       "ports": [{"name": "a", "value": [1, 2, 3]}]}]}


def test_plain_and_mapped_nodes_get_their_environment_built_once(tmp_path, wheelhouse):
    store, events = store_for(tmp_path, wheelhouse), []
    executor = create_executor("unsafe-process")
    try:
        outcome = run_flow(compile_flow(flow(), specs(["tinypkg==1.0"])), executor, RunOptions(concurrency=4),
                           on_event=lambda kind, data: events.append((kind, data)), environments=store)
    finally:
        executor.close()
    outputs = {n["id"]: n["outputs"].get("out") for n in outcome.nodes}
    assert outcome.status == "succeeded" and outputs == {"one": 41, "many": [11, 21, 31]}
    assert [d["phase"] for k, d in events if k == "environment"].count("started") == 1


def test_a_failed_install_fails_the_nodes_that_need_it_with_the_reason(tmp_path, wheelhouse):
    executor = create_executor("unsafe-process")
    try:
        outcome = run_flow(compile_flow(flow(), specs(["nosuchpackage"])), executor, RunOptions(concurrency=2),
                           environments=store_for(tmp_path, wheelhouse))
    finally:
        executor.close()
    assert outcome.status == "failed"
    for node in outcome.nodes:
        assert node["status"] == "fail" and "nosuchpackage" in node["error"]["message"], node
