"""Checks of a database file that only read it: one sentence for a file that cannot serve, and what
SQLite's integrity check and PyFlow's stored documents show."""

import os

from pyflow.storage.check import check_database, database_problem
from tests.unit.cli.test_check import PAGE, healthy_database
from tests.unit.server.test_stored_depth import plant_old_rows


def test_a_missing_file_is_no_problem_for_serve_but_is_for_check(tmp_path):
    assert database_problem(tmp_path / "new.db") is None
    parts = check_database(tmp_path / "new.db")
    assert "does not exist" in parts[0].problems[0] and not (tmp_path / "new.db").exists()


def test_each_kind_of_unusable_file_is_one_sentence_naming_it(tmp_path):
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    assert database_problem(empty) is None  # SQLite treats an empty file as an empty database
    noise = tmp_path / "noise.db"
    noise.write_bytes(os.urandom(8192))
    assert database_problem(noise) == f"the database {noise} is not a SQLite database (it does not start with " \
                                      f"SQLite's header)"
    folder = tmp_path / "folder.db"
    folder.mkdir()
    assert database_problem(folder) == f"the database {folder} is a directory, not a database file"
    damaged = healthy_database(tmp_path / "damaged.db")
    with open(damaged, "r+b") as fh:
        fh.seek(damaged.stat().st_size // PAGE // 2 * PAGE)
        fh.write(b"\xff" * PAGE)
    problem = database_problem(damaged)
    assert problem.startswith(f"the database {damaged} is damaged (") and "\n" not in problem


def test_check_reads_every_stored_document(tmp_path):
    good = healthy_database(tmp_path / "good.db")
    assert all(part.count == 0 for part in check_database(good))
    old = tmp_path / "old.db"
    plant_old_rows(old)
    parts = {part.name: part for part in check_database(old)}
    assert parts["SQLite integrity check"].count == 0 and parts["cache"].count == 0
    assert [p.split(":")[0] for p in parts["objects"].problems] == ["flow/old.deep", "flow/old.other",
                                                                     "nodespec/old.spec"]
    assert parts["runs"].count == 3 and parts["objects"].looked_at == "3 nodespecs, 3 flows"


def test_each_unreadable_run_row_and_cached_result_is_named(tmp_path):
    import sqlite3
    old = tmp_path / "old.db"
    plant_old_rows(old)
    conn = sqlite3.connect(old, isolation_level=None)
    conn.execute("INSERT INTO run_events VALUES ('oldrun', 7, 'node_finished', '[1]', 'now')")
    conn.execute("INSERT INTO cache VALUES ('k1', 'nope', 'now', 'now', 4)")
    conn.close()
    parts = {part.name: part for part in check_database(old)}
    assert [p.split(" is ")[0] for p in parts["runs"].problems] == [
        "run oldrun: its request", "run oldrun: its snapshot", "run oldrun: the result of node n1",
        "run oldrun: event 7"]
    assert parts["runs"].problems[-1] == "run oldrun: event 7 is not a JSON object"
    assert parts["runs"].looked_at == "1 runs, 1 node results, 1 events"
    assert parts["cache"].problems[0].startswith("cached result k1: not readable JSON (")
    assert parts["cache"].problems[0].endswith(" (it counts as a miss)")
    assert parts["cache"].looked_at == "1 cached results"
