"""What a web page on another site, or a DNS-rebinding name, can make a browser send to a PyFlow on
127.0.0.1, and that none of it changes anything. Writes need a JSON body (or no body and a header no
page can send cross-site without a preflight); cross-site Origin and Sec-Fetch-Site are refused; the
Host must be one of the server's own names."""

from __future__ import annotations

import io
import json

import pytest

from .conftest import FLOW, state, write_routes

EVIL = "https://evil.example"


@pytest.fixture()
def local(make_app):
    service, app = make_app()
    run = service.run_now(flow_id=FLOW)
    return service, app, run["id"]


def flow_doc(service) -> dict:
    doc = service.get("flow", FLOW).doc
    return {**doc, "nodes": doc["nodes"][:1], "links": []}


def form_bodies(payload: str):
    """What an HTML form (or a no-cors fetch) can post without a preflight."""
    yield "urlencoded", {"data": {"data": payload}, "content_type": "application/x-www-form-urlencoded"}
    yield "multipart", {"data": {"data": (io.BytesIO(payload.encode()), "flow.json")},
                        "content_type": "multipart/form-data"}
    yield "text/plain", {"data": payload, "content_type": "text/plain"}


def test_form_posts_to_every_state_changing_route_get_415_and_change_nothing(local):
    service, app, run_id = local
    client = app.test_client()
    payload = json.dumps(flow_doc(service))
    before = state(service)
    routes = list(write_routes(app, run_id))
    assert ("POST", "/flows") in routes and ("POST", "/runflow") in routes and ("DELETE", f"/api/runs/{run_id}") in routes
    for method, path in routes:
        for kind, body in form_bodies(payload):
            answer = client.open(path, method=method, **body)
            assert answer.status_code == 415, (method, path, kind, answer.get_data(as_text=True))
            assert "application/json" in answer.get_json()["error"]
            assert answer.get_json()["details"] == []
    assert state(service) == before


@pytest.mark.parametrize("content_type", [None, "application/x-www-form-urlencoded", "text/plain",
                                          "multipart/form-data; boundary=x"])
def test_empty_writes_without_the_header_get_415_and_change_nothing(local, content_type):
    service, app, run_id = local
    client = app.test_client()
    before = state(service)
    headers = {"Content-Type": content_type} if content_type else {}
    for method, path in write_routes(app, run_id):
        answer = client.open(path, method=method, headers=headers)
        assert answer.status_code == 415, (method, path, answer.get_data(as_text=True))
    assert state(service) == before


def test_empty_writes_with_x_requested_with_or_a_json_content_type_go_through(local):
    service, app, run_id = local
    client = app.test_client()
    started = client.post(f"/api/flows/{FLOW}/runs", headers={"X-Requested-With": "pyflow"})
    assert started.status_code == 202, started.get_data(as_text=True)
    assert client.post(f"/api/flows/{FLOW}/run", content_type="application/json").status_code == 200
    assert client.delete(f"/api/runs/{run_id}", headers={"X-Requested-With": "curl"}).status_code == 200
    assert client.delete(f"/api/flows/{FLOW}", headers={"X-Requested-With": "x"}).status_code == 200
    assert client.get(f"/api/flows/{FLOW}").status_code == 404


@pytest.mark.parametrize("headers", [
    {"Origin": EVIL},
    {"Origin": "null"},  # sandboxed frames, file: and data: pages
    {"Origin": "http://localhost:8080"},  # another port is another origin
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},  # localhost:8080 is the same site as localhost:5000
    {"Origin": EVIL, "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors"},
])
def test_cross_site_browser_requests_get_403_and_change_nothing(local, headers):
    service, app, run_id = local
    client = app.test_client()
    before = state(service)
    for method, path in write_routes(app, run_id):
        answer = client.open(path, method=method, json={}, headers=headers)
        assert answer.status_code == 403, (method, path, answer.get_data(as_text=True))
        assert "cross-site" in answer.get_json()["error"]
    assert client.get("/api/flows", headers=headers).status_code == 403  # no reading through a cors fetch
    assert state(service) == before


