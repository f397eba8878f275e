"""Services on the in-process executor for the tests of the run machinery: nodes that block until the
test lets them go, nodes that return awkward values, and a wait for a stored run to finish."""

from __future__ import annotations

from pathlib import Path

from pyflow.executors.inprocess import InProcessExecutor
from pyflow.service import Config, PyflowService
from tests.support.waiting import wait_until

FINAL = ("succeeded", "failed", "cancelled", "interrupted")

# Waits until the file named by its input exists: a node that runs exactly as long as a test wants.
GATE = {"id": "t.gate", "title": "Gate", "cache": False,
        "func": "import os, time\ndef func(path):\n    while not os.path.exists(path):\n        time.sleep(0.01)\n"
                "    return path\n",
        "port": {"input": [{"name": "path", "type": "String"}]}}
ODD = {"id": "t.odd", "title": "Odd", "func": "def func():\n    return 'a\\ud800b'\n", "port": {}}
TEXT = {"id": "t.text", "title": "Text", "func": "def func(n):\n    return 'x' * n\n",
        "port": {"input": [{"name": "n", "type": "Int"}], "output": [{"name": "out", "type": "String"}]}}
SPECS = (GATE, ODD, TEXT)


def make_service(tmp_path: Path, repository=None, executor=None, **options) -> PyflowService:
    config = Config(db_path=tmp_path / "db.sqlite", load_stdlib=False, **options)
    service = PyflowService(config, executor or InProcessExecutor(), repository).start()
    for spec in SPECS:
        service.upsert("nodespec", spec)
    return service


def single(spec_id: str, **ports) -> dict:
    """An inline flow of one node of `spec_id` with literal port values."""
    return {"id": f"one-{spec_id}", "links": [],
            "nodes": [{"id": "n", "spec_id": spec_id, "ports": [{"name": k, "value": v} for k, v in ports.items()]}]}


def gated(gate: Path) -> dict:
    return single("t.gate", path=str(gate))


def first(produce, accept, timeout: float = 10.0):
    """The first value of `produce()` that `accept` takes, polled until `timeout`; else None."""
    def attempt():
        value = produce()
        return value if accept(value) else None
    return wait_until(attempt, timeout=timeout)


def finished(service: PyflowService, run_id: str, timeout: float = 60.0) -> dict:
    """The stored run once it is final; fails (rather than hangs) when it never gets there."""
    run = first(lambda: service.repository.get_run(run_id), lambda r: r["status"] in FINAL, timeout)
    assert run, f"run {run_id} never finished: {service.repository.get_run(run_id)['status']}"
    return run


def run_threads_alive(service: PyflowService) -> bool:
    return all(t.is_alive() for t in service.runs.threads())
