"""The Dask executor's own behaviour: keys, values passed on the cluster, dead workers, no workers."""

from __future__ import annotations

import threading

import pytest

from pyflow.engine.execution import ArgSource, ExecutorUnavailable
from pyflow.executors import create_executor
from pyflow.executors.dask import node_key
from pyflow.executors.dask.executor import CLIENT_BATCH_S
from pyflow.executors.dask.plugin import OUTCOME_TOPIC, PUSH_LIMIT
from tests.hostile.support import processes_named
from tests.support.waiting import wait_until

from .conftest import NAMED, kill_worker, make_task, wait_for_workers, worker_pids, worker_running

ECHO = "def func(x):\n    return x\n"


def scheduler_keys(executor, prefix: str) -> list[str]:
    return executor.client.run_on_scheduler(_keys, prefix)


def _keys(prefix, dask_scheduler):
    return sorted(str(k) for k in dask_scheduler.tasks if str(k).startswith(prefix))


def _dependencies(key, dask_scheduler):
    return sorted(str(d.key) for d in dask_scheduler.tasks[key].dependencies)


BIG = "def func(n):\n    return {'made': 'on the worker', 'pad': 'x' * n}\n"


def test_a_nodes_big_input_from_the_same_run_comes_from_the_upstream_future_not_the_server(dask_executor):
    """An outcome too big to push stays on its worker: the downstream task depends on the upstream's key,
    and its input is the value on the cluster: the copy in the task's own arguments (here made different
    on purpose) is not what the node receives."""
    first = dask_executor.run(make_task(BIG, 2 * PUSH_LIMIT, node_id="up", run_id="pass-1"))
    assert first.ok and first.worker in dask_executor.read_workers()
    source = ArgSource("up", "out", True, "Any", "Any")
    second = dask_executor.run(make_task(ECHO, "the server's copy", node_id="down", run_id="pass-1", sources=[source]))
    assert second.ok and second.value == first.value and second.value["made"] == "on the worker", second
    assert dask_executor.client.run_on_scheduler(_dependencies, node_key("pass-1", "down", 1)) == ["pyflow:pass-1:up:1"]
    dask_executor.finish_run("pass-1")
    assert wait_until(lambda: not scheduler_keys(dask_executor, "pyflow:pass-1:"), timeout=30)


def test_a_big_result_lost_with_its_worker_is_computed_again_for_the_node_it_feeds(dask_executor):
    """The README's promise for a deterministic (`cache: true`) node whose result stays on its worker:
    when that worker dies before the node it feeds has fetched the result, Dask computes it again on a
    worker that lives, and the downstream node gets the same value."""
    wait_for_workers(dask_executor)
    first = dask_executor.run(make_task(BIG, 2 * PUSH_LIMIT, node_id="up", run_id="lost-1"))
    assert first.ok and first.worker in dask_executor.read_workers()
    kill_worker(dask_executor, first.worker)
    wait_until(lambda: first.worker not in dask_executor.read_workers(), timeout=60,
               fail="the scheduler never noticed the worker's end")
    source = ArgSource("up", "out", True, "Any", "Any")
    second = dask_executor.run(make_task(ECHO, "the server's copy", node_id="down", run_id="lost-1", sources=[source]))
    assert second.ok and second.value == first.value, second
    holders = dask_executor.client.run_on_scheduler(_holders, node_key("lost-1", "up", 1))
    assert holders and first.worker not in holders, holders  # computed again, on a worker that lives
    dask_executor.finish_run("lost-1")
    wait_for_workers(dask_executor)  # the nanny's new worker, for the tests after this one


def _holders(key, dask_scheduler):
    task = dask_scheduler.tasks.get(key)
    return sorted(w.address for w in task.who_has) if task is not None else []


def test_a_nodes_small_input_goes_with_its_task_and_the_results_go_when_the_run_ends(dask_executor):
    """A small outcome reached the server with the node's end: the node it feeds gets the value in its
    arguments (no task to wait for). The results stay until the run ends (released together)."""
    first = dask_executor.run(make_task(ECHO, {"made": "on the worker"}, node_id="up", run_id="inline-1"))
    source = ArgSource("up", "out", True, "Any", "Any")
    second = dask_executor.run(make_task(ECHO, first.value, node_id="down", run_id="inline-1", sources=[source]))
    dependencies = dask_executor.client.run_on_scheduler(_dependencies, node_key("inline-1", "down", 1))
    assert second.ok and second.value == {"made": "on the worker"} and dependencies == []
    assert node_key("inline-1", "up", 1) in scheduler_keys(dask_executor, "pyflow:inline-1:")
    dask_executor.finish_run("inline-1")
    assert wait_until(lambda: not scheduler_keys(dask_executor, "pyflow:inline-1:"), timeout=30)


