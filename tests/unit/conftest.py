"""Shared fixtures: a real server on a free port, the original repository file, executors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.server import LiveServer

ROOT = Path(__file__).resolve().parents[2]
COMPAT = ROOT / "tests" / "fixtures" / "original" / "pyflow-repo.json"


@pytest.fixture(scope="session")
def compat_bundle() -> dict:
    """The original server's repository file (tests/fixtures/original, with its licence and origin)."""
    return json.loads(COMPAT.read_text())


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with LiveServer(tmp_path_factory.mktemp("server")) as live:
        yield live


@pytest.fixture()
def fresh_server(tmp_path):
    with LiveServer(tmp_path / "server") as live:
        yield live


@pytest.fixture()
def closing():
    """Call with each service a test starts: all are closed when the test ends, whatever happened."""
    services = []
    yield services.append
    for service in services:
        service.close()
