"""Engine overhead per node (issue 18, items 2 and 3): PyFlow's engine next to Hamilton and plain Python.

Why: PyFlow promises that its engine costs little next to node code (at most 50 us per node at every
size from 10 to 10,000 nodes), at least twice as fast as Hamilton (a comparable DAG library), and the
same per node for 10,000 nodes as for 100 (within 1.2x: nothing quadratic, no recursion). The same DAG
is built and executed three ways in one process, one after the other, so every ratio compares numbers
measured on the same machine in the same minute:

- PyFlow: compile_flow (check and plan: the "build") and run_flow with the in-process executor;
- Hamilton: driver.Builder().with_modules(module).build(), then driver.execute(final vars), over a
  module of generated functions, one per node;
- plain Python: the same generated functions called in topological order (the floor).

Shapes: a chain (each node feeds the next) and a wide flow (one source feeds every other node).
Flatness is measured on its own, 10,000-node and 100-node PyFlow runs interleaved (see measure_flat).
PyFlow's engine overhead is its total time minus the plain calls. Hamilton recurses over the graph, so
at the default recursion limit a chain of 1,000 nodes raises RecursionError: the table says so, and
shows Hamilton's time with the limit raised (on a thread with a large stack, so the C stack holds).

    python -m benchmarks.engine [--quick] [--profile]
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import types
from dataclasses import dataclass
from time import perf_counter
from typing import Callable

from benchmarks import busy_warning, median, table, verdict

SIZES = (10, 100, 1_000, 10_000)
QUICK_SIZES = (10, 100, 1_000)
SHAPES = ("chain", "wide")
OVERHEAD_GOAL_US = 50.0
HAMILTON_FACTOR = 2.0  # PyFlow's build + execute at most half of Hamilton's, at every size and shape
FLAT_REFERENCE = 100  # per-node costs are compared with the 100-node flow (10 nodes is mostly fixed cost)
FLAT_SIZE = 10_000  # "flat": 10,000 nodes cost at most FLAT_TOLERANCE x per node what 100 nodes cost
FLAT_TOLERANCE = 1.2
MIN_SECONDS = 0.5  # each measurement repeats until this much time is measured...
MIN_REPEATS = 5  # ...and at least this often
FLAT_ROUNDS = 9  # a 10,000-node run takes 0.2 s, and the machine's neighbours move single ones by 5-10 %
COLLECT_FROM = 1_000  # DAGs this large are timed from a collected heap (see measure_all)
MAX_REPEATS = 200
RAISED_RECURSION_LIMIT = 1_000_000
DEEP_STACK_BYTES = 1 << 30

SOURCE_FUNC = "def func():\n    return 0\n"
INC_FUNC = "def func(a):\n    return a + 1\n"


class Recursed(Exception):
    """Hamilton hit the recursion limit; `phase` says whether in build or execute."""

    def __init__(self, phase: str):
        super().__init__(phase)
        self.phase = phase


@dataclass
class Timing:
    """Median seconds of one DAG's build, execute and build+execute over the repeats."""

    build: float
    execute: float
    total: float
    repeats: int

    def us(self, n: int) -> tuple[float, float, float]:
        return self.build / n * 1e6, self.execute / n * 1e6, self.total / n * 1e6


@dataclass
class Case:
    shape: str
    n: int
    pyflow: Timing
    plain: Timing
    schema_s: float | None
    hamilton: Timing | None
    hamilton_note: str

    def overhead_us(self) -> float:
        return (self.pyflow.total - self.plain.total) / self.n * 1e6


# ------------------------------------------------------------------------------------------ timing
@dataclass
class Contender:
    """One way of running the DAG: build() makes something runnable, execute(built) runs it; check
    sees the first result (a wrong answer is a bug, and timing wrong work means nothing)."""

    build: Callable
    execute: Callable
    check: Callable | None = None


