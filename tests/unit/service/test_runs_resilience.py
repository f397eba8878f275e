"""The run machinery cannot die: whatever a node returns and whatever storage does, run threads and the
event persister go on, the affected run fails saying why, a thread that dies anyway is restarted, and
a synchronous run gives up at its deadline instead of waiting forever."""

import logging
import threading

import pytest

from pyflow.model.errors import ServiceUnavailable, StorageUnavailable
from pyflow.storage import SQLiteRepository
from tests.support.waiting import wait_until

from .support import GATE, finished, gated, make_service, run_threads_alive, single

LOGGER = "pyflow.service"  # the run manager's and the watchdog's module loggers


def logged(caplog, text: str) -> list[logging.LogRecord]:
    """Records of the run machinery's loggers that mention `text` and carry a traceback."""
    return [r for r in caplog.records
            if r.name.startswith(LOGGER) and r.exc_info and text in r.getMessage() + repr(r.exc_info[1])]


def test_a_result_with_a_lone_surrogate_is_stored_escaped_and_later_runs_complete(tmp_path, closing):
    service = make_service(tmp_path)
    closing(service)
    ids = [service.start_run(flow=single("t.odd"), use_cache=cache)["id"] for cache in (True, False, True)]
    for run_id in ids:  # more such runs than there are run threads
        run = finished(service, run_id)
        assert run["status"] == "succeeded", run
        assert run["nodes"][0]["outputs"] == {"out": "a\ud800b"}
    assert finished(service, service.start_run(flow=single("t.text", n=3))["id"])["status"] == "succeeded"
    assert run_threads_alive(service)


class FailingOnce(SQLiteRepository):
    """Raises once from `method` when called on a thread whose name starts with `thread`."""

    def __init__(self, path, method: str, thread: str, when=lambda *args, **kwargs: True):
        super().__init__(path)
        self.failed = threading.Event()
        real = getattr(self, method)

        def failing(*args, **kwargs):
            if (not self.failed.is_set() and threading.current_thread().name.startswith(thread)
                    and when(*args, **kwargs)):
                self.failed.set()
                raise RuntimeError(f"injected failure of {method}")
            return real(*args, **kwargs)

        setattr(self, method, failing)


def test_a_failure_in_the_event_persister_fails_the_run_and_the_persister_goes_on(tmp_path, closing, caplog):
    repository = FailingOnce(tmp_path / "db.sqlite", "save_progress", "pyflow-persist")
    service = make_service(tmp_path, repository)
    closing(service)
    gate = tmp_path / "gate"
    run_id = service.start_run(flow=gated(gate))["id"]
    assert wait_until(repository.failed.is_set)  # the persister met it while the node was running
    gate.touch()
    run = finished(service, run_id)
    assert run["status"] == "failed" and "injected failure of save_progress" in run["reason"]
    assert logged(caplog, "injected failure of save_progress")
    later = service.start_run(flow=gated(tmp_path / "gate"))["id"]
    assert finished(service, later)["status"] == "succeeded"
    events = [e["event"] for e in service.repository.events(later)]
    assert events[-1] == "run_finished" and "node_finished" in events  # the persister still writes
    assert run_threads_alive(service)


def test_a_failure_in_a_run_thread_fails_that_run_and_the_thread_goes_on(tmp_path, closing, caplog):
    repository = FailingOnce(tmp_path / "db.sqlite", "update_run", "pyflow-run",
                             when=lambda run_id, **fields: fields.get("status") == "running")
    service = make_service(tmp_path, repository, max_running=1)
    closing(service)
    run = finished(service, service.start_run(flow=single("t.text", n=2))["id"])
    assert run["status"] == "failed" and "injected failure of update_run" in run["reason"]
    assert logged(caplog, "injected failure of update_run")
    for _ in range(2):  # the one run thread serves the next runs
        assert finished(service, service.start_run(flow=single("t.text", n=2))["id"])["status"] == "succeeded"


class Killed(BaseException):
    """Escapes every `except Exception`: what only the watchdog can catch."""


def test_a_run_thread_that_dies_is_restarted_by_the_watchdog(tmp_path, closing, caplog, monkeypatch):
    service = make_service(tmp_path, max_running=1, watchdog_s=0.05)
    closing(service)
    before = set(service.runs.threads())
    real = service.runs._execute
    died = []

    def dying(live):
        if not died:
            died.append(threading.current_thread().name)
            raise Killed("injected thread death")
        real(live)

    monkeypatch.setattr(service.runs, "_execute", dying)
    lost = finished(service, service.start_run(flow=single("t.text", n=1))["id"])
    assert lost["status"] == "failed" and died[0] in lost["reason"] and "Killed" in lost["reason"]
    assert wait_until(lambda: logged(caplog, "injected thread death"))
    assert wait_until(lambda: run_threads_alive(service) and set(service.runs.threads()) != before)
    assert finished(service, service.start_run(flow=single("t.text", n=1))["id"])["status"] == "succeeded"


