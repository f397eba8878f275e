"""Fixtures for the docker executor's tests: a real engine, the real runtime image, real containers.

The tests skip only when no engine answers (and say why); `make test-docker` starts one when needed
and builds the images. A missing runtime image is a failure, not a skip: it means the build is broken.
"""

from __future__ import annotations

import os
import uuid

import pytest

from pyflow.engine.execution import Limits, NodeTask

RUNTIME_IMAGE = os.environ.get("PYFLOW_DOCKER_IMAGE", "pyflow-runtime:bookworm")


def _engine_or_skip():
    try:
        import docker
    except ImportError as exc:
        pytest.skip(f"the Docker SDK is not installed ({exc}); pip install '.[docker]'")
    try:
        client = docker.from_env(timeout=60)
        client.ping()
    except Exception as exc:
        pytest.skip(f"no Docker engine answers ({exc}); `make test-docker` starts one")
    return client


@pytest.fixture(scope="session")
def engine():
    client = _engine_or_skip()
    try:
        client.images.get(RUNTIME_IMAGE)
    except Exception:
        pytest.fail(f"runtime image {RUNTIME_IMAGE} is missing: build it with docker/images.sh runtime "
                    f"(make test-docker does)")
    yield client
    client.close()


@pytest.fixture(scope="session")
def owner():
    """An owner label of these tests alone, so they never touch another server's containers."""
    return f"pytest-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def executor(engine, owner):
    from pyflow.executors.docker import DockerExecutor
    ex = DockerExecutor(pool_size=2, max_runs=50, owner=owner)
    ex.start()
    yield ex
    ex.close()


def task(func: str, *args, limits: Limits | None = None, **fields) -> NodeTask:
    """A node run of `func` (source defining `func`) with positional inputs."""
    return NodeTask(node_id=fields.pop("node_id", "n1"), node_name="node", spec_id="test.spec", func=func,
                    args=list(args), arg_names=[f"a{i}" for i in range(len(args))],
                    limits=limits or Limits(timeout_s=20), run_id=fields.pop("run_id", "run-1"), **fields)


def owned(client, owner: str, **labels) -> list[str]:
    """Ids of the containers (running or not) labelled with this owner (and the given labels). The
    engine's plain list: containers vanish at any time, so nothing is looked up one by one."""
    wanted = [f"pyflow.owner={owner}"] + [f"pyflow.{k}={v}" for k, v in labels.items()]
    return [entry["Id"] for entry in client.api.containers(all=True, filters={"label": wanted})]
