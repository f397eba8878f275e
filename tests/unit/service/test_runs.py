"""The run manager in-process: what a caller sees right after a run ends is complete."""

import threading
import time

import pytest

from pyflow.executors.inprocess import InProcessExecutor
from pyflow.model.errors import NotFound
from pyflow.service import Config, PyflowService
from pyflow.storage import SQLiteRepository
from tests.support.waiting import wait_until

SLOW = {"id": "t.slow", "title": "Slow", "func": "import time\ndef func(a):\n    time.sleep(0.06)\n    return a + 1\n",
        "port": {"input": [{"name": "a", "type": "Int"}]}}


class SlowPersister(SQLiteRepository):
    """Writes from the background persister take long, as on a busy disk."""

    def save_progress(self, run_id, events, results):
        if threading.current_thread().name == "pyflow-persist":
            time.sleep(0.3)
        super().save_progress(run_id, events, results)


def test_a_finished_run_has_every_node_result_even_while_the_persister_is_writing(tmp_path):
    config = Config(db_path=tmp_path / "db.sqlite", load_stdlib=False)
    service = PyflowService(config, InProcessExecutor(), SlowPersister(config.db_path)).start()
    try:
        service.upsert("nodespec", SLOW)
        nodes = [{"id": f"n{i}", "spec_id": "t.slow", "ports": [] if i else [{"name": "a", "value": 0}]}
                 for i in range(4)]
        links = [{"source": f"n{i - 1}:out", "target": f"n{i}:a"} for i in range(1, 4)]
        for _ in range(3):
            run = service.run_now(flow={"id": "f", "nodes": nodes, "links": links}, use_cache=False)
            assert [n["id"] for n in run["nodes"]] == ["n0", "n1", "n2", "n3"]
            assert run["status"] == "succeeded" and run["nodes"][-1]["outputs"] == {"out": 4}
    finally:
        service.close()


def test_a_second_process_on_the_same_database_leaves_live_runs_alone(tmp_path):
    config = Config(db_path=tmp_path / "db.sqlite", load_stdlib=False)
    first = PyflowService(config, InProcessExecutor()).start()
    second = None
    try:
        first.upsert("nodespec", {**SLOW, "id": "t.wait",
                                  "func": "import time\ndef func(a):\n    time.sleep(0.5)\n    return a\n"})
        run = first.start_run(flow={"id": "f", "links": [],
                                    "nodes": [{"id": "n", "spec_id": "t.wait", "ports": [{"name": "a", "value": 1}]}]})
        wait_until(lambda: first.repository.get_run(run["id"])["status"] == "running", timeout=5, interval=0.01,
                   fail="the run did not start")
        second = PyflowService(config, InProcessExecutor()).start()  # as `pyflow run` on the same file does
        assert second.repository.get_run(run["id"])["status"] == "running"
        assert first.runs.wait(run["id"], timeout=10)["status"] == "succeeded"
    finally:
        first.close()
        if second is not None:
            second.close()


def test_runs_of_a_dead_process_are_interrupted(tmp_path):
    config = Config(db_path=tmp_path / "db.sqlite", load_stdlib=False)
    repository = SQLiteRepository(config.db_path)
    repository.create_run({"id": "dead", "flow_id": "f", "status": "running", "snapshot": {},
                           "created_at": "t", "owner": None})  # written before runs had owners
    repository.create_run({"id": "gone", "flow_id": "f", "status": "queued", "snapshot": {}, "created_at": "t",
                           "owner": f"{__import__('socket').gethostname()}:999999:1"})
    repository.close()
    service = PyflowService(config, InProcessExecutor()).start()
    try:
        assert service.repository.get_run("gone")["status"] == "interrupted"
        assert service.repository.get_run("dead")["status"] == "interrupted"
    finally:
        service.close()


