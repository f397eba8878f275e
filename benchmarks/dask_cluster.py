"""PyFlow on Dask against the local pool and against bare Dask (issue 15, item 7).

Why: a cluster adds a network hop and a scheduler to every node; it pays off only when nodes are costly
enough that more machines win back more than the hop costs. This measures, side by side in one run and
round by round (interleaved, medians), on the same two flows:

- a wide flow of 200 independent CPU-bound nodes (each burns a fixed amount of its own CPU time), at a
  few node costs;
- a chain of 1,000 trivial nodes (each adds one to the one before): pure per-node latency.

Contenders:

- local pool: the sandbox executor's warm pool as `pyflow serve` builds it (2 sandboxes, concurrency 2);
- PyFlow on Dask: the "dask" executor with its LocalCluster of 2 worker processes (one sandbox slot
  each) on loopback, the engine keeping 8 nodes in flight (4 per slot: a node waits queued on its
  worker while the one before runs, as Dask queues tasks, instead of a round trip after each);
- bare Dask: the same DAG of plain Python functions submitted at once to the same cluster (no engine,
  no sandbox): what the engine PyFlow uses costs by itself;
- stepwise Dask: the same plain functions used as an engine that settles every node before its
  successors uses Dask (PyFlow's engine decides skips, conversions and caching between nodes): each
  task submitted once its input is known and its result fetched, at most 8 in flight;
- in-process: the node functions called in this process (the work's own cost).

All of them share this machine's cores, so the cluster here is no faster than the local pool: what the
run measures is the overhead per node of each. From that, the node cost at which a cluster of m such
machines pays off: with per-node overheads o_local and o_dask (ms per node per slot), m machines beat
one when c + o_dask < m (c + o_local), so c > (o_dask - m o_local) / (m - 1).
The server's own CPU time per node (engine, Dask client) does not spread over machines: it bounds a
cluster's throughput, and is printed too.

Goal: PyFlow on Dask within 1.5x of bare Dask per node, plus the sandbox's own overhead (the local pool's
overhead per node over in-process, measured in the same run). The goal table shows, per flow, PyFlow on
Dask's cost per node less the sandbox's own overhead, divided by bare Dask's: at most 1.5x meets it.
For the chain that is wall ms per node; for the wide flow, the overhead per node per slot (beyond the
node's own work) at the cheapest node cost.

    python -m benchmarks.dask_cluster [--quick]      # about 3 minutes; --quick (one round) about 1
"""

from __future__ import annotations

import os
import sys
import time
from time import perf_counter
from typing import Sequence

from benchmarks import busy_warning, median, table, verdict

WIDE = 200
CHAIN = 1_000
WARM_UP = 50
COSTS_MS = (0, 10)  # CPU ms each wide node burns: overhead alone, and work that a cluster could spread
QUICK_COSTS_MS = (0,)
ROUNDS = 3
QUICK_ROUNDS = 1
SLOTS = 2
IN_FLIGHT = 4 * SLOTS  # PyFlow's --concurrency on the cluster (README: the cluster's slots, or more)
GOAL_RATIO = 1.5
MACHINES = (2, 4)
RATIOS = ("local pool", "bare Dask", "stepwise Dask")

BURN = ("def func(ms):\n    import time\n    end = time.thread_time() + ms / 1000\n"
        "    while time.thread_time() < end:\n        pass\n    return ms\n")
INC = "def func(a):\n    return a + 1\n"
SOURCE = "def func():\n    return 0\n"


# --------------------------------------------------------------------------------------- plain functions


def burn(ms: float) -> float:
    end = time.thread_time() + ms / 1000
    while time.thread_time() < end:
        pass
    return ms


def inc(a: int) -> int:
    return a + 1


def source() -> int:
    return 0


# ------------------------------------------------------------------------------------------------ flows


def specs() -> dict:
    from pyflow.model.nodespec import parse_nodespec
    docs = [{"id": "b.burn", "title": "burn", "func": BURN, "cache": False,
             "port": {"input": [{"name": "ms", "type": "Float"}], "output": [{"name": "out", "type": "Float"}]}},
            {"id": "b.inc", "title": "inc", "func": INC,
             "port": {"input": [{"name": "a", "type": "Int"}], "output": [{"name": "out", "type": "Int"}]}},
            {"id": "b.source", "title": "source", "func": SOURCE, "port": {"output": [{"name": "out", "type": "Int"}]}}]
    return {d["id"]: parse_nodespec(d) for d in docs}


def wide_doc(cost_ms: float) -> dict:
    return {"id": "wide", "name": "wide", "links": [],
            "nodes": [{"id": f"w{i}", "spec_id": "b.burn", "name": f"w{i}", "ports": [{"name": "ms", "value": cost_ms}]}
                      for i in range(WIDE)]}


