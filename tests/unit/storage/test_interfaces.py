"""Storage's three interfaces: each one job, and the SQLite repository is all three."""

from pyflow.storage import ObjectStore, ResultCache, RunStore, SQLiteRepository


def test_sqlite_implements_the_object_store_the_run_store_and_the_result_cache(tmp_path):
    repo = SQLiteRepository(tmp_path / "db.sqlite")
    try:
        assert isinstance(repo, ObjectStore) and isinstance(repo, RunStore) and isinstance(repo, ResultCache)
    finally:
        repo.close()


def test_each_interface_has_one_job():
    objects, runs, cache = (set(c.__abstractmethods__) for c in (ObjectStore, RunStore, ResultCache))
    shared = {"transaction"}
    assert not (objects & runs) - shared and not (objects & cache) - shared and not (runs & cache) - shared
    assert {"create_run", "events", "save_progress"} <= runs and not {"create_run", "cache_put"} & objects
    assert {"cache_get_many", "cache_put", "cache_prune"} <= cache and "get_run" not in cache
    assert not hasattr(RunStore, "import_bundle") and not hasattr(ResultCache, "save")