def test_a_synchronous_run_past_its_deadline_answers_an_error_naming_the_run(tmp_path, closing):
    service = make_service(tmp_path, sync_timeout_s=0.2)
    closing(service)
    gate = tmp_path / "gate"
    with pytest.raises(ServiceUnavailable) as raised:
        service.run_now(flow=gated(gate))
    error = raised.value
    run_id = error.extra["run"]
    assert error.status == 503 and error.retry_after >= 1 and run_id in error.message
    assert service.repository.get_run(run_id)["status"] in ("queued", "running")  # it goes on
    gate.touch()
    assert finished(service, run_id)["status"] == "succeeded"


def test_a_node_test_past_its_deadline_answers_an_error(tmp_path, closing):
    service = make_service(tmp_path, sync_timeout_s=0.2)
    closing(service)
    gate = tmp_path / "gate"
    with pytest.raises(ServiceUnavailable) as raised:
        service.test_nodespec(GATE, {"path": str(gate)})
    assert raised.value.status == 503 and "t.gate" in raised.value.message
    gate.touch()
    assert service.test_nodespec(GATE, {"path": str(gate)})["status"] == "success"


def test_a_result_storage_cannot_encode_fails_its_node_saying_why(tmp_path, closing):
    service = make_service(tmp_path, max_running=1)
    closing(service)
    service.upsert("nodespec", {"id": "t.set", "title": "Set", "func": "def func():\n    return {1, 2}\n", "port": {}})
    run = finished(service, service.start_run(flow=single("t.set"))["id"])
    assert run["status"] == "failed" and "not JSON serializable" in run["reason"]
    (node,) = run["nodes"]
    assert node["status"] == "fail" and "could not be stored" in node["error"]["message"] and node["outputs"] == {}
    assert finished(service, service.start_run(flow=single("t.text", n=2))["id"])["status"] == "succeeded"


def test_a_run_that_cannot_be_queued_answers_503_and_keeps_no_queue_place(tmp_path, closing):
    repository = SQLiteRepository(tmp_path / "db.sqlite")
    service = make_service(tmp_path, repository, max_queue=1)
    closing(service)
    repository.create_run = _storage_failure_once(repository.create_run)
    with pytest.raises(StorageUnavailable, match="disk full"):
        service.start_run(flow=single("t.text", n=1))
    assert service.runs.queue_length() == 0
    assert finished(service, service.start_run(flow=single("t.text", n=1))["id"])["status"] == "succeeded"


def _storage_failure_once(real):
    calls = []

    def create_run(run):
        if not calls:
            calls.append(run)
            raise StorageUnavailable("disk full: the database could not be written (database or disk is full)")
        return real(run)

    return create_run


class FullWhileSet(SQLiteRepository):
    """Run progress cannot be written while `full` is set, as on a full disk."""

    def __init__(self, path):
        super().__init__(path)
        self.full = threading.Event()

    def _refuse(self):
        if self.full.is_set():
            raise StorageUnavailable("disk full: the database could not be written (database or disk is full)")

    def save_progress(self, run_id, events, results):
        self._refuse()
        super().save_progress(run_id, events, results)

    def update_run(self, run_id, **fields):
        self._refuse()
        super().update_run(run_id, **fields)


def test_an_outcome_storage_refuses_is_written_once_it_takes_writes_again(tmp_path, closing):
    repository = FullWhileSet(tmp_path / "db.sqlite")
    service = make_service(tmp_path, repository)
    closing(service)
    repository.full.set()
    run_id = service.start_run(flow=single("t.text", n=2))["id"]
    with pytest.raises(StorageUnavailable) as raised:
        service.runs.wait(run_id, timeout=30)
    assert run_id in raised.value.message and "disk full" in raised.value.message
    assert raised.value.extra["run"] == run_id and repository.get_run(run_id)["status"] == "queued"
    repository.full.clear()
    run = finished(service, run_id)
    assert run["status"] == "failed" and "disk full" in run["reason"]
    assert repository.events(run_id)[-1]["event"] == "run_finished"
    assert wait_until(lambda: not service.runs.is_live(run_id))
    assert finished(service, service.start_run(flow=single("t.text", n=2))["id"])["status"] == "succeeded"