def chain_doc(length: int = CHAIN) -> dict:
    nodes = [{"id": "c0", "spec_id": "b.source", "name": "c0", "ports": []}]
    nodes += [{"id": f"c{i}", "spec_id": "b.inc", "name": f"c{i}", "ports": []} for i in range(1, length)]
    return {"id": "chain", "name": "chain", "nodes": nodes,
            "links": [{"source": f"c{i - 1}:out", "target": f"c{i}:a"} for i in range(1, length)]}


# ------------------------------------------------------------------------------------------ contenders


#: CPU seconds this process (the server's engine and Dask client, and the LocalCluster's scheduler) spent
#: per node in the PyFlow-on-Dask runs: work that does not spread over more machines.
SERVER_CPU: list = []


def pyflow_runner(executor, concurrency: int, cpu: list | None = None):
    """Run a flow doc through the engine on `executor`; seconds, after checking every node succeeded.
    With `cpu`, also note this process's CPU seconds per node."""
    from pyflow.engine import RunOptions, compile_flow, run_flow
    compiled_specs = specs()
    runs = iter(range(10 ** 9))

    def go(doc: dict) -> float:
        compiled = compile_flow(doc, compiled_specs)
        started, cpu_started = perf_counter(), time.process_time()
        outcome = run_flow(compiled, executor, RunOptions(concurrency=concurrency, use_cache=False,
                                                          run_id=f"bench-{os.getpid()}-{next(runs)}"))
        elapsed = perf_counter() - started
        if cpu is not None:
            cpu.append((time.process_time() - cpu_started) / len(doc["nodes"]))
        if outcome.status != "succeeded":
            failed = next(n for n in outcome.nodes if n["status"] != "success")
            raise RuntimeError(f"{executor.name} failed {doc['id']}: {failed['error']}")
        return elapsed
    return go


def bare_dask_runner(client):
    """The same DAG as plain functions, submitted at once; seconds until the last result is here."""
    def go(doc: dict) -> float:
        started = perf_counter()
        if doc["id"] == "wide":
            cost = doc["nodes"][0]["ports"][0]["value"]
            futures = [client.submit(burn, cost, pure=False) for _ in doc["nodes"]]
            client.gather(futures)
        else:
            future = client.submit(source, pure=False)
            for _ in range(1, len(doc["nodes"])):
                future = client.submit(inc, future, pure=False)
            assert future.result() == len(doc["nodes"]) - 1
        return perf_counter() - started
    return go


def stepwise_dask_runner(client):
    """Plain functions the way an engine that settles every node must use Dask: a task submitted once
    its input is known, its result fetched before the next depends on it (at most IN_FLIGHT at once)."""
    from concurrent.futures import ThreadPoolExecutor

    def go(doc: dict) -> float:
        started = perf_counter()
        if doc["id"] == "wide":
            cost = doc["nodes"][0]["ports"][0]["value"]
            with ThreadPoolExecutor(IN_FLIGHT) as pool:
                list(pool.map(lambda _: client.submit(burn, cost, pure=False).result(), doc["nodes"]))
        else:
            value = client.submit(source, pure=False).result()
            for _ in range(1, len(doc["nodes"])):
                value = client.submit(inc, value, pure=False).result()
            assert value == len(doc["nodes"]) - 1
        return perf_counter() - started
    return go


def in_process_runner():
    def go(doc: dict) -> float:
        started = perf_counter()
        if doc["id"] == "wide":
            for node in doc["nodes"]:
                burn(node["ports"][0]["value"])
        else:
            value = source()
            for _ in range(1, len(doc["nodes"])):
                value = inc(value)
        return perf_counter() - started
    return go


def contenders():
    from pyflow.executors import create_executor
    local = create_executor("sandbox", pool_size=SLOTS)
    local.start()
    dask = create_executor("dask", pool_size=SLOTS, n_workers=SLOTS)
    dask.start()
    runners = {"local pool": pyflow_runner(local, SLOTS), "PyFlow on Dask": pyflow_runner(dask, IN_FLIGHT, SERVER_CPU),
               "bare Dask": bare_dask_runner(dask.client), "stepwise Dask": stepwise_dask_runner(dask.client),
               "in-process": in_process_runner()}
    return runners, (local, dask)


# ------------------------------------------------------------------------------------------ measuring


def measure(runners: dict, doc: dict, rounds: int) -> dict:
    """ms per node, median over rounds; the contenders take turns at going first."""
    names = list(runners)
    samples: dict = {name: [] for name in names}
    nodes = len(doc["nodes"])
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            samples[name].append(runners[name](doc) / nodes * 1000)
    return {name: median(values) for name, values in samples.items()}


def per_slot_overhead(ms_per_node: float, cost_ms: float, slots: int) -> float:
    """What a node costs one slot beyond its own work: wall ms per node x slots - the work."""
    return max(ms_per_node * slots - cost_ms, 0.0)


def payoff_ms(o_dask: float, o_local: float, machines: int) -> float:
    return max((o_dask - machines * o_local) / (machines - 1), 0.0)


