"""JSON has no Infinity or NaN: bodies whose numbers overflow to them, or that use the non-standard
literals, are refused (400) instead of being stored and answered as invalid JSON. Found by the API
fuzzer (a nodespec with "timeout_s": 1e309 was stored and read back as `Infinity`)."""

import json

import pytest

from pyflow.executors.inprocess import InProcessExecutor
from pyflow.server import create_app
from pyflow.service import Config, PyflowService


@pytest.fixture()
def client(tmp_path):
    service = PyflowService(Config(db_path=tmp_path / "db.sqlite", load_stdlib=False), InProcessExecutor())
    yield create_app(service).test_client()
    service.close()


SPEC = '{"id": "t.x", "title": "X", "port": {}, "func": "def func():\\n    return 1\\n", "limits": {"timeout_s": %s}}'


@pytest.mark.parametrize("number", ["1e309", "-1e999", "Infinity", "-Infinity", "NaN"])
def test_numbers_beyond_json_are_refused(client, number):
    answer = client.post("/api/nodespecs", data=SPEC % number, content_type="application/json")
    assert answer.status_code == 400, answer.get_data(as_text=True)
    assert "not a finite number" in answer.get_json()["details"][0]["message"]
    assert client.get("/api/nodespecs").get_json() == []


def test_large_finite_numbers_are_kept(client):
    answer = client.post("/api/nodespecs", data=SPEC % "1e308", content_type="application/json")
    assert answer.status_code == 201
    assert json.loads(answer.get_data(as_text=True))["limits"]["timeout_s"] == 1e308
