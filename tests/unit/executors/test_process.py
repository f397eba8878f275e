"""The unsafe-process executor: rlimits only, and it must say so, at start and in /api/health."""

from __future__ import annotations

import os

import requests

from pyflow.executors.process import WARNING, ProcessExecutor
from tests.support.server import LiveServer

from .conftest import make_task


def test_describe_warns_that_nodes_run_with_the_servers_permissions():
    info = ProcessExecutor().describe()
    assert info["name"] == "unsafe-process" and "rlimits only" in info["isolation"]
    assert info["warnings"] == [WARNING]


def test_serve_prints_the_warning_at_start_and_health_carries_it(tmp_path):
    with LiveServer(tmp_path / "server", executor="unsafe-process", args=("--no-stdlib",)) as live:
        health = requests.get(live.url + "/api/health", timeout=10).json()
        log = live.log()
    assert f"WARNING: {WARNING}" in log
    assert health["executor"]["name"] == "unsafe-process" and WARNING in health["executor"]["warnings"]


def test_each_node_gets_a_fresh_process_and_a_scratch_directory_removed_after_it():
    executor = ProcessExecutor()
    try:
        source = "def func():\n    import os\n    open('left.txt', 'w').write('x')\n    return [os.getpid(), os.getcwd()]\n"
        first, second = (executor.run(make_task(source)).value for _ in range(2))
    finally:
        executor.close()
    assert first[0] != second[0] and first[1] != second[1]
    assert not os.path.exists(first[1]) and not os.path.exists(second[1])