def test_an_input_from_a_port_of_several_is_converted_as_the_engine_converts_it(dask_executor):
    pair = "def func():\n    return {'n': '41', 'rest': None}\n"
    assert dask_executor.run(make_task(pair, node_id="p", run_id="conv-1")).ok
    source = ArgSource("p", "n", False, "String", "Int")
    outcome = dask_executor.run(make_task("def func(n):\n    return n + 1\n", 41, node_id="c", run_id="conv-1",
                                          sources=[source]))
    dask_executor.finish_run("conv-1")
    assert outcome.ok and outcome.value == 42


def test_a_node_run_again_in_the_same_run_gets_a_key_of_its_own(dask_executor):
    """Dask answers a task under a key it still holds with that key's result: a node run twice in one run
    must not get its first result back."""
    values = [dask_executor.run(make_task(ECHO, n, node_id="again", run_id="again-1")).value for n in range(3)]
    keys = scheduler_keys(dask_executor, "pyflow:again-1:")
    dask_executor.finish_run("again-1")
    assert values == [0, 1, 2]
    assert "pyflow:again-1:again~3:1" in keys, keys


def test_a_node_test_without_a_run_gets_a_key_of_its_own_each_time(dask_executor):
    values = {dask_executor.run(make_task("def func():\n    import random\n    return random.random()\n")).value
              for _ in range(3)}
    assert len(values) == 3


def _run_in_thread(executor, task):
    result = {}
    thread = threading.Thread(target=lambda: result.update(outcome=executor.run(task)))
    thread.start()
    return thread, result


def test_a_node_whose_worker_dies_runs_again_elsewhere_under_attempt_two(dask_executor):
    wait_for_workers(dask_executor)
    name = "pfdkill1"
    thread, result = _run_in_thread(dask_executor, make_task(NAMED, name, 3, node_id="k", run_id="kill-1"))
    first = node_key("kill-1", "k", 1)
    doomed = wait_until(lambda: processes_named(name) and worker_running(dask_executor, first), timeout=60,
                        fail="the node never started")
    kill_worker(dask_executor, doomed)
    thread.join(timeout=120)
    outcome = result["outcome"]
    assert outcome.ok and outcome.value == name, outcome
    assert outcome.worker != doomed
    assert node_key("kill-1", "k", 2) in pushed_keys(dask_executor)  # the outcome is attempt 2's
    assert wait_until(lambda: scheduler_keys(dask_executor, "pyflow:kill-1:") == [node_key("kill-1", "k", 2)],
                      timeout=30), scheduler_keys(dask_executor, "pyflow:kill-1:")
    dask_executor.finish_run("kill-1")


def pushed_keys(executor) -> set[str]:
    """Keys of the nodes whose outcome their worker pushed to the server."""
    return {msg["key"] for _, msg in executor.client.get_events(OUTCOME_TOPIC) if msg["outcome"]}


def test_a_node_whose_worker_dies_twice_fails_saying_so(dask_executor):
    wait_for_workers(dask_executor)
    name = "pfdkill2"
    thread, result = _run_in_thread(dask_executor, make_task(NAMED, name, 60, node_id="k", run_id="kill-2"))
    killed = []
    for attempt in (1, 2):
        key = node_key("kill-2", "k", attempt)
        address = wait_until(lambda: processes_named(name) and worker_running(dask_executor, key), timeout=120,
                             fail=f"attempt {attempt} never started")
        kill_worker(dask_executor, address)
        killed.append(address)
    thread.join(timeout=120)
    outcome = result["outcome"]
    assert not outcome.ok and outcome.error["type"] == "WorkerDied", outcome
    assert outcome.error["message"] == (f"the Dask worker running the node died, 2 times: worker {killed[1]} "
                                        f"ended while running it")
    assert wait_until(lambda: not processes_named(name), timeout=30), "a killed worker's sandbox outlived it"
    wait_for_workers(dask_executor)


def test_worker_processes_are_not_the_servers_and_nodes_never_run_in_them(dask_executor):
    """Node code runs in a sandbox below the worker: its pid namespace is the sandbox's own."""
    import os
    pids = worker_pids(dask_executor)
    assert os.getpid() not in pids.values()
    outcome = dask_executor.run(make_task("def func():\n    import os\n    return [os.getpid(), os.getppid()]\n"))
    assert outcome.ok and outcome.value[1] == 1, outcome  # forked by the zygote, the sandbox's pid 1


def test_without_sandbox_workers_a_node_fails_at_once_and_health_says_why(bare_scheduler):
    executor = create_executor("dask", scheduler=bare_scheduler)
    executor.start()
    try:
        ready = executor.readiness()
        assert not ready["ready"] and "no Dask worker with a PyFlow sandbox" in ready["detail"]
        outcome = executor.run(make_task(ECHO, 1))
        assert not outcome.ok and "no Dask worker with a PyFlow sandbox" in outcome.error["message"]
        warnings = executor.describe()["warnings"]
        assert any("DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=0" in w for w in warnings), warnings
    finally:
        executor.close()


