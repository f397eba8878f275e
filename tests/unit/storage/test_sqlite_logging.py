"""Failures storage handles by itself are still logged: a cached result too deep to read is a miss and
one warning, not a silent miss on every lookup."""

import logging

from pyflow.storage import SQLiteRepository
from tests.unit.server.test_stored_depth import deep_value


def test_an_unreadable_cached_result_is_a_miss_logged_once(tmp_path, caplog):
    repo = SQLiteRepository(tmp_path / "db.sqlite")
    try:
        repo._conn().execute("INSERT INTO cache VALUES ('old', ?, 'then', 'then', 1)", ('{"outputs":%s}' % deep_value(),))
        caplog.set_level(logging.WARNING, logger="pyflow.storage")
        assert repo.cache_get_many(["old"]) == {} and repo.cache_get_many(["old"]) == {}
        warned = [r for r in caplog.records if "old" in r.getMessage() and r.name == "pyflow.storage.sqlite"]
        assert len(warned) == 1 and "too deep" in warned[0].getMessage()
    finally:
        repo.close()
