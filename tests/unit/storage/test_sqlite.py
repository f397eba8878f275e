import json
import sqlite3
import subprocess
import sys
import time

import pytest

from pyflow.model.errors import Conflict, InvalidInput, NotFound, PreconditionFailed
from pyflow.storage import SQLiteRepository

SPEC = {"id": "t.inc", "title": "Inc", "func": "def func(a):\n    return a + 1\n",
        "port": {"input": [{"name": "a", "type": "Int"}]}}
FLOW = {"id": "f1", "name": "F", "nodes": [{"id": "n", "spec_id": "t.inc", "ports": [{"name": "a", "value": "1"}]}],
        "links": []}


@pytest.fixture()
def repo(tmp_path):
    repository = SQLiteRepository(tmp_path / "db.sqlite")
    yield repository
    repository.close()


def dump(repo):
    return json.dumps(repo.export_bundle(), sort_keys=True)


def test_file_is_sqlite_in_wal_mode(repo, tmp_path):
    repo.save("nodespec", SPEC)
    conn = sqlite3.connect(tmp_path / "db.sqlite")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT id FROM objects").fetchall() == [("t.inc",)]


def test_crud_and_revisions(repo):
    record, created = repo.save("nodespec", SPEC)
    assert created and record.revision >= 1 and record.etag == f'"{record.revision}"'
    same, created = repo.save("nodespec", SPEC)
    assert not created and same.revision == record.revision  # unchanged documents keep their revision
    changed, _ = repo.save("nodespec", {**SPEC, "title": "Increment"}, expected=record.revision)
    assert changed.revision > record.revision
    assert repo.get("nodespec", "t.inc").doc["title"] == "Increment"
    with pytest.raises(PreconditionFailed):
        repo.save("nodespec", {**SPEC, "title": "Stale"}, expected=record.revision)
    with pytest.raises(PreconditionFailed):
        repo.delete("nodespec", "t.inc", expected=record.revision)
    repo.delete("nodespec", "t.inc", expected=changed.revision)
    with pytest.raises(NotFound):
        repo.get("nodespec", "t.inc")


def test_revisions_are_never_reused(repo):
    first, _ = repo.save("nodespec", SPEC)
    repo.delete("nodespec", "t.inc")
    again, _ = repo.save("nodespec", SPEC)
    assert again.revision > first.revision


def test_create_only_conflicts(repo):
    repo.save("nodespec", SPEC, create_only=True)
    with pytest.raises(Conflict):
        repo.save("nodespec", SPEC, create_only=True)


def test_invalid_documents_change_nothing(repo):
    repo.save("nodespec", SPEC)
    before = dump(repo)
    with pytest.raises(InvalidInput) as info:
        repo.save("flow", {**FLOW, "nodes": [{"id": "n", "spec_id": "nope"}]})
    assert info.value.details[0]["path"] == "/nodes/0/spec_id"
    with pytest.raises(InvalidInput):
        repo.save("nodespec", {**SPEC, "func": "def func(:"})
    assert dump(repo) == before


def test_deleting_a_used_nodespec_conflicts_unless_forced(repo):
    repo.save("nodespec", SPEC)
    repo.save("flow", FLOW)
    with pytest.raises(Conflict) as info:
        repo.delete("nodespec", "t.inc")
    assert info.value.extra["flows"] == ["f1"]
    repo.delete("flow", "f1")
    repo.save("flow", FLOW)
    repo.delete("nodespec", "t.inc", force=True)
    assert [r.id for r in repo.list("nodespec")] == []


def test_import_is_all_or_nothing(repo, compat_bundle):
    repo.save("nodespec", SPEC)
    before = dump(repo)
    broken = json.loads(json.dumps(compat_bundle))
    broken["nodespec"]["pyflow.math.add"]["port"]["input"][0]["type"] = "Integer"
    broken["flow"]["pyflow.sample.math"]["links"][0]["target"] = "node1527101199970:zz"
    with pytest.raises(InvalidInput) as info:
        repo.import_bundle(broken, "merge")
    assert len(info.value.details) >= 2
    assert dump(repo) == before


@pytest.mark.parametrize("part", ["nodespec", "flow"])
@pytest.mark.parametrize("value", [None, [], "x", 1])
def test_a_bundle_part_that_is_not_an_object_is_invalid(repo, part, value):
    """Found by the API fuzzer: {"nodespec": null} failed the merge with a TypeError (500)."""
    repo.save("nodespec", SPEC)
    before = dump(repo)
    for mode in ("merge", "replace"):
        with pytest.raises(InvalidInput) as info:
            repo.import_bundle({"format_version": 2, part: value}, mode)
        assert info.value.details[0]["path"] == f"/{part}"
    assert dump(repo) == before