def test_reruns_of_a_stored_flow_follow_edits_of_the_flow_and_its_nodespec(tmp_path):
    """Plans are reused for an unchanged flow, so every kind of edit must still reach the next run."""
    config = Config(db_path=tmp_path / "db.sqlite", load_stdlib=False)
    service = PyflowService(config, InProcessExecutor()).start()
    try:
        spec = {"id": "t.step", "title": "Step", "func": "def func(a):\n    return a + 1\n",
                "port": {"input": [{"name": "a", "type": "Int"}], "output": [{"name": "out", "type": "Int"}]}}
        service.upsert("nodespec", spec)
        flow = {"id": "f", "links": [], "nodes": [{"id": "n", "spec_id": "t.step", "ports": [{"name": "a", "value": 1}]}]}
        service.upsert("flow", flow)

        def output(**options):
            run = service.runs.wait(service.start_run(flow_id="f", **options)["id"], timeout=10)
            return run["nodes"][0]["outputs"]["out"], run["nodes"][0]["cached"], run["snapshot"]

        assert output()[:2] == (2, False)
        assert output()[:2] == (2, True)
        assert output(values={"n": {"a": 5}})[:2] == (6, False)
        service.upsert("nodespec", {**spec, "func": "def func(a):\n    return a * 10\n"})
        value, cached, snapshot = output()
        assert (value, cached) == (10, False) and "a * 10" in snapshot["nodespec"]["t.step"]["func"]
        service.upsert("flow", {**flow, "nodes": [{**flow["nodes"][0], "ports": [{"name": "a", "value": 3}]}]})
        value, cached, snapshot = output()
        assert (value, cached) == (30, False) and snapshot["flow"]["nodes"][0]["ports"][0]["value"] == 3
        service.delete("flow", "f")
        with pytest.raises(NotFound):
            service.start_run(flow_id="f")
    finally:
        service.close()


def test_the_result_cache_stays_within_its_byte_budget(tmp_path):
    config = Config(db_path=tmp_path / "db.sqlite", load_stdlib=False, cache_mb=1)
    service = PyflowService(config, InProcessExecutor()).start()
    try:
        service.upsert("nodespec", {"id": "t.text", "title": "Text", "func": "def func(n, tag):\n    return tag * n\n",
                                    "port": {"input": [{"name": "n", "type": "Int"}, {"name": "tag", "type": "String"}],
                                             "output": [{"name": "out", "type": "String"}]}})

        def run(n, tag="x"):
            flow = {"id": "f", "links": [], "nodes": [{"id": "t", "spec_id": "t.text",
                                                        "ports": [{"name": "n", "value": n}, {"name": "tag", "value": tag}]}]}
            return service.run_now(flow=flow, timeout=10)["nodes"][0]

        run(200_000)
        assert not run(200_000)["cached"]  # over an eighth of 1 MiB: never kept
        run(50_000)
        assert run(50_000)["cached"]
        for i in range(30):  # 1.5 MB of distinct results in all
            run(50_000, tag=chr(ord("a") + i))
        stored = service.repository._conn().execute("SELECT COUNT(*), SUM(size) FROM cache").fetchone()
        assert stored[1] <= 1024 * 1024 + 1024 * 1024 // 8  # within budget, give or take one prune interval
        assert 10 <= stored[0] < 31
        assert run(50_000, tag=chr(ord("a") + 29))["cached"]  # the most recent ones are the ones kept
    finally:
        service.close()


def test_event_text_is_encoded_after_the_event_is_published_once_and_reads_the_same(tmp_path, monkeypatch):
    """Each node makes two events; publishing one encodes nothing (it is on the path from one node to
    the next): its stream text is encoded once, by the persister, a follower or the run's final flush,
    and what storage keeps and followers read is the same text."""
    import json
    import traceback
    from pyflow.service import runs as runs_module
    encoders = []
    real = runs_module.compact_json_any

    def recording(value):
        encoders.append([frame.name for frame in traceback.extract_stack()])
        return real(value)

    monkeypatch.setattr(runs_module, "compact_json_any", recording)
    config = Config(db_path=tmp_path / "db.sqlite", load_stdlib=False, concurrency=2)
    service = PyflowService(config, InProcessExecutor()).start()
    try:
        service.upsert("nodespec", {**SLOW, "func": "def func(a):\n    return a + 1\n"})
        nodes = [{"id": f"n{i}", "spec_id": "t.slow", "ports": [{"name": "a", "value": i}]} for i in range(6)]
        run = service.run_now(flow={"id": "f", "nodes": nodes, "links": []}, use_cache=False)
        assert run["status"] == "succeeded"
        assert encoders and not [stack for stack in encoders if "_emit" in stack or "make_event" in stack]
        streamed = [event for batch in service.stream(run["id"]) for event in batch]
        stored = service.runs.store.events(run["id"], parse=False)
        assert [e["text"] for e in streamed] == [e["text"] for e in stored] and len(stored) == 15
        assert all(json.loads(e["text"])["at"] == e["at"] for e in stored)
        assert len(encoders) == len(stored)  # once each
    finally:
        service.close()
