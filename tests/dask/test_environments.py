"""Environments on Dask workers: a node whose environment the worker's machine does not have gets it
installed there from the server's lock (exactly those versions), then imports its packages."""

from __future__ import annotations

import dataclasses

from pyflow.environments import EnvironmentSettings, EnvironmentStore, IndexSettings
from pyflow.executors import create_executor
from tests.support.wheels import make_wheel

from .conftest import make_task


def test_a_worker_installs_the_servers_lock_for_a_node_whose_environment_it_lacks(tmp_path, monkeypatch):
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "tinypkg", "1.0", {"tinypkg/__init__.py": "VALUE = 1\n"})
    make_wheel(wheels, "tinypkg", "2.0", {"tinypkg/__init__.py": "VALUE = 2\n"})
    server_env = EnvironmentStore(EnvironmentSettings(tmp_path / "server-envs", IndexSettings(
        find_links=(str(wheels),), no_index=True))).environment(["tinypkg<2"])
    elsewhere = dataclasses.replace(server_env, path=str(tmp_path / "not-on-this-machine"))
    # The worker's machine: its own environments folder and index (what `pyflow worker` reads there).
    monkeypatch.setenv("PYFLOW_ENVS_DIR", str(tmp_path / "worker-envs"))
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    executor = create_executor("dask", pool_size=1, n_workers=1)
    executor.start()
    try:
        task = dataclasses.replace(make_task("import tinypkg\ndef func():\n    return tinypkg.VALUE\n"),
                                   requirements=("tinypkg<2",), environment=elsewhere)
        outcome = executor.run(task)
    finally:
        executor.close()
    assert outcome.ok and outcome.value == 1, outcome.error
    assert (tmp_path / "worker-envs" / server_env.key / "site" / "tinypkg").is_dir()


def test_a_workers_environments_stay_within_its_budget(tmp_path, monkeypatch):
    """As the server's do: each environment a worker installs has the least recently used idle ones
    beyond the budget removed, never a warm one."""
    import os
    import time
    from pyflow.executors.dask.plugin import SandboxPlugin
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "tinypkg", "1.0", {"tinypkg/__init__.py": "VALUE = 1\n"})
    make_wheel(wheels, "otherpkg", "3.1", {"otherpkg.py": "NAME = 'other'\n"})
    monkeypatch.setenv("PYFLOW_ENVS_DIR", str(tmp_path / "worker-envs"))
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    store = SandboxPlugin("sandbox").environments()
    store.settings.envs_gb = 1e-9  # any environment is over it
    first = store.environment(["tinypkg==1.0"])
    past = time.time() - 3 * 3600
    os.utime(store.root / first.key / "last_used", (past, past))
    second = store.environment(["otherpkg"])
    assert [r["key"] for r in store.records()] == [second.key]