def test_merge_and_replace(repo, compat_bundle):
    repo.save("nodespec", SPEC)
    summary = repo.import_bundle(compat_bundle, "merge")
    assert summary["created"] == 15
    assert {r.id for r in repo.list("nodespec")} >= {"t.inc", "pyflow.math.add"}
    assert repo.import_bundle(compat_bundle, "merge")["unchanged"] == 15
    summary = repo.import_bundle(compat_bundle, "replace")
    assert summary["deleted"] == 1 and "t.inc" not in {r.id for r in repo.list("nodespec")}
    assert summary["changes"]["deleted"] == ["nodespec/t.inc"]
    changed = {**compat_bundle, "nodespec": {**compat_bundle["nodespec"],
                                             "pyflow.math.add": {**compat_bundle["nodespec"]["pyflow.math.add"],
                                                                 "title": "Plus"}}}
    assert repo.import_bundle(changed, "merge")["changes"]["updated"] == ["nodespec/pyflow.math.add"]


def test_merge_refuses_to_break_stored_flows(repo):
    repo.save("nodespec", SPEC)
    repo.save("flow", FLOW)
    changed = {**SPEC, "port": {"input": [{"name": "b", "type": "Int"}]}, "func": "def func(b):\n    return b\n"}
    with pytest.raises(InvalidInput) as info:
        repo.import_bundle({"nodespec": {"t.inc": changed}}, "merge")
    assert info.value.details[0]["path"].startswith("/stored-flow/f1/")


def test_data_survives_reopening(tmp_path):
    path = tmp_path / "db.sqlite"
    first = SQLiteRepository(path)
    first.save("nodespec", SPEC)
    first.close()
    second = SQLiteRepository(path)
    assert second.get("nodespec", "t.inc").doc == SPEC
    second.close()


def test_runs_events_and_retention(repo):
    for i in range(5):
        repo.create_run({"id": f"r{i}", "flow_id": "f", "status": "queued", "snapshot": {}, "created_at": "t"})
    repo.save_progress("r4", [{"id": 1, "event": "run_started", "data": {"x": 1}, "at": "t"}],
                       [(0, {"id": "n", "status": "success"})])
    run = repo.get_run("r4")
    assert run["nodes"] == [{"id": "n", "status": "success"}]
    assert repo.events("r4") == [{"id": 1, "event": "run_started", "data": {"x": 1}, "at": "t"}]
    runs, total = repo.list_runs("f", limit=2)
    assert total == 5 and [r["id"] for r in runs] == ["r4", "r3"]
    assert len(repo.unfinished_runs()) == 5
    for i in range(5):
        repo.update_run(f"r{i}", status="succeeded")
    assert repo.prune_runs("f", keep=2) == 3
    assert [r["id"] for r in repo.list_runs("f")[0]] == ["r4", "r3"]


def test_a_nodespec_change_that_breaks_flows_conflicts_unless_forced(repo):
    repo.save("nodespec", SPEC)
    repo.save("flow", FLOW)
    renamed = {**SPEC, "port": {"input": [{"name": "b", "type": "Int"}]}, "func": "def func(b):\n    return b\n"}
    before = dump(repo)
    with pytest.raises(Conflict) as info:
        repo.save("nodespec", renamed)
    assert info.value.extra["flows"] == ["f1"]
    assert info.value.details[0]["path"] == "/flow/f1/nodes/0/ports/0/name"
    assert dump(repo) == before
    compatible = {**SPEC, "title": "Still fits"}
    assert repo.save("nodespec", compatible)[0].doc["title"] == "Still fits"
    repo.save("nodespec", renamed, force=True)
    assert repo.get("nodespec", "t.inc").doc == renamed


def test_cache_keeps_the_most_recently_used_entries(repo):
    for i in range(5):
        repo.cache_put(f"k{i}", {"outputs": {"out": i}})
    with repo.transaction() as conn:  # all of them last used an hour ago
        conn.execute("UPDATE cache SET used_at = '2000-01-01T00:00:00.000Z'")
    assert repo.cache_get_many(["k0", "k1", "zz"]) == {"k0": {"outputs": {"out": 0}}, "k1": {"outputs": {"out": 1}}}
    assert repo.cache_prune(keep=2) == 3
    assert set(repo.cache_get_many([f"k{i}" for i in range(5)])) == {"k0", "k1"}


def aged(repo, *keys_by_age):
    """Mark entries used at distinct past times, oldest first."""
    with repo.transaction() as conn:
        for age, key in enumerate(keys_by_age):
            conn.execute("UPDATE cache SET used_at = ? WHERE key = ?", (f"2000-01-01T00:00:{age:02d}.000Z", key))


def test_cache_space_is_bounded_dropping_the_least_recently_used(repo):
    blob = "x" * 1000
    sizes = {f"k{i}": repo.cache_put(f"k{i}", {"outputs": {"out": blob}}) for i in range(4)}
    assert all(1000 < size < 1100 for size in sizes.values())
    aged(repo, "k2", "k0", "k3", "k1")  # k1 most recently used
    assert repo.cache_prune(keep=100, max_bytes=2 * sizes["k0"] + 10) == 2
    assert set(repo.cache_get_many(list(sizes))) == {"k1", "k3"}
    assert repo.cache_prune(keep=100, max_bytes=10_000) == 0


