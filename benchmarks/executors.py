"""Executor overhead per node (issue 3, item 8): the warm sandbox pool next to a fresh sandbox per node.

Why: node code must run isolated, and isolation must stay cheap. A fresh bubblewrap + Python per node
pays a process start, namespace setup and interpreter start every time; the warm pool pays a fork of an
idle zygote. The promise: the pool's median overhead per node is at least 6x below a fresh bwrap + Python
per node measured in the same run (about 2 ms or less on the reference machine), and flat as flows grow.

Contenders, all driven by the engine (compile_flow, run_flow) over the same flows, round by round so a
busy machine slows them alike:

- warm pool: SandboxExecutor as `pyflow serve` builds it (a pool of one sandbox per concurrent node,
  cgroup limits set before every run, every process under the seccomp filter);
- warm pool, no filter: the same, without the seccomp filter: the difference is what the filter costs
  (issue 10: at most 5% of the pool's overhead per node);
- fresh bwrap + Python: per node, one bwrap with the sandbox's own isolation flags (as the sandbox user
  when root) running `python3 -I -S` on a minimal runner. No cgroups, no trampoline, no fork server: the
  least a fresh sandbox costs, so the baseline is honest (if anything, flattering to "fresh");
- plain subprocess: the same minimal runner in a bare `python3 -I -S` per node, no bwrap;
- in-process: the function called in the engine's own process (the floor).

SandboxExecutor(warm=False) is not the baseline: per node it also starts a root trampoline interpreter
(to join cgroups and drop to the sandbox user) and makes and removes cgroups, so it would overstate what
a fresh sandbox costs. It is measured on one size, for information, with the unsafe-process executor.

Overhead per node = wall time of the flow / nodes - the in-process time per node.

    python -m benchmarks.executors [--quick]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from time import perf_counter
from typing import Sequence

from benchmarks import busy_warning, median, table, verdict

SIZES = (10, 100, 1_000)
QUICK_SIZES = (10, 100)
SHAPES = ("chain", "wide")
ROUNDS = {10: 5, 100: 3, 1_000: 1}  # rounds per size: a 1,000-node flow already averages 1,000 nodes
INFO_SIZE = 100
GOAL_RATIO = 6.0
GOAL_MS = 2.0
FILTER_BUDGET = 0.05  # the seccomp filter may add at most 5% to the warm pool's overhead per node
# System calls the zygote and the node's child make for one trivial node (strace -f -c over 90 runs).
SYSCALLS_PER_NODE = 117
FLAT_REFERENCE = 100
FLAT_TOLERANCE = 1.5
SANDBOX_PYTHON = "/usr/bin/python3"

SOURCE_FUNC = "def func():\n    return 0\n"
INC_FUNC = "def func(a):\n    return a + 1\n"
# The fresh contenders' whole program: one task as JSON on stdin, the result as JSON on stdout.
RUNNER = ("import json, sys\n"
          "task = json.load(sys.stdin)\n"
          "namespace = {'__name__': '__pyflow_node__'}\n"
          "exec(compile(task['func'], '<node>', 'exec'), namespace)\n"
          "try:\n"
          "    reply = {'ok': True, 'value': namespace['func'](*task['args'])}\n"
          "except Exception as exc:\n"
          "    reply = {'ok': False, 'error': {'type': type(exc).__name__, 'message': str(exc), 'traceback': []}}\n"
          "sys.stdout.write(json.dumps(reply))\n")


# ------------------------------------------------------------------------------------ fresh baselines


def fresh_executor(name: str, argv: list[str], as_sandbox_user: bool):
    """An Executor that starts `argv` once per node and hands it the task as data on stdin."""
    from pyflow.engine.execution import Executor, NodeOutcome

    drop = {"user": 65534, "group": 65534, "extra_groups": []} if as_sandbox_user and os.geteuid() == 0 else {}

    class FreshProcess(Executor):
        def run(self, task, cancel: threading.Event | None = None):
            started = perf_counter()
            data = json.dumps({"func": task.func, "args": task.args}).encode()
            try:
                done = subprocess.run(argv, input=data, capture_output=True, timeout=task.limits.timeout_s, **drop)
                reply = json.loads(done.stdout)
            except (subprocess.TimeoutExpired, ValueError) as exc:
                return NodeOutcome.failure(f"{name} failed: {exc}")
            ms = (perf_counter() - started) * 1000
            if not reply["ok"]:
                return NodeOutcome(ok=False, error=reply["error"], duration_ms=ms)
            return NodeOutcome(ok=True, value=reply["value"], duration_ms=ms)

    executor = FreshProcess()
    executor.name = name
    return executor


def fresh_bwrap_argv() -> list[str]:
    """The sandbox's own bwrap command line, without the worker file, running the minimal runner."""
    from pyflow.executors.sandbox import WORKER_PATH, SandboxExecutor
    probe = SandboxExecutor(pool_size=0, cgroups=False)
    try:
        argv = probe.bwrap_argv(-1)
    finally:
        probe.close()
    at = argv.index("--ro-bind-data")
    assert argv[at + 2] == WORKER_PATH
    del argv[at:at + 3]
    command = argv.index(SANDBOX_PYTHON, argv.index("--disable-userns"))
    return argv[:command] + [SANDBOX_PYTHON, "-I", "-S", "-c", RUNNER]


