"""`pyflow serve --executor docker`: a real server process running nodes in containers, and the
cleanup promise: a server killed mid-run leaves nothing behind once the next one has started."""

from __future__ import annotations

import pytest
import requests

from tests.support.server import LiveServer

from .conftest import owned
from .test_runs import wait_until

SLEEPER = {"id": "docker.sleep", "title": "Sleep", "limits": {"timeout_s": 600},
           "func": "def func(seconds):\n    import time\n    time.sleep(seconds)\n    return seconds\n",
           "port": {"input": [{"name": "seconds", "order": 0, "type": "Int"}],
                    "output": [{"name": "out", "type": "Int"}]}}
SLEEP_FLOW = {"id": "docker.sleep.flow", "name": "Sleep long",
              "nodes": [{"id": "n1", "spec_id": "docker.sleep", "name": "sleep",
                         "ports": [{"name": "seconds", "value": "300"}], "is_end": 1}], "links": []}


@pytest.fixture()
def owner(owner, request):
    """An owner of this test alone: the cleanup checks look at every container it labels."""
    return f"{owner}-{request.node.name[:40]}"


def serve(workdir, owner: str) -> LiveServer:
    """A Docker server whose requirements come from the package index, as the images' do (the lock is
    resolved there first): not the empty local wheelhouse other test servers use."""
    return LiveServer(workdir, executor="docker", env={"PYFLOW_DOCKER_OWNER": owner, "PIP_NO_INDEX": "",
                                                       "PIP_FIND_LINKS": ""})


def busy(engine, ids) -> list[str]:
    """Containers running a node: the worker and the node's process at least."""
    found = []
    for container_id in ids:
        try:
            if len(engine.api.top(container_id)["Processes"]) >= 2:
                found.append(container_id)
        except Exception:
            pass
    return found


def test_server_runs_nodes_in_containers_with_nodespec_requirements(engine, owner, tmp_path):
    with serve(tmp_path / "server", owner) as live:
        health = live.get_json("/api/health")
        assert health["executor"]["name"] == "docker" and health["executor"]["owner"] == owner
        draft = {**SLEEPER, "id": "docker.six", "requirements": ["six==1.16.0"],
                 "func": "def func(seconds):\n    import six, os\n    print('uid', os.getuid())\n"
                         "    return seconds + len(six.__version__)\n"}
        body = {"nodespec": draft, "inputs": {"seconds": 1}}
        tested = requests.post(live.url + "/api/nodespecs/test", json=body, timeout=300).json()
        assert tested["status"] == "success", tested
        assert tested["outputs"] == {"out": 7} and tested["stdout"] == "uid 10001\n"
        assert owned(engine, owner)
    wait_until(lambda: not owned(engine, owner), timeout=30)


def test_a_server_killed_mid_run_leaves_nothing_after_the_next_start(engine, owner, tmp_path):
    first = serve(tmp_path / "server", owner).start()
    try:
        assert requests.put(first.url + "/api/nodespecs/docker.sleep", json=SLEEPER, timeout=30).ok
        accepted = requests.post(first.url + "/api/runs", json={"flow": SLEEP_FLOW}, timeout=30)
        assert accepted.status_code == 202
        running = wait_until(lambda: busy(engine, owned(engine, owner)), timeout=60)
    finally:
        first.kill()
    assert set(running) <= set(owned(engine, owner)), "the busy container outlived its server"
    second = serve(tmp_path / "server", owner).start()
    try:
        left = set(running) & set(owned(engine, owner))
        assert not left, f"the next start removed what the killed server left: {left}"
        assert second.get_json("/api/health")["executor"]["name"] == "docker"
    finally:
        second.stop()
    wait_until(lambda: not owned(engine, owner), timeout=30)
