"""Fixtures of the executor tests: tasks built from source text, executors by name, a wait helper."""

from __future__ import annotations

import os

import pytest

from pyflow.engine.execution import NodeTask, resolve_limits
from pyflow.executors import create_executor
from tests.support.waiting import wait_until  # noqa: F401 (used here and by importers)

SMALL = {"timeout_s": 5, "memory_mb": 64, "cpu_s": 5}


def contract_executors() -> list[str]:
    """Every executor the contract holds for: sandbox and unsafe-process always, plus any other named in
    PYFLOW_HOSTILE_EXECUTORS or PYFLOW_TEST_EXECUTOR (docker, when its engineer runs it)."""
    names = ["sandbox", "unsafe-process"]
    extra = os.environ.get("PYFLOW_HOSTILE_EXECUTORS", "") + "," + os.environ.get("PYFLOW_TEST_EXECUTOR", "")
    for name in (n.strip() for n in extra.split(",")):
        if name and name not in names and name != "inprocess":
            names.append(name)
    return names


def make_task(func: str, *args, spec_id: str = "t", **limits) -> NodeTask:
    """A task for `func` (source defining func), with small limits resolved as the server resolves them."""
    return NodeTask(node_id="n", node_name="node", spec_id=spec_id, func=func, args=list(args),
                    arg_names=[f"a{i}" for i in range(len(args))], limits=resolve_limits({**SMALL, **limits}))


def started(name: str, **options):
    executor = create_executor(name, **options)
    executor.start()
    return executor


@pytest.fixture(scope="module", params=contract_executors())
def any_executor(request):
    """Each executor in turn, warm where it can be (pool of 2)."""
    executor = started(request.param, pool_size=2)
    yield executor
    executor.close()


@pytest.fixture(scope="module")
def sandbox():
    executor = started("sandbox", pool_size=1, max_runs=100)
    yield executor
    executor.close()


is_root = os.geteuid() == 0
needs_root = pytest.mark.skipif(not is_root, reason="needs root (sandbox user switch and writable cgroups)")
