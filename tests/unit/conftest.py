"""Shared fixtures: a real server on a free port, the original repository file, executors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.server import LiveServer

ROOT = Path(__file__).resolve().parents[2]
COMPAT = ROOT.parent / "shared" / "compat" / "pyflow-repo.json"


@pytest.fixture(scope="session")
def compat_bundle() -> dict:
    """The original server's repository file, from ../shared/compat beside the checkout."""
    assert COMPAT.exists(), f"{COMPAT} is missing: the compatibility tests need ../shared beside the checkout"
    return json.loads(COMPAT.read_text())


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with LiveServer(tmp_path_factory.mktemp("server")) as live:
        yield live


@pytest.fixture()
def fresh_server(tmp_path):
    with LiveServer(tmp_path / "server") as live:
        yield live