def contenders(concurrency: int) -> dict:
    """The four executors of the table, ready to run (the pool warm)."""
    from pyflow.executors import create_executor
    pool = create_executor("sandbox", pool_size=concurrency)
    pool.start()
    unfiltered = unfiltered_pool(concurrency)
    return {
        "warm pool": pool,
        "warm pool, no filter": unfiltered,
        "fresh bwrap+Python": fresh_executor("fresh bwrap+Python", fresh_bwrap_argv(), as_sandbox_user=True),
        "plain subprocess": fresh_executor("plain subprocess", [SANDBOX_PYTHON, "-I", "-S", "-c", RUNNER], False),
        "in-process": create_executor("inprocess"),
    }


def unfiltered_pool(concurrency: int):
    """The warm pool with everything but the seccomp filter: bwrap gets no --seccomp."""
    from pyflow.executors.sandbox import SandboxExecutor

    class UnfilteredSandbox(SandboxExecutor):
        def bwrap_argv(self, worker_fd: int, seccomp_fd: int | None = None) -> list[str]:
            return super().bwrap_argv(worker_fd, None)

    pool = UnfilteredSandbox(pool_size=concurrency)
    pool.start()
    return pool


def info_contenders(concurrency: int) -> dict:
    from pyflow.executors import create_executor
    fresh_sandbox = create_executor("sandbox", warm=False)
    fresh_sandbox.start()
    return {"SandboxExecutor(warm=False)": fresh_sandbox, "unsafe-process": create_executor("unsafe-process")}


# ------------------------------------------------------------------------------------------ flows


def specs() -> dict:
    from pyflow.model.nodespec import parse_nodespec
    source = {"id": "bench.source", "title": "source", "func": SOURCE_FUNC,
              "port": {"input": [], "output": [{"name": "out", "type": "Int"}]}}
    inc = {"id": "bench.inc", "title": "increment", "func": INC_FUNC,
           "port": {"input": [{"name": "a", "order": 0, "type": "Int"}], "output": [{"name": "out", "type": "Int"}]}}
    return {doc["id"]: parse_nodespec(doc) for doc in (source, inc)}


def upstream(shape: str, i: int) -> str:
    return f"n{i - 1}" if shape == "chain" else "n0"


def flow_doc(shape: str, n: int) -> dict:
    """A chain (each node feeds the next) or a wide flow (one source feeds every other node)."""
    nodes = [{"id": "n0", "spec_id": "bench.source", "name": "n0", "ports": []}]
    nodes += [{"id": f"n{i}", "spec_id": "bench.inc", "name": f"n{i}", "ports": []} for i in range(1, n)]
    links = [{"source": f"{upstream(shape, i)}:out", "target": f"n{i}:a"} for i in range(1, n)]
    return {"id": f"bench-{shape}-{n}", "name": f"{shape} of {n}", "nodes": nodes, "links": links}


def timed_run(compiled, executor, concurrency: int, shape: str, n: int) -> float:
    """Seconds to run the flow once; checks every node succeeded with the right value."""
    from pyflow.engine import RunOptions, run_flow
    started = perf_counter()
    outcome = run_flow(compiled, executor, RunOptions(use_cache=False, concurrency=concurrency))
    elapsed = perf_counter() - started
    if outcome.status != "succeeded":
        failed = next((r for r in outcome.nodes if r["status"] != "success"), {})
        raise RuntimeError(f"{executor.name} failed a {shape} of {n}: {failed.get('error')}")
    last = {r["id"]: r for r in outcome.nodes}[f"n{n - 1}"]["outputs"]["out"]
    if last != (n - 1 if shape == "chain" else 1) and n > 1:
        raise RuntimeError(f"{executor.name} computed {last} at the end of a {shape} of {n}")
    return elapsed


# ------------------------------------------------------------------------------------------ measuring


@dataclass
class Cell:
    shape: str
    n: int
    ms_per_node: dict  # contender -> median over rounds of wall ms per node

    def overhead(self, name: str) -> float:
        return max(self.ms_per_node[name] - self.ms_per_node["in-process"], 0.0)


CHEAP = ("warm pool", "warm pool, no filter", "in-process")