def measure_all(contenders: dict[str, Contender], collect_each: bool = False) -> dict[str, Timing]:
    """Median build/execute/total of each contender, measured in interleaved rounds (one repeat of each
    per round) so that load elsewhere on the machine hits them all alike and the ratios stay fair.

    With `collect_each` (large DAGs), the garbage collector runs before every timed repeat, untimed: a
    full collection then takes about 100 ms in this process, and without it the one that the previous
    contender's garbage brings on would land in whichever contender runs next. Each contender still pays
    for the collections its own allocations bring on."""
    samples: dict[str, tuple[list, list, list]] = {name: ([], [], []) for name in contenders}
    gc.collect()
    rounds = 0
    while rounds < MIN_REPEATS or (max(sum(s[2]) for s in samples.values()) < MIN_SECONDS
                                   and rounds < MAX_REPEATS):
        for name, contender in contenders.items():
            builds, executes, totals = samples[name]
            if collect_each:
                gc.collect()
            t0 = perf_counter()
            built = contender.build()
            t1 = perf_counter()
            result = contender.execute(built)
            t2 = perf_counter()
            if contender.check is not None and rounds == 0:
                contender.check(result)
            builds.append(t1 - t0)
            executes.append(t2 - t1)
            totals.append(t2 - t0)
        rounds += 1
    return {name: Timing(median(b), median(e), median(t), rounds) for name, (b, e, t) in samples.items()}


def run_deep(fn: Callable):
    """Call fn on a thread with a 1 GiB stack and a raised recursion limit, as Hamilton needs for long
    chains; the limit is restored afterwards so nothing else runs with it."""
    box: dict = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as exc:  # re-raised on the calling thread
            box["error"] = exc

    old_limit, old_stack = sys.getrecursionlimit(), threading.stack_size(DEEP_STACK_BYTES)
    sys.setrecursionlimit(RAISED_RECURSION_LIMIT)
    try:
        thread = threading.Thread(target=target, name="bench-deep")
        thread.start()
        thread.join()
    finally:
        threading.stack_size(old_stack)
        sys.setrecursionlimit(old_limit)
    if "error" in box:
        raise box["error"]
    return box["value"]


# ---------------------------------------------------------------------------------------- the DAGs
def expected_values(shape: str, n: int) -> dict[str, int]:
    """What the sinks must hold: a chain ends at n-1, every wide leaf holds 1."""
    if shape == "chain":
        return {f"n{n - 1}": n - 1}
    return {f"n{i}": 1 for i in range(1, n)}


def upstream(shape: str, i: int) -> str:
    return f"n{i - 1}" if shape == "chain" else "n0"


def pyflow_specs() -> dict:
    from pyflow.model.nodespec import parse_nodespec
    source = {"id": "bench.source", "title": "source", "func": SOURCE_FUNC,
              "port": {"input": [], "output": [{"name": "out", "type": "Int"}]}}
    inc = {"id": "bench.inc", "title": "increment", "func": INC_FUNC,
           "port": {"input": [{"name": "a", "order": 0, "type": "Int"}], "output": [{"name": "out", "type": "Int"}]}}
    return {doc["id"]: parse_nodespec(doc) for doc in (source, inc)}


def flow_doc(shape: str, n: int) -> dict:
    nodes = [{"id": "n0", "spec_id": "bench.source", "name": "n0", "ports": []}]
    nodes += [{"id": f"n{i}", "spec_id": "bench.inc", "name": f"n{i}", "ports": []} for i in range(1, n)]
    links = [{"source": f"{upstream(shape, i)}:out", "target": f"n{i}:a"} for i in range(1, n)]
    return {"id": f"bench-{shape}-{n}", "name": f"{shape} of {n}", "nodes": nodes, "links": links}


def generated_module(shape: str, n: int) -> types.ModuleType:
    """One function per node, named after it, taking its upstream node by name (Hamilton's convention).
    Registered in sys.modules because Hamilton keeps only functions whose module it can find."""
    name = f"pyflow_bench_{shape}_{n}"
    lines = ["def n0() -> int:\n    return 0\n"]
    lines += [f"def n{i}({upstream(shape, i)}: int) -> int:\n    return {upstream(shape, i)} + 1\n"
              for i in range(1, n)]
    module = types.ModuleType(name)
    sys.modules[name] = module
    exec(compile("\n".join(lines), f"<{name}>", "exec"), module.__dict__)
    return module


# ------------------------------------------------------------------------------------ the contenders
def pyflow_contender(shape: str, n: int, specs: dict, executor) -> Contender:
    from pyflow.engine import RunOptions, compile_flow, run_flow
    doc, options, wanted = flow_doc(shape, n), RunOptions(use_cache=False), expected_values(shape, n)

    def check(outcome):
        got = {r["id"]: r["outputs"].get("out") for r in outcome.nodes if r["id"] in wanted}
        if outcome.status != "succeeded" or got != wanted:
            raise RuntimeError(f"PyFlow computed the wrong thing on the {shape} of {n}: {outcome.status}")

    return Contender(lambda: compile_flow(doc, specs), lambda plan: run_flow(plan, executor, options), check)


