"""Health tells the truth: run threads, the executor's pool, a database write and free disk are each
checked, a failing one is named, and the check answers while runs are busy and the locks are held."""

import sqlite3
import threading


from pyflow.executors.inprocess import InProcessExecutor
from pyflow.model.errors import StorageUnavailable
from pyflow.storage import SQLiteRepository
from tests.support.waiting import wait_until

from .support import first, gated, make_service

PARTS = {"runs", "executor", "database", "disk"}


def failing(report: dict) -> set[str]:
    return {name for name, check in report["checks"].items() if not check["ok"]}


def test_a_healthy_service_reports_every_part_ok(tmp_path, closing):
    service = make_service(tmp_path)
    closing(service)
    report = service.health()
    assert report["status"] == "ok" and set(report["checks"]) == PARTS and not failing(report)


class Killed(BaseException):
    pass


def test_a_dead_run_thread_is_reported_until_the_watchdog_restarts_it(tmp_path, closing, monkeypatch):
    service = make_service(tmp_path, max_running=1, watchdog_s=3600)  # the watchdog waits: we call it
    closing(service)

    def dying(live):
        raise Killed("injected thread death")

    monkeypatch.setattr(service.runs, "_execute", dying)
    service.start_run(flow=gated(tmp_path / "gate"))
    report = first(service.health, lambda r: r["status"] != "ok")
    assert report and failing(report) == {"runs"} and "pyflow-run-0" in report["checks"]["runs"]["detail"]
    assert "runs" in report["error"] and report["details"][0]["path"] == "/checks/runs"
    monkeypatch.undo()
    service.runs.watchdog_pass()
    assert service.health()["status"] == "ok"


class NotReady(InProcessExecutor):
    def readiness(self) -> dict:
        return {"ready": False, "detail": "no idle worker, and starting one failed: no bwrap"}


def test_an_executor_that_cannot_serve_is_reported(tmp_path, closing):
    service = make_service(tmp_path, executor=NotReady())
    closing(service)
    report = service.health()
    assert report["status"] == "failing" and failing(report) == {"executor"}
    assert "no bwrap" in report["checks"]["executor"]["detail"]


class Unwritable(SQLiteRepository):
    def probe_write(self):
        raise StorageUnavailable("disk full: the database could not be written (database or disk is full)")


def test_a_database_that_refuses_writes_is_reported(tmp_path, closing):
    service = make_service(tmp_path, Unwritable(tmp_path / "db.sqlite"))
    closing(service)
    report = service.health()
    assert failing(report) == {"database"} and "disk full" in report["checks"]["database"]["detail"]


def test_free_disk_below_the_floor_is_reported(tmp_path, closing):
    service = make_service(tmp_path, min_free_mb=10 ** 12)
    closing(service)
    report = service.health()
    assert failing(report) == {"disk"} and "free" in report["checks"]["disk"]["detail"]


def test_health_answers_while_runs_are_busy_and_the_locks_are_held(tmp_path, closing):
    service = make_service(tmp_path, max_running=2)
    closing(service)
    gate = tmp_path / "gate"
    runs = [service.start_run(flow=gated(gate))["id"] for _ in range(3)]
    assert wait_until(lambda: sum(service.repository.get_run(r)["status"] == "running" for r in runs) == 2)
    holder = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the database's write lock...
    answers = []
    try:
        with service.runs._lock:  # ...and the run manager's lock is held too
            check = threading.Thread(target=lambda: answers.append(service.health()))
            check.start()
            check.join(20)  # shorter than a write's busy timeout: a health check that waits fails here
            assert not check.is_alive()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        gate.touch()
    report = answers[0]
    assert report["status"] == "ok", report
    assert "busy" in report["checks"]["database"]["detail"] and report["queue"] == 1
