"""Building, finding, listing and pruning environments from a wheelhouse served on 127.0.0.1."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from pyflow.environments import EnvironmentFailed
from pyflow.environments.builder import folder_bytes, installer_message
from pyflow.environments.store import CACHE_LOCK
from tests.support.wheels import Wheelhouse

from .conftest import store_for


def test_an_environment_is_built_once_with_its_lock_and_found_afterwards(store):
    phases = []
    env = store.environment(["tinypkg"], lambda phase, data: phases.append(phase))
    assert env.packages == ("tinydep==0.5", "tinypkg==2.0")  # the newest, with its dependency, pinned
    assert phases[0] == "started" and phases[-1] == "finished" and "progress" in phases
    site = store.root / env.key / "site"
    assert (site / "tinypkg" / "__init__.py").is_file() and (site / "tinydep").is_dir()
    lock = (store.root / env.key / "lock.txt").read_text()
    assert "tinypkg==2.0" in lock and "--hash=sha256:" in lock
    again = []
    assert store.environment(["TinyPkg"], lambda phase, data: again.append(phase)) == env  # normalized: same one
    assert again == []  # nothing built the second time
    assert not list((store.root / ".build").iterdir())  # no build folder left behind


def test_versions_are_pinned_and_each_requirement_set_is_its_own_environment(store):
    old = store.environment(["tinypkg==1.0"])
    new = store.environment(["tinypkg>=2"])
    assert old.key != new.key
    assert old.packages == ("tinypkg==1.0",) and "tinypkg==2.0" in new.packages
    assert (store.root / old.key / "site" / "tinypkg" / "__init__.py").read_text() == "VALUE = 1\n"


def test_a_missing_package_fails_with_the_installers_words_and_is_not_kept(store):
    with pytest.raises(EnvironmentFailed) as failed:
        store.environment(["nosuchpackage"])
    assert "nosuchpackage" in str(failed.value) and "not found" in str(failed.value)
    assert store.records() == []
    with pytest.raises(EnvironmentFailed, match="tinypkg"):  # a conflict, in uv's words
        store.environment(["conflicting", "tinypkg==2.0"])


def test_a_package_with_only_a_source_distribution_is_refused_without_running_it(store, wheelhouse):
    with pytest.raises(EnvironmentFailed) as failed:
        store.environment(["sdistonly"])
    assert "wheels only" in str(failed.value)
    assert not wheelhouse.marker.exists(), "the package's setup.py ran on the host"


def test_a_failed_build_is_retried_by_the_next_use(tmp_path, wheelhouse):
    from tests.support.wheels import make_wheel
    folder = tmp_path / "late"
    with Wheelhouse(folder) as house:
        store = store_for(tmp_path, house)
        with pytest.raises(EnvironmentFailed):
            store.environment(["latepkg"])
        make_wheel(folder, "latepkg", "1.0", {"latepkg.py": "OK = True\n"})
        assert store.environment(["latepkg"]).packages == ("latepkg==1.0",)


def test_a_build_that_hangs_is_cut_off_at_its_time_limit(tmp_path):
    with Wheelhouse(tmp_path / "stalled", hanging=True) as house:
        store = store_for(tmp_path, house, build_timeout_s=3)
        started = time.monotonic()
        with pytest.raises(EnvironmentFailed, match="longer than its limit of 3 s"):
            store.environment(["tinypkg"])
        assert time.monotonic() - started < 60
    assert store.records() == []


def test_a_build_over_its_disk_budget_is_stopped(tmp_path):
    from tests.support.wheels import make_wheel
    blob = os.urandom(3 * 1024 * 1024).hex()  # 6 MB of source text
    make_wheel(tmp_path / "big", "bigpkg", "1.0", {"bigpkg/__init__.py": f"DATA = {blob!r}\n"})
    with Wheelhouse(tmp_path / "big") as house:
        store = store_for(tmp_path, house, build_disk_mb=1)
        with pytest.raises(EnvironmentFailed, match="over its budget of 1 MB"):
            store.environment(["bigpkg"])


def test_concurrent_first_uses_build_once_and_all_get_it(store):
    started, results, errors = [], [], []
    barrier = threading.Barrier(4)

    def use():
        barrier.wait()
        try:
            results.append(store.environment(["otherpkg"], lambda p, d: started.append(p) if p == "started" else None))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=use) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors and len(results) == 4 and len({r.key for r in results}) == 1
    assert started == ["started"]


def test_list_and_prune(store):
    old = store.environment(["tinypkg==1.0"])
    new = store.environment(["otherpkg"])
    listed = {r["key"]: r for r in store.records()}
    assert set(listed) == {old.key, new.key}
    assert listed[old.key]["packages"] == ["tinypkg==1.0"] and listed[old.key]["size_bytes"] > 0
    past = time.time() - 10 * 86400
    os.utime(store.root / old.key / "last_used", (past, past))
    removed = store.prune(unused_days=5)
    assert [r["key"] for r in removed] == [old.key]
    assert not (store.root / old.key).exists() and (store.root / new.key).is_dir()
    assert store.prune(max_gb=0, keep={new.key}) == []  # kept: in use
    assert [r["key"] for r in store.prune(max_gb=0)] == [new.key]
    assert store.records() == []


def test_the_installers_message_says_when_a_package_has_no_wheel():
    said = "error: Building source distributions is disabled, but attempted to build `sdistonly==1.0`"
    assert "wheels only" in installer_message(said)


def test_without_uv_pip_builds_the_same_lock_wheels_only(tmp_path, wheelhouse, monkeypatch):
    from pyflow.environments import builder
    monkeypatch.setattr(builder, "uv_binary", lambda: None)
    store = store_for(tmp_path, wheelhouse)
    env = store.environment(["tinypkg"])
    assert env.packages == ("tinydep==0.5", "tinypkg==2.0")
    assert "--hash=sha256:" in (store.root / env.key / "lock.txt").read_text()
    assert (store.root / env.key / "site" / "tinypkg" / "__init__.py").is_file()
    with pytest.raises(EnvironmentFailed):
        store.environment(["sdistonly"])
    assert not wheelhouse.marker.exists()


def test_another_machine_installs_exactly_the_lock_under_the_same_key(tmp_path, wheelhouse):
    """A Dask worker elsewhere: the server's lock (tinypkg 1.0, from `tinypkg<2`), not the newest."""
    server = store_for(tmp_path / "server", wheelhouse)
    env = server.environment(["tinypkg<2"])
    worker = store_for(tmp_path / "worker", wheelhouse)
    import dataclasses
    elsewhere = dataclasses.replace(env, path=str(tmp_path / "server-only" / "site"))  # not on this machine
    local = worker.environment_from_lock(elsewhere)
    assert local.key == env.key and local.packages == ("tinypkg==1.0",)
    assert local.path == str(worker.root / env.key / "site")
    assert (worker.root / env.key / "site" / "tinypkg" / "__init__.py").read_text() == "VALUE = 1\n"
    assert worker.environment_from_lock(elsewhere) == local  # found, not built again
    assert worker.environment_from_lock(env) == env  # where the folder is there, it is used as it is


