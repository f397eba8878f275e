"""Nodespec requirements: a derived image built once from the runtime image (pip from the package index,
wheels only), cached by a hash of base image and requirements; an unreachable index is a clear, bounded
node error."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from pyflow.executors.docker import DockerExecutor, requirements_tag, validate_requirements
from tests.support.timing import scaled

from .conftest import RUNTIME_IMAGE, owned, task

SIX = "def func():\n    import six\n    return six.__version__\n"


class BlackHole:
    """A package index that accepts connections and never answers."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                self.held.append(self.sock.accept()[0])
            except OSError:
                return

    def close(self):
        self.sock.close()
        for conn in self.held:
            conn.close()


def closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def builder_executor(engine, owner):
    ex = DockerExecutor(pool_size=1, owner=owner)
    ex.start()
    yield ex
    ex.close()


def test_requirements_build_a_derived_image_once_and_reuse_it(engine, owner, builder_executor):
    base_id = engine.images.get(RUNTIME_IMAGE).id
    index = builder_executor.builder.settings.index_url
    tag = requirements_tag(base_id, validate_requirements(["six==1.16.0"]), index)
    try:
        engine.images.remove(tag, force=True)
    except Exception:
        pass
    first = builder_executor.run(task(SIX, requirements=("six==1.16.0",)))
    assert first.ok and first.value == "1.16.0", first.error
    image = engine.images.get(tag)
    assert json.loads(image.labels["pyflow.requirements"])["requirements"] == ["six==1.16.0"]
    assert image.attrs["Config"]["User"] == "10001:10001"
    started = time.monotonic()
    again = builder_executor.run(task(SIX, requirements=("six==1.16.0",)))
    assert again.ok and time.monotonic() - started < scaled(2.0), "cached image, warm container: no build"
    assert owned(engine, owner, role="build") == [], "build containers are removed"
    plain = builder_executor.run(task("def func():\n    import six\n"))
    assert not plain.ok and plain.error["type"] == "ModuleNotFoundError", "the runtime image itself is unchanged"


def test_requirements_that_are_not_plain_names_are_refused_before_any_build(builder_executor):
    outcome = builder_executor.run(task(SIX, requirements=("six @ https://example.com/six.whl",)))
    assert not outcome.ok and outcome.error["type"] == "RequirementsError"
    assert "not allowed" in outcome.error["message"]


def test_an_index_that_refuses_connections_fails_the_node_with_pips_words(engine, owner):
    ex = DockerExecutor(pool_size=1, owner=owner, pip_index_url=f"http://127.0.0.1:{closed_port()}/simple",
                        build_timeout_s=60)
    try:
        started = time.monotonic()
        outcome = ex.run(task(SIX, requirements=("six==1.15.0",)))
        assert time.monotonic() - started < scaled(60)
        assert not outcome.ok and outcome.error["type"] == "RequirementsError"
        message = outcome.error["message"]
        assert "could not install requirements six==1.15.0" in message
        assert "package index could not be reached" in message
        cached = ex.run(task(SIX, requirements=("six==1.15.0",)))
        assert "cached failure" in cached.error["message"]
    finally:
        ex.close()
    assert owned(engine, owner, role="build") == []


def test_an_index_that_never_answers_is_cut_off_at_the_build_time_limit(engine, owner):
    hole = BlackHole()
    ex = DockerExecutor(pool_size=1, owner=owner, pip_index_url=f"http://127.0.0.1:{hole.port}/simple",
                        build_timeout_s=4)
    try:
        started = time.monotonic()
        outcome = ex.run(task(SIX, requirements=("six==1.14.0",)))
        assert time.monotonic() - started < scaled(30), "bounded by the build time limit, not a hang"
        assert not outcome.ok and outcome.error["type"] == "RequirementsError"
        assert "did not finish within 4 s" in outcome.error["message"]
    finally:
        ex.close()
        hole.close()
    assert owned(engine, owner, role="build") == []


def test_the_image_installs_the_lock_the_server_resolved_for_the_nodes_environment(builder_executor):
    """The same versions as in the sandbox: the environment's lock, every package pinned, not the newest."""
    import dataclasses
    from pyflow.engine.execution import Environment
    env = Environment(key="lock-test", path="/nonexistent", packages=("six==1.16.0",))
    outcome = builder_executor.run(dataclasses.replace(task(SIX, requirements=("six",)), environment=env))
    assert outcome.ok and outcome.value == "1.16.0", outcome

