"""Nodes with an environment: its packages importable, read-only, alone (nothing of other environments
or the host's site-packages), warm zygotes that import ahead, in every executor that runs workers."""

from __future__ import annotations

import dataclasses

import pytest

from tests.unit.environments.conftest import store_for, wheelhouse  # noqa: F401 (fixture)

from .conftest import make_task, started

READ_VALUE = "import tinypkg\ndef func():\n    return tinypkg.VALUE\n"


@pytest.fixture(scope="module")
def envs(tmp_path_factory, wheelhouse):  # noqa: F811
    store = store_for(tmp_path_factory.mktemp("envs"), wheelhouse)
    return {"v1": store.environment(["tinypkg==1.0"]), "v2": store.environment(["tinypkg==2.0"]),
            "other": store.environment(["otherpkg"])}


@pytest.fixture(scope="module")
def sandbox():
    executor = started("sandbox", pool_size=1, warm_envs=2)
    yield executor
    executor.close()


def with_env(task, env):
    return dataclasses.replace(task, environment=env, requirements=("x",))


@pytest.mark.parametrize("name", ["sandbox", "unsafe-process"])
def test_the_environments_packages_are_importable_at_its_versions(name, envs, sandbox):
    executor = sandbox if name == "sandbox" else started(name)
    try:
        assert executor.run(with_env(make_task(READ_VALUE), envs["v1"])).value == 1
        assert executor.run(with_env(make_task(READ_VALUE), envs["v2"])).value == 2
        plain = executor.run(make_task(READ_VALUE))  # no environment: no packages
        assert not plain.ok and "No module named 'tinypkg'" in plain.error["message"]
    finally:
        if executor is not sandbox:
            executor.close()


def test_a_node_cannot_write_into_its_environment(envs, sandbox):
    source = ("import os, tinypkg\ndef func():\n    path = os.path.dirname(tinypkg.__file__)\n    done = []\n"
              "    for attempt in (lambda: open(tinypkg.__file__, 'a').write('x'),\n"
              "                    lambda: open(os.path.join(path, 'new.py'), 'w').write('x'),\n"
              "                    lambda: os.unlink(tinypkg.__file__)):\n"
              "        try:\n            attempt()\n            done.append(True)\n"
              "        except OSError as exc:\n            done.append(exc.errno)\n    return done\n")
    outcome = sandbox.run(with_env(make_task(source), envs["v1"]))
    assert outcome.ok and True not in outcome.value, outcome
    assert sandbox.run(with_env(make_task(READ_VALUE), envs["v1"])).value == 1


def test_nothing_of_other_environments_or_the_hosts_site_packages_is_visible(envs, sandbox):
    source = ("import os, sys\ndef func():\n    found = {}\n    for name in ('otherpkg', 'tinypkg', 'flask', 'numpy'):\n"
              "        try:\n            __import__(name)\n            found[name] = True\n"
              "        except ImportError:\n            found[name] = False\n"
              "    return [found, sorted(os.listdir('/run/pyflow/env')), [p for p in sys.path if 'site-packages' in p]]\n")
    outcome = sandbox.run(with_env(make_task(source), envs["other"]))
    found, listing, site_packages = outcome.value
    assert found == {"otherpkg": True, "tinypkg": False, "flask": False, "numpy": False}, outcome
    assert "tinypkg" not in listing and site_packages == []


def test_a_warm_environments_zygote_has_imported_the_nodespecs_modules_ahead(envs, sandbox):
    source = "import sys\ndef func():\n    loaded = 'otherpkg' in sys.modules\n    import otherpkg\n    return loaded\n"
    first = sandbox.run(with_env(make_task(source), envs["other"]))
    assert first.ok
    assert sandbox.run(with_env(make_task(source), envs["other"])).value is True


def test_an_environments_sandboxes_serve_with_the_zygote_loop_in_c_as_the_others_do(envs, sandbox):
    from pyflow.executors.channel import compiled_loop
    if compiled_loop() is None:
        pytest.skip("no C compiler on this machine: the zygote's loop runs in Python (make installs gcc)")
    assert sandbox.run(with_env(make_task(READ_VALUE), envs["v1"])).value == 1
    pool = sandbox.environments._pools[envs["v1"].key]
    assert [worker.info["loop"] for worker in pool._live] == ["c"]


def test_the_least_recently_used_environment_is_closed_beyond_warm_envs(envs, sandbox):
    for env in (envs["v1"], envs["v2"], envs["other"]):
        assert sandbox.run(with_env(make_task(READ_VALUE if env is not envs["other"] else
                                              "def func():\n    return 0\n"), env)).ok
    assert sandbox.environments.keys() == [envs["v2"].key, envs["other"].key]
