"""A database that holds documents an older version stored nested ~975 levels deep (before the limit)
still works: reading such a row answers a clear error, lists and exports skip and report it, and it can
be deleted or replaced; nothing answers 500."""

import json
import sqlite3

import pytest
import requests

from pyflow.storage import SQLiteRepository
from tests.support.server import LiveServer, NO_FORM

DEEP = 975
ECHO = {"id": "test.echo", "title": "Echo", "func": "def func(a):\n    return a\n",
        "port": {"input": [{"name": "a", "order": 0, "type": "Any"}], "output": [{"name": "out", "type": "Any"}]}}
GOOD = {"id": "good.flow", "name": "Good", "links": [],
        "nodes": [{"id": "n1", "spec_id": "test.echo", "is_end": True, "ports": [{"name": "a", "value": "1"}]}]}
NOW = "2025-01-01T00:00:00.000Z"


def deep_value(levels: int = DEEP) -> str:
    return "[" * levels + '"x"' + "]" * levels


def deep_flow_text(flow_id: str) -> str:
    return ('{"id":"%s","name":"Old","links":[],"nodes":[{"id":"n1","spec_id":"test.echo","is_end":true,'
            '"ports":[{"name":"a","value":%s}]}]}' % (flow_id, deep_value()))


def plant_old_rows(db) -> None:
    """Store what an older version without the limit stored, straight into the SQLite file."""
    repo = SQLiteRepository(db)
    repo.save("nodespec", ECHO)
    repo.save("nodespec", {**ECHO, "id": "test.other", "title": "Other"})
    repo.save("flow", GOOD)
    repo.close()
    conn = sqlite3.connect(db, isolation_level=None)
    rows = [("flow", "old.deep", deep_flow_text("old.deep")),
            ("flow", "old.other", deep_flow_text("old.other").replace("test.echo", "test.other")),
            ("nodespec", "old.spec", '{"id":"old.spec","title":"Old","func":"def func(a):\\n    return a\\n",'
                                     '"port":{"input":[{"name":"a","default":%s}]}}' % deep_value())]
    for revision, (kind, object_id, doc) in enumerate(rows, start=500):
        conn.execute("INSERT INTO objects VALUES (?, ?, ?, ?, ?, ?)", (kind, object_id, doc, revision, NOW, NOW))
    conn.execute("INSERT INTO flow_refs VALUES ('old.deep', 'test.echo'), ('old.other', 'test.other')")
    conn.execute("UPDATE meta SET value = '600' WHERE key = 'revision'")
    snapshot = '{"flow":%s,"nodespec":{"test.echo":%s}}' % (deep_flow_text("old.deep"), json.dumps(ECHO))
    conn.execute("INSERT INTO runs (id, flow_id, status, snapshot, request, created_at, seq) VALUES "
                 "('oldrun', 'old.deep', 'succeeded', ?, ?, ?, 1000)",
                 (snapshot, '{"values":{"n1":{"a":%s}}}' % deep_value(), NOW))
    conn.execute("INSERT INTO run_nodes VALUES ('oldrun', 'n1', 0, ?)",
                 ('{"id":"n1","status":"success","outputs":{"out":%s}}' % deep_value(),))
    conn.close()


@pytest.fixture()
def old(tmp_path):
    db = tmp_path / "old.db"
    plant_old_rows(db)
    with LiveServer(tmp_path / "server", db=db, args=("--no-stdlib",)) as live:
        yield live


def get(old, path):
    return requests.get(old.url + path, timeout=60)


def test_reading_the_row_answers_a_clear_error_not_500(old):
    for path in ("/api/flows/old.deep", "/flows/old.deep", "/api/nodespecs/old.spec", "/nodes/old.spec"):
        answer = get(old, path)
        assert answer.status_code == 409, (path, answer.text[:300])
        error = answer.json()
        assert "nested deeper than" in error["error"] and "older version" in error["error"], error["error"]
        assert error["details"][0]["path"].startswith("/")
    answer = requests.post(old.url + "/api/flows/old.deep/run", json={}, timeout=60)
    assert answer.status_code == 409 and "nested deeper than" in answer.json()["error"]