def measure(executors: dict, shape: str, n: int, rounds: int, concurrency: int) -> Cell:
    """Every contender in every round, interleaved; the median per contender over its samples. The cheap
    contenders run again between each of the slow ones, so their samples spread over the same stretch
    of time as the slow ones' (load on a shared machine comes and goes)."""
    from pyflow.engine import compile_flow
    compiled = compile_flow(flow_doc(shape, n), specs())
    cheap = [name for name in executors if name in CHEAP]
    slow = [name for name in executors if name not in CHEAP]
    samples: dict = {name: [] for name in executors}
    for r in range(rounds):
        for name in interleaved(cheap, slow, r):
            samples[name].append(timed_run(compiled, executors[name], concurrency, shape, n) / n * 1000)
    return Cell(shape, n, {name: median(values) for name, values in samples.items()})


def interleaved(cheap: list, slow: list, round_no: int) -> list:
    """One round's order: the cheap contenders before each slow one and at the end. Whoever runs right
    after a slow contender pays for its aftermath (processes exiting, cgroups going), so the cheap ones
    take turns at going first, from slow contender to slow contender and from round to round."""
    order = []
    for i, one in enumerate(slow):
        k = (i + round_no) % len(cheap)
        order += [*cheap[k:], *cheap[:k], one]
    return order + cheap


def ratio(a: float, b: float) -> str:
    return "-" if not b else f"{a / b:.1f}x"


def report(cells: list[Cell], info: list[Cell], concurrency: int) -> list[str]:
    names = list(cells[0].ms_per_node)
    print(table(("flow", "nodes", *names), [(c.shape, c.n, *(c.ms_per_node[k] for k in names)) for c in cells],
                title="Wall milliseconds per node (median of rounds; engine + executor + node)"))
    print()
    rows = [(c.shape, c.n, c.overhead("warm pool"), c.overhead("warm pool, no filter"), filter_cost(c),
             c.overhead("fresh bwrap+Python"), c.overhead("plain subprocess"),
             ratio(c.overhead("fresh bwrap+Python"), c.overhead("warm pool")),
             ratio(c.overhead("plain subprocess"), c.overhead("warm pool")),
             ratio(c.ms_per_node["warm pool"], c.ms_per_node["in-process"])) for c in cells]
    print(table(("flow", "nodes", "pool overhead", "no filter", "filter cost", "fresh bwrap overhead",
                 "subprocess overhead", "fresh bwrap / pool", "subprocess / pool", "pool / in-process"), rows,
                title="Overhead per node in ms (minus the in-process time per node) and ratios vs the warm pool"))
    if info:
        print()
        extra = list(info[0].ms_per_node)
        print(table(("flow", "nodes", *extra, *(f"{k} / pool" for k in extra if k != "warm pool")),
                    [(c.shape, c.n, *(c.ms_per_node[k] for k in extra),
                      *(ratio(c.ms_per_node[k], c.ms_per_node["warm pool"]) for k in extra if k != "warm pool"))
                     for c in info],
                    title="For information, ms per node: PyFlow's executors without a pool (same rounds as the pool)"))
    return goal_lines(cells)


def filter_cost(cell: Cell) -> str:
    """What the seccomp filter adds to the pool's overhead per node, in ms and in percent."""
    bare = cell.overhead("warm pool, no filter")
    extra = cell.overhead("warm pool") - bare
    return f"{extra:+.2f} ms ({extra / bare * 100:+.1f}%)" if bare else "-"


def syscall_cost_ns(pairs: int = 40, calls: int = 20_000) -> tuple[float, float]:
    """The cheapest getppid() round trip in ns without and with the filter: forked children, alternating,
    each keeping its best of 5 loops (the minimum is what a busy machine inflates least)."""
    from pyflow.executors.seccomp import build_filter
    build_filter()  # libseccomp loaded and the policy checked before any fork
    best = {False: float("inf"), True: float("inf")}
    for _ in range(pairs):
        for filtered in (False, True):
            read_fd, write_fd = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(read_fd)
                _time_getppid(filtered, write_fd, calls)
            os.close(write_fd)
            with os.fdopen(read_fd, "rb") as fh:
                best[filtered] = min(best[filtered], float(fh.read() or "inf"))
            os.waitpid(pid, 0)
    return best[False], best[True]


def _time_getppid(filtered: bool, write_fd: int, calls: int) -> None:
    """In a forked child: (load the filter,) time getppid() loops, write the best ns per call, exit."""
    code = 0
    try:
        if filtered:
            from pyflow.executors.seccomp import build_filter
            build_filter().load()
        call, best = os.getppid, float("inf")
        for _ in range(5):
            started = perf_counter()
            for _ in range(calls):
                call()
            best = min(best, (perf_counter() - started) / calls * 1e9)
        os.write(write_fd, f"{best:.2f}".encode())
    except BaseException:
        code = 1
    finally:
        os._exit(code)