def test_an_unreachable_scheduler_is_refused_at_start_naming_it():
    executor = create_executor("dask", scheduler="tcp://127.0.0.1:9", connect_timeout_s=2)
    with pytest.raises(ExecutorUnavailable, match="cannot start the Dask scheduler at tcp://127.0.0.1:9"):
        executor.start()


def test_a_local_cluster_whose_workers_would_have_no_sandbox_is_refused_saying_why():
    executor = create_executor("dask", n_workers=1, python="/nonexistent/python3")
    with pytest.raises(ExecutorUnavailable) as raised:
        executor.start()
    assert "/nonexistent/python3 is missing" in str(raised.value), raised.value


def test_a_dask_worker_whose_sandbox_cannot_start_does_not_join(bare_scheduler):
    """The plugin itself refuses, whoever starts the worker: its setup fails, so the worker never joins."""
    import asyncio

    from distributed import Worker

    from pyflow.executors.dask import worker_settings

    async def join():
        worker = Worker(bare_scheduler, dashboard_address=None,
                        **worker_settings(1, "sandbox", {"python": "/nonexistent/python3"}))
        await worker

    with pytest.raises(RuntimeError) as raised:
        asyncio.run(join())
    cause = raised.value.__cause__
    assert isinstance(cause, ExecutorUnavailable), raised.value
    assert "this Dask worker cannot run PyFlow nodes, so it does not join" in str(cause)
    assert "/nonexistent/python3 is missing" in str(cause)
    executor = create_executor("dask", scheduler=bare_scheduler)
    executor.start()
    try:
        assert executor.read_workers() == {}
    finally:
        executor.close()


def test_a_task_the_cluster_drops_fails_the_node_saying_so_and_ends_its_sandbox(dask_executor):
    """Not a cancel of the run: the key forgotten by the scheduler (as when it restarts) fails the node."""
    from distributed import Future
    wait_for_workers(dask_executor)
    name = "pfddrop"
    thread, result = _run_in_thread(dask_executor, make_task(NAMED, name, 60, node_id="d", run_id="drop-1"))
    key = node_key("drop-1", "d", 1)
    wait_until(lambda: processes_named(name) and worker_running(dask_executor, key), timeout=60,
               fail="the node never started")
    dask_executor.client.cancel([Future(key, dask_executor.client)], force=True)
    thread.join(timeout=60)
    outcome = result["outcome"]
    assert not outcome.ok and outcome.error["type"] == "ExecutorError" and outcome.violation == "crashed", outcome
    assert outcome.error["message"].startswith("the Dask cluster dropped the node's task"), outcome
    assert wait_until(lambda: not processes_named(name), timeout=30), processes_named(name)


def served_transfers(executor) -> int:
    """How many times the workers have sent a task's result to someone (the server's fetches included)."""
    return sum(executor.client.run(_served, on_error="ignore").values())


def _served(dask_worker):
    return dask_worker.transfer_outgoing_count_total


def test_a_small_outcome_comes_with_the_nodes_end_and_only_a_big_one_is_fetched_from_the_worker(dask_executor):
    """The worker pushes a small outcome to the server as the node ends (no second round trip to fetch
    it); an outcome too big to push is the task's result, fetched from the worker as before."""
    before = served_transfers(dask_executor)
    small = [dask_executor.run(make_task(ECHO, n, node_id=f"s{n}", run_id="push-1")) for n in range(3)]
    after_small = served_transfers(dask_executor)
    big = dask_executor.run(make_task("def func(n):\n    return 'x' * n\n", 100_000, node_id="big", run_id="push-1"))
    after_big = served_transfers(dask_executor)
    pushed = pushed_keys(dask_executor)
    dask_executor.finish_run("push-1")
    assert [o.value for o in small] == [0, 1, 2] and all(o.worker for o in small)
    assert {node_key("push-1", f"s{n}", 1) for n in range(3)} <= pushed and after_small == before
    assert big.ok and big.value == "x" * 100_000 and node_key("push-1", "big", 1) not in pushed
    assert after_big > after_small


def test_submissions_go_to_the_scheduler_without_dasks_batching_delay(dask_executor):
    """Dask's client holds a message up to 10 ms to batch it with the next: a node submitted just after
    another waited that long, several times per node in a chain."""
    assert dask_executor.client.scheduler_comm.interval <= CLIENT_BATCH_S < 0.01


def test_a_stream_opened_again_after_a_reconnect_gets_the_short_delay_back(dask_executor):
    """A client that reconnects to its scheduler opens a new stream, with Dask's own 10 ms delay."""
    stream = dask_executor.client.scheduler_comm
    stream.interval = 0.01  # what a new stream starts with
    assert wait_until(lambda: stream.interval <= CLIENT_BATCH_S, timeout=30)
