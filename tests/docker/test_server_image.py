"""The server image (docker/server/Dockerfile, built by `make docker`): serves the editor and the API on
port 5000 with its database on a volume, runs nodes in sibling containers through a mounted engine
socket, and without one refuses to start and says how to run it."""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest
import requests

from .conftest import owned
from .test_runs import wait_until

SERVER_IMAGE = os.environ.get("PYFLOW_SERVER_IMAGE", "pyflow:latest")
SOCKET = "/var/run/docker.sock"
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


def start_server(engine, volume: str, owner: str, cli_options: tuple[str, ...] = ()):
    """The server image on a free loopback port: with the engine's socket mounted, or else started
    with `docker run` and `cli_options` (systempaths=unconfined exists only on the command line)."""
    if cli_options:
        started = subprocess.run(["docker", "run", "-d", "-p", "127.0.0.1::5000", "-v", f"{volume}:/data",
                                  *cli_options, SERVER_IMAGE], capture_output=True, text=True, check=True)
        container = engine.containers.get(started.stdout.strip())
    else:
        if not os.path.exists(SOCKET):
            pytest.skip(f"the engine is not at {SOCKET}, which this test mounts into the server container")
        container = engine.containers.run(
            SERVER_IMAGE, detach=True, ports={"5000/tcp": ("127.0.0.1", None)},
            volumes={volume: {"bind": "/data", "mode": "rw"}, SOCKET: {"bind": SOCKET, "mode": "rw"}},
            environment={"PYFLOW_DOCKER_OWNER": owner})
    container.reload()
    port = container.attrs["NetworkSettings"]["Ports"]["5000/tcp"][0]["HostPort"]
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _healthy(url), timeout=90, step=0.5)
    except AssertionError:
        logs = container.logs().decode(errors="replace")
        container.remove(force=True)
        raise AssertionError(f"the server container did not become healthy: {logs[-2000:]}")
    return container, url


def _healthy(url: str) -> bool:
    try:
        return requests.get(url + "/api/health", timeout=2).ok
    except requests.RequestException:
        return False


def test_server_image_serves_runs_nodes_in_containers_and_keeps_its_data(engine, server_image, volume, owner):
    owner = f"{owner}-image"
    container, url = start_server(engine, volume, owner)
    try:
        health = requests.get(url + "/api/health", timeout=10).json()
        assert health["executor"]["name"] == "docker"
        assert requests.get(url + "/", timeout=10).ok
        assert requests.put(url + "/api/nodespecs/image.double", json=SPEC, timeout=10).ok
        tested = requests.post(url + "/api/nodespecs/image.double/test", json={"inputs": {"x": 21}},
                               timeout=60).json()
        assert tested["status"] == "success" and tested["outputs"] == {"out": 42}
        assert owned(engine, owner), "nodes ran in sibling containers labelled for this server"
    finally:
        container.stop(timeout=30)
        container.remove(force=True)
    wait_until(lambda: not owned(engine, owner), timeout=30)
    again, url = start_server(engine, volume, owner)
    try:
        assert requests.get(url + "/api/nodespecs/image.double", timeout=10).json()["func"] == SPEC["func"]
    finally:
        again.remove(force=True)


def test_server_image_runs_the_sandbox_when_its_container_allows_namespaces(engine, server_image, volume):
    container, url = start_server(engine, volume, "", ("-e", "PYFLOW_EXECUTOR=sandbox", "--security-opt",
                                                       "seccomp=unconfined", "--security-opt",
                                                       "systempaths=unconfined"))
    try:
        assert requests.get(url + "/api/health", timeout=10).json()["executor"]["name"] == "sandbox"
        assert requests.put(url + "/api/nodespecs/image.double", json=SPEC, timeout=10).ok
        tested = requests.post(url + "/api/nodespecs/image.double/test", json={"inputs": {"x": 4}},
                               timeout=60).json()
        assert tested["status"] == "success" and tested["outputs"] == {"out": 8}
    finally:
        container.remove(force=True)


def test_without_an_engine_socket_or_a_usable_sandbox_the_image_says_how_to_run_it(engine, server_image, volume):
    container = engine.containers.run(SERVER_IMAGE, detach=True, volumes={volume: {"bind": "/data", "mode": "rw"}})
    try:
        status = container.wait(timeout=60)["StatusCode"]
        logs = container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)
    if status == 0 or "PyFlow serving" in logs:
        pytest.fail(f"expected a refusal: {logs[-1000:]}")
    assert "-v /var/run/docker.sock:/var/run/docker.sock" in logs and "systempaths=unconfined" in logs
