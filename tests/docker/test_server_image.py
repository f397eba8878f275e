"""The server image (docker/server/Dockerfile, built by `make docker`): serves the editor and the API on
port 5000 with its database on a volume; runs nodes in sibling containers through a mounted engine
socket, or in the sandbox under the documented security options; and with neither (a plain
`docker run -p 5000:5000 -v vol:/data pyflow`) still serves the editor, runs no node and says how to
enable execution."""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest
import requests

from .conftest import owned
from .test_runs import wait_until

SERVER_IMAGE = os.environ.get("PYFLOW_SERVER_IMAGE", "pyflow:latest")
SOCKET = "/var/run/docker.sock"
# The image binds 0.0.0.0, where the server asks for a token: these tests give it one and send it.
TOKEN = "image-test-token-" + uuid.uuid4().hex
http = requests.Session()
http.headers["Authorization"] = f"Bearer {TOKEN}"
SPEC = {"id": "image.double", "title": "Double", "func": "def func(x):\n    return x * 2\n",
        "port": {"input": [{"name": "x", "order": 0, "type": "Int"}], "output": [{"name": "out", "type": "Int"}]}}


@pytest.fixture(scope="module")
def server_image(engine):
    try:
        return engine.images.get(SERVER_IMAGE)
    except Exception:
        pytest.fail(f"server image {SERVER_IMAGE} is missing: build it with `make docker` (make test-docker does)")


@pytest.fixture()
def volume(engine):
    created = engine.volumes.create(f"pyflow-test-{uuid.uuid4().hex[:8]}")
    yield created.name
    created.remove(force=True)


def start_server(engine, volume: str, owner: str = "", cli_options: tuple[str, ...] = (),
                 mount_socket: bool = False):
    """The server image on a free loopback port: with the engine's socket mounted, or else started
    with `docker run` and `cli_options` (systempaths=unconfined exists only on the command line)."""
    if mount_socket:
        if not os.path.exists(SOCKET):
            pytest.skip(f"the engine is not at {SOCKET}, which this test mounts into the server container")
        container = engine.containers.run(
            SERVER_IMAGE, detach=True, ports={"5000/tcp": ("127.0.0.1", None)},
            volumes={volume: {"bind": "/data", "mode": "rw"}, SOCKET: {"bind": SOCKET, "mode": "rw"}},
            environment={"PYFLOW_DOCKER_OWNER": owner, "PYFLOW_TOKEN": TOKEN})
    else:
        started = subprocess.run(["docker", "run", "-d", "-p", "127.0.0.1::5000", "-v", f"{volume}:/data",
                                  "-e", f"PYFLOW_TOKEN={TOKEN}",
                                  *cli_options, SERVER_IMAGE], capture_output=True, text=True, check=True)
        container = engine.containers.get(started.stdout.strip())
    container.reload()
    port = container.attrs["NetworkSettings"]["Ports"]["5000/tcp"][0]["HostPort"]
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _healthy(url), timeout=90, interval=0.5)
    except AssertionError:
        logs = container.logs().decode(errors="replace")
        container.remove(force=True)
        raise AssertionError(f"the server container did not become healthy: {logs[-2000:]}")
    return container, url


def _healthy(url: str) -> bool:
    try:
        return http.get(url + "/api/health", timeout=2).ok
    except requests.RequestException:
        return False


def test_server_image_serves_runs_nodes_in_containers_and_keeps_its_data(engine, server_image, volume, owner):
    owner = f"{owner}-image"
    container, url = start_server(engine, volume, owner, mount_socket=True)
    try:
        health = http.get(url + "/api/health", timeout=10).json()
        assert health["executor"]["name"] == "docker"
        assert http.get(url + "/", timeout=10).ok
        assert http.put(url + "/api/nodespecs/image.double", json=SPEC, timeout=10).ok
        tested = http.post(url + "/api/nodespecs/image.double/test", json={"inputs": {"x": 21}},
                               timeout=60).json()
        assert tested["status"] == "success" and tested["outputs"] == {"out": 42}
        assert owned(engine, owner), "nodes ran in sibling containers labelled for this server"
    finally:
        container.stop(timeout=30)
        container.remove(force=True)
    wait_until(lambda: not owned(engine, owner), timeout=30)
    again, url = start_server(engine, volume, owner, mount_socket=True)
    try:
        assert http.get(url + "/api/nodespecs/image.double", timeout=10).json()["func"] == SPEC["func"]
    finally:
        again.remove(force=True)