def test_a_result_over_the_entry_limit_is_not_cached(repo):
    assert repo.cache_put("big", {"outputs": {"out": "é" * 600}}, max_bytes=1000) == 0  # 1,200 bytes of UTF-8
    assert repo.cache_get_many(["big"]) == {}
    assert repo.cache_put("small", {"outputs": {"out": "é" * 100}}, max_bytes=1000) > 200


def test_an_older_cache_table_gains_sizes_when_opened(tmp_path):
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE cache (key TEXT PRIMARY KEY, record TEXT NOT NULL, created_at TEXT NOT NULL, "
                 "used_at TEXT NOT NULL)")
    conn.execute("INSERT INTO cache VALUES ('k', ?, 't', 't')", (json.dumps({"outputs": {"out": "é" * 50}}),))
    conn.commit()
    conn.close()
    repository = SQLiteRepository(path)
    try:
        size = repository._conn().execute("SELECT size FROM cache WHERE key = 'k'").fetchone()[0]
        assert size == len(json.dumps({"outputs": {"out": "é" * 50}}).encode())
        assert repository.cache_get_many(["k"]) == {"k": {"outputs": {"out": "é" * 50}}}
    finally:
        repository.close()


@pytest.mark.parametrize("keep, fits, kept", [(4, 3, ["k3", "k4", "k5"]), (2, 3, ["k4", "k5"]), (6, 6, None)])
def test_cache_pruning_applies_the_tighter_of_its_two_limits(repo, keep, fits, kept):
    sizes = [repo.cache_put(f"k{i}", {"outputs": {"out": "y" * 100}}) for i in range(6)]
    aged(repo, *[f"k{i}" for i in range(6)])  # k5 most recently used
    dropped = repo.cache_prune(keep=keep, max_bytes=sum(sizes[:fits]))
    left = sorted(repo.cache_get_many([f"k{i}" for i in range(6)]))
    assert left == (kept or [f"k{i}" for i in range(6)]) and dropped == 6 - len(left)


def test_many_processes_opening_an_old_database_at_once_all_start(tmp_path):
    """The first to open it migrates it; the others wait and find it done, rather than failing on a
    column another has just added."""
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE runs (id TEXT PRIMARY KEY, flow_id TEXT, status TEXT NOT NULL, snapshot TEXT NOT NULL, "
                 "request TEXT NOT NULL, reason TEXT, created_at TEXT NOT NULL, started_at TEXT, finished_at TEXT, "
                 "seq INTEGER NOT NULL)")
    conn.execute("CREATE TABLE cache (key TEXT PRIMARY KEY, record TEXT NOT NULL, created_at TEXT NOT NULL, "
                 "used_at TEXT NOT NULL)")
    conn.commit()
    conn.close()
    opener = ("import sys, time\nfrom pyflow.storage import SQLiteRepository\n"
              "time.sleep(max(0, float(sys.argv[2]) - time.time()))\nSQLiteRepository(sys.argv[1]).close()\n")
    start_at = str(time.time() + 1.5)  # all at the same instant, after their imports
    procs = [subprocess.Popen([sys.executable, "-c", opener, str(path), start_at], stderr=subprocess.PIPE, text=True)
             for _ in range(8)]
    failures = [p.stderr.read() for p in procs if p.wait(timeout=60) != 0]
    assert failures == []
    columns = {row[1] for row in sqlite3.connect(path).execute("PRAGMA table_info(cache)")}
    assert "size" in columns


def test_a_row_stored_too_deep_by_an_older_version_can_be_replaced_or_deleted_but_not_read(tmp_path):
    from pyflow.storage import UnreadableDocument
    from tests.unit.server.test_stored_depth import GOOD, plant_old_rows
    db = tmp_path / "old.db"
    plant_old_rows(db)
    repo = SQLiteRepository(db)
    try:
        with pytest.raises(UnreadableDocument) as caught:
            repo.get("flow", "old.deep")
        assert caught.value.status == 409 and caught.value.details[0]["path"].startswith("/nodes/0/ports/0/value/0")
        assert [r.id for r in repo.list("flow")] == ["good.flow"] and "old.spec" not in repo.specs()
        with pytest.raises(Conflict, match="already exists"):
            repo.save("flow", {**GOOD, "id": "old.deep"}, create_only=True)
        with pytest.raises(PreconditionFailed):
            repo.save("flow", {**GOOD, "id": "old.deep"}, object_id="old.deep", expected=1)
        record, created = repo.save("flow", {**GOOD, "id": "old.deep"}, object_id="old.deep", expected=500)
        assert not created and repo.get("flow", "old.deep").doc == record.doc
        repo.delete("flow", "old.other", expected=501)
        repo.delete("nodespec", "old.spec")
        assert "skipped" not in repo.export_bundle() and not repo.is_empty()
    finally:
        repo.close()
