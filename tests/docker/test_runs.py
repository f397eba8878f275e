"""Node runs on the docker executor against a real engine: results, limits, recycling, cleanup."""

from __future__ import annotations

import functools
import threading
import time

import pytest

from pyflow.engine.execution import Limits
from pyflow.executors.docker import LABEL_MANAGED, LABEL_OWNER, LABEL_PROCESS, DockerExecutor, DockerUnavailable
from pyflow.process_identity import current as process_identity

from tests.support import waiting
from tests.support.timing import scaled

from .conftest import RUNTIME_IMAGE, owned, task

CONTAINER_ID = '''
def func():
    import re
    for line in open("/proc/self/mountinfo"):
        found = re.search(r"/containers/([0-9a-f]{64})/", line)
        if found:
            return found.group(1)
'''
SLEEP = "def func(seconds):\n    import time\n    time.sleep(seconds)\n    return seconds\n"
STAMPED_SLEEP = ("def func(seconds):\n    import time\n    began = time.time()\n    time.sleep(seconds)\n"
                 "    return [began, time.time()]\n")
LEAVE_BEHIND = '''
def func():
    import os, time
    open("/tmp/left-behind", "w").write("x")
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            time.sleep(600)
        os._exit(0)
    return os.getpid()
'''
LOOK_AROUND = '''
def func():
    import os
    def running(pid):
        try:
            return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False
    return [len([p for p in os.listdir("/proc") if p.isdigit() and running(p)]), os.listdir("/tmp")]
'''
ALLOCATE = "def func(mb):\n    block = bytearray(mb * 1024 * 1024)\n    return len(block) // (1024 * 1024)\n"


# The suite's one waiting helper, failing the test when the condition is not met in time.
wait_until = functools.partial(waiting.wait_until, timeout=30.0, interval=0.1, fail="condition not met")


def instance_ids(engine, owner, executor) -> set[str]:
    return set(owned(engine, owner, instance=executor.instance))


@pytest.fixture(scope="module")
def single(engine, owner):
    """One warm container, replaced after 3 runs: runs land on a known container."""
    ex = DockerExecutor(pool_size=1, max_runs=3, owner=owner)
    ex.start()
    yield ex
    ex.close()


def test_result_stdout_and_the_nodes_own_traceback(executor):
    ok = executor.run(task("def func(a, b):\n    print('adding', a, b)\n    return {'sum': a + b}\n", 2, 3))
    assert ok.ok and ok.value == {"sum": 5} and ok.stdout == "adding 2 3\n"
    failed = executor.run(task("def func():\n    return 1 / 0\n"))
    assert not failed.ok and failed.error["type"] == "ZeroDivisionError"
    assert failed.error["traceback"] and all("worker" not in line for line in failed.error["traceback"])
    odd = executor.run(task("def func():\n    return {1, 2}\n"))
    assert not odd.ok and "set" in odd.error["message"]


def test_timeout_kills_the_node_and_replaces_its_container(engine, owner, executor):
    before = instance_ids(engine, owner, executor)
    started = time.monotonic()
    outcome = executor.run(task(SLEEP, 60, limits=Limits(timeout_s=1)))
    assert time.monotonic() - started < scaled(5)
    assert outcome.error["message"] == "timed out after 1 s" and outcome.violation == "timeout"
    after = wait_until(lambda: (ids := instance_ids(engine, owner, executor)) != before and len(ids) == 2 and ids)
    assert len(before - after) == 1, "exactly the container that ran the node was removed"


def test_memory_limits_follow_each_node_on_warm_containers(single):
    small = single.run(task(ALLOCATE, 150, limits=Limits(memory_mb=64)))
    assert not small.ok and small.violation == "memory"
    assert small.error["message"].startswith("memory limit of 64 MB exceeded")
    large = single.run(task(ALLOCATE, 400, limits=Limits(memory_mb=512)))
    assert large.ok and large.value == 400
    default = single.run(task(ALLOCATE, 400))
    assert not default.ok and "memory limit of 256 MB exceeded" in default.error["message"]


def test_process_limit_follows_each_node(single):
    forks = ("def func():\n    import os, time\n    made = 0\n    for _ in range(100):\n        try:\n"
             "            pid = os.fork()\n        except OSError:\n            break\n        if pid == 0:\n"
             "            time.sleep(30)\n            os._exit(0)\n        made += 1\n    return made\n")
    few = single.run(task(forks, limits=Limits(processes=5)))
    assert few.ok and few.value <= 4, few
    more = single.run(task(forks, limits=Limits(processes=40)))
    assert more.ok and 20 < more.value <= 39, more


def test_nothing_outlives_a_run_and_scratch_is_emptied(single):
    first = single.run(task(CONTAINER_ID))
    assert single.run(task(LEAVE_BEHIND)).ok
    seen = single.run(task(LOOK_AROUND))
    assert seen.ok and seen.value == [2, []], "the worker (pid 1) and this node only; /tmp empty"
    assert single.run(task(CONTAINER_ID)).value != first.value, "replaced after max_runs=3 runs"


