"""Requirement images do not pile up on the engine: beyond `max_derived` the least recently used ones
go once no container uses them. In a module of its own: test_requirements.py keeps a warm pool of its
image for all its tests, which no pruning may take away."""

from __future__ import annotations

import pytest

from pyflow.executors.docker import DockerExecutor, requirements_tag, validate_requirements
from tests.unit.environments.test_network import index_answers

from .conftest import RUNTIME_IMAGE, task
from .test_requirements import SIX


def test_beyond_max_derived_the_least_recently_used_requirement_image_goes_once_nothing_uses_it(engine, owner):
    """Every new set of requirements makes an image; beyond `max_derived` (here 1) the least recently
    used ones go, as soon as no container uses them: here the first image, when its warm pool makes way
    for the second's (one warm pool besides the default)."""
    reason = index_answers()  # the images' wheels come from PyPI
    if reason:
        pytest.skip(reason)
    ex = DockerExecutor(pool_size=1, owner=owner, max_derived=1, max_images=1)
    ex.start()
    try:
        base_id = engine.images.get(RUNTIME_IMAGE).id
        versions = ("1.15.0", "1.14.0")
        first, second = (requirements_tag(base_id, validate_requirements([f"six=={v}"]), ex.builder.settings.index_url)
                         for v in versions)
        for version in versions:
            outcome = ex.run(task(SIX, requirements=(f"six=={version}",)))
            assert outcome.ok and outcome.value == version, outcome.error
        ex.reaper.drain()

        def present():
            return {t for image in engine.images.list(filters={"label": "pyflow.role=requirements"}) for t in image.tags}
        assert first not in present() and second in present(), present()
    finally:
        ex.close()