def schema_contender(shape: str, n: int) -> Contender | None:
    """The JSON Schema check of the flow document alone: part of PyFlow's build, shown on its own."""
    try:
        from pyflow.model.validation import schema_errors
    except ImportError:
        return None
    doc = flow_doc(shape, n)
    return Contender(lambda: None, lambda _: schema_errors("flow", doc))


def plain_contender(shape: str, n: int, module: types.ModuleType) -> Contender:
    functions = [getattr(module, f"n{i}") for i in range(n)]
    first, rest = functions[0], functions[1:]

    def chain(_):
        value = first()
        for fn in rest:
            value = fn(value)
        return value

    def wide(_):
        value = first()
        return [fn(value) for fn in rest]

    return Contender(lambda: None, chain if shape == "chain" else wide)


def hamilton_driver():
    """Hamilton's driver module with its telemetry off (a benchmark must not phone home), or None."""
    os.environ.setdefault("HAMILTON_TELEMETRY_ENABLED", "false")
    try:
        from hamilton import driver
    except ImportError:
        return None
    import logging
    logging.getLogger("hamilton").setLevel(logging.CRITICAL)  # its RecursionError banner is expected here
    return driver


def hamilton_version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    for dist in ("sf-hamilton", "apache-hamilton"):
        try:
            return f"{dist} {version(dist)}"
        except PackageNotFoundError:
            continue
    return "not installed"


def hamilton_contender(driver, shape: str, n: int, module: types.ModuleType) -> Contender:
    wanted = expected_values(shape, n)
    finals = list(wanted)

    def build():
        try:
            return driver.Builder().with_modules(module).build()
        except RecursionError:
            raise Recursed("build") from None

    def execute(dr):
        try:
            return dr.execute(finals)
        except RecursionError:
            raise Recursed("execute") from None

    def check(result):
        if {k: result[k] for k in finals} != wanted:
            raise RuntimeError(f"Hamilton computed the wrong thing on the {shape} of {n}")

    return Contender(build, execute, check)


def probe_default_limit(contender: Contender) -> str:
    """One Hamilton build + execute at the interpreter's recursion limit: "ok", or where it recursed."""
    try:
        contender.execute(contender.build())
    except Recursed as exc:
        return f"RecursionError ({exc.phase})"
    return "ok"


def run_case(shape: str, n: int, specs: dict, driver) -> Case:
    """Time one DAG every way. Everything is measured on a deep-stack thread with a raised recursion
    limit (it changes nothing for PyFlow or plain calls), after probing Hamilton at the default limit."""
    from pyflow.executors import create_executor
    module, executor = generated_module(shape, n), create_executor("inprocess")
    try:
        # Plain calls take microseconds in all: interleaved with the others they would mostly measure
        # the caches the others left cold, so they are timed on their own.
        plain = measure_all({"plain": plain_contender(shape, n, module)})["plain"]
        contenders = {"pyflow": pyflow_contender(shape, n, specs, executor)}
        schema = schema_contender(shape, n)
        if schema is not None:
            contenders["schema"] = schema
        note = "not installed"
        if driver is not None:
            contenders["hamilton"] = hamilton_contender(driver, shape, n, module)
            note = probe_default_limit(contenders["hamilton"])
        try:
            timings = run_deep(lambda: measure_all(contenders, collect_each=n >= COLLECT_FROM))
        except (Recursed, RecursionError, MemoryError) as exc:
            note += f"; {type(exc).__name__} with the limit raised too"
            contenders.pop("hamilton")
            timings = run_deep(lambda: measure_all(contenders, collect_each=n >= COLLECT_FROM))
    finally:
        sys.modules.pop(module.__name__, None)
        executor.close()
    schema_s = timings["schema"].execute if "schema" in timings else None
    return Case(shape, n, timings["pyflow"], plain, schema_s, timings.get("hamilton"), note)


# ---------------------------------------------------------------------------------------- reporting
def ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or not b else f"{a / b:.2f}x"


