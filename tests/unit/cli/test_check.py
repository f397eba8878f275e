"""A corrupt or unreadable database: `pyflow serve` refuses to start with one sentence naming the file and
what is wrong, and `pyflow check` reports what SQLite's integrity check and PyFlow's own checks find."""

import os
import sqlite3

import pytest

from pyflow.storage import SQLiteRepository
from tests.unit.cli.test_cli import pyflow
from tests.unit.server.test_stored_depth import plant_old_rows

PAGE = 4096


def healthy_database(path):
    """A database of a few hundred pages: nodespecs, flows and cached results."""
    repo = SQLiteRepository(path)
    spec = {"id": "t.one", "title": "One", "func": "def func():\n    return 1\n", "port": {}}
    repo.save("nodespec", spec)
    for i in range(300):
        repo.cache_put(f"key{i:04d}", {"outputs": {"out": "x" * 3000}, "i": i})
    repo.close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return path


def serve(db):
    return pyflow("serve", "--db", str(db), "--executor", "none", "--no-stdlib", "--port", "0")


def refused(result, db, says):
    assert result.returncode != 0, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and str(db) in lines[0] and says in lines[0], result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_random_bytes(tmp_path):
    db = tmp_path / "random.db"
    db.write_bytes(os.urandom(64 * 1024))
    refused(serve(db), db, "is not a SQLite database")
    result = pyflow("check", "--db", str(db))
    assert result.returncode == 1 and "is not a SQLite database" in result.stdout + result.stderr


def test_truncated(tmp_path):
    db = healthy_database(tmp_path / "truncated.db")
    size = db.stat().st_size
    with open(db, "r+b") as fh:
        fh.truncate(size // 2 // PAGE * PAGE + 100)
    refused(serve(db), db, "is damaged")
    result = pyflow("check", "--db", str(db))
    assert result.returncode == 1 and "damaged" in result.stdout + result.stderr


def test_garbage_page_in_the_middle(tmp_path):
    db = healthy_database(tmp_path / "garbage.db")
    pages = db.stat().st_size // PAGE
    with open(db, "r+b") as fh:
        fh.seek(pages // 2 * PAGE)
        fh.write(os.urandom(PAGE))
    refused(serve(db), db, "is damaged")
    result = pyflow("check", "--db", str(db))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "integrity check" in result.stdout and "damaged" in result.stdout + result.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_no_read_permission(tmp_path):
    db = healthy_database(tmp_path / "locked.db")
    db.chmod(0)
    try:
        refused(serve(db), db, "cannot be read")
        assert pyflow("check", "--db", str(db)).returncode == 1
    finally:
        db.chmod(0o600)


def test_a_directory_at_the_database_path(tmp_path):
    db = tmp_path / "folder.db"
    db.mkdir()
    refused(serve(db), db, "is a directory")
    assert pyflow("check", "--db", str(db)).returncode == 1


def test_check_of_a_healthy_database_and_of_rows_stored_too_deep(tmp_path):
    db = healthy_database(tmp_path / "good.db")
    before = db.read_bytes()
    result = pyflow("check", "--db", str(db))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "integrity check: ok" in result.stdout and "no problems" in result.stdout
    assert db.read_bytes() == before  # a check changes nothing
    old = tmp_path / "old.db"
    plant_old_rows(old)
    result = pyflow("check", "--db", str(old))
    assert result.returncode == 1, result.stdout + result.stderr
    for name in ("flow/old.deep", "flow/old.other", "nodespec/old.spec", "run oldrun"):
        assert name in result.stdout, result.stdout
    assert "nested deeper than" in result.stdout


def test_check_of_a_missing_file_creates_nothing(tmp_path):
    result = pyflow("check", "--db", str(tmp_path / "none.db"))
    assert result.returncode == 1 and "does not exist" in result.stdout + result.stderr
    assert not (tmp_path / "none.db").exists()