def goal_rows(wide: dict, chain: dict) -> list[tuple]:
    """Per flow: (label, PyFlow on Dask, the sandbox's own overhead, bare Dask, ratio): ms per node; the
    ratio is (PyFlow on Dask - sandbox) / bare Dask, to hold to at most GOAL_RATIO."""
    cheapest, cost = wide[min(wide)], min(wide)
    overhead = {name: per_slot_overhead(cheapest[name], cost, SLOTS) for name in ("PyFlow on Dask", "local pool",
                                                                                    "bare Dask")}
    rows = [(f"chain {CHAIN:,} (wall ms per node)", chain["PyFlow on Dask"],
             max(chain["local pool"] - chain["in-process"], 0.0), chain["bare Dask"]),
            (f"wide {WIDE}, {cost:g} ms (overhead ms per node per slot)", overhead["PyFlow on Dask"],
             overhead["local pool"], overhead["bare Dask"])]
    return [(label, dask, sandbox, bare, (dask - sandbox) / bare if bare > 0 else float("inf"))
            for label, dask, sandbox, bare in rows]


def report(wide: dict, chain: dict) -> list[str]:
    names = list(next(iter(wide.values())))
    cells = [(f"wide {WIDE}, {c:g} ms CPU", cell) for c, cell in wide.items()] + [(f"chain {CHAIN:,}", chain)]
    rows = [(label, *(cell[n] for n in names), *(f"{cell['PyFlow on Dask'] / cell[k]:.2f}x" for k in RATIOS))
            for label, cell in cells]
    print(table(("flow", *names, *(f"/ {k}" for k in RATIOS)), rows,
                title="Wall milliseconds per node (median of rounds), and PyFlow on Dask's / each other's"))
    cheapest = wide[min(wide)]
    o_local = per_slot_overhead(cheapest["local pool"], min(wide), SLOTS)
    o_dask = per_slot_overhead(cheapest["PyFlow on Dask"], min(wide), SLOTS)
    o_bare = per_slot_overhead(cheapest["bare Dask"], min(wide), SLOTS)
    o_step = per_slot_overhead(cheapest["stepwise Dask"], min(wide), SLOTS)
    print(f"\nper-node overhead per slot (wide, {min(wide):g} ms nodes): local pool {o_local:.2f} ms, "
          f"PyFlow on Dask {o_dask:.2f} ms, bare Dask {o_bare:.2f} ms (stepwise {o_step:.2f} ms)")
    for m in MACHINES:
        print(f"a cluster of {m} machines like this one pays off for nodes of more than about "
              f"{payoff_ms(o_dask, o_local, m):.1f} ms")
    serial = median(SERVER_CPU) * 1000
    print(f"the server (engine, Dask client; here also the scheduler) spends {serial:.2f} ms of CPU per node: "
          f"however many machines, at most about {1000 / serial:.0f} nodes per second per server core")
    rows = goal_rows(wide, chain)
    print()
    print(table(("flow", "PyFlow on Dask", "- sandbox's own", "= PyFlow's Dask part", "bare Dask",
                 "ratio", "goal"),
                [(label, dask, sandbox, dask - sandbox, bare, f"{ratio:.2f}x", f"<= {GOAL_RATIO}x")
                 for label, dask, sandbox, bare, ratio in rows],
                title="Goal: PyFlow on Dask within 1.5x bare Dask per node, plus the sandbox's own overhead"))
    return [verdict(f"{label.split(' (')[0]}: PyFlow on Dask less the sandbox's own overhead within {GOAL_RATIO}x "
                    f"bare Dask", ratio <= GOAL_RATIO,
                    f"({dask:.2f} - {sandbox:.2f}) / {bare:.2f} = {ratio:.2f}x")
            for label, dask, sandbox, bare, ratio in rows]


def main(argv: Sequence[str] | None = None) -> None:
    try:
        import distributed  # noqa: F401
    except ImportError:
        print("skipped: the dask executor needs dask[distributed] (pip install '.[dask]')")
        return
    args = list(sys.argv[1:] if argv is None else argv)
    quick = "--quick" in args
    costs, rounds = (QUICK_COSTS_MS, QUICK_ROUNDS) if quick else (COSTS_MS, ROUNDS)
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; "
          f"{SLOTS} sandbox slots each (local pool; {SLOTS} Dask workers of 1), {IN_FLIGHT} nodes in flight on "
          f"Dask; {rounds} round(s)")
    runners, executors = contenders()
    try:
        for runner in runners.values():  # warm up: workers import, pools fill, code paths load
            runner(chain_doc(WARM_UP))
        wide = {}
        for cost in costs:
            print(f"measuring wide {WIDE} at {cost:g} ms", flush=True)
            wide[cost] = measure(runners, wide_doc(cost), rounds)
        print(f"measuring chain {CHAIN:,}", flush=True)
        chain = measure(runners, chain_doc(), rounds)
    finally:
        for executor in executors:
            executor.close()
    print()
    if busy_warning():
        print(busy_warning() + "\n")
    lines = report(wide, chain)
    print("\nGoals (issue 15, item 7):")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
