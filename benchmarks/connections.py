"""Connections under load (issue 11, item 4): what event-stream followers and slow clients cost.

Why: the exposure issue promises that /api/health answers within a second while 200 clients follow
event streams and 200 more hold slow, unfinished requests, and that streams hold no request thread.
Measured end to end on a real server (a subprocess on a loopback port) driven over raw sockets:

- health latency (median, p99, worst of 30 requests, each on a new connection) with no load, then with
  F followers on one slow run plus 200 sockets trickling an unfinished request;
- event fan-out: when the run ends, the time from its run_finished event (the event's `at`) until the
  last of the F followers has read it;
- the server's threads and resident memory with the followers attached (from /proc).

Side by side, the same load on the previous server, waitress with 32 threads (when waitress is
installed): there each follower holds a thread, so health waits once 32 follow.

    python -m benchmarks.connections
"""

from __future__ import annotations

import json
import os
import re
import resource
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

from benchmarks import busy_warning, fmt, median, percentile, table, verdict

ROOT = Path(__file__).resolve().parents[1]
FOLLOWERS = (0, 200, 1000)
SLOW_CLIENTS = 200
HEALTH_SAMPLES = 30
HEALTH_TIMEOUT_S = 5.0
GOAL_S = 1.0
SERVING = re.compile(r"PyFlow serving (http://[^/ ]+)/")
SLEEP = {"id": "bench.sleep", "title": "sleep", "cache": False,
         "func": "import time\ndef func(s):\n    time.sleep(s)\n    return s\n",
         "port": {"input": [{"name": "s", "type": "Float", "default": 3600}]},
         "limits": {"timeout_s": 3600, "cpu_s": 3600}}


class Server:
    """`pyflow serve`, or the waitress baseline, in a subprocess on a free loopback port."""

    def __init__(self, workdir: Path, kind: str):
        self.workdir, self.kind = workdir, kind
        db = workdir / f"{kind}.db"
        if kind == "tornado":
            cmd = [sys.executable, "-m", "pyflow", "serve", "--port", "0", "--db", str(db), "--no-stdlib",
                   "--executor", executor(), "--max-streams-per-client", "2000", "--header-timeout", "600"]
        else:
            cmd = [sys.executable, "-m", "benchmarks.connections", "--waitress", str(db), executor()]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
                                     text=True, start_new_session=True)
        for line in self.proc.stdout:
            match = SERVING.search(line)
            if match:
                self.host, port = match.group(1).removeprefix("http://").split(":")
                self.port = int(port)
                break
        else:
            raise RuntimeError(f"the {kind} server did not start")
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()

    def connect(self) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout=60)

    def call(self, method: str, path: str, body=None, timeout: float = 60.0):
        payload = b"" if body is None else json.dumps(body).encode()
        with socket.create_connection((self.host, self.port), timeout=timeout) as sock:
            sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                         f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n".encode() + payload)
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        return int(head.split()[1]), rest

    def proc_status(self) -> dict:
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines())
        return {"threads": int(fields["Threads"]), "rss_mib": int(fields["VmRSS"].split()[0]) / 1024}

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def executor() -> str:
    return "sandbox" if shutil.which("bwrap") else "unsafe-process"


def health_latencies(server: Server) -> list[float]:
    times = []
    for _ in range(HEALTH_SAMPLES):
        started = time.perf_counter()
        try:
            status, _ = server.call("GET", "/api/health", timeout=HEALTH_TIMEOUT_S)
            times.append(time.perf_counter() - started if status == 200 else float("inf"))
        except OSError:
            times.append(float("inf"))  # no answer within the timeout
    return times


def follow(server: Server, run_id: str, count: int) -> list[socket.socket]:
    socks = []
    for _ in range(count):
        sock = server.connect()
        sock.sendall(f"GET /api/runs/{run_id}/events HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        socks.append(sock)
    return socks


def slow_clients(server: Server, stop: threading.Event) -> list[socket.socket]:
    socks = []
    for _ in range(SLOW_CLIENTS):
        sock = server.connect()
        sock.sendall(b"POST /api/runs HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        socks.append(sock)

    def trickle():
        while not stop.wait(1.0):
            for sock in socks:
                try:
                    sock.sendall(b"x")
                except OSError:
                    pass
    threading.Thread(target=trickle, daemon=True).start()
    return socks


def fan_out_seconds(followers: list[socket.socket], finish) -> float | None:
    """Cancel the run (`finish`), then wait for every follower to read run_finished: the time from the
    event's `at` to the last arrival, or None when some follower never heard it."""
    selector = selectors.DefaultSelector()
    for sock in followers:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, bytearray())
    try:
        finish()
    except OSError:  # the server could not even take the cancel
        selector.close()
        return None
    pending, stamp, last = len(followers), None, 0.0
    deadline = time.monotonic() + 60
    while pending and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=1):
            try:
                data = key.fileobj.recv(65536)
            except BlockingIOError:
                continue
            key.data.extend(data)
            if b"event: run_finished" in key.data or not data:
                if b"event: run_finished" in key.data:
                    last = time.time()
                    stamp = stamp or re.search(rb'event: run_finished\ndata: .*"at":"([^"]+)"', bytes(key.data))
                pending -= 1
                selector.unregister(key.fileobj)
    selector.close()
    if pending or stamp is None:
        return None
    at = datetime.fromisoformat(stamp.group(1).decode().replace("Z", "+00:00")).timestamp()
    return last - at


