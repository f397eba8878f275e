"""What the command line loads before it works: `pyflow --help` and a command that talks to a server
load neither the service nor the model's checks (jsonschema), which cost a local command most of its
start; the local commands still get them when they need them."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support.server import LiveServer

HEAVY = ("pyflow.service", "pyflow.engine", "pyflow.executors", "pyflow.storage", "pyflow.model.flow", "jsonschema",
         "asyncio")
LOADED = ("import json, sys\nfrom pyflow.cli import main\n"
          "try:\n    code = main(sys.argv[1:])\nexcept SystemExit as exc:\n    code = exc.code\n"
          "print(json.dumps({'code': code, 'loaded': sorted(m for m in %r if m in sys.modules)}))\n" % (HEAVY,))


def loaded_by(*args) -> dict:
    out = subprocess.run([sys.executable, "-c", LOADED, *args], capture_output=True, text=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_help_loads_nothing_heavy():
    assert loaded_by("--help") == {"code": 0, "loaded": []}
    assert loaded_by("runs", "list", "--help") == {"code": 0, "loaded": []}


def test_a_command_that_talks_to_a_server_loads_nothing_heavy(tmp_path):
    with LiveServer(tmp_path, executor="none", args=("--no-stdlib",)) as live:
        args = ["runs", "list", "--server", live.url] + (["--token", live.token] if live.token else [])
        assert loaded_by(*args) == {"code": 0, "loaded": []}


def test_a_local_command_still_gets_what_it_needs(tmp_path):
    found = loaded_by("runs", "list", "--db", str(tmp_path / "db.sqlite"), "--no-stdlib")
    assert found["code"] == 0 and {"pyflow.service", "pyflow.storage"} <= set(found["loaded"])
