"""The connection layer of `pyflow serve`, against a real server on a loopback port: event streams that
hold no request thread, a per-address cap on them, header and body deadlines, and body limits enforced
before the body is read."""

import ipaddress
import json
import resource
import socket
import threading
import time
from pathlib import Path

import pytest
import requests

from pyflow.server.serving import client_address
from tests.support.server import NO_FORM, LiveServer
from tests.support.timing import scaled
from tests.support.waiting import wait_until

SLOW = {"id": "t.sleep", "title": "Sleep", "func": "import time\ndef func(s):\n    time.sleep(s)\n    return s\n",
        "port": {"input": [{"name": "s", "type": "Float", "default": 60}]},
        "limits": {"timeout_s": 300, "cpu_s": 300}}
QUICK = {"id": "t.one", "title": "One", "func": "def func():\n    return 1\n", "port": {}}


def raise_open_file_limit() -> None:
    """Hundreds of sockets on both ends: take the soft limit up to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def start(workdir: Path, *args: str) -> LiveServer:
    live = LiveServer(workdir, args=("--no-stdlib", *args)).start()
    for spec in (SLOW, QUICK):
        assert requests.post(live.url + "/api/nodespecs", json=spec).status_code == 201
    for flow_id, spec in (("slow", "t.sleep"), ("quick", "t.one")):
        flow = {"id": flow_id, "name": flow_id, "nodes": [{"id": "n", "spec_id": spec, "ports": []}], "links": []}
        assert requests.put(f"{live.url}/api/flows/{flow_id}", json=flow).status_code in (200, 201)
    return live


def start_run(live: LiveServer, flow_id: str) -> str:
    answer = requests.post(f"{live.url}/api/flows/{flow_id}/runs", json={"cache": False})
    assert answer.status_code == 202, answer.text
    return answer.json()["id"]


def address(live: LiveServer) -> tuple[str, int]:
    host, port = live.url.removeprefix("http://").split(":")
    return host, int(port)


def connect(live: LiveServer, timeout: float = 60) -> socket.socket:
    return socket.create_connection(address(live), timeout=timeout)


def read_until(sock: socket.socket, marker: bytes, limit: int = 1 << 20) -> bytes:
    data = b""
    while marker not in data and len(data) < limit:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def follow(live: LiveServer, run_id: str, forwarded_for: str | None = None) -> socket.socket:
    """An event-stream follower on a raw socket, once the server has begun its stream."""
    sock = connect(live)
    extra = f"X-Forwarded-For: {forwarded_for}\r\n" if forwarded_for else ""
    sock.sendall(f"GET /api/runs/{run_id}/events HTTP/1.1\r\nHost: localhost\r\n{extra}\r\n".encode())
    head = read_until(sock, b"retry: 1000")
    assert head.startswith(b"HTTP/1.1 200") and b"retry: 1000" in head, head[:300]
    return sock


def health_latency(live: LiveServer) -> float:
    started = time.monotonic()
    answer = requests.get(f"{live.url}/api/health", timeout=60)
    assert answer.status_code == 200
    return time.monotonic() - started


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server has closed the connection (end of stream, or a reset)."""
    try:
        while sock.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return True