def test_lists_and_the_tree_skip_the_row(old):
    assert [f["id"] for f in get(old, "/api/flows").json()] == ["good.flow"]
    assert [f["id"] for f in get(old, "/api/flows?summary=1").json()] == ["good.flow"]
    assert [f["id"] for f in get(old, "/flows").json()] == ["good.flow"]
    assert sorted(s["id"] for s in get(old, "/api/nodespecs").json()) == ["test.echo", "test.other"]
    assert sorted(get(old, "/nodes").json()) == ["test.echo", "test.other"]
    assert get(old, "/api/nodespecs/tree").status_code == 200
    run = requests.post(old.url + "/api/flows/good.flow/run", json={}, timeout=60).json()
    assert run["status"] == "succeeded", run


def test_export_skips_and_reports_the_row_and_the_export_imports_again(old):
    answer = get(old, "/api/repository/export")
    assert answer.status_code == 200, answer.text[:300]
    bundle = answer.json()
    assert set(bundle["flow"]) == {"good.flow"} and set(bundle["nodespec"]) == {"test.echo", "test.other"}
    assert {item["path"] for item in bundle["skipped"]} == {"/flow/old.deep", "/flow/old.other",
                                                           "/nodespec/old.spec"}
    assert all("nested deeper than" in item["message"] for item in bundle["skipped"])
    again = requests.post(old.url + "/api/repository/import", json=bundle, timeout=60)
    assert again.status_code == 200, again.text[:300]


def test_delete_with_and_without_force_and_if_match(old):
    assert requests.delete(old.url + "/api/nodespecs/test.other", headers=NO_FORM).status_code == 409  # old.other uses it
    assert requests.delete(old.url + "/api/nodespecs/test.other?force=true", headers=NO_FORM).status_code == 200
    assert requests.delete(old.url + "/api/flows/old.deep", headers={**NO_FORM, "If-Match": '"1"'}).status_code == 412
    assert requests.delete(old.url + "/api/flows/old.deep", headers={**NO_FORM, "If-Match": '"500"'}).status_code == 200
    assert requests.delete(old.url + "/api/nodespecs/old.spec?force=true", headers=NO_FORM).status_code == 200
    assert get(old, "/api/flows/old.deep").status_code == 404
    assert requests.delete(old.url + "/api/flows/old.other", headers=NO_FORM).status_code == 200
    assert "skipped" not in get(old, "/api/repository/export").json()


def test_put_replaces_the_row(old):
    fixed = json.loads(deep_flow_text("old.deep").replace(deep_value(), '"fixed"'))
    answer = requests.put(old.url + "/api/flows/old.deep", json=fixed, headers={**NO_FORM, "If-Match": '"500"'})
    assert answer.status_code == 200, answer.text[:300]
    assert get(old, "/api/flows/old.deep").json() == fixed


def test_replace_import_removes_the_rows_and_merge_import_overwrites_them(old):
    fixed = json.loads(deep_flow_text("old.other").replace(deep_value(), '"fixed"').replace("test.echo", "test.other"))
    merged = requests.post(old.url + "/api/repository/import?mode=merge", timeout=60,
                           json={"format_version": 2, "nodespec": {}, "flow": {"old.other": fixed}})
    assert merged.status_code == 200, merged.text[:300]
    assert get(old, "/api/flows/old.other").json() == fixed
    bundle = {"format_version": 2, "nodespec": {"test.echo": ECHO}, "flow": {"good.flow": GOOD}}
    replaced = requests.post(old.url + "/api/repository/import?mode=replace", json=bundle, timeout=60)
    assert replaced.status_code == 200, replaced.text[:300]
    assert "flow/old.deep" in replaced.json()["changes"]["deleted"]
    after = get(old, "/api/repository/export").json()
    assert after == bundle


def test_old_runs_read_as_a_clear_error_and_list_without_500(old):
    answer = get(old, "/api/runs/oldrun")
    assert answer.status_code == 409 and "nested deeper than" in answer.json()["error"]
    runs = get(old, "/api/runs")
    assert runs.status_code == 200 and [r["id"] for r in runs.json()["runs"]] == ["oldrun"]
    assert requests.delete(old.url + "/api/runs/oldrun", headers=NO_FORM).status_code == 200