def test_uv_is_looked_up_once_even_by_builds_that_start_together(monkeypatch):
    """The uv package's lookup reads sysconfig, whose first use is not thread-safe: two builds starting
    at once once got None for its settings and failed. It is looked up once, under a lock."""
    import sys
    import uv
    from pyflow.environments import builder
    calls = []
    started = threading.Event()

    def slow_lookup():
        calls.append(1)
        started.wait(0.2)
        return "/bin/uv-found-once"

    monkeypatch.setattr(builder, "_UV", [])
    monkeypatch.setattr(uv, "find_uv_bin", slow_lookup)
    monkeypatch.setitem(sys.modules, "uv", uv)
    found = []
    threads = [threading.Thread(target=lambda: found.append(builder.uv_binary())) for _ in range(8)]
    for thread in threads:
        thread.start()
    started.set()
    for thread in threads:
        thread.join(30)
    assert calls == [1] and found == ["/bin/uv-found-once"] * 8


def test_prune_spares_environments_used_within_min_idle_s(store):
    old, new = store.environment(["tinypkg==1.0"]), store.environment(["otherpkg"])
    assert store.prune(max_gb=0, min_idle_s=3600) == []  # both just used: a node may still be using them
    past = time.time() - 7200
    os.utime(store.root / old.key / "last_used", (past, past))
    assert [r["key"] for r in store.prune(max_gb=0, min_idle_s=3600)] == [old.key]
    assert (store.root / new.key / "site").is_dir()


def test_prune_empties_the_download_cache_beyond_a_quarter_of_the_budget_and_environments_keep_working(store):
    env = store.environment(["otherpkg"])
    module = Path(env.path) / "otherpkg.py"
    assert folder_bytes(store.download_cache) > 0
    store.prune(max_gb=1, keep={env.key})
    assert folder_bytes(store.download_cache) > 0  # under a quarter of 1 GB: kept for later builds
    with store._file_lock(CACHE_LOCK, shared=True):  # a build is installing from it: left alone
        assert store.prune(max_gb=1e-9, keep={env.key}) == [] and folder_bytes(store.download_cache) > 0
    store.prune(max_gb=1e-9, keep={env.key})
    assert not store.download_cache.exists()
    assert module.read_text() == "NAME = 'other'\n"
    assert store.environment(["tinypkg==1.0"]).packages == ("tinypkg==1.0",)  # the cache fills again


def test_only_a_build_is_announced_and_a_failing_announcement_costs_nothing(store):
    heard = []
    store.after_build = heard.append
    env = store.environment(["otherpkg"])
    store.environment(["otherpkg"])
    assert heard == [env.key]

    def broken(key):
        raise RuntimeError("housekeeping broke")
    store.after_build = broken
    assert store.environment(["tinypkg==1.0"]).packages == ("tinypkg==1.0",)


def test_an_environment_built_again_after_its_removal_gets_the_versions_it_had(tmp_path):
    """The result cache keys a node by its requirements: they must keep meaning the same versions when a
    pruned environment is built again after the index gained a newer release. When those versions can
    no longer be had, the requirements are resolved afresh."""
    from pyflow.environments import EnvironmentSettings, EnvironmentStore, IndexSettings
    from tests.support.wheels import make_wheel
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "tinypkg", "1.0", {"tinypkg/__init__.py": "VALUE = 1\n"})
    store = EnvironmentStore(EnvironmentSettings(tmp_path / "envs", IndexSettings(find_links=(str(wheels),),
                                                                                  no_index=True)))
    first = store.environment(["tinypkg"])
    assert first.packages == ("tinypkg==1.0",)
    make_wheel(wheels, "tinypkg", "2.0", {"tinypkg/__init__.py": "VALUE = 2\n"})  # a newer release
    assert store.remove(first.key)
    again = store.environment(["tinypkg"])
    assert again.key == first.key and again.packages == ("tinypkg==1.0",)
    assert (Path(again.path) / "tinypkg" / "__init__.py").read_text() == "VALUE = 1\n"
    assert store.remove(first.key)
    for wheel in wheels.glob("tinypkg-1.0-*"):  # the version it had is gone from the index
        wheel.unlink()
    assert store.environment(["tinypkg"]).packages == ("tinypkg==2.0",)
