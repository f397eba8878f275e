"""Schemathesis against a live server (the real sandbox, a temporary SQLite file): requests generated
from /api/openapi.json, valid and invalid, one operation at a time and along the document's links
(create a flow, then read, replace, run and delete it). Checks: no 5xx, and every response's status,
content type and body are the ones the document gives, errors included.

The run is bounded by tests/api/schemathesis.toml: a fixed seed, deterministic generation, a few
examples per operation and fewer where node code runs."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.server import ROOT, LiveServer

CONFIG = Path(__file__).with_name("schemathesis.toml")
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # A short run queue, so that runs the fuzzer starts reach 429 (documented) rather than wait.
    with LiveServer(tmp_path_factory.mktemp("api"), args=("--max-queue", "8", "--max-body-mb", "1")) as live:
        yield live


def schemathesis(location: str, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run", location,
               "--no-color", *args]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
                          check=False)


@pytest.mark.timeout(900)
def test_every_operation_keeps_to_the_document(server):
    result = schemathesis(server.url + "/api/openapi.json")
    report = result.stdout[-30000:] + result.stderr[-5000:]
    assert result.returncode == 0, report + "\nserver log:\n" + server.log()[-5000:]
    # Every operation but GET /api/openapi.json, which schemathesis leaves out as the document it loaded.
    operations = sum(len(item) for item in server.get_json("/api/openapi.json")["paths"].values()) - 1
    assert re.search(rf"Selected: {operations}/{operations}\s+Tested: {operations}\b", report), report
    assert re.search(r"Stateful.*\n\s*\n\s*Scenarios:\s+[1-9]", report), report


@pytest.mark.timeout(300)
def test_the_run_fails_when_the_server_answers_differently_from_the_document(server, tmp_path):
    """The checks can fail: with a document whose error body requires a field the server never sends,
    the 404s of GET /api/runs/{run_id} no longer conform."""
    document = copy.deepcopy(server.get_json("/api/openapi.json"))
    document["components"]["schemas"]["Error"]["required"].append("trace_id")
    path = tmp_path / "openapi.json"
    path.write_text(json.dumps(document))
    result = schemathesis(str(path), "--url", server.url, "--include-operation-id", "getRun",
                          "--phases", "fuzzing", "--checks", CHECKS, timeout=280)
    assert result.returncode != 0, result.stdout[-5000:]
    assert "trace_id" in result.stdout, result.stdout[-5000:]
