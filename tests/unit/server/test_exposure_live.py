"""The protections on a real server (waitress, a subprocess) and the command line against it."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from urllib.parse import urlencode

import pytest
import requests

from tests.support.server import ROOT, LiveServer

FLOW = "pyflow.samples.arithmetic"


def pyflow(*args, env=None):
    full = {key: value for key, value in os.environ.items() if key != "PYFLOW_TOKEN"}
    full.update({"PYTHONUNBUFFERED": "1", **(env or {})})
    return subprocess.run([sys.executable, "-m", "pyflow", *args], capture_output=True, text=True, env=full,
                          cwd=ROOT, timeout=120)


@pytest.fixture(scope="module")
def locked(tmp_path_factory):
    """A loopback server that was asked for a token, logging JSON."""
    with LiveServer(tmp_path_factory.mktemp("locked"), args=("--require-token", "--log-format", "json")) as live:
        yield live


def test_the_token_is_printed_with_the_url_kept_0600_and_reused_after_a_restart(tmp_path):
    live = LiveServer(tmp_path, executor="none", args=("--require-token",))
    with live:
        token = live.token
        assert token and f"{live.url}/?token={token}" in live.log()
        path = tmp_path / "pyflow.token"
        assert path.read_text().strip() == token and stat.S_IMODE(path.stat().st_mode) == 0o600
        assert requests.get(live.url + "/api/flows").status_code == 401
    with live:
        assert live.token == token
        assert requests.get(live.url + "/api/flows", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    named = tmp_path / "elsewhere.token"
    with LiveServer(tmp_path / "other", executor="none", args=("--require-token", "--token-file", str(named))) as other:
        assert named.read_text().strip() == other.token != token


def test_the_editor_logs_in_once_and_the_log_never_shows_the_token(locked):
    session = requests.Session()
    login = session.get(f"{locked.url}/?token={locked.token}", allow_redirects=False)
    assert login.status_code == 303 and login.headers["Location"] == "/"
    assert session.get(locked.url + "/").status_code == 200
    assert session.get(locked.url + "/api/flows").status_code == 200
    assert requests.get(locked.url + "/api/flows").status_code == 401
    requests.get(locked.url + "/api/flows", headers={"Authorization": "Bearer guess"})
    lines = [json.loads(line) for line in locked.log().splitlines() if line.startswith("{")]
    routes = [(line.get("route"), line.get("status")) for line in lines if line.get("logger") == "pyflow.requests"]
    assert ("/", 303) in routes and ("/api/flows", 200) in routes and ("/api/flows", 401) in routes
    assert locked.token not in "\n".join(line for line in locked.log().splitlines() if line.startswith("{"))
    assert "guess" not in locked.log()


def test_forms_foreign_hosts_and_cross_site_pages_change_nothing_on_a_real_server(tmp_path):
    with LiveServer(tmp_path, executor="none") as live:
        flows = requests.get(live.url + "/api/flows").json()
        before = {f["id"]: len(f["nodes"]) for f in flows}
        one_node = {**flows[0], "nodes": flows[0]["nodes"][:1], "links": []}
        form = requests.post(live.url + "/flows", data=urlencode({"data": json.dumps(one_node)}),
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert form.status_code == 415
        assert requests.post(live.url + "/runflow", data=json.dumps(one_node),
                             headers={"Content-Type": "text/plain"}).status_code == 415
        assert requests.post(f"{live.url}/api/flows/{FLOW}/runs").status_code == 415
        rebound = requests.delete(f"{live.url}/api/flows/{FLOW}", headers={"Host": "attacker.example",
                                                                          "X-Requested-With": "x"})
        assert rebound.status_code == 421 and "attacker.example" in rebound.json()["error"]
        cross = requests.post(f"{live.url}/api/flows/{FLOW}/runs", json={}, headers={"Origin": "https://evil.example"})
        assert cross.status_code == 403
        assert {f["id"]: len(f["nodes"]) for f in requests.get(live.url + "/api/flows").json()} == before
        assert requests.get(live.url + "/api/runs").json()["total"] == 0


def test_the_command_line_sends_the_token(locked, tmp_path):
    server = ("--server", locked.url)
    refused = pyflow("runs", "list", *server)
    assert refused.returncode == 2 and "token" in refused.stderr
    listed = pyflow("runs", "list", *server, "--token", locked.token)
    assert listed.returncode == 0, listed.stderr
    bundle = tmp_path / "bundle.json"
    assert pyflow("export", str(bundle), *server, env={"PYFLOW_TOKEN": locked.token}).returncode == 0
    assert pyflow("import", str(bundle), *server, "--token", locked.token).returncode == 0
    ran = pyflow("run", FLOW, *server, "--token", locked.token, "--json")
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["status"] == "succeeded"  # it followed the run's events with the token


def test_serve_refuses_a_cors_origin_that_is_not_an_origin():
    bad = pyflow("serve", "--cors-origin", "https://app.example/path", "--executor", "none")
    assert bad.returncode == 2 and "is not an origin" in bad.stderr
