"""Which run and node a container is running, as `docker ps` and `docker inspect` show it.

Labels are fixed when a container is created. A container made for one node (pool size 0) carries
pyflow.run and pyflow.node (test_runs). A warm container serves many runs, so its name carries them
instead: it is renamed for each node before the node starts, and back to idle afterwards.
"""

from __future__ import annotations

import re
import threading
import time

import pytest

from pyflow.executors.docker import LABEL_NODE, LABEL_OWNER, LABEL_RUN, DockerExecutor

from .conftest import task
from .test_runs import SLEEP, wait_until

QUICK = "def func(x):\n    return x + 1\n"


@pytest.fixture()
def warm(engine, owner):
    """One warm container, so every node lands on it."""
    ex = DockerExecutor(pool_size=1, max_runs=100, owner=owner)
    ex.start()
    yield ex
    ex.close()


def named(engine, owner: str, part: str) -> dict[str, str]:
    """Id -> name of this owner's containers whose name contains `part` (`docker ps --filter name=`).
    The names listed are checked too: during a rename the engine's filter and the name it lists can
    disagree for a moment (seen once on a loaded machine)."""
    found = engine.api.containers(all=True, filters={"name": part, "label": f"{LABEL_OWNER}={owner}"})
    return {entry["Id"]: entry["Names"][0].lstrip("/") for entry in found if part in entry["Names"][0]}


def name_of(engine, container_id: str) -> str:
    return engine.api.inspect_container(container_id)["Name"].lstrip("/")


def run_in_background(executor, node_task) -> tuple[threading.Thread, list]:
    outcomes: list = []
    runner = threading.Thread(target=lambda: outcomes.append(executor.run(node_task)))
    runner.start()
    return runner, outcomes


def test_a_warm_container_is_named_for_the_run_and_node_it_runs_then_idle(engine, owner, warm):
    runner, outcomes = run_in_background(warm, task(SLEEP, 2, run_id="run-a1", node_id="load/data 1"))
    running = wait_until(lambda: named(engine, owner, "run-a1"), timeout=20)
    [(container_id, name)] = running.items()
    assert re.fullmatch(r"pyflow-run-a1-load_data_1-([0-9a-f]{12})", name), name
    token = name.rsplit("-", 1)[1]
    labels = engine.api.inspect_container(container_id)["Config"]["Labels"]
    assert LABEL_RUN not in labels and LABEL_NODE not in labels, "a warm container's labels name no run"
    runner.join()
    assert outcomes[0].ok
    wait_until(lambda: name_of(engine, container_id) == f"pyflow-idle-{token}", timeout=10)

    runner, outcomes = run_in_background(warm, task(SLEEP, 2, run_id="run-b2", node_id="n2"))
    wait_until(lambda: named(engine, owner, "run-b2") == {container_id: f"pyflow-run-b2-n2-{token}"}, timeout=20)
    assert not named(engine, owner, "run-a1"), "the earlier run's name is gone"
    runner.join()
    wait_until(lambda: name_of(engine, container_id) == f"pyflow-idle-{token}", timeout=10)


def test_back_to_back_nodes_each_run_under_their_own_name(engine, owner, warm):
    """Each node's rename lands before the next node's, and a container kept busy is not renamed idle
    between its nodes (one rename per node, not two)."""
    since = int(time.time()) - 1
    container_id = next(iter(warm.default._live)).container.id
    nodes = [f"step{i}" for i in range(10)]
    for i, node in enumerate(nodes):
        outcome = warm.run(task(QUICK, i, run_id="run-c3", node_id=node))
        assert outcome.ok and outcome.value == i + 1
    wait_until(lambda: name_of(engine, container_id).startswith("pyflow-idle-"), timeout=10)
    renamed = [event["Actor"]["Attributes"]["name"] for event in engine.events(
        since=since, until=int(time.time()) + 1, decode=True,
        filters={"type": "container", "event": "rename", "container": container_id})]
    for_nodes = [name.split("-")[3] for name in renamed if name.startswith("pyflow-run-c3-")]
    assert for_nodes == nodes, renamed
    assert len(renamed) <= len(nodes) + 3, f"renamed idle between most nodes: {renamed}"


def test_per_node_containers_are_labelled_and_named_for_their_run_and_node(engine, owner):
    ex = DockerExecutor(pool_size=0, owner=owner)
    ex.start()
    try:
        runner, _ = run_in_background(ex, task(SLEEP, 3, run_id="run-d4", node_id="n4"))
        [(container_id, name)] = wait_until(lambda: named(engine, owner, "run-d4"), timeout=30).items()
        assert re.fullmatch(r"pyflow-run-d4-n4-[0-9a-f]{12}", name), name
        labels = engine.api.inspect_container(container_id)["Config"]["Labels"]
        assert labels[LABEL_RUN] == "run-d4" and labels[LABEL_NODE] == "n4"
        runner.join()
    finally:
        ex.close()