def test_health_and_runs_go_on_under_200_followers_and_200_slow_clients(tmp_path):
    raise_open_file_limit()
    live = start(tmp_path, "--max-streams-per-client", "1000", "--header-timeout", "600")
    followers, slow = [], []
    stop_trickle = threading.Event()
    try:
        slow_run = start_run(live, "slow")
        followers = [follow(live, slow_run) for _ in range(200)]
        for _ in range(200):
            sock = connect(live)
            sock.sendall(b"POST /api/runs HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
            slow.append(sock)

        def trickle():
            while not stop_trickle.wait(0.5):
                for sock in slow:
                    sock.sendall(b"x")

        threading.Thread(target=trickle, daemon=True).start()
        latencies = [health_latency(live) for _ in range(5)]
        assert max(latencies) < scaled(1.0), latencies
        quick = start_run(live, "quick")
        run = wait_until(lambda: (r := requests.get(f"{live.url}/api/runs/{quick}").json())["status"] == "succeeded"
                         and r, timeout=scaled(10), fail="a run did not complete beside the held connections")
        assert run["nodes"][0]["outputs"] == {"out": 1}
        assert requests.post(f"{live.url}/api/runs/{slow_run}/cancel", headers=NO_FORM).status_code in (200, 202)
        for sock in followers:  # every follower hears the end of the run
            assert b"event: run_finished" in read_until(sock, b"event: run_finished")
    finally:
        stop_trickle.set()
        for sock in followers + slow:
            sock.close()
        live.stop()


def test_open_streams_per_client_are_capped_with_429(tmp_path):
    live = start(tmp_path, "--max-streams-per-client", "2")
    try:
        run_id = start_run(live, "slow")
        first, second = follow(live, run_id), follow(live, run_id)
        refused = requests.get(f"{live.url}/api/runs/{run_id}/events", timeout=30)
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
        assert "2 open event streams" in refused.json()["error"] and refused.json()["details"] == []
        first.close()

        def admitted():
            with requests.get(f"{live.url}/api/runs/{run_id}/events", stream=True, timeout=30) as answer:
                return answer.status_code == 200
        wait_until(admitted, timeout=scaled(5), fail="a closed stream was not released")
        second.close()
        requests.post(f"{live.url}/api/runs/{run_id}/cancel", headers=NO_FORM)
    finally:
        live.stop()


def refused_stream(live: LiveServer, run_id: str, forwarded_for: str) -> int:
    return requests.get(f"{live.url}/api/runs/{run_id}/events", headers={"X-Forwarded-For": forwarded_for},
                        timeout=30).status_code


def test_behind_a_trusted_proxy_the_stream_cap_counts_each_forwarded_client(tmp_path):
    """Every client of a reverse proxy arrives from the proxy's address: the cap would count them as one.
    From a --trusted-proxy, the client is the nearest address in X-Forwarded-For that is not a proxy."""
    live = start(tmp_path, "--max-streams-per-client", "1", "--trusted-proxy", "127.0.0.0/8",
                 "--trusted-proxy", "10.9.9.9")
    try:
        run_id = start_run(live, "slow")
        streams = [follow(live, run_id, "192.0.2.1"), follow(live, run_id, "198.51.100.7, 10.9.9.9"),
                   follow(live, run_id, "not-an-address")]  # unreadable: the proxy itself is the client
        assert refused_stream(live, run_id, "192.0.2.1") == 429
        assert refused_stream(live, run_id, "203.0.113.5, 198.51.100.7") == 429  # a made-up first hop is not it
        assert refused_stream(live, run_id, "") == 429
        for sock in streams:
            sock.close()
        requests.post(f"{live.url}/api/runs/{run_id}/cancel", headers=NO_FORM)
    finally:
        live.stop()


@pytest.mark.parametrize("peer, forwarded, client", [
    ("127.0.0.1", ["192.0.2.1"], "192.0.2.1"),
    ("127.0.0.1", ["192.0.2.1, 10.0.0.5"], "192.0.2.1"),  # through two proxies
    ("127.0.0.1", ["203.0.113.9, 192.0.2.1"], "192.0.2.1"),  # the client's own claim is left of its address
    ("127.0.0.1", ["192.0.2.1", "10.0.0.5"], "192.0.2.1"),  # the header twice reads as one list
    ("127.0.0.1", ["10.0.0.5"], "10.0.0.5"),  # only proxies: the farthest one
    ("127.0.0.1", [], "127.0.0.1"),
    ("127.0.0.1", ["192.0.2.1, junk"], "127.0.0.1"),  # unreadable nearest entry: the proxy is the client
    ("192.0.2.50", ["198.51.100.1"], "192.0.2.50"),  # not from a trusted proxy: the header is ignored
    ("::1", ["2001:db8::7"], "2001:db8::7"),
])
def test_the_client_address_is_read_from_the_nearest_hop_that_is_not_a_trusted_proxy(peer, forwarded, client):
    trusted = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1"))
    assert client_address(peer, forwarded, trusted) == client


def test_without_trusted_proxies_x_forwarded_for_is_ignored(tmp_path):
    live = start(tmp_path, "--max-streams-per-client", "1")
    try:
        run_id = start_run(live, "slow")
        stream = follow(live, run_id, "192.0.2.1")
        assert refused_stream(live, run_id, "192.0.2.2") == 429
        stream.close()
        requests.post(f"{live.url}/api/runs/{run_id}/cancel", headers=NO_FORM)
    finally:
        live.stop()


def test_unfinished_headers_and_bodies_are_cut_after_the_timeouts(tmp_path):
    live = start(tmp_path, "--header-timeout", "1", "--body-timeout", "1")
    try:
        idle, partial, body = connect(live), connect(live), connect(live)
        partial.sendall(b"GET /api/health HTTP/1.1\r\nHost: localhost\r\n")
        body.sendall(b"POST /api/runs HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{\"flow\":")
        started = time.monotonic()
        for sock in (idle, partial, body):
            assert closed_by_server(sock)
        assert time.monotonic() - started < scaled(5)
        assert requests.get(f"{live.url}/api/health").status_code == 200  # a prompt client is served
    finally:
        live.stop()


def test_a_declared_body_over_the_limit_is_refused_before_it_is_read(tmp_path):
    live = start(tmp_path, "--max-body-mb", "1")
    try:
        sock = connect(live)
        sock.sendall(b"POST /api/runs HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 314572800\r\n\r\n{\"flow\": ")
        started = time.monotonic()
        answer = read_until(sock, b"}]}")
        assert time.monotonic() - started < scaled(2)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 413"), head
        assert b"application/json" in head
        assert json.loads(body)["error"] == "the request body is larger than 1 MiB"
        assert closed_by_server(sock)
        ok = requests.post(f"{live.url}/api/runs", json={"flow": {"id": "x", "nodes": [], "links": []}})
        assert ok.status_code != 413
    finally:
        live.stop()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_chunked_body_is_cut_at_the_limit(tmp_path):
    live = start(tmp_path, "--max-body-mb", "1")
    try:
        before = rss_kib(live.proc.pid)
        sock = connect(live, timeout=30)
        sock.sendall(b"POST /api/runs HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        piece = b"%x\r\n%s\r\n" % (65536, b" " * 65536)
        total, sent = 256 * 1024 * 1024, 0
        with pytest.raises(OSError):  # the server stops reading: a reset, a broken pipe or a stall
            while sent < total:
                sock.sendall(piece)
                sent += 65536
        assert sent < total / 4
        grown_mib = (rss_kib(live.proc.pid) - before) / 1024
        assert grown_mib < 32, f"the server grew by {grown_mib:.0f} MiB for a body cut at 1 MiB"
        assert requests.get(f"{live.url}/api/health").status_code == 200
    finally:
        live.stop()


def test_a_chunked_body_over_the_limit_gets_413_when_the_client_waits(tmp_path):
    live = start(tmp_path, "--max-body-mb", "1")
    try:
        sock = connect(live, timeout=30)
        sock.sendall(b"POST /api/runs HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        for _ in range(20):  # 1.25 MiB, then the client stops sending and reads
            sock.sendall(b"%x\r\n%s\r\n" % (65536, b" " * 65536))
        assert read_until(sock, b"\r\n\r\n").startswith(b"HTTP/1.1 413")
    finally:
        live.stop()
