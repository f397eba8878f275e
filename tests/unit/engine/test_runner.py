import gc
import threading

from pyflow.engine import RunOptions, compile_flow, run_flow
from pyflow.executors.inprocess import InProcessExecutor

from .helpers import SPECS, flow


def run(doc, concurrency=2, **kw):
    return run_flow(compile_flow(doc, SPECS), InProcessExecutor(), RunOptions(concurrency=concurrency), **kw)


def by_id(outcome):
    return {n["id"]: n for n in outcome.nodes}


def test_arguments_in_port_order_with_conversion():
    doc = flow([("a", "t.add", {"b": "10", "a": "5"})])
    node = by_id(run(doc))["a"]
    assert node["inputs"] == {"a": 5, "b": 10} and node["outputs"] == {"out": 15}
    assert node["status"] == "success" and node["started_at"].endswith("Z")


def test_failure_skips_downstream_but_independent_branches_run():
    doc = flow([("bad", "t.fail", {"a": "x"}), ("after", "t.inc", {}), ("later", "t.inc", {}),
                ("free", "t.inc", {"a": 1})], [("bad:out", "after:a"), ("after:out", "later:a")])
    outcome = run(doc)
    nodes = by_id(outcome)
    assert outcome.status == "failed"
    assert nodes["bad"]["status"] == "fail" and nodes["bad"]["error"]["message"] == "bad x"
    assert nodes["after"]["status"] == "skipped"
    assert "upstream node 'bad' (bad) failed" in nodes["after"]["error"]["message"]
    assert "'after' (after) was skipped" in nodes["later"]["error"]["message"]
    assert nodes["free"]["status"] == "success"


def test_conversion_failure_names_node_port_type_and_value():
    nodes = by_id(run(flow([("x", "t.inc", {"a": "abc"})])))
    message = nodes["x"]["error"]["message"]
    assert nodes["x"]["status"] == "fail"
    for part in ("'x'", "'a'", "Int", "'abc'"):
        assert part in message


def test_multiple_outputs_and_missing_key():
    doc = flow([("p", "t.pair", {"a": 3}), ("i", "t.inc", {})], [("p:y", "i:a")])
    nodes = by_id(run(doc))
    assert nodes["p"]["outputs"] == {"x": 3, "y": -3} and nodes["i"]["outputs"] == {"out": -2}
    from .helpers import spec
    broken = spec("t.pair", "def func(a):\n    return {'x': a}\n", ["a"], ["x", "y"])
    outcome = run_flow(compile_flow(flow([("p", "t.pair", {"a": 1})]), {"t.pair": broken}), InProcessExecutor())
    assert outcome.nodes[0]["status"] == "fail" and "no value for output port 'y'" in outcome.nodes[0]["error"]["message"]


def test_independent_nodes_run_concurrently():
    """Four sleeping nodes with a concurrency of four: each says when it slept, and all four sleeps share
    a moment (in a row, none would)."""
    from .helpers import spec
    stamped = spec("t.stamped", "import time\ndef func(s):\n    began = time.time()\n    time.sleep(float(s))\n"
                   "    return [began, time.time()]\n", ["s"])
    doc = flow([(f"s{i}", "t.stamped", {"s": 0.3}) for i in range(4)])
    from pyflow.executors.process import ProcessExecutor
    with ProcessExecutor(pool_size=4) as executor:
        executor.start()
        outcome = run_flow(compile_flow(doc, {"t.stamped": stamped}), executor, RunOptions(concurrency=4))
    assert outcome.status == "succeeded"
    spans = [node["outputs"]["out"] for node in outcome.nodes]
    assert max(start for start, _ in spans) < min(end for _, end in spans), spans


def test_concurrency_caps_the_nodes_running_at_once():
    """Six independent nodes with a limit of two: never more than two at once, and all of them run."""
    running, peak, lock = [0], [0], threading.Lock()

    def on_event(kind, data):
        with lock:
            if kind == "node_started":
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            elif kind == "node_finished":
                running[0] -= 1

    from pyflow.executors.process import ProcessExecutor
    doc = flow([(f"s{i}", "t.sleep", {"s": 0.2}) for i in range(6)])
    with ProcessExecutor(pool_size=2) as executor:
        executor.start()
        outcome = run_flow(compile_flow(doc, SPECS), executor, RunOptions(concurrency=2), on_event=on_event)
    assert outcome.status == "succeeded" and peak[0] == 2


