"""Runs as first-class objects, against a real server with the real sandbox: asynchronous runs, history,
Server-Sent Events read by a real HTTP client, cancellation, crash recovery, caching, the queue limit."""

import time
from pathlib import Path

import pytest
import requests

from pyflow.cli.client import run_events
from tests.support.server import NO_FORM, LiveServer
from tests.support.timing import scaled
from tests.support.waiting import wait_until

SPECS = [
    {"id": "t.inc", "title": "Inc", "func": "def func(a):\n    return a + 1\n",
     "port": {"input": [{"name": "a", "type": "Int", "required": True}], "output": [{"name": "out", "type": "Int"}]}},
    {"id": "t.slow", "title": "Slow", "func": "import time\ndef func(a, s):\n    time.sleep(s)\n    return a\n",
     "port": {"input": [{"name": "a"}, {"name": "s", "type": "Float", "default": 0.3}]}},
    {"id": "t.spin", "title": "Spin", "func": "def func(a):\n    while True:\n        pass\n",
     "port": {"input": [{"name": "a"}]}, "limits": {"timeout_s": 120, "cpu_s": 120}},
    {"id": "t.add", "title": "Add", "func": "def func(a, b):\n    return a + b\n",
     "port": {"input": [{"name": "a", "type": "Int"}, {"name": "b", "type": "Int", "default": 1}]}},
    {"id": "t.rand", "title": "Random", "cache": False,
     "func": "import random\ndef func():\n    return random.random()\n", "port": {}},
]


def chain(flow_id, length, spec="t.inc", first=0):
    nodes = [{"id": "n0", "spec_id": "t.inc", "ports": [{"name": "a", "value": first}]}]
    nodes += [{"id": f"n{i}", "spec_id": spec, "ports": []} for i in range(1, length)]
    links = [{"source": f"n{i - 1}:out", "target": f"n{i}:a"} for i in range(1, length)]
    return {"id": flow_id, "name": flow_id, "nodes": nodes, "links": links}


def start(server, **extra):
    live = LiveServer(server, args=("--no-stdlib", *extra.pop("args", ())), **extra).start()
    for spec in SPECS:
        assert requests.post(live.url + "/api/nodespecs", json=spec).status_code == 201
    return live


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    live = start(tmp_path_factory.mktemp("runs"))
    yield live
    live.stop()


def submit(live, flow, **body):
    requests.put(f"{live.url}/api/flows/{flow['id']}", json=flow)
    answer = requests.post(f"{live.url}/api/flows/{flow['id']}/runs", json=body)
    assert answer.status_code == 202, answer.text
    assert answer.headers["Location"] == f"/api/runs/{answer.json()['id']}"
    return answer.json()["id"]


def events(live, run_id, last=None, stop_after=None):
    headers = {"Last-Event-ID": str(last)} if last is not None else {}
    with requests.get(f"{live.url}/api/runs/{run_id}/events", headers=headers, stream=True, timeout=60) as resp:
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        got = []
        for event in run_events(resp.iter_content(chunk_size=None)):
            got.append(event)
            if stop_after and len(got) >= stop_after:
                break
        return got


def wait_run(live, run_id, timeout=60):
    def finished():
        run = requests.get(f"{live.url}/api/runs/{run_id}").json()
        return run if run["status"] not in ("queued", "running") else None
    return wait_until(finished, timeout=timeout, interval=0.05, fail=f"run {run_id} did not finish")


def test_async_run_history_and_stored_snapshot(srv):
    run_id = submit(srv, chain("h.flow", 3), cache=False)
    run = wait_run(srv, run_id)
    assert run["status"] == "succeeded" and run["flow_id"] == "h.flow"
    assert [n["outputs"] for n in run["nodes"]] == [{"out": 1}, {"out": 2}, {"out": 3}]
    assert run["snapshot"]["flow"]["id"] == "h.flow" and "t.inc" in run["snapshot"]["nodespec"]
    assert run["started_at"] and run["finished_at"] and run["request"] == {"values": {}, "cache": False}
    listed = requests.get(f"{srv.url}/api/runs", params={"flow": "h.flow", "status": "succeeded"}).json()
    assert listed["runs"][0]["id"] == run_id and listed["total"] >= 1
    assert requests.get(f"{srv.url}/api/runs", params={"status": "bogus"}).status_code == 400
    more = [wait_run(srv, submit(srv, chain("h.flow", 1), cache=False))["id"] for _ in range(3)]
    newest_first = [more[2], more[1], more[0], run_id]
    page1 = requests.get(f"{srv.url}/api/runs", params={"flow": "h.flow", "limit": 2}).json()
    page2 = requests.get(f"{srv.url}/api/runs", params={"flow": "h.flow", "limit": 2, "offset": 2}).json()
    assert [r["id"] for r in page1["runs"] + page2["runs"]] == newest_first
    assert page1["total"] == page2["total"] == 4 and page2["offset"] == 2
    assert requests.delete(f"{srv.url}/api/runs/{run_id}", headers=NO_FORM).status_code == 200
    assert requests.get(f"{srv.url}/api/runs/{run_id}").status_code == 404


