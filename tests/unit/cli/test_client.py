"""The command line's REST client following a run's events over real HTTP: resuming, errors, giving up."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pyflow.cli import client as client_module
from pyflow.cli.client import Client, RemoteError


def sse(event_id: int, kind: str, data: dict) -> bytes:
    return f"id: {event_id}\nevent: {kind}\ndata: {json.dumps(data)}\n\n".encode()


class EventServer:
    """A loopback HTTP server whose first event stream drops after two events; the next resumes."""

    def __init__(self, chunked: bool = False):
        self.asked_after: list[str | None] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if chunked else "HTTP/1.0"

            def log_message(self, *args):
                pass

            def do_GET(self):
                if not self.path.startswith("/api/runs/r1/"):
                    body = b'{"error": "no run \'nope\'", "details": []}'
                    self.send_response(404)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                owner.asked_after.append(self.headers.get("Last-Event-ID"))
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                if chunked and len(owner.asked_after) == 1:
                    self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                if len(owner.asked_after) == 1:  # the first stream breaks off mid-run
                    part = b"retry: 1000\n\n" + sse(1, "run_started", {}) + sse(2, "node_started", {})
                    part += b"id: 3\nevent: node_fin"
                    # chunked: a chunk announced longer than what arrives, as when a server is killed
                    self.wfile.write(b"%x\r\n" % (len(part) + 100) + part if chunked else part)
                    self.close_connection = True
                    return
                self.wfile.write(sse(3, "node_finished", {"node": "n"}) + sse(4, "run_finished", {"status": "succeeded"}))

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.parametrize("chunked", [False, True], ids=["closed", "cut-mid-chunk"])
def test_a_dropped_stream_is_resumed_from_the_last_event_seen(monkeypatch, chunked):
    monkeypatch.setattr(client_module, "RECONNECT_S", 0.01)
    with EventServer(chunked) as server:
        events = list(Client(server.url, timeout=5).events("r1"))
    assert [(e["id"], e["event"]) for e in events] == [(1, "run_started"), (2, "node_started"),
                                                       (3, "node_finished"), (4, "run_finished")]
    assert server.asked_after == ["0", "2"]


def test_an_unknown_run_is_an_error_not_a_retry_loop():
    with EventServer() as server:
        with pytest.raises(RemoteError) as info:
            list(Client(server.url, timeout=5).events("nope"))
    assert info.value.status == 404 and "nope" in str(info.value)


def test_a_server_that_is_gone_is_given_up_on_after_the_timeout(monkeypatch):
    monkeypatch.setattr(client_module, "RECONNECT_S", 0.01)
    with EventServer() as server:
        url = server.url
    with pytest.raises(RemoteError) as info:
        list(Client(url, timeout=0.3).events("r1"))
    assert info.value.status == 503 and "lost the event stream" in str(info.value)