def timing_table(cases: list[Case]) -> str:
    rows = []
    for c in cases:
        pb, pe, pt = c.pyflow.us(c.n)
        hb, he, ht = c.hamilton.us(c.n) if c.hamilton else (None, None, None)
        schema = c.schema_s / c.n * 1e6 if c.schema_s is not None else None
        rows.append((c.shape, c.n, pb, schema, pe, pt, hb, he, ht, c.plain.total / c.n * 1e6))
    headers = ("flow", "nodes", "PyFlow build", "full jsonschema", "PyFlow exec", "PyFlow total",
               "Hamilton build", "Hamilton exec", "Hamilton total", "plain Python")
    return table(headers, [r[:-1] + (f"{r[-1]:.3f}",) for r in rows],
                 title="Microseconds per node (median of repeats; build = check and plan, exec = run; "
                       "full jsonschema = the flow schema alone, for scale: the build skips it for well-formed flows)")


def ratio_table(cases: list[Case]) -> str:
    reference = {c.shape: c for c in cases if c.n == FLAT_REFERENCE}
    rows = []
    for c in cases:
        ref = reference.get(c.shape)
        h = c.hamilton
        h_ref = ref.hamilton if ref else None
        rows.append((c.shape, c.n, c.overhead_us(),
                     ratio(c.pyflow.build, h and h.build), ratio(c.pyflow.execute, h and h.execute),
                     ratio(c.pyflow.total, h and h.total), ahead_of_hamilton(c), ratio(c.pyflow.total, c.plain.total),
                     ratio(c.pyflow.total / c.n, ref and ref.pyflow.total / ref.n),
                     ratio(h and h.total / c.n, h_ref and h_ref.total / ref.n), c.hamilton_note))
    headers = ("flow", "nodes", "PyFlow overhead us/node", "build vs H", "exec vs H", "total vs H",
               f"{HAMILTON_FACTOR:g}x ahead of H", "total vs plain", f"PyFlow/node vs {FLAT_REFERENCE}",
               f"Hamilton/node vs {FLAT_REFERENCE}", "Hamilton at default limit")
    return table(headers, rows, title="Ratios, same run (vs H = PyFlow time / Hamilton time; overhead = "
                                      "PyFlow total - plain Python)")


def ahead_of_hamilton(case: Case) -> str:
    """The verdict column: whether PyFlow's total is at most 1/HAMILTON_FACTOR of Hamilton's."""
    if case.hamilton is None:
        return "-"
    return "yes" if case.pyflow.total * HAMILTON_FACTOR <= case.hamilton.total else "NO"


def goal_lines(cases: list[Case], flat: dict[str, tuple[float, float]]) -> list[str]:
    worst = max(cases, key=Case.overhead_us)
    lines = [verdict(f"engine overhead <= {OVERHEAD_GOAL_US:.0f} us per node at every size", worst.overhead_us() <= OVERHEAD_GOAL_US,
                     f"worst {worst.overhead_us():.1f} us/node ({worst.shape} of {worst.n:,})")]
    compared = [c for c in cases if c.hamilton is not None]
    if compared:
        slowest = max(compared, key=lambda c: c.pyflow.total / c.hamilton.total)
        r = slowest.hamilton.total / slowest.pyflow.total
        lines.append(verdict(f"at least {HAMILTON_FACTOR:g}x ahead of Hamilton (build + execute) at every size",
                             r >= HAMILTON_FACTOR, f"worst {r:.2f}x ahead: PyFlow takes {1 / r:.2f}x "
                                                   f"Hamilton's time ({slowest.shape} of {slowest.n:,})"))
    else:
        lines.append(verdict(f"at least {HAMILTON_FACTOR:g}x ahead of Hamilton", None, "Hamilton is not installed"))
    lines.append(flat_line(flat))
    recursed = [f"{c.shape} of {c.n:,}" for c in cases if c.hamilton_note.startswith("RecursionError")]
    if recursed:
        lines.append(f"  note: at the default recursion limit ({sys.getrecursionlimit():,}) Hamilton raised "
                     f"RecursionError on: {', '.join(recursed)}; its times above for those use a limit of "
                     f"{RAISED_RECURSION_LIMIT:,} on a thread with a {DEEP_STACK_BYTES >> 20} MiB stack")
    return lines


def flat_line(flat: dict[str, tuple[float, float]]) -> str:
    if not flat:
        return verdict("flat cost per node", None, f"{FLAT_SIZE:,}-node flows are not measured with --quick")
    shape, (small, big) = max(flat.items(), key=lambda item: item[1][1] / item[1][0])
    return verdict(f"flat cost per node ({FLAT_SIZE:,} nodes within {FLAT_TOLERANCE}x of {FLAT_REFERENCE} per node, "
                   f"interleaved)", big <= FLAT_TOLERANCE * small,
                   f"worst {big / small:.2f}x ({shape}: {small:.1f} -> {big:.1f} us/node)")