def test_server_image_chooses_the_sandbox_when_its_container_allows_namespaces(engine, server_image, volume):
    """No socket, but the documented security options: the entry point finds that bubblewrap works."""
    container, url = start_server(engine, volume, "", ("--security-opt", "seccomp=unconfined",
                                                       "--security-opt", "systempaths=unconfined"))
    try:
        assert http.get(url + "/api/health", timeout=10).json()["executor"]["name"] == "sandbox"
        assert http.put(url + "/api/nodespecs/image.double", json=SPEC, timeout=10).ok
        tested = http.post(url + "/api/nodespecs/image.double/test", json={"inputs": {"x": 4}},
                               timeout=60).json()
        assert tested["status"] == "success" and tested["outputs"] == {"out": 8}
    finally:
        container.remove(force=True)


def test_a_plain_docker_run_serves_the_editor_and_keeps_data_but_runs_no_node(engine, server_image, volume):
    """`docker run -p 5000:5000 -v vol:/data pyflow`: no socket, default security options, so neither
    executor can isolate nodes. The editor and the repository work; every node run fails and says how
    to enable execution; the log says so loudly."""
    container, url = start_server(engine, volume)
    try:
        page = http.get(url + "/", timeout=10)
        assert page.ok and "text/html" in page.headers["Content-Type"] and "<title>PyFlow</title>" in page.text
        assert http.get(url + "/static/dist/app.js", timeout=10).ok
        executor = http.get(url + "/api/health", timeout=10).json()["executor"]
        assert executor["name"] == "none"
        assert _names_both_ways(" ".join(executor["warnings"])), executor
        assert http.put(url + "/api/nodespecs/image.double", json=SPEC, timeout=10).ok
        tested = http.post(url + "/api/nodespecs/image.double/test", json={"inputs": {"x": 21}},
                               timeout=60).json()
        assert tested["status"] != "success" and "disabled" in json.dumps(tested), tested
        logs = container.logs().decode(errors="replace")
        assert "NODE EXECUTION IS DISABLED" in logs and _names_both_ways(logs), logs[-2000:]
    finally:
        container.remove(force=True)
    again, url = start_server(engine, volume)
    try:
        assert http.get(url + "/api/nodespecs/image.double", timeout=10).json()["func"] == SPEC["func"]
        assert http.get(url + "/api/health", timeout=10).json()["executor"]["name"] == "none"
    finally:
        again.remove(force=True)


def _names_both_ways(text: str) -> bool:
    """Whether `text` tells both ways to enable node execution: the engine's socket, or the sandbox's
    security options."""
    return "-v /var/run/docker.sock:/var/run/docker.sock" in text and "seccomp=unconfined" in text \
        and "systempaths=unconfined" in text


@pytest.mark.parametrize("executor, why", [("sandbox", "bubblewrap cannot create its namespaces"),
                                           ("docker", "no Docker socket is mounted")])
def test_an_executor_chosen_that_cannot_start_ends_the_container_with_status_2(engine, server_image, volume,
                                                                                executor, why):
    container = engine.containers.run(SERVER_IMAGE, detach=True, environment={"PYFLOW_EXECUTOR": executor},
                                      volumes={volume: {"bind": "/data", "mode": "rw"}})
    try:
        status = container.wait(timeout=60)["StatusCode"]
        logs = container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)
    assert status == 2 and why in logs and _names_both_ways(logs), logs[-1000:]
