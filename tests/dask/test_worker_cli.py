"""`pyflow worker` as users run it: a subprocess joining a real scheduler, or refusing to."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pyflow.executors import create_executor
from tests.support.waiting import wait_until

from .conftest import make_task

ROOT = Path(__file__).resolve().parents[2]


def pyflow_worker(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pyflow", "worker", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                            start_new_session=True)


@pytest.fixture()
def client_of(bare_scheduler):
    executor = create_executor("dask", scheduler=bare_scheduler)
    executor.start()
    yield executor
    executor.close()


@pytest.mark.parametrize("nanny", [(), ("--no-nanny",)], ids=["nanny", "no-nanny"])
def test_a_pyflow_worker_joins_runs_nodes_in_its_sandbox_and_leaves_on_sigterm(bare_scheduler, client_of, nanny):
    worker = pyflow_worker(bare_scheduler, "--nthreads", "1", "--name", "cli-worker", *nanny)
    try:
        joined = wait_until(lambda: client_of.read_workers() or worker.poll() is not None, timeout=120)
        assert worker.poll() is None, worker.stdout.read()
        (address, info), = joined.items()
        assert info["name"] == "cli-worker" and info["resources"] == {"pyflow-sandbox": 1}
        outcome = client_of.run(make_task("def func():\n    import os\n    return os.getppid()\n"))
        assert outcome.ok and outcome.value == 1 and outcome.worker == address, outcome
    finally:
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=60)
    assert code == 0, worker.stdout.read()
    assert wait_until(lambda: not client_of.read_workers(), timeout=30)


def test_a_pyflow_worker_without_a_usable_sandbox_refuses_to_join_saying_why(bare_scheduler, client_of):
    worker = pyflow_worker(bare_scheduler, "--executor-option", "python=/nonexistent/python3")
    output, _ = worker.communicate(timeout=120)
    assert worker.returncode == 2, output
    assert output.startswith(f"pyflow worker: cannot join {bare_scheduler}: ") and \
        "/nonexistent/python3 is missing" in output, output
    assert client_of.read_workers() == {}


def test_a_pyflow_worker_needs_a_scheduler_address():
    env = {k: v for k, v in os.environ.items() if k != "PYFLOW_DASK_SCHEDULER"}
    result = subprocess.run([sys.executable, "-m", "pyflow", "worker"], cwd=ROOT, capture_output=True, text=True,
                            env=env, timeout=60)
    assert result.returncode == 2 and "name the scheduler (tcp://HOST:8786)" in result.stderr


def test_a_pyflow_worker_for_containers_refuses_to_join_without_a_docker_engine(bare_scheduler, client_of):
    pytest.importorskip("docker", reason="the docker executor needs the Docker SDK")
    env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    result = subprocess.run([sys.executable, "-m", "pyflow", "worker", bare_scheduler, "--executor", "docker"],
                            cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "cannot reach the Docker engine" in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert client_of.read_workers() == {}
