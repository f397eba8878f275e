"""PyFlow side by side with bare Dask and Hamilton on the same DAGs (issue 18).

Why: the sandbox is what PyFlow is for, so a node's cost through the REST API with the default sandbox
is the figure users feel; it should beat a general-purpose cluster scheduler running the same DAG of
plain functions (no isolation at all) by a wide margin. The engine alone is compared with Hamilton.

Flows: a chain and a wide flow (one source feeding every other node) of a trivial add, 1,000 nodes
each (200 with --quick). Contenders, each running the same DAG:

- PyFlow REST, sandbox: POST /api/run (synchronous, cache off) to a real `pyflow serve` on a free
  loopback port with its default sandbox executor (benchmarks.breakdown.rest_server);
- Dask distributed: a LocalCluster of 2 worker processes x 1 thread, the DAG as plain functions, each
  node one task, submitted at once (client.submit with the upstream future as argument); the cluster
  is started for each of its turns and closed after it (untimed), so that its idle processes do not
  run beside the other contenders;
- PyFlow engine in-process: compile + run with the in-process executor (no isolation);
- Hamilton: build a driver over a module of one function per node, execute the sinks (on a deep
  stack with a raised recursion limit: its recursion needs it on a chain of 1,000).

Rounds are interleaved (each contender once per shape per round, the order rotating), and each figure
is the median of the rounds. Plus a 1-node flow through REST, timed many times in every round, and the
split of REST's time between the run inside the server and the rest (HTTP, JSON, checking the flow).
benchmarks.engine is the reference for the two in-process rows (every size, more rounds).

    python -m benchmarks.versus [--quick]
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path
from time import perf_counter
from typing import Callable

from benchmarks import busy_warning, median, table, verdict

N = 1_000
QUICK_N = 200
ROUNDS = 5
QUICK_ROUNDS = 3
ONE_NODE_RUNS = 20  # 1-node REST runs per round
SHAPES = ("chain", "wide")
WORKERS, THREADS = 2, 1
REST_GOAL_US = 1_000.0
DASK_FACTOR = 2.0
ONE_NODE_GOAL_MS = 5.0
ENGINE_GOAL_US = 50.0
HAMILTON_FACTOR = 2.0
ROWS = {"rest": "PyFlow REST, sandbox",
        "dask": f"Dask distributed, LocalCluster {WORKERS} workers x {THREADS} thread, same DAG",
        "engine": "PyFlow engine in-process",
        "hamilton": "Hamilton"}


# ------------------------------------------------------------------- plain functions (run by Dask workers)
def source() -> int:
    return 0


def inc(a: int) -> int:
    return a + 1


# ------------------------------------------------------------------------------------------ contenders
def dask_runner() -> Callable[[str, int], float]:
    """Bare Dask's turn: a fresh LocalCluster, warmed up on a small DAG, then the DAG timed; the cluster is
    closed after the turn (untimed). Its idle scheduler, nannies and workers take about a tenth of this
    2-core machine's CPU from whatever runs beside them (measured: PyFlow's wide flow through REST was
    about 10 % slower with an idle cluster beside it), so it runs only while Dask is measured, as
    PyFlow's server idles, blocked on its sockets and pipes, while the others are."""
    from distributed import Client, LocalCluster

    def go(shape: str, n: int) -> float:
        with LocalCluster(n_workers=WORKERS, threads_per_worker=THREADS, processes=True, dashboard_address=None,
                          silence_logs=logging.CRITICAL) as cluster, Client(cluster) as client:
            run = dask_dag(client)
            run(shape, 20)  # the workers import, code paths load
            try:
                return run(shape, n)
            finally:
                logging.getLogger("distributed").setLevel(logging.CRITICAL)  # workers' heartbeats as it closes
    return go


