"""Composition (issue 16, item 7): a map over many items against as many plain nodes, and compiling a
flow that uses a large subflow many times.

Why: a mapped node runs its items through the same executor as plain nodes, so per item it should
cost no more than a plain node costs per node (the map skips scheduling a graph node per item, but
builds a task per item and keeps a record of each). Subflows are expanded into the parent's plan when
it is compiled, so a flow using a 100-node subflow 100 times is a 10,000-node plan: that expansion
must stay well under the time a user waits for a run to start (goal: under 200 ms).

Both measure the engine alone, with the in-process executor (trivial node code), side by side in one
run:

- map: one node mapped over N trivial items, against a wide flow of N independent plain nodes of the
  same nodespec (N = 1,000 by default), each compiled and run without the cache;
- compile: a flow of S subflow nodes each using one flow of K chained nodes (S = K = 100), compiled
  (checked, expanded, ordered and keyed for the cache).

    python -m benchmarks.compose [--quick]
"""

from __future__ import annotations

import sys
from time import perf_counter

from benchmarks import busy_warning, median, table, verdict

ITEMS = 1_000
SUBFLOW_NODES = 100
SUBFLOW_USES = 100
COMPILE_GOAL_MS = 200.0
REPEATS = 7
INC = {"id": "b.inc", "title": "inc", "func": "def func(a):\n    return a + 1\n",
       "port": {"input": [{"name": "a", "type": "Int", "required": True}], "output": [{"name": "out", "type": "Int"}]}}


def _specs(flows=()):
    from pyflow.model.nodespec import parse_nodespec
    from pyflow.model.subflow import with_flows
    return with_flows({INC["id"]: parse_nodespec(INC)}, flows)


def mapped_flow(n: int) -> dict:
    return {"id": "b.map", "links": [], "nodes": [{"id": "m", "spec_id": "b.inc", "map": ["a"], "max_items": n,
                                                   "ports": [{"name": "a", "value": list(range(n))}]}]}


def plain_flow(n: int) -> dict:
    return {"id": "b.plain", "links": [],
            "nodes": [{"id": f"n{i}", "spec_id": "b.inc", "ports": [{"name": "a", "value": i}]} for i in range(n)]}


def chain_flow(flow_id: str, k: int) -> dict:
    nodes = [{"id": "in", "spec_id": "pyflow.flow.input", "ports": [{"name": "name", "value": "x"}]}]
    nodes += [{"id": f"c{i}", "spec_id": "b.inc"} for i in range(k)]
    nodes.append({"id": "out", "spec_id": "pyflow.flow.output", "ports": [{"name": "name", "value": "y"}]})
    ids = [n["id"] for n in nodes]
    links = [{"source": f"{a}:out", "target": f"{b}:{'value' if b == 'out' else 'a'}"} for a, b in zip(ids, ids[1:])]
    return {"id": flow_id, "nodes": nodes, "links": links}


def users_flow(uses: int, sub_id: str) -> dict:
    return {"id": "b.users", "links": [],
            "nodes": [{"id": f"s{i}", "spec_id": f"flow:{sub_id}", "ports": [{"name": "x", "value": i}]}
                      for i in range(uses)]}


def time_run(doc: dict, specs: dict) -> float:
    from pyflow.engine import RunOptions, compile_flow, run_flow
    from pyflow.executors.inprocess import InProcessExecutor
    started = perf_counter()
    outcome = run_flow(compile_flow(doc, specs, cache_keys=False), InProcessExecutor(capture_stdout=False),
                       RunOptions(concurrency=1, use_cache=False))
    elapsed = perf_counter() - started
    assert outcome.status == "succeeded", outcome.status
    return elapsed


def time_compile(doc: dict, specs: dict) -> tuple[float, int]:
    from pyflow.engine import compile_flow
    started = perf_counter()
    compiled = compile_flow(doc, specs)
    return perf_counter() - started, len(compiled.nodes)


def main(argv: list[str] | None = None) -> int:
    quick = "--quick" in (sys.argv[1:] if argv is None else argv)
    repeats = 3 if quick else REPEATS
    warning = busy_warning()
    if warning:
        print(warning)
    specs = _specs()
    mapped = median([time_run(mapped_flow(ITEMS), specs) for _ in range(repeats)])
    plain = median([time_run(plain_flow(ITEMS), specs) for _ in range(repeats)])
    print(table(("case", "total ms", "per item/node us"),
                [(f"map over {ITEMS:,} items", mapped * 1e3, mapped / ITEMS * 1e6),
                 (f"{ITEMS:,} plain nodes", plain * 1e3, plain / ITEMS * 1e6)],
                title="Map against plain nodes (in-process executor, no cache)"))
    print(verdict("a mapped item costs no more than a plain node", mapped <= plain,
                  f"{mapped / plain:.2f}x the plain nodes' time"))
    sub = chain_flow("b.sub", SUBFLOW_NODES)
    with_sub = _specs([sub])
    timings = [time_compile(users_flow(SUBFLOW_USES, "b.sub"), with_sub) for _ in range(repeats)]
    compile_ms = median([t for t, _ in timings]) * 1e3
    print()
    print(table(("case", "planned nodes", "compile ms"),
                [(f"{SUBFLOW_NODES}-node subflow used {SUBFLOW_USES} times", timings[0][1], compile_ms)],
                title="Expanding subflows when compiling"))
    print(verdict(f"compiles in under {COMPILE_GOAL_MS:.0f} ms", compile_ms < COMPILE_GOAL_MS, f"{compile_ms:.1f} ms"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