def test_inline_run_with_values(srv):
    answer = requests.post(f"{srv.url}/api/runs", json={"flow": chain("inline", 2), "values": {"n0": {"a": 10}}})
    assert answer.status_code == 202
    run = wait_run(srv, answer.json()["id"])
    assert run["nodes"][-1]["outputs"] == {"out": 12}
    assert requests.post(f"{srv.url}/api/runs", json={"values": {}}).status_code == 400


def test_event_stream_and_resuming_it(srv):
    run_id = submit(srv, chain("sse.flow", 4, spec="t.slow"), cache=False)
    first = events(srv, run_id, stop_after=3)  # disconnect mid-run
    assert [e["id"] for e in first] == [1, 2, 3] and first[0]["event"] == "run_queued"
    rest = events(srv, run_id, last=first[-1]["id"])
    ids = [e["id"] for e in first + rest]
    assert ids == list(range(1, len(ids) + 1))  # nothing missed, nothing repeated
    kinds = [e["event"] for e in first + rest]
    assert kinds[1] == "run_started" and kinds[-1] == "run_finished"
    assert kinds.count("node_started") == 4 and kinds.count("node_finished") == 4
    finished = [e["data"] for e in first + rest if e["event"] == "node_finished"]
    assert finished[1]["status"] == "success" and finished[1]["duration_ms"] >= 250
    replay = events(srv, run_id)  # a finished run replays from storage and ends the stream
    assert [e["id"] for e in replay] == ids
    assert [e["id"] for e in events(srv, run_id, last=ids[-2])] == [ids[-1]]
    assert requests.get(f"{srv.url}/api/runs/nope/events").status_code == 404


def test_cancelling_an_infinite_loop_ends_the_run_within_a_second(srv):
    flow = chain("spin.flow", 3, spec="t.spin")
    run_id = submit(srv, flow, cache=False)
    with requests.get(f"{srv.url}/api/runs/{run_id}/events", stream=True, timeout=60) as resp:
        for event in run_events(resp.iter_content(chunk_size=None)):
            if event["event"] == "node_started" and event["data"]["node"] == "n1":
                break
    asked = time.monotonic()
    assert requests.post(f"{srv.url}/api/runs/{run_id}/cancel", headers=NO_FORM).status_code in (200, 202)
    run = wait_run(srv, run_id, timeout=5)
    assert time.monotonic() - asked < scaled(1.0)
    assert run["status"] == "cancelled"
    nodes = {n["id"]: n for n in run["nodes"]}
    assert nodes["n0"]["status"] == "success"
    assert nodes["n1"]["status"] == "cancelled" and nodes["n2"]["status"] == "skipped"
    assert requests.post(f"{srv.url}/api/flows/h.flow/run", json={"cache": False}).json()["status"] == "succeeded"


def test_cache_hits_and_misses_after_value_changes(srv):
    flow = chain("cache.flow", 6, spec="t.add")
    first = wait_run(srv, submit(srv, flow))
    assert not any(n["cached"] for n in first["nodes"])
    again = wait_run(srv, submit(srv, flow))
    assert all(n["cached"] for n in again["nodes"]) and again["nodes"][-1]["outputs"] == {"out": 6}
    flow["nodes"][0]["ports"] = [{"name": "a", "value": 100}]
    changed = wait_run(srv, submit(srv, flow))
    assert not any(n["cached"] for n in changed["nodes"]) and changed["nodes"][-1]["outputs"] == {"out": 106}
    middle = wait_run(srv, submit(srv, flow, values={"n3": {"b": 1000}}))
    assert [n["cached"] for n in middle["nodes"]] == [True, True, True, False, False, False]
    assert middle["nodes"][-1]["outputs"] == {"out": 1105}
    off = wait_run(srv, submit(srv, flow, cache=False))
    assert not any(n["cached"] for n in off["nodes"])