def test_ten_thousand_node_chain_runs_without_recursion():
    n = 10_000
    doc = flow([("n0", "t.inc", {"a": 0})] + [(f"n{i}", "t.inc", {}) for i in range(1, n)],
               [(f"n{i - 1}:out", f"n{i}:a") for i in range(1, n)])
    outcome = run(doc, concurrency=1)
    assert outcome.status == "succeeded"
    assert by_id(outcome)[f"n{n - 1}"]["outputs"] == {"out": n}


def test_a_large_run_leaves_the_garbage_collector_little_to_track():
    """Every container the collector tracks that stays alive through a run is promoted and scanned again
    by each full collection: with six per node, a 10,000-node run cost 1.5x per node what a 100-node
    run did. Who feeds whom is one table of numbers and one list, not a container per node, and paths
    are tuples of strings, which leave the collector's care at the first collection that sees them (as
    they do in a run this large); what is left per node is the planned node, its dict of links and its
    result."""
    n = 2_000
    doc = flow([("n0", "t.inc", {"a": 0})] + [(f"n{i}", "t.inc", {}) for i in range(1, n)],
               [(f"n{i - 1}:out", f"n{i}:a") for i in range(1, n)])
    gc.collect()
    tracked_before = len(gc.get_objects())
    compiled = compile_flow(doc, SPECS)
    gc.collect(0)  # what the first young collection of a run this large does to the plan's tuples
    outcome = run_flow(compiled, InProcessExecutor(), RunOptions(concurrency=1, use_cache=False))
    gc.collect(0)
    assert outcome.status == "succeeded" and len(outcome.nodes) == n
    assert not any(gc.is_tracked(result["path"]) for result in outcome.nodes)
    assert not gc.is_tracked(compiled.links.indegree) and not gc.is_tracked(compiled.links.first)
    assert (len(gc.get_objects()) - tracked_before) / n < 3.1


def test_events_follow_each_node():
    events = []
    run(flow([("a", "t.inc", {"a": 1}), ("b", "t.inc", {})], [("a:out", "b:a")]),
        on_event=lambda kind, data: events.append((kind, data["id"] if "id" in data else data["node"])))
    assert events == [("node_started", "a"), ("node_finished", "a"), ("node_started", "b"), ("node_finished", "b")]


def test_cache_hits_skip_execution():
    store = {}

    class Cache:
        def get_many(self, keys):
            return {k: store[k] for k in keys if k in store}

        def put(self, key, record):
            store[key] = record

    doc = flow([("a", "t.inc", {"a": 1}), ("b", "t.inc", {})], [("a:out", "b:a")])
    first = run(doc, cache=Cache())
    second = run(doc, cache=Cache())
    assert [n["cached"] for n in first.nodes] == [False, False]
    assert [n["cached"] for n in second.nodes] == [True, True]
    assert by_id(second)["b"]["outputs"] == {"out": 3}


def test_cancel_skips_pending_nodes():
    cancel = threading.Event()
    seen = []

    def on_event(kind, data):
        seen.append(kind)
        if kind == "node_finished":
            cancel.set()

    doc = flow([("a", "t.inc", {"a": 1}), ("b", "t.inc", {})], [("a:out", "b:a")])
    outcome = run(doc, concurrency=1, on_event=on_event, cancel=cancel)
    assert outcome.status == "cancelled"
    assert by_id(outcome)["b"]["status"] == "skipped"
    assert by_id(outcome)["b"]["error"]["message"] == "the run was cancelled"


class Recording(InProcessExecutor):
    """Runs in process, keeps every task it was given, says a worker ran it, and hears the run end."""

    def __init__(self):
        super().__init__()
        self.tasks, self.finished = {}, []

    def run(self, task, cancel=None):
        self.tasks[task.node_id] = task
        outcome = super().run(task, cancel)
        outcome.worker = f"worker-of-{task.node_id}"
        return outcome

    def finish_run(self, run_id):
        self.finished.append(run_id)


