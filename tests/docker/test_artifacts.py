"""Artifacts on the docker executor: the store's places bound into each container (inputs read-only,
the output place writable by the node user), values that are not JSON carried from node to node."""

from __future__ import annotations

import pytest

from pyflow.model.artifacts import ArtifactRef
from pyflow.storage.artifacts import ArtifactStore

from .conftest import task


@pytest.fixture(scope="module")
def carried(engine, owner, tmp_path_factory):
    from pyflow.executors.docker import DockerExecutor
    store = ArtifactStore(tmp_path_factory.mktemp("docker-artifacts"))
    ex = DockerExecutor(pool_size=1, max_runs=50, owner=owner)
    ex.use_artifacts(store)
    ex.start()
    yield ex, store
    ex.close()


def test_a_set_passes_between_containers_as_an_artifact(carried):
    executor, store = carried
    made = executor.run(task("def func():\n    return {3, 1, 2}\n"))
    assert made.ok and isinstance(made.value, ArtifactRef), made.error
    assert made.value.type == "builtins.set" and store.exists(made.value.digest, "pickle")
    used = executor.run(task("def func(s):\n    return sorted(s)\n", made.value))
    assert used.ok and used.value == [1, 2, 3], used.error


def test_inputs_are_read_only_in_the_container(carried):
    executor, _ = carried
    made = executor.run(task("def func():\n    return frozenset({7})\n"))
    probe = ("import os\ndef func(s):\n    errors = []\n"
             "    for path in ('/run/pyflow/in/' + os.listdir('/run/pyflow/in')[0], '/run/pyflow/in/new'):\n"
             "        try:\n            open(path, 'ab')\n            errors.append(0)\n"
             "        except OSError as exc:\n            errors.append(exc.errno)\n"
             "    return [sorted(s), errors]\n")
    outcome = executor.run(task(probe, made.value))
    assert outcome.ok and outcome.value[0] == [7], outcome.error
    assert outcome.value[1][0] in (13, 30) and outcome.value[1][1] == 30