def test_parallel_nodes_run_side_by_side_on_the_pool(executor):
    """Each node says when it slept (containers share the host's clock): the two sleeps overlap."""
    results = []
    threads = [threading.Thread(target=lambda: results.append(executor.run(task(STAMPED_SLEEP, 1.5)))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.ok for r in results] == [True, True], [r.error for r in results]
    (start_a, end_a), (start_b, end_b) = (r.value for r in results)
    assert max(start_a, start_b) < min(end_a, end_b), "the two nodes ran one after the other"


def test_cancel_ends_the_node_promptly(executor):
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    started = time.monotonic()
    outcome = executor.run(task(SLEEP, 60, limits=Limits(timeout_s=120)), cancel)
    assert outcome.error["type"] == "Cancelled" and time.monotonic() - started < scaled(3)


def test_a_node_cannot_kill_its_worker_and_the_pool_serves_on(executor):
    """The worker is the container's pid 1: the kernel drops a SIGKILL sent to it from inside."""
    outcome = executor.run(task("def func():\n    import os, signal\n    os.kill(os.getppid(), signal.SIGKILL)\n"
                                "    return os.getppid()\n"))
    assert outcome.ok and outcome.value == 1, outcome
    assert all(executor.run(task("def func():\n    return 7\n")).value == 7 for _ in range(4))


def test_close_removes_every_container(engine, owner):
    ex = DockerExecutor(pool_size=2, owner=owner)
    ex.start()
    assert ex.run(task("def func():\n    return 1\n")).ok
    assert len(owned(engine, owner, instance=ex.instance)) == 2
    ex.close()
    assert owned(engine, owner, instance=ex.instance) == []


def test_start_removes_what_dead_servers_left_and_spares_live_ones(engine, owner):
    def leftover(process: str):
        return engine.containers.create(RUNTIME_IMAGE, ["sleep", "600"], labels={
            LABEL_MANAGED: "1", LABEL_OWNER: owner, LABEL_PROCESS: process, "pyflow.instance": "old"})
    dead = leftover("elsewhere/0/1/1")
    alive = leftover(process_identity())
    ex = DockerExecutor(pool_size=1, owner=owner)
    try:
        ex.start()
        ids = set(owned(engine, owner, instance="old"))
        assert dead.id not in ids and alive.id in ids and ex.removed_at_start >= 1
    finally:
        ex.close()
        alive.remove(force=True)


def test_container_per_node_is_labelled_with_run_and_node(engine, owner):
    ex = DockerExecutor(pool_size=0, owner=owner)
    ex.start()
    try:
        runner = threading.Thread(target=ex.run, args=(task(SLEEP, 3, run_id="run-42", node_id="node-7"),))
        runner.start()
        labelled = wait_until(lambda: owned(engine, owner, run="run-42", node="node-7"), timeout=20)
        assert len(labelled) == 1
        runner.join()
        wait_until(lambda: not owned(engine, owner, run="run-42"), timeout=20)
    finally:
        ex.close()


def test_a_nodespec_image_gets_its_own_warm_pool(engine, executor):
    alias = f"pyflow-test-alias:{executor.instance}"
    engine.images.get(RUNTIME_IMAGE).tag(alias)
    listed = executor.images.listed
    executor.images.listed = (*listed, alias)
    try:
        default_ids = {executor.run(task(CONTAINER_ID)).value for _ in range(4)}
        outcomes = [executor.run(task(CONTAINER_ID, image=alias)) for _ in range(4)]
        assert all(o.ok for o in outcomes) and alias in executor.describe()["images"]
        alias_ids = {o.value for o in outcomes}
        assert len(alias_ids) <= executor.pool_size, "warm containers, reused"
        assert not alias_ids & default_ids
    finally:
        executor.images.listed = listed
        executor._pools.pop(alias).close()
        engine.images.remove(alias)


def test_a_missing_image_is_a_clear_node_error_and_never_pulled(executor):
    outcome = executor.run(task("def func():\n    return 1\n", image="pyflow-no-such-image:never"))
    assert not outcome.ok and outcome.error["type"] == "ImageError"
    message = outcome.error["message"]
    assert "is not on the Docker engine" in message and "does not pull" in message


def test_an_unreachable_engine_is_a_clear_error_at_start():
    with pytest.raises(DockerUnavailable, match="cannot reach the Docker engine"):
        DockerExecutor(base_url="unix:///nonexistent/docker.sock")


def test_an_image_the_worker_cannot_run_in_is_a_clear_node_error(executor):
    base = "pyflow-base:bookworm"  # python3-minimal only: no json module, so the worker cannot start
    listed = executor.images.listed
    executor.images.listed = (*listed, base)
    try:
        outcome = executor.run(task("def func():\n    return 1\n", image=base))
    finally:
        executor.images.listed = listed
    assert not outcome.ok and outcome.error["type"] == "ImageError"
    assert f"could not start a container of image '{base}'" in outcome.error["message"]
    assert "json" in outcome.error["message"], "what the container said on stderr"
    assert base not in executor.describe()["images"], "a failed pool is dropped, so a later run retries"


def test_only_max_images_other_image_pools_stay_warm(engine, owner):
    aliases = [f"pyflow-test-evict:{n}" for n in ("a", "b")]
    for alias in aliases:
        engine.images.get(RUNTIME_IMAGE).tag(alias)
    ex = DockerExecutor(pool_size=1, owner=owner, max_images=1, images=aliases)
    try:
        ex.start()
        assert ex.run(task("def func():\n    return 1\n", image=aliases[0])).ok
        assert ex.run(task("def func():\n    return 2\n", image=aliases[1])).ok
        assert ex.describe()["images"] == [RUNTIME_IMAGE, aliases[1]]
        wait_until(lambda: not owned(engine, owner, instance=ex.instance, image=aliases[0]))
    finally:
        ex.close()
        for alias in aliases:
            engine.images.remove(alias)
