"""Where a sandboxed node's time goes (issue 18): the same 1,000-node chain and wide flows measured
through each layer in turn, so the difference between two rows is what the added layer costs per node.

Layers, each a superset of the one before:

1. engine, in-process: compile + schedule + call the function in this process (no isolation);
2. engine + sandbox: the same with the warm sandbox pool (fork of the zygote, pipes, frames, limits);
3. service: a run through PyflowService (run thread, events, their persistence and the node results in
   SQLite), still no HTTP;
4. REST: POST /api/run to a live server (HTTP, JSON of the flow and of the answer).

Plus the sandbox alone: one node run through the executor directly, repeated (the round trip a node
pays with no engine around it).

    python -m benchmarks.breakdown [--quick]
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from time import perf_counter

from benchmarks import busy_warning, median, table
from benchmarks.engine import expected_values, flow_doc, pyflow_specs

SIZES = {"chain": 1000, "wide": 1000}
ROUNDS = 3


def _per_node_us(seconds: float, n: int) -> float:
    return seconds / n * 1e6


def engine_layer(executor, shape: str, n: int) -> float:
    from pyflow.engine import RunOptions, compile_flow, run_flow
    specs = pyflow_specs()
    started = perf_counter()
    outcome = run_flow(compile_flow(flow_doc(shape, n), specs), executor, RunOptions(use_cache=False))
    elapsed = perf_counter() - started
    assert outcome.status == "succeeded", outcome.status
    return _per_node_us(elapsed, n)


def service_layer(service, shape: str, n: int) -> float:
    doc = flow_doc(shape, n)
    started = perf_counter()
    run = service.run_now(flow=doc, use_cache=False)
    elapsed = perf_counter() - started
    assert run["status"] == "succeeded", run.get("reason")
    return _per_node_us(elapsed, n)


_CONNECTIONS: dict = {}


def post_json(url: str, path: str, payload, headers: dict | None = None) -> tuple[int, bytes]:
    """POST `payload` as JSON on one keep-alive connection per server, as the editor and the command
    line keep theirs, with the standard library's client: a bare requests.post builds a session, reads
    the environment and ~/.netrc and connects on every call, which costs the client a millisecond or
    more that the server never sees."""
    import http.client
    from urllib.parse import urlsplit
    parts = urlsplit(url)
    conn = _CONNECTIONS.get(parts.netloc)
    if conn is None:
        conn = _CONNECTIONS[parts.netloc] = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)
    body = json.dumps(payload).encode("utf-8")
    conn.request("POST", path, body=body, headers={**(headers or {}), "Content-Type": "application/json"})
    answer = conn.getresponse()
    return answer.status, answer.read()


def rest_layer(url: str, shape: str, n: int, headers: dict | None = None, answers: list | None = None) -> float:
    """Microseconds per node of POST /api/run (synchronous, cache off); each JSON answer is appended to
    `answers` when given."""
    doc = {"flow": flow_doc(shape, n), "cache": False}
    started = perf_counter()
    status, text = post_json(url, "/api/run", doc, headers)
    elapsed = perf_counter() - started
    answer = json.loads(text) if status == 200 else None
    assert answer is not None and answer["status"] == "succeeded", text[:300]
    if answers is not None:
        answers.append(answer)
    return _per_node_us(elapsed, n)


def sandbox_alone(executor, count: int = 300) -> float:
    from pyflow.engine.execution import NodeTask
    task = NodeTask("n", "n", "bench.inc", "def func(a):\n    return a + 1\n", [1], ["a"])
    times = []
    for _ in range(count):
        started = perf_counter()
        outcome = executor.run(task)
        times.append(perf_counter() - started)
        assert outcome.ok
    return median(times) * 1e6


def _descendants(pid: int) -> list[int]:
    """Every process below `pid` (a sandbox's launcher: bwrap, then the zygote inside)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{current}/task/{tid}/children") as fh:
                    kids = [int(k) for k in fh.read().split()]
            except OSError:
                continue
            found += kids
            todo += kids
    return found


def _tree_usage(pids: list[int]) -> tuple[float, float, int, int]:
    """(own CPU s, reaped children's CPU s, own minor faults, children's minor faults) summed over pids."""
    tick = os.sysconf("SC_CLK_TCK")
    own = kids = own_faults = kid_faults = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        own_faults, kid_faults = own_faults + int(fields[7]), kid_faults + int(fields[8])
        own, kids = own + (int(fields[11]) + int(fields[12])) / tick, kids + (int(fields[13]) + int(fields[14])) / tick
    return own, kids, own_faults, kid_faults


def cpu_per_node(executor, count: int = 1000) -> dict:
    """CPU and page faults per node, by process: the host (this process), the zygotes and the node
    processes they forked. Unlike wall time, these hardly move when the machine is busy."""
    from pyflow.engine.execution import NodeTask
    task = NodeTask("n", "n", "bench.inc", "def func(a):\n    return a + 1\n", [1], ["a"])
    executor.run(task)
    for _ in range(3):  # a sandbox replaced meanwhile (its run count reached) would hide its runs' usage
        zygotes = _zygotes(executor)
        before, host = _tree_usage(zygotes), time.process_time()
        for _ in range(count):
            assert executor.run(task).ok
        host = time.process_time() - host
        after = _tree_usage(zygotes)
        if _zygotes(executor) == zygotes:
            break
    delta = [(a - b) / count for a, b in zip(after, before)]
    return {"host_us": host / count * 1e6, "zygote_us": delta[0] * 1e6, "node_us": delta[1] * 1e6,
            "zygote_faults": delta[2], "node_faults": delta[3]}


def _zygotes(executor) -> list[int]:
    return sorted(p for w in executor.live_pids() for p in _descendants(w))


def _bench_specs_bundle() -> dict:
    return {"nodespec": {spec.id: spec.doc for spec in pyflow_specs().values()}, "flow": {}}


@contextmanager
def rest_server(workdir: Path, concurrency: int = 2):
    """A real `pyflow serve` with the default (sandbox) executor on a free loopback port, the bench
    nodespecs imported; yields the LiveServer (its url and headers)."""
    import requests
    from tests.support.server import LiveServer
    live = LiveServer(workdir, executor="sandbox", args=("--no-stdlib", "--concurrency", str(concurrency)))
    with live:
        answer = requests.post(live.url + "/api/repository/import", json=_bench_specs_bundle(),
                               headers=live.headers(), timeout=60)
        answer.raise_for_status()
        yield live


def main(argv=None) -> int:
    from pyflow.executors import create_executor
    from pyflow.service import Config, PyflowService

    quick = "--quick" in (argv or sys.argv[1:])
    sizes = {shape: (200 if quick else n) for shape, n in SIZES.items()}
    inprocess, sandbox = create_executor("inprocess"), create_executor("sandbox", pool_size=2)
    sandbox.start()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        service = PyflowService(Config(db_path=Path(tmp) / "svc.db", load_stdlib=False, concurrency=2), sandbox).start()
        service.import_bundle(_bench_specs_bundle(), "merge")
        with rest_server(Path(tmp) / "rest") as live:
            for shape, n in sizes.items():
                samples = {k: [] for k in ("engine", "sandbox", "service", "rest")}
                for _ in range(ROUNDS):  # interleaved: a busy moment slows every layer alike
                    samples["engine"].append(engine_layer(inprocess, shape, n))
                    samples["sandbox"].append(engine_layer(sandbox, shape, n))
                    samples["service"].append(service_layer(service, shape, n))
                    samples["rest"].append(rest_layer(live.url, shape, n, live.headers()))
                rows[shape] = {k: median(v) for k, v in samples.items()}
        alone = sandbox_alone(sandbox)
        usage = cpu_per_node(sandbox, 300 if quick else 1000)
        service.close()  # closes the sandbox executor too
    sandbox.close()
    report(rows, sizes, alone)
    report_usage(usage)
    return 0


def report(rows: dict, sizes: dict, alone: float) -> None:
    lines = []
    for shape, r in rows.items():
        lines.append((f"{shape} of {sizes[shape]:,}", r["engine"], r["sandbox"] - r["engine"],
                      r["service"] - r["sandbox"], r["rest"] - r["service"], r["rest"]))
    print(table(("flow", "engine in-process", "+ sandbox", "+ service (events, SQLite)", "+ HTTP", "REST total"),
                lines, f"Per node, microseconds, median of {ROUNDS} interleaved rounds (concurrency 2)"))
    print(f"\nOne node through the warm sandbox alone (no engine): {alone:,.0f} us (median of 300)")
    warning = busy_warning()
    if warning:
        print(warning)


def report_usage(usage: dict) -> None:
    print()
    print(table(("process", "CPU per node, us", "minor page faults per node"),
                [("host (executor side)", usage["host_us"], "-"),
                 ("zygote (fork, collect, clean up)", usage["zygote_us"], usage["zygote_faults"]),
                 ("node process (from fork to exit)", usage["node_us"], usage["node_faults"])],
                "Where the sandbox's CPU goes: one node after another on a pool of 2 (summed over "
                "processes, so a busy machine hardly moves it)"))


if __name__ == "__main__":
    raise SystemExit(main())