def dask_dag(client) -> Callable[[str, int], float]:
    """The DAG as plain functions on the cluster, every task submitted before any result is awaited;
    seconds until every sink's result is back here (checked)."""
    def go(shape: str, n: int) -> float:
        started = perf_counter()
        first = client.submit(source, pure=False)
        if shape == "chain":
            future = first
            for _ in range(1, n):
                future = client.submit(inc, future, pure=False)
            ok = future.result() == n - 1
        else:
            ok = all(v == 1 for v in client.gather([client.submit(inc, first, pure=False) for _ in range(1, n)]))
        elapsed = perf_counter() - started
        if not ok:
            raise RuntimeError(f"Dask computed the wrong thing on the {shape} of {n}")
        return elapsed
    return go


def rest_runner(live, inside: dict) -> Callable[[str, int], float]:
    """POST /api/run; also notes in `inside[shape]` the seconds per node the run took inside the server
    (its started_at to finished_at, read back from GET /api/runs/<id>), so that the rest of the time
    (HTTP, the JSON of request and answer, checking and planning the flow) can be told apart."""
    import requests
    from benchmarks.breakdown import rest_layer

    def go(shape: str, n: int) -> float:
        answers: list = []
        seconds = rest_layer(live.url, shape, n, live.headers(), answers) * n / 1e6
        run = requests.get(f"{live.url}/api/runs/{answers[0]['run_id']}", headers=live.headers(), timeout=60).json()
        inside.setdefault(shape, []).append((stamp(run["finished_at"]) - stamp(run["started_at"])) / n)
        return seconds
    return go


def stamp(text: str) -> float:
    from datetime import datetime
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def contender_runner(make) -> Callable[[str, int], float]:
    """A runner over benchmarks.engine's contenders: build + execute, checked on every run."""
    from benchmarks.engine import run_deep

    def go(shape: str, n: int) -> float:
        contender = make(shape, n)

        def once() -> float:
            started = perf_counter()
            result = contender.execute(contender.build())
            elapsed = perf_counter() - started
            contender.check(result)
            return elapsed
        return run_deep(once)
    return go


def engine_runner() -> Callable[[str, int], float]:
    from benchmarks.engine import pyflow_contender, pyflow_specs
    from pyflow.executors import create_executor
    specs, executor = pyflow_specs(), create_executor("inprocess")
    return contender_runner(lambda shape, n: pyflow_contender(shape, n, specs, executor))


def hamilton_runner() -> Callable[[str, int], float] | None:
    from benchmarks.engine import generated_module, hamilton_contender, hamilton_driver
    driver = hamilton_driver()
    if driver is None:
        return None
    modules: dict = {}

    def make(shape: str, n: int):
        module = modules.get((shape, n)) or modules.setdefault((shape, n), generated_module(shape, n))
        return hamilton_contender(driver, shape, n, module)
    return contender_runner(make)


# ------------------------------------------------------------------------------------------- measuring
def measure(runners: dict, n: int, rounds: int, one_node: Callable[[], float]) -> tuple[dict, list]:
    """{(name, shape): median us per node} over interleaved rounds, and every 1-node REST time (ms)."""
    samples: dict = {(name, shape): [] for name in runners for shape in SHAPES}
    singles: list[float] = []
    names = list(runners)
    for r in range(rounds):
        print(f" round {r + 1}/{rounds}", end="", flush=True)
        for shape in SHAPES:
            for name in names[r % len(names):] + names[:r % len(names)]:  # each goes first in turn
                samples[(name, shape)].append(runners[name](shape, n) / n * 1e6)
        singles += [one_node() for _ in range(ONE_NODE_RUNS)]
    print(flush=True)
    return {key: median(values) for key, values in samples.items()}, singles


