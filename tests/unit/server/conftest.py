"""In-process apps for the exposure tests: the real app factory, a real SQLite file, the standard
library loaded, node code run in-process (only the standard library's harmless samples run here)."""

from __future__ import annotations

import pytest

from pyflow.executors.inprocess import InProcessExecutor
from pyflow.server import create_app
from pyflow.service import Config, PyflowService

FLOW = "pyflow.samples.arithmetic"
SPEC = "pyflow.math.add"
TOKEN = "correct-horse-battery-staple-0123456789"


@pytest.fixture()
def make_app(tmp_path):
    """make_app(bind_host=..., token=..., ...) -> (service, app); settings are Config fields."""
    services = []

    def make(**settings):
        settings.setdefault("token", None)
        settings.setdefault("db_path", tmp_path / f"app{len(services)}" / "pyflow.db")
        config = Config(**settings)
        service = PyflowService(config, InProcessExecutor()).start()
        services.append(service)
        app = create_app(service)
        app.testing = True
        return service, app

    yield make
    for service in services:
        service.close()


def state(service) -> dict:
    """Everything a request could change: the repository, the runs, the repository directory."""
    runs, _ = service.repository.list_runs(None, None, 1000, 0)
    files = sorted(str(p) for p in service.config.repo_dir.rglob("*")) if service.config.repo_dir.exists() else []
    return {"bundle": service.export_bundle(), "runs": [(r["id"], r["status"]) for r in runs], "files": files}


def route_values(run_id: str) -> dict:
    """Values for every route argument, naming things that exist (an environment key need not)."""
    return {"flow_id": FLOW, "node_id": SPEC, "run_id": run_id, "filename": "js/api.js", "name": "flow",
            "key": "0" * 32, "port": "out"}


def write_routes(app, run_id: str):
    """(method, path) for every state-changing route the app has, with ids that exist."""
    adapter = app.url_map.bind("localhost")
    for rule in app.url_map.iter_rules():
        methods = sorted((rule.methods or set()) - {"GET", "HEAD", "OPTIONS"})
        if not methods or rule.endpoint.startswith("security."):
            continue
        collections = ["flows", "nodespecs"] if "collection" in rule.arguments else [None]
        for collection in collections:
            values = {**route_values(run_id), "object_id": SPEC}
            if collection:
                values["collection"] = collection
                values["object_id"] = FLOW if collection == "flows" else SPEC
            path = adapter.build(rule.endpoint, {k: v for k, v in values.items() if k in rule.arguments})
            for method in methods:
                yield method, path


def all_routes(app, run_id: str):
    """(method, path) for every route and method, reads and static files included."""
    adapter = app.url_map.bind("localhost")
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("security."):
            continue
        values = {**route_values(run_id), "collection": "flows", "object_id": FLOW}
        path = adapter.build(rule.endpoint, {k: v for k, v in values.items() if k in rule.arguments})
        for method in sorted(rule.methods or ()):
            yield method, path
