"""Values that are not JSON on Dask: made in one worker's sandbox as an artifact, loaded in the next
node's sandbox (on whichever worker), never deserialized by the server."""

from __future__ import annotations

from pyflow.service import Config, PyflowService, build_executor

MAKE = {"id": "t.make", "title": "make", "func": "def func():\n    return {3, 1, 2}\n",
        "port": {"input": [], "output": [{"name": "out", "type": "Object"}]}}
USE = {"id": "t.use", "title": "use", "func": "def func(s):\n    return [type(s).__name__, sorted(s)]\n",
       "port": {"input": [{"name": "s", "type": "Object"}], "output": [{"name": "out", "type": "Json"}]}}


def test_a_non_json_value_passes_between_nodes_on_the_cluster_as_an_artifact(tmp_path):
    config = Config(db_path=tmp_path / "db.sqlite", load_stdlib=False, executor="dask", concurrency=2,
                    executor_options={"n_workers": 2})
    service = PyflowService(config, build_executor(config)).start()
    try:
        for doc in (MAKE, USE):
            service.upsert("nodespec", doc)
        flow = {"id": "f", "name": "f", "links": [{"source": "a:out", "target": "b:s"}],
                "nodes": [{"id": "a", "spec_id": "t.make", "name": "a", "ports": []},
                          {"id": "b", "spec_id": "t.use", "name": "b", "is_end": True, "ports": []}]}
        run = service.run_now(flow=flow, use_cache=False, timeout=120)
    finally:
        service.close()
    nodes = {n["id"]: n for n in run["nodes"]}
    assert run["status"] == "succeeded", nodes
    assert nodes["b"]["outputs"]["out"] == ["set", [1, 2, 3]]
    made = nodes["a"]["outputs"]["out"]["$artifact"]
    assert made["format"] == "pickle" and nodes["a"]["worker"].startswith("tcp://127.0.0.1:")
    assert list((tmp_path / "artifacts" / "objects").rglob(made["digest"] + "*"))