def test_same_origin_requests_pass(local):
    service, app, _ = local
    client = app.test_client()
    for headers in ({"Origin": "http://localhost"}, {"Sec-Fetch-Site": "same-origin", "Origin": "http://localhost"},
                    {"Sec-Fetch-Site": "none"}):
        assert client.post(f"/api/flows/{FLOW}/runs", json={}, headers=headers).status_code == 202
    proxied = client.post(f"/api/flows/{FLOW}/runs", json={}, base_url="http://127.0.0.1:5000",
                          headers={"Origin": "http://127.0.0.1:5000"})
    assert proxied.status_code == 202


def test_a_link_from_another_site_opens_the_editor_but_subresources_are_refused(local):
    _, app, run_id = local
    client = app.test_client()
    link = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}
    assert client.get("/", headers=link).status_code == 200
    embedded = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"}
    assert client.get(f"/api/runs/{run_id}/events", headers=embedded).status_code == 403
    framed = {**link, "Sec-Fetch-Dest": "iframe"}
    assert client.get("/", headers=framed).status_code == 403
    assert client.get("/").headers["X-Frame-Options"] == "DENY"


def test_cors_is_off_unless_an_origin_is_allowed(make_app):
    service, app = make_app(cors_origins=["https://app.example"])
    client = app.test_client()
    allowed = {"Origin": "https://app.example", "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors"}
    preflight = client.options(f"/api/flows/{FLOW}/runs", headers={
        **allowed, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, authorization"})
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "authorization" in preflight.headers["Access-Control-Allow-Headers"].lower()
    answer = client.post(f"/api/flows/{FLOW}/runs", json={}, headers=allowed)
    assert answer.status_code == 202 and answer.headers["Access-Control-Allow-Origin"] == "https://app.example"
    refused = client.options(f"/api/flows/{FLOW}/runs", headers={
        "Origin": EVIL, "Access-Control-Request-Method": "POST"})
    assert refused.status_code == 403 and "Access-Control-Allow-Origin" not in refused.headers
    _, plain = make_app()
    assert "Access-Control-Allow-Origin" not in plain.test_client().get(
        "/api/flows", headers={"Origin": "http://localhost"}).headers


@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:5000", "localhost.attacker.example",
                                  "evil@localhost", "127.0.0.1.nip.io", "", "[::1"])
def test_a_foreign_host_gets_421_and_changes_nothing(local, host):
    service, app, run_id = local
    client = app.test_client()
    before = state(service)
    answer = client.get("/api/flows", headers={"Host": host})
    assert answer.status_code == 421 and "--allowed-host" in answer.get_json()["error"]
    deleted = client.delete(f"/api/flows/{FLOW}", headers={"Host": host, "X-Requested-With": "x"})
    assert deleted.status_code == 421
    assert client.post(f"/api/flows/{FLOW}/runs", json={}, headers={"Host": host}).status_code == 421
    assert state(service) == before


@pytest.mark.parametrize("host", ["localhost", "localhost:5000", "LOCALHOST:1", "127.0.0.1", "127.0.0.1:8080",
                                  "[::1]", "[::1]:5000"])
def test_loopback_names_are_served_on_a_loopback_bind(local, host):
    _, app, _ = local
    assert app.test_client().get("/api/flows", headers={"Host": host}).status_code == 200


def test_a_network_bind_serves_its_address_and_the_allowed_hosts(make_app):
    _, app = make_app(bind_host="192.0.2.10", allowed_hosts=["pyflow.team.example"], token="t" * 40)
    client = app.test_client()
    auth = {"Authorization": "Bearer " + "t" * 40}
    for host in ("192.0.2.10:5000", "pyflow.team.example", "PYFLOW.team.example:443"):
        assert client.get("/api/flows", headers={**auth, "Host": host}).status_code == 200, host
    for host in ("localhost", "attacker.example", "192.0.2.11"):
        assert client.get("/api/flows", headers={**auth, "Host": host}).status_code == 421, host


def test_a_wildcard_bind_serves_address_literals_and_loopback_but_not_other_names(make_app):
    _, app = make_app(bind_host="0.0.0.0", allowed_hosts=["pyflow.team.example"], token="t" * 40)
    client = app.test_client()
    auth = {"Authorization": "Bearer " + "t" * 40}
    for host in ("10.1.2.3:5000", "[2001:db8::1]:5000", "localhost:5000", "pyflow.team.example"):
        assert client.get("/api/flows", headers={**auth, "Host": host}).status_code == 200, host
    assert client.get("/api/flows", headers={**auth, "Host": "attacker.example"}).status_code == 421