def test_tasks_name_each_linked_inputs_deterministic_source_and_results_name_the_worker():
    from pyflow.engine.execution import ArgSource
    from .helpers import spec
    noisy = spec("t.noisy", "def func(a):\n    return a\n", [{"name": "a", "type": "Int"}],
                 [{"name": "out", "type": "Int"}], cache=False)
    specs = {**SPECS, noisy.id: noisy}
    doc = flow([("p", "t.pair", {"a": 3}), ("n", "t.noisy", {"a": 1}), ("s", "t.add", {})],
               [("p:y", "s:a"), ("n:out", "s:b")])
    executor = Recording()
    outcome = run_flow(compile_flow(doc, specs), executor, RunOptions(concurrency=1, run_id="r1"))
    assert by_id(outcome)["s"]["outputs"] == {"out": -2}
    assert executor.tasks["s"].sources == (ArgSource("p", "y", False, "Int", "Int"), None)
    assert executor.tasks["p"].sources == (None,)
    assert {n["id"]: n["worker"] for n in outcome.nodes} == {"p": "worker-of-p", "n": "worker-of-n",
                                                             "s": "worker-of-s"}
    assert executor.finished == ["r1"]


def test_results_of_executors_that_name_no_worker_carry_no_worker_field():
    outcome = run(flow([("a", "t.inc", {"a": 1})]))
    assert "worker" not in outcome.nodes[0]


def test_ready_nodes_start_in_flow_order_one_at_a_time():
    """With one slot, nodes start as they became ready: sources in flow order, then each node's successors
    in flow order; and a node never starts before every node feeding it finished."""
    nodes = [("s", "t.inc", {"a": 0}), ("x", "t.inc", {"a": 0}), ("b", "t.inc", None), ("a", "t.inc", None),
             ("m", "t.add", None)]
    links = [("s:out", "b:a"), ("s:out", "a:a"), ("b:out", "m:a"), ("x:out", "m:b")]
    started, finished = [], []

    def on_event(kind, data):
        if kind == "node_started":
            started.append(data["node"])
        elif kind == "node_finished":
            assert all(p in finished for p in {"b": ["s"], "a": ["s"], "m": ["b", "x"]}.get(data["id"], []))
            finished.append(data["id"])

    outcome = run_flow(compile_flow(flow(nodes, links), SPECS), InProcessExecutor(), RunOptions(concurrency=1),
                       on_event=on_event)
    assert outcome.status == "succeeded"
    assert started == ["s", "x", "b", "a", "m"] and finished == started


def test_limits_resolve_the_same_from_memory_and_keep_the_type_given():
    from pyflow.engine.execution import MAX_LIMITS, resolve_limits
    first = resolve_limits({"memory_mb": 100, "timeout_s": 1.5})
    assert resolve_limits({"memory_mb": 100, "timeout_s": 1.5}) == first and first.memory_mb == 100
    assert type(resolve_limits({"timeout_s": 2}).timeout_s) is int
    assert type(resolve_limits({"timeout_s": 2.0}).timeout_s) is float
    assert resolve_limits({"memory_mb": 10 ** 9}).memory_mb == MAX_LIMITS.memory_mb
    assert resolve_limits(None) == resolve_limits({})


class _ThreadNoting(InProcessExecutor):
    """Runs nodes in-process, as a pooled executor would be called (not inline), noting on which thread
    each node ran and how many ran at once."""

    inline = False

    def __init__(self, gate: threading.Barrier | None = None):
        super().__init__()
        self.threads, self.gate = [], gate

    def run(self, task, cancel=None):
        self.threads.append(threading.current_thread().name)
        if self.gate is not None:
            self.gate.wait(timeout=10)  # breaks (and fails the node) unless two nodes run at once
        return super().run(task, cancel)


def test_the_only_node_that_can_run_runs_on_the_schedulers_thread_and_others_in_parallel():
    """A chain never has two nodes ready at once: each runs on the scheduler's own thread (no hand-off to
    the pool and back); two nodes ready together still run at the same time."""
    chain = flow([("a", "t.inc", {"a": 1}), ("b", "t.inc", None), ("c", "t.inc", None)],
                 [("a:out", "b:a"), ("b:out", "c:a")])
    executor = _ThreadNoting()
    outcome = run_flow(compile_flow(chain, SPECS), executor, RunOptions(concurrency=2))
    assert outcome.status == "succeeded"
    assert executor.threads == [threading.current_thread().name] * 3
    pair = flow([("x", "t.inc", {"a": 1}), ("y", "t.inc", {"a": 2})])
    executor = _ThreadNoting(threading.Barrier(2))
    outcome = run_flow(compile_flow(pair, SPECS), executor, RunOptions(concurrency=2))
    assert outcome.status == "succeeded" and all(name.startswith("pyflow-node") for name in executor.threads)