def test_uncached_nodespec_always_runs_and_so_does_its_downstream(srv):
    flow = {"id": "rand.flow", "name": "r", "nodes": [
        {"id": "r", "spec_id": "t.rand", "ports": []}, {"id": "s", "spec_id": "t.slow", "ports": [{"name": "s", "value": 0}]},
        {"id": "i", "spec_id": "t.inc", "ports": [{"name": "a", "value": 1}]}],
        "links": [{"source": "r:out", "target": "s:a"}]}
    wait_run(srv, submit(srv, flow))
    second = {n["id"]: n for n in wait_run(srv, submit(srv, flow))["nodes"]}
    assert not second["r"]["cached"] and not second["s"]["cached"] and second["i"]["cached"]


def test_queue_full_answers_429_and_queued_runs_can_be_cancelled(tmp_path):
    live = start(tmp_path / "q", args=("--max-running", "1", "--max-queue", "1"))
    try:
        busy = submit(live, chain("busy", 2, spec="t.spin"), cache=False)
        queued = submit(live, chain("queued", 2), cache=False)
        full = requests.post(f"{live.url}/api/flows/queued/runs", json={})
        assert full.status_code == 429 and int(full.headers["Retry-After"]) >= 1
        assert "queue is full" in full.json()["error"]
        assert requests.post(f"{live.url}/api/runs/{queued}/cancel", headers=NO_FORM).json()["status"] == "cancelled"
        assert wait_run(live, queued)["status"] == "cancelled"
        requests.post(f"{live.url}/api/runs/{busy}/cancel", headers=NO_FORM)
        assert wait_run(live, busy)["status"] == "cancelled"
    finally:
        live.stop()


def descendants(pid):
    """Every process below `pid` (its sandboxes and their workers), read from /proc."""
    found, queue = [], [pid]
    while queue:
        parent = queue.pop()
        try:
            tasks = list(Path(f"/proc/{parent}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            found += children
            queue += children
    return found


def alive(pid):
    """Running, as opposed to gone or a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_killing_the_server_mid_run_interrupts_the_run(tmp_path):
    live = start(tmp_path / "crash")
    run_id = submit(live, chain("crash", 3, spec="t.spin"), cache=False)
    with requests.get(f"{live.url}/api/runs/{run_id}/events", stream=True, timeout=60) as resp:
        for event in run_events(resp.iter_content(chunk_size=None)):
            if event["event"] == "node_started" and event["data"]["node"] == "n1":
                break
    sandboxes = descendants(live.proc.pid)
    assert any("worker.py" in Path(f"/proc/{p}/cmdline").read_text() for p in sandboxes if alive(p))
    live.kill()
    wait_until(lambda: not [p for p in sandboxes if alive(p)], timeout=5, fail="sandboxes outlived their server")
    restarted = LiveServer(tmp_path / "crash", args=("--no-stdlib",)).start()
    try:
        run = requests.get(f"{restarted.url}/api/runs/{run_id}").json()
        assert run["status"] == "interrupted" and "stopped while the run was running" in run["reason"]
        replay = events(restarted, run_id)
        assert replay[-1]["event"] == "run_finished" and replay[-1]["data"]["status"] == "interrupted"
        # A client may have seen events that never reached the database before the crash: resuming
        # from beyond the last stored one still hears how the run ended.
        stored = replay[-2]["id"] if len(replay) > 1 else 0
        beyond = events(restarted, run_id, last=stored + 50)
        assert [e["event"] for e in beyond] == ["run_finished"]
    finally:
        restarted.stop()


def test_retention_keeps_the_newest_runs(tmp_path):
    live = start(tmp_path / "ret", args=("--retention", "2"))
    try:
        ids = [wait_run(live, submit(live, chain("ret", 1), cache=False))["id"] for _ in range(4)]
        kept = [r["id"] for r in requests.get(f"{live.url}/api/runs", params={"flow": "ret"}).json()["runs"]]
        assert kept == ids[:1:-1]
    finally:
        live.stop()
