"""One structured line per request, never a secret in it, and errors logged with their traceback."""

from __future__ import annotations

import json
import logging

import pytest

from pyflow.server.requestlog import JsonFormatter, TextFormatter

from .conftest import FLOW, TOKEN

HOST = {"Host": "192.0.2.10:5000"}


def request_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "pyflow.requests"]


def formatted(record: logging.LogRecord) -> list[str]:
    return [TextFormatter().format(record), JsonFormatter().format(record)]


@pytest.fixture()
def guarded(make_app):
    return make_app(bind_host="192.0.2.10", token=TOKEN)


def test_a_request_line_has_the_route_pattern_and_no_secret(guarded, caplog):
    service, app = guarded
    client = app.test_client()
    caplog.set_level(logging.INFO, logger="pyflow.requests")
    login = client.get(f"/?token={TOKEN}", headers=HOST)
    cookie = login.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
    client.get(f"/api/flows/{FLOW}?token={TOKEN}", headers=HOST)
    client.get(f"/api/flows/{FLOW}", headers={**HOST, "Authorization": f"Bearer {TOKEN}"})
    client.get("/api/flows", headers={**HOST, "Authorization": "Bearer wrong-token-guess"})
    records = request_records(caplog)
    assert len(records) == 4
    fields = records[2].request
    assert fields["method"] == "GET" and fields["route"] == "/api/flows/<object_id>" and fields["status"] == 200
    assert fields["client"] == "127.0.0.1" and isinstance(fields["duration_ms"], float)
    assert records[0].request["status"] == 303 and records[3].request["status"] == 401
    for record in records:
        for line in formatted(record):
            assert TOKEN not in line and cookie not in line and "wrong-token-guess" not in line, line
            assert "token=" not in line
    text, as_json = formatted(records[2])
    assert "GET /api/flows/<object_id> 200" in text
    parsed = json.loads(as_json)
    assert parsed["route"] == "/api/flows/<object_id>" and parsed["status"] == 200 and parsed["level"] == "INFO"


def test_a_run_request_names_its_run_and_a_refused_one_is_logged_too(make_app, caplog):
    service, app = make_app()
    client = app.test_client()
    caplog.set_level(logging.INFO, logger="pyflow.requests")
    started = client.post(f"/api/flows/{FLOW}/runs", json={}).get_json()
    client.get(f"/api/runs/{started['id']}")
    ran = client.post(f"/api/flows/{FLOW}/run", json={}).get_json()
    client.delete(f"/api/flows/{FLOW}", headers={"Host": "attacker.example"})
    first, read, sync, refused = (r.request for r in request_records(caplog))
    assert first["route"] == "/api/flows/<flow_id>/runs" and first["run_id"] == started["id"]
    assert read["route"] == "/api/runs/<run_id>" and read["run_id"] == started["id"]
    assert sync["run_id"] == ran["run_id"]
    assert refused["status"] == 421 and refused["method"] == "DELETE"
    assert refused["route"] == "/api/flows/<object_id>"


def test_an_unexpected_error_is_logged_with_its_traceback(make_app, caplog, monkeypatch):
    service, app = make_app()

    def broken():
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(service, "health", broken)
    answer = app.test_client().get("/api/health")
    assert answer.status_code == 500 and answer.get_json()["error"] == "internal error: RuntimeError"
    errors = [r for r in caplog.records if r.exc_info and r.levelno >= logging.ERROR]
    assert errors and "disk on fire" in JsonFormatter().format(errors[0])
    assert "Traceback" in json.loads(JsonFormatter().format(errors[0]))["traceback"]


def test_an_engine_bug_that_fails_a_run_is_logged_with_its_traceback(make_app, caplog, monkeypatch):
    import pyflow.service.runs as runs_module

    class BrokenRunner:
        def __init__(self, *args, **kwargs):
            pass

        def run(self):
            raise ValueError("engine bug")

    service, _ = make_app()
    monkeypatch.setattr(runs_module, "FlowRunner", BrokenRunner)
    run = service.run_now(flow_id=FLOW)
    assert run["status"] == "failed" and "engine bug" in run["reason"]
    errors = [r for r in caplog.records if r.exc_info and "engine bug" in str(r.exc_info[1])]
    assert errors and errors[0].levelno >= logging.ERROR


def test_an_executor_bug_that_fails_a_node_is_logged_with_its_traceback(make_app, caplog, monkeypatch):
    service, _ = make_app(concurrency=2)

    def broken(task, cancel=None):
        raise OSError("executor lost its worker")

    monkeypatch.setattr(service.executor, "run", broken)
    monkeypatch.setattr(service.executor, "inline", False)  # nodes run on the runner's pool, as in the sandbox
    run = service.run_now(flow_id=FLOW, use_cache=False)
    assert run["status"] == "failed"
    assert any("executor lost its worker" in (n.get("error") or {}).get("message", "") for n in run["nodes"])
    errors = [r for r in caplog.records if r.exc_info and "executor lost its worker" in str(r.exc_info[1])]
    assert errors and errors[0].levelno >= logging.ERROR


def test_an_exception_ending_a_server_thread_is_logged_with_its_traceback(caplog, monkeypatch):
    import threading

    from pyflow.server.requestlog import log_thread_errors

    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    log_thread_errors()

    def die():
        raise RuntimeError("persister crashed")

    thread = threading.Thread(target=die, name="pyflow-persist")
    thread.start()
    thread.join()
    (record,) = [r for r in caplog.records if r.exc_info and "persister crashed" in str(r.exc_info[1])]
    assert "pyflow-persist" in record.getMessage() and record.levelno >= logging.ERROR