def filter_lines(cells: list[Cell], cost: tuple[float, float]) -> list[str]:
    """What the filter costs per system call and, estimated, per node; and the goal against the pool."""
    plain, filtered = cost
    per_call = max(filtered - plain, 0.0)
    per_node_ms = per_call * SYSCALLS_PER_NODE / 1e6
    pool = median([c.overhead("warm pool") for c in cells])
    share = per_node_ms / pool if pool else 0.0
    print(f"\nseccomp filter: {per_call:.0f} ns per system call (getppid: {plain:.0f} ns without, {filtered:.0f} ns "
          f"with); x {SYSCALLS_PER_NODE} calls per node = {per_node_ms * 1000:.1f} us per node, {share:.2%} of the "
          f"pool's {pool:.2f} ms overhead")
    return [verdict(f"the seccomp filter adds at most {FILTER_BUDGET:.0%} to the pool overhead per node",
                    share <= FILTER_BUDGET, f"{per_node_ms * 1000:.1f} us of {pool:.2f} ms ({share:.2%}); "
                    f"side by side (noisier): {filter_cost_median(cells)}")]


def filter_cost_median(cells: list[Cell]) -> str:
    bare = median([c.overhead("warm pool, no filter") for c in cells])
    pool = median([c.overhead("warm pool") for c in cells])
    return f"{pool:.2f} ms with, {bare:.2f} ms without ({(pool - bare) / bare:+.1%})" if bare else "-"


def goal_lines(cells: list[Cell]) -> list[str]:
    worst_ratio = min(cells, key=lambda c: c.overhead("fresh bwrap+Python") / max(c.overhead("warm pool"), 1e-9))
    r = worst_ratio.overhead("fresh bwrap+Python") / max(worst_ratio.overhead("warm pool"), 1e-9)
    pool_median = median([c.overhead("warm pool") for c in cells])
    lines = [verdict(f"pool overhead >= {GOAL_RATIO:.0f}x below fresh bwrap + Python (every flow)", r >= GOAL_RATIO,
                     f"worst {r:.1f}x ({worst_ratio.shape} of {worst_ratio.n:,})"),
             verdict(f"pool overhead about {GOAL_MS:.0f} ms per node or less", pool_median <= GOAL_MS,
                     f"median {pool_median:.2f} ms over all flows")]
    refs = {c.shape: c.ms_per_node["warm pool"] for c in cells if c.n == FLAT_REFERENCE}
    growth = [(c.ms_per_node["warm pool"] / refs[c.shape], c) for c in cells if c.n > FLAT_REFERENCE and c.shape in refs]
    if growth:
        g, c = max(growth, key=lambda item: item[0])
        lines.append(verdict(f"flat: pool ms per node within {FLAT_TOLERANCE}x of {FLAT_REFERENCE} nodes",
                             g <= FLAT_TOLERANCE, f"worst {g:.2f}x ({c.shape} of {c.n:,})"))
    else:
        lines.append(verdict("flat as flows grow", None, f"only sizes up to {FLAT_REFERENCE} measured (--quick)"))
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    """Measure and print the tables and the goals of issue 3, item 8."""
    args = list(sys.argv[1:] if argv is None else argv)
    sizes = QUICK_SIZES if "--quick" in args else SIZES
    concurrency = os.cpu_count() or 1
    print(f"Python {sys.version.split()[0]}, {concurrency} CPUs, load average {os.getloadavg()[0]:.2f}; "
          f"engine concurrency {concurrency}, pool of {concurrency} sandboxes; rounds per size {ROUNDS}")
    cost = syscall_cost_ns()  # first: it forks, which is only safe before the executors start threads
    executors = contenders(concurrency)
    cells, info = [], []
    try:
        for shape in SHAPES:
            print(f"measuring {shape}:", end="", flush=True)
            for n in sizes:
                print(f" {n:,}", end="", flush=True)
                cells.append(measure(executors, shape, n, ROUNDS[n], concurrency))
            print(flush=True)
        print(f"measuring PyFlow's unpooled executors on {INFO_SIZE} nodes", flush=True)
        extra = info_contenders(concurrency)
        try:
            for shape in SHAPES:
                info.append(measure({"warm pool": executors["warm pool"], **extra}, shape, INFO_SIZE, 1, concurrency))
        finally:
            for executor in extra.values():
                executor.close()
    finally:
        for executor in executors.values():
            executor.close()
    print()
    if busy_warning():
        print(busy_warning() + "\n")
    lines = report(cells, info, concurrency)
    lines += filter_lines(cells, cost)
    print("\nGoals (issue 3, item 8; issue 10, item 9):")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
