"""The SQLite repository when writes fail: a full database says so (never "cannot rollback"), keeps what
was committed and goes on working; values SQLite cannot encode are stored escaped; the health probe
answers while another connection holds the write lock."""

import sqlite3
import threading

import pytest

from pyflow.model.errors import StorageUnavailable
from pyflow.storage import SQLiteRepository

RUN = {"flow_id": "f", "status": "queued", "snapshot": {}, "created_at": "t"}


@pytest.fixture()
def repo(tmp_path):
    repository = SQLiteRepository(tmp_path / "db.sqlite")
    yield repository
    repository.close()


def test_a_write_that_fills_the_database_says_disk_full_and_keeps_what_was_committed(repo):
    repo.create_run({"id": "kept", **RUN})
    repo.save_progress("kept", [], [(0, {"id": "n", "outputs": {"out": 1}})])
    repo._conn().execute("PRAGMA max_page_count = 60")  # SQLite answers SQLITE_FULL past this size
    with pytest.raises(StorageUnavailable) as raised:
        repo.save_progress("kept", [], [(1, {"id": "big", "outputs": {"out": "y" * 3_000_000}})])
    assert "disk full" in raised.value.message and "database or disk is full" in raised.value.message
    assert "rollback" not in raised.value.message
    assert raised.value.status == 503 and raised.value.retry_after >= 1
    assert not repo._conn().in_transaction
    repo.update_run("kept", status="failed", reason="disk full")  # small writes still go through
    run = repo.get_run("kept")
    assert run["status"] == "failed" and [n["id"] for n in run["nodes"]] == ["n"]


def test_a_failed_commit_is_reported_with_its_own_error(repo, monkeypatch):
    """A COMMIT that fails may leave the transaction open (busy) or rolled back (full): either way the
    caller hears the COMMIT's error, and the connection is left outside any transaction."""
    real = repo._conn()

    class FailingCommit:
        def __getattr__(self, name):
            return getattr(real, name)

        def execute(self, sql, *args):
            if sql == "COMMIT":
                raise sqlite3.OperationalError("database or disk is full")
            return real.execute(sql, *args)

    monkeypatch.setattr(repo, "_conn", lambda: FailingCommit())
    with pytest.raises(StorageUnavailable, match="disk full"):
        repo.update_run("nothing", status="failed")
    assert not real.in_transaction


def test_a_lone_surrogate_is_stored_escaped_and_read_back_as_it_was(repo):
    repo.create_run({"id": "r", **RUN})
    result = {"id": "n", "outputs": {"out": "a\ud800b"}, "stdout": "\udcff"}
    repo.save_progress("r", [], [(0, result)])
    assert repo.get_run("r")["nodes"] == [result]
    assert repo.cache_put("k", {"outputs": {"out": "a\ud800b"}}) > 0
    assert repo.cache_get_many(["k"]) == {"k": {"outputs": {"out": "a\ud800b"}}}


def test_the_write_probe_answers_while_another_connection_holds_the_write_lock(repo, tmp_path):
    assert repo.probe_write() is None  # writable: nothing to report
    holder = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    answers = []
    try:
        probe = threading.Thread(target=lambda: answers.append(repo.probe_write()))
        probe.start()
        probe.join(20)  # shorter than the busy timeout of ordinary writes: a waiting probe fails here
        assert not probe.is_alive() and "busy" in answers[0]
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert repo.probe_write() is None

