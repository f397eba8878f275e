"""Event streams on the event loop, in-process: many followers on a pool of two request threads, with the
wire format, heartbeats and resuming of the plain WSGI view."""

import asyncio
import socket
import threading
import time

import pytest
import requests

from pyflow.cli.sse import iter_events
from pyflow.executors.inprocess import InProcessExecutor
from pyflow.server import create_app
from pyflow.server.serving import Limits, serve_until
from pyflow.service import Config, PyflowService
from tests.support.timing import scaled
from tests.support.waiting import wait_until

NAP = {"id": "t.nap", "title": "Nap", "func": "import time\ndef func(s):\n    time.sleep(s)\n    return s\n",
       "port": {"input": [{"name": "s", "type": "Float"}]}}
FLOW = {"id": "naps", "name": "naps", "links": [{"source": "a:out", "target": "b:s"}],
        "nodes": [{"id": "a", "spec_id": "t.nap", "ports": [{"name": "s", "value": 0.8}]},
                  {"id": "b", "spec_id": "t.nap", "ports": []}]}


class Served:
    """The server layer on its own loop in a thread, in front of a real service."""

    def __init__(self, tmp_path, limits: Limits):
        self.service = PyflowService(Config(db_path=tmp_path / "db.sqlite", load_stdlib=False),
                                     InProcessExecutor()).start()
        self.service.upsert("nodespec", NAP)
        self.service.upsert("flow", FLOW)
        self.app = create_app(self.service)
        self.port = None
        self.loop = self.stop = None
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main(limits)), daemon=True)
        self.thread.start()
        wait_until(lambda: self.port, timeout=10, fail="the server did not start")
        self.url = f"http://127.0.0.1:{self.port}"

    async def _main(self, limits):
        self.loop, self.stop = asyncio.get_running_loop(), asyncio.Event()
        await serve_until(self.app, self.service.runs, "127.0.0.1", 0, limits, self._listening, self.stop)

    def _listening(self, port):
        self.port = port

    def close(self):
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(timeout=10)
        self.service.close()


@pytest.fixture
def served(tmp_path):
    server = Served(tmp_path, Limits(threads=2, keepalive_s=0.2, streams_per_client=100))
    yield server
    server.close()


def read_stream(url: str, headers: dict, into: list, opened: threading.Event | None = None) -> None:
    with requests.get(url, headers=headers, stream=True, timeout=60) as answer:
        assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/event-stream")
        assert "X-Pyflow-Stream" not in answer.headers and answer.headers["Cache-Control"] == "no-cache"
        if opened is not None:
            opened.set()
        for chunk in answer.iter_content(chunk_size=None):
            into.append(chunk)


def test_fifty_followers_on_two_request_threads_hear_the_same_events_as_the_wsgi_view(served):
    run_id = served.service.start_run(flow_id="naps", use_cache=False)["id"]
    url = f"{served.url}/api/runs/{run_id}/events"
    streams = [[] for _ in range(50)]
    opened = [threading.Event() for _ in streams]
    readers = [threading.Thread(target=read_stream, args=(url, {}, chunks, event))
               for chunks, event in zip(streams, opened)]
    for reader in readers:
        reader.start()
    for event in opened:
        assert event.wait(scaled(10)), "a follower was not admitted while others held their streams"
    assert requests.get(f"{served.url}/api/health", timeout=scaled(1.0)).status_code == 200
    for reader in readers:
        reader.join(timeout=60)
    replay = served.app.test_client().get(f"/api/runs/{run_id}/events").get_data()  # the plain WSGI view
    expected = list(iter_events([replay]))
    assert [e.event for e in expected][-1] == "run_finished" and len(expected) >= 6
    for chunks in streams:
        raw = b"".join(chunks)
        assert raw.startswith(b"retry: 1000\n\n") and b": keepalive\n\n" in raw  # the heartbeat of a quiet run
        assert list(iter_events([raw])) == expected


def test_resuming_after_last_event_id_on_a_live_and_a_finished_run(served):
    run_id = served.service.start_run(flow_id="naps", use_cache=False)["id"]
    url = f"{served.url}/api/runs/{run_id}/events"
    live: list = []
    read_stream(url, {"Last-Event-ID": "2"}, live)
    resumed = list(iter_events([b"".join(live)]))
    assert resumed[0].id == "3" and resumed[-1].event == "run_finished"
    stored: list = []
    read_stream(url, {"Last-Event-ID": "2"}, stored)
    assert list(iter_events([b"".join(stored)])) == resumed
    assert requests.get(url, headers={"Last-Event-ID": "x"}).status_code == 400
    head = requests.head(url, timeout=scaled(5))  # the headers only, never a stream
    assert head.status_code == 200 and head.headers["Content-Type"].startswith("text/event-stream")
    assert requests.get(f"{served.url}/api/runs/nope/events").json()["error"]


def test_a_follower_that_leaves_stops_listening_to_the_run(served):
    run_id = served.service.start_run(flow_id="naps", use_cache=False)["id"]
    live = served.service.runs._live[run_id]
    with requests.get(f"{served.url}/api/runs/{run_id}/events", stream=True, timeout=60) as first, \
            requests.get(f"{served.url}/api/runs/{run_id}/events", stream=True, timeout=60) as second:
        assert first.status_code == second.status_code == 200
        wait_until(lambda: len(live.listeners) == 1, timeout=scaled(5), fail="followers of one run share a listener")
    wait_until(lambda: not live.listeners, timeout=scaled(5), fail="a run kept a listener after its followers left")
    served.service.runs.wait(run_id, timeout=30)


def test_a_follower_that_stops_reading_is_cut(served):
    # Each node's event carries its 100 KB error message: 8 MB in all, more than the sockets hold.
    loud = {"id": "t.loud", "title": "Loud", "func": "def func():\n    raise ValueError('x' * 100000)\n", "port": {}}
    served.service.upsert("nodespec", loud)
    nodes = [{"id": f"n{i}", "spec_id": "t.loud", "ports": []} for i in range(80)]
    served.service.upsert("flow", {"id": "wide", "name": "wide", "nodes": nodes, "links": []})
    run_id = served.service.start_run(flow_id="wide", use_cache=False)["id"]
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)  # a client that reads nothing
        sock.settimeout(scaled(10))
        sock.connect(("127.0.0.1", served.port))
        sock.sendall(f"GET /api/runs/{run_id}/events HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        served.service.runs.wait(run_id, timeout=60)
        time.sleep(2.0)  # the client stays away for ten heartbeat periods: the condition under test
        data = b""
        while chunk := sock.recv(65536):  # a cut connection ends; a finished stream would stay open
            data += chunk
    assert data.startswith(b"HTTP/1.1 200") and b"event: run_finished" not in data and not data.endswith(b"0\r\n\r\n")
