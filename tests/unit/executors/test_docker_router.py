"""The docker executor routes each node to its image's pool: the default image's, or one made on first
use for another image, of which at most `max_images` stay. No engine needed: nothing here starts a
container (pool size 0 starts one per node, and no node runs)."""

from __future__ import annotations

import pytest

pytest.importorskip("docker")

from pyflow.executors.docker import executor as docker_executor  # noqa: E402
from pyflow.executors.docker import DockerExecutor, DockerUnavailable  # noqa: E402


class NoEngine:
    """Stands in for the engine client; any call to it fails."""


@pytest.fixture()
def router(monkeypatch):
    monkeypatch.setattr(docker_executor, "connect", lambda base_url=None: NoEngine())
    executor = DockerExecutor(pool_size=0, image="runtime:1", max_images=1)
    yield executor
    executor.close()


def test_the_default_image_goes_to_the_default_pool_and_others_to_their_own(router):
    assert router._pool_for("runtime:1") is router.default
    other = router._pool_for("other:1")
    assert other is not router.default and other.image == "other:1"
    assert router._pool_for("other:1") is other
    assert router.describe()["images"] == ["runtime:1", "other:1"]


def test_only_max_images_other_pools_stay_and_the_least_recently_used_goes(router):
    first = router._pool_for("a:1")
    router._pool_for("b:1")
    assert router.describe()["images"] == ["runtime:1", "b:1"]
    assert first._closed


def test_a_closed_router_makes_no_pool_and_is_not_ready(router):
    router.close()
    router.close()
    with pytest.raises(DockerUnavailable):
        router._pool_for("c:1")
    assert router.default._closed and not router.readiness()["ready"]
