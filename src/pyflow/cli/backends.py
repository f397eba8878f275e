"""Where the command line's work happens: the local database, or a running server (--server URL).

Both backends answer the same calls with the same shapes, so commands do not care which one they use.
The local one imports the service when it is first used: a command that talks to a server never loads it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    from ..service import Config, PyflowService

from ..model.errors import ServiceUnavailable
from .client import Client

READ_ONLY = "this command does not run nodes"


class LocalBackend:
    """Opens the database directly and runs nodes on this machine with the configured executor."""

    def __init__(self, config: Config):
        self.config = config
        self._service: PyflowService | None = None
        self._with_executor = False

    def service(self, executor: bool = False) -> PyflowService:
        from ..executors.disabled import DisabledExecutor
        from ..service import PyflowService, build_executor
        from ..storage.check import open_problem
        if self._service is None:
            problem = open_problem(self.config.db_path)
            if problem:
                raise ServiceUnavailable(problem)
        if self._service is None or (executor and not self._with_executor):
            if self._service is not None:
                self._service.close()
            exec_ = build_executor(self.config) if executor else DisabledExecutor(READ_ONLY)
            self._service = PyflowService(self.config, exec_)
            self._with_executor = executor
            if executor:
                self._service.start()
            elif self.config.load_stdlib:
                self._service.load_standard_library()
        return self._service

    def close(self) -> None:
        if self._service is not None:
            self._service.close()

    def import_bundle(self, bundle, mode):
        return self.service().import_bundle(bundle, mode)

    def preview_import(self, bundle):
        return self.service().preview_import(bundle)

    def export_bundle(self):
        return self.service().export_bundle()

    def specs(self):
        """The nodespecs a flow is checked against, without creating or filling a database: a missing
        database means the standard library is what a new one would hold."""
        from ..model.bundle import load_bundle_file
        from ..model.nodespec import parse_nodespec
        if self._service is None and not Path(self.config.db_path).exists():
            stdlib = self.config.stdlib_dir
            bundle = load_bundle_file(Path(stdlib)) if stdlib and Path(stdlib).is_dir() else {"nodespec": {}}
            return {key: parse_nodespec(doc) for key, doc in bundle["nodespec"].items()}
        return self.service().specs()

    def start_run(self, flow_id=None, flow=None, values=None, cache=True):
        return self.service(executor=True).start_run(flow_id, flow, values, cache)

    def follow(self, run_id: str) -> Iterator[dict]:
        for batch in self.service(executor=True).stream(run_id):
            for event in batch:  # a replayed event carries its stored text only
                yield event if "data" in event else {**event, "data": json.loads(event["text"])}  # with "at"

    def get_run(self, run_id):
        return self.service().get_run(run_id)

    def list_runs(self, flow=None, status=None, limit=20):
        return self.service().list_runs(flow, status, limit, 0)

    def list_environments(self):
        return self.service().list_environments()

    def prune_environments(self, body):
        return self.service().prune_environments(body)


class RemoteBackend:
    def __init__(self, url: str, token: str | None = None):
        self.client = Client(url, token=token)

    def close(self) -> None:
        pass

    def import_bundle(self, bundle, mode):
        return self.client.request("POST", "/api/repository/import", bundle, {"mode": mode})

    def preview_import(self, bundle):
        return self.client.request("POST", "/api/repository/import/preview", bundle)

    def export_bundle(self):
        return self.client.request("GET", "/api/repository/export")

    def specs(self):
        from ..model.nodespec import parse_nodespec
        return {doc["id"]: parse_nodespec(doc) for doc in self.client.request("GET", "/api/nodespecs")}

    def start_run(self, flow_id=None, flow=None, values=None, cache=True):
        body = {"values": values or {}, "cache": cache}
        if flow is not None:
            return self.client.request("POST", "/api/runs", {**body, "flow": flow})
        return self.client.request("POST", f"/api/flows/{flow_id}/runs", body)

    def follow(self, run_id: str) -> Iterator[dict]:
        return self.client.events(run_id)

    def get_run(self, run_id):
        return self.client.request("GET", f"/api/runs/{run_id}")

    def list_runs(self, flow=None, status=None, limit=20):
        params = {k: v for k, v in {"flow": flow, "status": status, "limit": limit}.items() if v}
        page = self.client.request("GET", "/api/runs", params=params)
        return page["runs"], page["total"]

    def list_environments(self):
        return self.client.request("GET", "/api/environments")

    def prune_environments(self, body):
        return self.client.request("POST", "/api/environments/prune", body)