def report(figures: dict, singles: list, n: int, rounds: int) -> None:
    rest = {shape: figures[("rest", shape)] for shape in SHAPES}
    rows = []
    for name, label in ROWS.items():
        if (name, "chain") not in figures:
            rows.append((label, "not installed", "-", "-", "-"))
            continue
        chain, wide = figures[(name, "chain")], figures[(name, "wide")]
        rows.append((label, chain, wide, f"{chain / rest['chain']:.3g}x", f"{wide / rest['wide']:.3g}x"))
    print(table(("", "chain, us/node", "wide, us/node", "chain / REST", "wide / REST"), rows,
                title=f"Flows of {n:,} nodes of a trivial add, cache off; per node, median of {rounds} interleaved "
                      f"rounds (x / REST: how many times PyFlow REST's time each takes)"))
    one = median(singles) * 1e3
    print(f"\nA 1-node flow through REST: {one:.2f} ms (median of {len(singles)} runs, {ONE_NODE_RUNS} per round)")
    print("\nGoals (issue 18, items 1 and 2):")
    for line in goal_lines(figures, one):
        print(line)
    warning = busy_warning()
    if warning:
        print(warning)


def goal_lines(figures: dict, one_node_ms: float) -> list[str]:
    lines = []
    for shape in SHAPES:
        rest = figures[("rest", shape)]
        lines.append(verdict(f"REST with the sandbox <= {REST_GOAL_US / 1000:.1f} ms per node ({shape})",
                             rest <= REST_GOAL_US, f"{rest / 1000:.2f} ms"))
        dask = figures.get(("dask", shape))
        lines.append(verdict(f"REST at least {DASK_FACTOR:g}x ahead of bare Dask ({shape})",
                             None if dask is None else dask >= DASK_FACTOR * rest,
                             "Dask is not installed" if dask is None else f"{dask / rest:.2f}x ahead"))
    lines.append(verdict(f"a 1-node flow through REST <= {ONE_NODE_GOAL_MS:g} ms", one_node_ms <= ONE_NODE_GOAL_MS,
                         f"{one_node_ms:.2f} ms"))
    for shape in SHAPES:
        engine, hamilton = figures[("engine", shape)], figures.get(("hamilton", shape))
        ahead = None if hamilton is None else hamilton >= HAMILTON_FACTOR * engine
        lines.append(verdict(f"engine in-process <= {ENGINE_GOAL_US:g} us per node and at least "
                             f"{HAMILTON_FACTOR:g}x ahead of Hamilton ({shape}; every size: benchmarks.engine)",
                             None if ahead is None else ahead and engine <= ENGINE_GOAL_US,
                             f"{engine:.1f} us/node" + ("" if hamilton is None else f", {hamilton / engine:.2f}x ahead")))
    return lines


def main(argv=None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    quick = "--quick" in args
    n, rounds = (QUICK_N, QUICK_ROUNDS) if quick else (N, ROUNDS)
    try:
        import distributed  # noqa: F401
    except ImportError:
        distributed = None
        print("note: dask[distributed] is not installed (make bench installs the [bench] extra): no Dask row")
    from benchmarks.breakdown import rest_layer, rest_server
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; "
          f"{n:,}-node chain and wide flows, {rounds} rounds")
    inside: dict = {}
    with tempfile.TemporaryDirectory() as tmp, rest_server(Path(tmp) / "rest") as live:
        runners = {"rest": rest_runner(live, inside), "engine": engine_runner()}
        if distributed is not None:
            runners["dask"] = dask_runner()
        hamilton = hamilton_runner()
        if hamilton is not None:
            runners["hamilton"] = hamilton
        for name, runner in runners.items():  # warm up: the pool fills, code paths load (Dask warms each turn)
            for shape in SHAPES if name != "dask" else ():
                runner(shape, 20)
        inside.clear()
        one_node = lambda: rest_layer(live.url, "chain", 1, live.headers()) / 1e6  # noqa: E731
        print("measuring:", end="", flush=True)
        figures, singles = measure(runners, n, rounds, one_node)
    print()
    report(figures, singles, n, rounds)
    print("\nOf PyFlow REST's time per node, the run inside the server (started to finished) and the rest "
          "(HTTP, the JSON of request and answer, checking and planning the flow): " +
          "; ".join(f"{shape} {median(inside[shape]) * 1e6:,.0f} + {figures[('rest', shape)] - median(inside[shape]) * 1e6:,.0f} us"
                    for shape in SHAPES))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
