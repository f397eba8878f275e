"""docker/compose.yaml's services started as plain processes on loopback: the same commands and
environment as the compose file gives them (only the scheduler's host name and port are local ones), so
the file's scheduler, workers and server are known to work together without a Docker engine."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import yaml

from tests.support.server import LiveServer
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker" / "compose.yaml"
PROGRAMS = {"dask": [sys.executable, "-m", "dask"], "pyflow": [sys.executable, "-m", "pyflow"]}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def local_argv(argv: list[str], address: str, port: int) -> list[str]:
    """The service's command with its program from this checkout and the scheduler on loopback."""
    out = [*PROGRAMS[argv[0]]]
    for word in argv[1:]:
        word = word.replace("tcp://scheduler:8786", address)
        out.append({"0.0.0.0": "127.0.0.1", "8786": str(port)}.get(word, word))
    return out


@pytest.fixture(scope="module")
def services():
    return yaml.safe_load(COMPOSE.read_text())["services"]


def start(argv: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(argv, cwd=ROOT, stdout=log.open("ab"), stderr=subprocess.STDOUT,
                            env={**os.environ, **{k: str(v) for k, v in env.items()}}, start_new_session=True)


def test_the_compose_files_scheduler_workers_and_server_run_a_flow_together(services, tmp_path):
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    started = []
    try:
        scheduler = services["scheduler"]
        started.append(start(local_argv(scheduler["entrypoint"], address, port), scheduler.get("environment", {}),
                             tmp_path / "scheduler.log"))
        wait_until(lambda: re.search(r"Scheduler at:\s+tcp://127\.0\.0\.1", (tmp_path / "scheduler.log").read_text()),
                   timeout=60, fail="the scheduler did not start")
        workers = [name for name in services if name.startswith("worker-")]
        for name in workers:
            started.append(start(local_argv(services[name]["entrypoint"], address, port), {}, tmp_path / f"{name}.log"))
        server = services["server"]
        env = {k: v.replace("tcp://scheduler:8786", address) for k, v in server["environment"].items()}
        with LiveServer(tmp_path / "server", executor=env.pop("PYFLOW_EXECUTOR"), env=env,
                        args=("--no-stdlib", *server["command"])) as live:
            joined = wait_until(lambda: len(live.get_json("/api/health")["executor"]["workers"]) == len(workers),
                                timeout=120, fail="the workers never joined")
            health = live.get_json("/api/health")
            run = run_wide(live, 6)
    finally:
        for proc in reversed(started):
            proc.send_signal(signal.SIGTERM)
        for proc in started:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
    assert joined and health["status"] == "ok" and health["executor"]["scheduler"] == address
    assert health["executor"]["warnings"] == []  # the scheduler does not re-run tasks of dead workers itself
    assert run["status"] == "succeeded", run
    assert {n["worker"] for n in run["nodes"]} <= set(health["executor"]["workers"])


def run_wide(live: LiveServer, width: int) -> dict:
    spec = {"id": "t.sq", "title": "Square", "func": "def func(a):\n    return a * a\n",
            "port": {"input": [{"name": "a", "type": "Int"}], "output": [{"name": "out", "type": "Int"}]}}
    assert requests.post(live.url + "/api/nodespecs", json=spec).status_code == 201
    nodes = [{"id": f"n{i}", "spec_id": "t.sq", "ports": [{"name": "a", "value": i}]} for i in range(width)]
    flow = {"id": "wide", "name": "wide", "nodes": nodes, "links": []}
    answer = requests.post(live.url + "/api/run", json={"flow": flow, "cache": False}, timeout=120)
    assert answer.status_code == 200, answer.text
    return answer.json()
