"""The standard library on start: all of it into an empty repository, and into one in use only what a
newer version adds, never over the user's own versions or their deletions."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from pyflow.executors.inprocess import InProcessExecutor
from pyflow.service import Config, PyflowService


def spec(spec_id: str, plus: str = "", port: str = "a") -> dict:
    """A nodespec returning its one input (`port`), with `plus` added to the expression."""
    return {"id": spec_id, "title": spec_id, "func": f"def func({port}):\n    return {port}{plus}\n",
            "port": {"input": [{"name": port, "type": "Int"}], "output": [{"name": "out", "type": "Int"}]}}


def write_library(root: Path, specs: list[dict], flows: list[dict] = ()) -> Path:
    for kind, docs in (("nodespecs", specs), ("flows", flows)):
        (root / kind).mkdir(parents=True, exist_ok=True)
        for doc in docs:
            (root / kind / f"{doc['id']}.json").write_text(json.dumps(doc))
    return root


def start(tmp_path: Path, library: Path) -> PyflowService:
    config = Config(db_path=tmp_path / "db.sqlite", stdlib_dir=library)
    return PyflowService(config, InProcessExecutor()).start()


def spec_ids(service: PyflowService) -> set[str]:
    return {record.id for record in service.objects.list("nodespec")}


def test_an_empty_repository_gets_the_whole_library(tmp_path):
    library = write_library(tmp_path / "lib", [spec("lib.one"), spec("lib.two")])
    service = start(tmp_path, library)
    try:
        assert spec_ids(service) == {"lib.one", "lib.two"}
    finally:
        service.close()


def test_a_repository_in_use_gets_what_a_newer_library_adds_and_keeps_its_own_changes(tmp_path):
    first = write_library(tmp_path / "v1", [spec("lib.one"), spec("lib.two"), spec("lib.three")])
    service = start(tmp_path, first)
    try:
        service.upsert("nodespec", spec("lib.one", plus=" + 100"))  # the user's own version
        service.delete("nodespec", "lib.two")  # and a deletion
        service.upsert("nodespec", spec("mine.own"))
    finally:
        service.close()
    newer = write_library(tmp_path / "v2", [spec("lib.one"), spec("lib.two"), spec("lib.three"), spec("lib.four")])
    service = start(tmp_path, newer)
    try:
        assert spec_ids(service) == {"lib.one", "lib.three", "lib.four", "mine.own"}
        assert "a + 100" in service.objects.get("nodespec", "lib.one").doc["func"]
    finally:
        service.close()
    service = start(tmp_path, newer)  # and once more: nothing changes
    try:
        assert spec_ids(service) == {"lib.one", "lib.three", "lib.four", "mine.own"}
    finally:
        service.close()


def test_a_repository_from_before_the_record_gets_what_later_versions_add(tmp_path):
    """A repository an older version filled with the library (no record of what it was offered): nothing
    is added on the first start, as before; what a later version adds is."""
    bare = PyflowService(Config(db_path=tmp_path / "db.sqlite", load_stdlib=False), InProcessExecutor()).start()
    try:
        bare.upsert("nodespec", spec("lib.one", plus=" * 2"))
    finally:
        bare.close()
    for version, ids, expected in (("v1", ["lib.one", "lib.two"], {"lib.one"}),
                                   ("v2", ["lib.one", "lib.two", "lib.three"], {"lib.one", "lib.three"})):
        service = start(tmp_path, write_library(tmp_path / version, [spec(i) for i in ids]))
        try:
            assert spec_ids(service) == expected
            assert "a * 2" in service.objects.get("nodespec", "lib.one").doc["func"]
        finally:
            service.close()


def test_a_repository_filled_without_the_library_stays_without_it(tmp_path):
    """Filled with --no-stdlib (or by imports only), before or after the record existed: starting with
    the library later adds nothing, now or when a newer library adds objects."""
    bare = PyflowService(Config(db_path=tmp_path / "db.sqlite", load_stdlib=False), InProcessExecutor()).start()
    try:
        bare.upsert("nodespec", spec("mine.own"))
    finally:
        bare.close()
    for version, ids in (("v1", ["lib.one"]), ("v2", ["lib.one", "lib.two"])):
        service = start(tmp_path, write_library(tmp_path / version, [spec(i) for i in ids]))
        try:
            assert spec_ids(service) == {"mine.own"}
        finally:
            service.close()


def test_a_library_addition_that_no_longer_fits_is_left_out_and_the_server_starts(tmp_path, caplog):
    """A new sample flow using a nodespec the user changed so that the flow no longer fits: the server
    starts all the same, says why in its log and adds the rest; the flow is offered again on the next
    start, and comes in once it fits."""
    first = write_library(tmp_path / "v1", [spec("lib.one")])
    service = start(tmp_path, first)
    try:
        service.upsert("nodespec", spec("lib.one", port="b"))  # its input renamed
    finally:
        service.close()
    flow = {"id": "lib.sample", "name": "sample", "links": [{"source": "a:out", "target": "b:a"}],
            "nodes": [{"id": "a", "spec_id": "lib.one", "ports": [{"name": "a", "value": 1}]},
                      {"id": "b", "spec_id": "lib.int", "ports": []}]}
    newer = write_library(tmp_path / "v2", [spec("lib.one"), spec("lib.int")], [flow])
    with caplog.at_level(logging.WARNING):
        service = start(tmp_path, newer)
    try:
        assert spec_ids(service) == {"lib.one", "lib.int"}
        assert [r.id for r in service.objects.list("flow")] == []
        assert any("standard library" in r.getMessage() and "lib.sample" in r.getMessage() for r in caplog.records)
        assert "def func(b)" in service.objects.get("nodespec", "lib.one").doc["func"]
        service.upsert("nodespec", spec("lib.one"))  # the user goes back to the library's port
    finally:
        service.close()
    service = start(tmp_path, newer)
    try:
        assert [r.id for r in service.objects.list("flow")] == ["lib.sample"]
    finally:
        service.close()
