"""Environments kept within their budget without anyone pruning by hand: each new build has the least
recently used ones beyond `envs_gb` removed, never one a node may still be using."""

from __future__ import annotations

import os
import time

from pyflow.environments import EnvironmentSettings, IndexSettings
from tests.unit.environments.conftest import wheelhouse  # noqa: F401 (fixture)

from .support import make_service


def test_a_new_environment_past_the_budget_removes_the_least_recently_used_idle_one(tmp_path, wheelhouse):  # noqa: F811
    settings = EnvironmentSettings(tmp_path / "envs", IndexSettings(find_links=(wheelhouse.url,), no_index=True),
                                   envs_gb=1e-9)  # any environment is over it
    service = make_service(tmp_path, environments=settings)
    try:
        first = service.prepare_environment({"requirements": ["tinypkg==1.0"]})
        second = service.prepare_environment({"requirements": ["otherpkg"]})
        kept = {r["key"] for r in service.list_environments()}
        assert kept == {first["key"], second["key"]}  # the first was used just now: a node may be using it
        past = time.time() - 2 * service.config.max_limits.timeout_s - 60
        os.utime(tmp_path / "envs" / first["key"] / "last_used", (past, past))
        third = service.prepare_environment({"requirements": ["tinydep==0.5"]})
        kept = {r["key"] for r in service.list_environments()}
        assert kept == {second["key"], third["key"]}
        assert not (tmp_path / "envs" / first["key"]).exists()
    finally:
        service.close()