def scenario(server: Server, followers: int) -> dict:
    server.call("POST", "/api/nodespecs", SLEEP)
    flow = {"id": "sleep", "name": "sleep", "nodes": [{"id": "n", "spec_id": "bench.sleep", "ports": []}], "links": []}
    server.call("PUT", "/api/flows/sleep", flow)
    print(f"{server.kind}: {followers} followers", flush=True)
    status, body = server.call("POST", "/api/flows/sleep/runs", {})
    run_id = json.loads(body)["id"]
    stop = threading.Event()
    socks = follow(server, run_id, followers)
    slow = slow_clients(server, stop) if followers else []
    time.sleep(1.0)  # let the server take every connection
    row = {"followers": followers, "slow": len(slow), **server.proc_status(), "health": health_latencies(server)}
    row["fan_out"] = fan_out_seconds(socks, lambda: server.call("POST", f"/api/runs/{run_id}/cancel", {},
                                                                 timeout=HEALTH_TIMEOUT_S * 10)) if socks else None
    if not socks:
        server.call("POST", f"/api/runs/{run_id}/cancel", {})
    stop.set()
    for sock in socks + slow:
        sock.close()
    return row


def report(kind: str, rows: list[dict]) -> list[str]:
    def ms(value):
        return "timeout" if value == float("inf") else fmt(value * 1000)
    lines = [table(("followers + slow clients", "threads", "RSS MiB", "health p50 ms", "p99 ms", "worst ms",
                    "fan-out ms"),
                   [(f"{r['followers']} + {r['slow']}", r["threads"], r["rss_mib"], ms(median(r["health"])),
                     ms(percentile(r["health"], 0.99)), ms(max(r["health"])),
                     "-" if r["fan_out"] is None else fmt(r["fan_out"] * 1000)) for r in rows],
                   title=f"{kind}: /api/health while clients follow one run and others trickle requests")]
    loaded = [r for r in rows if r["followers"] == 200]
    if loaded:
        worst = max(loaded[0]["health"])
        lines.append(verdict("health within 1 s under 200 followers and 200 slow clients", worst < GOAL_S,
                             f"worst {ms(worst)}" + ("" if worst == float("inf") else " ms")))
    return lines


def waitress_baseline(db: str, executor_name: str) -> None:
    """The server as it was: waitress, 32 threads, each event stream holding one."""
    from waitress.server import create_server

    from pyflow.server import create_app
    from pyflow.service import Config, PyflowService, build_executor
    config = Config(db_path=Path(db), load_stdlib=False, executor=executor_name)
    service = PyflowService(config, build_executor(config)).start()
    server = create_server(create_app(service), host="127.0.0.1", port=0, threads=32, channel_timeout=300)
    print(f"PyFlow serving http://127.0.0.1:{server.effective_port}/", flush=True)
    server.run()


def main(argv: list[str] | tuple = ()) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard != resource.RLIM_INFINITY and hard < max(FOLLOWERS) * 2 + 100:
        print(f"note: the open file limit ({hard}) is low for {max(FOLLOWERS)} followers")
    kinds = ["tornado"]
    try:
        import waitress  # noqa: F401
        kinds.append("waitress")
    except ImportError:
        print("note: waitress is not installed: no baseline")
    workdir = Path(tempfile.mkdtemp(prefix="pyflow-bench-connections-"))
    blocks = []
    try:
        for kind in kinds:
            server = Server(workdir, kind)
            try:
                counts = FOLLOWERS if kind == "tornado" else FOLLOWERS[:2]
                blocks.append(report(kind, [scenario(server, n) for n in counts]))
            finally:
                server.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if busy_warning():
        print("\n" + busy_warning())
    for block in blocks:
        print()
        print("\n".join(block))
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--waitress":
        waitress_baseline(sys.argv[2], sys.argv[3])
    else:
        sys.exit(main(sys.argv[1:]))