def measure_flat(shape: str, specs: dict) -> tuple[float, float]:
    """PyFlow's build + run per node at FLAT_REFERENCE and at FLAT_SIZE nodes, in interleaved rounds:
    each round runs one flow of FLAT_SIZE nodes, then as many FLAT_REFERENCE-node flows as make the same
    number of nodes, so that a change of load on the machine weighs on both sizes alike (the table's
    sizes are measured minutes apart). Medians of the per-node times, in microseconds."""
    from pyflow.executors import create_executor
    executor = create_executor("inprocess")
    small, big = (pyflow_contender(shape, n, specs, executor) for n in (FLAT_REFERENCE, FLAT_SIZE))
    small_us, big_us = [], []
    gc.collect()
    try:
        for _ in range(FLAT_ROUNDS):
            gc.collect()  # untimed, as measure_all does for large DAGs; the small runs leave no garbage
            started = perf_counter()
            big.execute(big.build())
            big_us.append((perf_counter() - started) / FLAT_SIZE * 1e6)
            for _ in range(FLAT_SIZE // FLAT_REFERENCE):
                started = perf_counter()
                small.execute(small.build())
                small_us.append((perf_counter() - started) / FLAT_REFERENCE * 1e6)
    finally:
        executor.close()
    return median(small_us), median(big_us)


def flat_table(flat: dict[str, tuple[float, float]]) -> str:
    rows = [(shape, small, big, f"{big / small:.2f}x") for shape, (small, big) in flat.items()]
    return table(("flow", f"{FLAT_REFERENCE} nodes", f"{FLAT_SIZE:,} nodes", "ratio"), rows,
                 title=f"Flat: PyFlow build + run, us per node, median of {FLAT_ROUNDS} interleaved rounds (one "
                       f"{FLAT_SIZE:,}-node flow and {FLAT_SIZE // FLAT_REFERENCE} of {FLAT_REFERENCE} nodes each)")


def profile(n: int = 10_000, lines: int = 14) -> None:
    """Where PyFlow's time goes on an n-node chain: cProfile of compile_flow, then of run_flow."""
    import cProfile
    import pstats
    from pyflow.engine import RunOptions, compile_flow, run_flow
    from pyflow.executors import create_executor
    specs, doc, executor = pyflow_specs(), flow_doc("chain", n), create_executor("inprocess")
    profiler = cProfile.Profile()
    compiled = profiler.runcall(compile_flow, doc, specs)
    print(f"\ncProfile of compile_flow on a chain of {n:,} nodes (by cumulative time):")
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(lines)
    profiler = cProfile.Profile()
    profiler.runcall(run_flow, compiled, executor, RunOptions(use_cache=False))
    print(f"\ncProfile of run_flow on a chain of {n:,} nodes (by own time):")
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(lines)


def main(argv: list[str] | tuple = ()) -> int:
    args = list(argv)
    if "--profile" in args:
        profile()
        return 0
    sizes = QUICK_SIZES if "--quick" in args else SIZES
    driver = hamilton_driver()
    print(f"Python {sys.version.split()[0]}, {hamilton_version()}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.2f}; in-process executor. Each figure: the median of >= {MIN_REPEATS} interleaved "
          f"rounds (PyFlow, schema check, Hamilton once per round; >= {MIN_SECONDS} s for the slowest); plain calls timed alone")
    specs, cases = pyflow_specs(), []
    for shape in SHAPES:
        print(f"measuring {shape}:", end="", flush=True)
        for n in sizes:
            print(f" {n:,}", end="", flush=True)
            cases.append(run_case(shape, n, specs, driver))
        print(flush=True)
    flat = {}
    if FLAT_SIZE in sizes:
        print("measuring flat:", end="", flush=True)
        for shape in SHAPES:
            print(f" {shape}", end="", flush=True)
            flat[shape] = measure_flat(shape, specs)
        print(flush=True)
    print()
    if busy_warning():
        print(busy_warning() + "\n")
    print(timing_table(cases))
    print()
    print(ratio_table(cases))
    if flat:
        print()
        print(flat_table(flat))
    goals = goal_lines(cases, flat)
    print("\nGoals (issue 18, items 2 and 3):")
    print("\n".join(goals))
    if any("MISSED" in line for line in goals):
        print("  where the time goes: python -m benchmarks.engine --profile")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
