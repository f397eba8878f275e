"""No import loses what a user saved: what it overwrites or deletes is copied, before anything is
written, to a bundle file beside the database, and importing that file puts it back; when the copy
cannot be written, the import changes nothing."""

from __future__ import annotations

import json

import pytest

from pyflow.model.errors import ServiceUnavailable
from pyflow.service import backups

from .support import make_service

SPEC = {"id": "t.inc", "title": "Inc", "func": "def func(a):\n    return a + 1\n",
        "port": {"input": [{"name": "a", "type": "Int"}], "output": [{"name": "out", "type": "Int"}]}}


def flow(name: str) -> dict:
    return {"id": "f.mine", "name": name, "links": [], "nodes": [{"id": "n", "spec_id": "t.inc", "ports": []}]}


@pytest.fixture()
def service(tmp_path):
    service = make_service(tmp_path)
    service.upsert("nodespec", SPEC)
    service.upsert("flow", flow("what I saved"))
    yield service
    service.close()


def test_a_merge_that_overwrites_a_flow_keeps_the_old_one_and_importing_the_copy_puts_it_back(service):
    summary = service.import_bundle({"flow": {"f.mine": flow("what the file had")}, "nodespec": {}})
    assert summary["updated"] == 1
    kept = json.loads(open(summary["backup"]).read())
    assert kept["flow"] == {"f.mine": flow("what I saved")} and kept["nodespec"] == {}
    assert service.objects.get("flow", "f.mine").doc["name"] == "what the file had"
    service.import_bundle(kept)
    assert service.objects.get("flow", "f.mine").doc["name"] == "what I saved"


def test_an_import_that_replaces_nothing_keeps_no_copy(service):
    summary = service.import_bundle({"flow": {"f.mine": flow("what I saved"), "f.new": {**flow("new"), "id": "f.new"}},
                                     "nodespec": {"t.inc": SPEC}})
    assert summary["created"] == 1 and "backup" not in summary
    assert not service.backups_dir.exists()


def test_a_replace_keeps_what_it_deletes(service):
    stored = {r.id: r.doc for r in service.objects.list("nodespec")}
    summary = service.import_bundle({"flow": {}, "nodespec": {}}, "replace")
    assert summary["deleted"] == len(stored) + 1
    kept = json.loads(open(summary["backup"]).read())
    assert kept["flow"] == {"f.mine": flow("what I saved")} and kept["nodespec"] == stored


def test_when_the_copy_cannot_be_written_the_import_changes_nothing(service):
    service.backups_dir.parent.mkdir(parents=True, exist_ok=True)
    service.backups_dir.write_text("a file where the folder would be")
    with pytest.raises(ServiceUnavailable, match="nothing was imported"):
        service.import_bundle({"flow": {"f.mine": flow("what the file had")}, "nodespec": {}})
    assert service.objects.get("flow", "f.mine").doc["name"] == "what I saved"


def test_only_the_newest_copies_are_kept(service, monkeypatch):
    monkeypatch.setattr(backups, "KEPT", 3)
    names = [service.import_bundle({"flow": {"f.mine": flow(f"version {i}")}, "nodespec": {}})["backup"]
             for i in range(5)]
    assert sorted(str(p) for p in service.backups_dir.iterdir()) == sorted(names[-3:])
