"""`pyflow serve --executor dask`: runs, results and health through the server, on a local cluster or on
the scheduler named with --dask-scheduler and a `pyflow worker` joined to it."""

from __future__ import annotations

import signal

import requests

from pyflow.cli.client import run_events

from tests.support.server import LiveServer
from tests.support.waiting import wait_until

from .test_worker_cli import pyflow_worker

SPECS = [
    {"id": "t.inc", "title": "Inc", "func": "def func(a):\n    return a + 1\n",
     "port": {"input": [{"name": "a", "type": "Int", "required": True}], "output": [{"name": "out", "type": "Int"}]}},
]
FLOW = {"id": "d.flow", "name": "d",
        "links": [{"source": "a:out", "target": "b:a"}, {"source": "a:out", "target": "c:a"}],
        "nodes": [{"id": "a", "spec_id": "t.inc", "ports": [{"name": "a", "value": "1"}]},
                  {"id": "b", "spec_id": "t.inc", "ports": []}, {"id": "c", "spec_id": "t.inc", "ports": []}]}


def run_flow_on(live: LiveServer) -> dict:
    for spec in SPECS:
        assert requests.post(live.url + "/api/nodespecs", json=spec).status_code == 201
    assert requests.put(f"{live.url}/api/flows/{FLOW['id']}", json=FLOW).status_code in (200, 201)
    answer = requests.post(f"{live.url}/api/flows/{FLOW['id']}/runs", json={"cache": False})
    assert answer.status_code == 202, answer.text
    run_id = answer.json()["id"]

    def finished():
        run = requests.get(f"{live.url}/api/runs/{run_id}").json()
        return run if run["status"] not in ("queued", "running") else None
    return wait_until(finished, timeout=120, interval=0.05, fail="the run did not finish")


def test_a_server_on_its_local_cluster_records_which_worker_ran_each_node(tmp_path):
    with LiveServer(tmp_path, executor="dask", args=("--no-stdlib", "--concurrency", "2")) as live:
        health = live.get_json("/api/health")
        run = run_flow_on(live)
        with requests.get(f"{live.url}/api/runs/{run['id']}/events", stream=True, timeout=60) as resp:
            finished = [e["data"] for e in run_events(resp.iter_content(chunk_size=None))
                        if e["event"] == "node_finished"]
    assert {e["node"]: e["worker"] for e in finished} == {n["id"]: n["worker"] for n in run["nodes"]}
    assert health["executor"]["name"] == "dask" and health["executor"]["scheduler"].startswith("tcp://127.0.0.1:")
    assert health["status"] == "ok", health
    assert run["status"] == "succeeded", run
    nodes = {n["id"]: n for n in run["nodes"]}
    assert [nodes[i]["outputs"]["out"] for i in "abc"] == [2, 3, 3]
    assert {nodes[i]["worker"] for i in "abc"} <= set(health["executor"]["workers"]), (nodes, health)


def test_a_server_on_a_named_scheduler_runs_nodes_on_the_pyflow_worker_that_joined_it(tmp_path, bare_scheduler):
    worker = pyflow_worker(bare_scheduler, "--nthreads", "1", "--name", "joined", "--no-nanny")
    try:
        with LiveServer(tmp_path, executor="dask", args=("--no-stdlib", "--dask-scheduler", bare_scheduler)) as live:
            wait_until(lambda: live.get_json("/api/health")["executor"]["workers"], timeout=60,
                       fail="the worker never showed in health")
            health = live.get_json("/api/health")
            run = run_flow_on(live)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
    assert health["executor"]["scheduler"] == bare_scheduler
    (address,) = health["executor"]["workers"]
    assert run["status"] == "succeeded" and {n["worker"] for n in run["nodes"]} == {address}

