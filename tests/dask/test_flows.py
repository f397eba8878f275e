"""Flows on the Dask executor give what the local sandbox gives, node for node, and say where each ran."""

from __future__ import annotations

import threading

import pytest

from pyflow.engine import RunOptions, compile_flow, run_flow
from pyflow.model.nodespec import parse_nodespec
from tests.hostile.support import processes_named
from tests.support.timing import scaled
from tests.support.waiting import wait_until

from .conftest import running_on


def spec(spec_id, func, inputs, outputs=None, cache=True):
    doc = {"id": spec_id, "title": spec_id, "func": func, "cache": cache,
           "port": {"input": [{"name": n, "order": i, "type": t} for i, (n, t) in enumerate(inputs)]}}
    if outputs:
        doc["port"]["output"] = [{"name": n, "type": t} for n, t in outputs]
    return parse_nodespec(doc)


SPECS = {s.id: s for s in (
    spec("d.num", "def func(a):\n    return a\n", [("a", "Float")], [("out", "Float")]),
    spec("d.add", "def func(a, b):\n    return a + b\n", [("a", "Float"), ("b", "Float")], [("out", "Float")]),
    spec("d.split", "def func(a):\n    return {'half': a / 2, 'text': str(a)}\n", [("a", "Float")],
         [("half", "Float"), ("text", "String")]),
    spec("d.words", "def func(s):\n    print('words of', s)\n    return s.split('.')\n", [("s", "String")],
         [("out", "List")]),
    spec("d.fail", "def func(a):\n    raise ValueError(f'no {a}')\n", [("a", "Any")]),
    spec("d.noisy", "def func(a):\n    import random\n    return a + random.random() * 0\n", [("a", "Float")],
         [("out", "Float")], cache=False),
    spec("d.spin", "def func(name):\n    import ctypes\n    ctypes.CDLL(None).prctl(15, name.encode(), 0, 0, 0)\n"
                   "    while True:\n        pass\n", [("name", "String")]),
)}


def flow(nodes, links=()):
    return {"id": "f", "name": "f", "links": [{"source": s, "target": t} for s, t in links],
            "nodes": [{"id": i, "spec_id": s, "name": i, "ports": [{"name": k, "value": v} for k, v in vals.items()]}
                      for i, s, vals in nodes]}


BRANCHING = flow(
    [("x", "d.num", {"a": "6"}), ("y", "d.num", {"a": "1.5"}), ("s", "d.split", {}), ("sum", "d.add", {}),
     ("w", "d.words", {}), ("n", "d.noisy", {}), ("total", "d.add", {}), ("bad", "d.fail", {"a": "x"}),
     ("after", "d.add", {"b": "1"}), ("lone", "d.num", {"a": "7"})],
    [("x:out", "s:a"), ("s:half", "sum:a"), ("y:out", "sum:b"), ("s:text", "w:s"), ("sum:out", "n:a"),
     ("n:out", "total:a"), ("x:out", "total:b"), ("bad:out", "after:a")])


def comparable(node: dict) -> dict:
    """What must not depend on where a node ran."""
    error = node["error"] and {k: node["error"][k] for k in ("type", "message")}
    return {k: node[k] for k in ("id", "status", "inputs", "outputs", "stdout", "cached")} | {"error": error}


def run(executor, doc, run_id, **kw):
    return run_flow(compile_flow(doc, SPECS), executor, RunOptions(concurrency=4, run_id=run_id), **kw)


def test_a_branching_flow_with_a_failure_gives_what_the_local_sandbox_gives(dask_executor, sandbox_executor):
    on_dask = run(dask_executor, BRANCHING, "branching-dask")
    local = run(sandbox_executor, BRANCHING, "branching-local")
    assert [comparable(n) for n in on_dask.nodes] == [comparable(n) for n in local.nodes]
    assert on_dask.status == local.status == "failed"
    nodes = {n["id"]: n for n in on_dask.nodes}
    assert nodes["total"]["outputs"] == {"out": 10.5} and nodes["w"]["outputs"] == {"out": ["6", "0"]}
    assert nodes["bad"]["status"] == "fail" and nodes["bad"]["error"]["message"] == "no x"
    assert nodes["after"]["status"] == "skipped"
    assert "upstream node 'bad' (bad) failed" in nodes["after"]["error"]["message"]
    workers = set(dask_executor.read_workers())
    ran = {n["id"]: n.get("worker") for n in on_dask.nodes if n["status"] != "skipped"}
    assert all(w in workers for w in ran.values()), (ran, workers)
    assert "worker" not in nodes["after"]


def test_the_run_lets_go_of_its_results_on_the_cluster_when_it_ends(dask_executor):
    run(dask_executor, BRANCHING, "released-run")
    assert wait_until(lambda: not dask_executor.client.run_on_scheduler(_keys_of, "released-run"), timeout=30), \
        dask_executor.client.run_on_scheduler(_keys_of, "released-run")


def _keys_of(run_id, dask_scheduler):
    return sorted(str(k) for k in dask_scheduler.tasks if str(k).startswith(f"pyflow:{run_id}:"))


def test_cancelling_a_running_infinite_loop_ends_its_sandbox_on_the_worker(dask_executor):
    name = "pfdspin"
    doc = flow([("spin", "d.spin", {"name": name}), ("after", "d.add", {"b": "1"}), ("other", "d.num", {"a": "1"})],
               [("spin:out", "after:a")])
    cancel = threading.Event()
    outcome = {}
    runner = threading.Thread(target=lambda: outcome.update(result=run(dask_executor, doc, "spin-run", cancel=cancel)))
    runner.start()
    try:
        assert wait_until(lambda: processes_named(name), timeout=60), "the loop never started"
        assert any("pyflow:spin-run:spin:1" in keys for keys in running_on(dask_executor).values())
    finally:
        cancel.set()
    runner.join(timeout=scaled(5))
    assert not runner.is_alive(), "the run did not end after its cancel"
    assert wait_until(lambda: not processes_named(name), timeout=scaled(2)), processes_named(name)
    nodes = {n["id"]: n for n in outcome["result"].nodes}
    assert outcome["result"].status == "cancelled"
    assert nodes["spin"]["status"] == "cancelled" and nodes["after"]["status"] == "skipped"
    assert wait_until(lambda: not any(running_on(dask_executor).values()), timeout=10)


@pytest.mark.parametrize("chain", [200])
def test_a_long_chain_passes_each_value_on_the_cluster(dask_executor, chain):
    nodes = [("c0", "d.num", {"a": "0"})] + [(f"c{i}", "d.add", {"b": "1"}) for i in range(1, chain)]
    links = [(f"c{i - 1}:out", f"c{i}:a") for i in range(1, chain)]
    outcome = run(dask_executor, flow(nodes, links), "chain-run")
    assert outcome.status == "succeeded" and outcome.nodes[-1]["outputs"] == {"out": float(chain - 1)}
