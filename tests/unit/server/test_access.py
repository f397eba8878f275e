"""Access tokens: bound beyond loopback, every route wants the token (a Bearer header, or the session
cookie the editor gets for it once); on loopback nothing is asked, as before."""

from __future__ import annotations

import os
import stat

import pytest

from pyflow.server.security import ensure_token, session_cookie_name

from .conftest import FLOW, TOKEN, all_routes

HOST = {"Host": "192.0.2.10:5000"}
BEARER = {**HOST, "Authorization": f"Bearer {TOKEN}"}


@pytest.fixture()
def guarded(make_app):
    service, app = make_app(bind_host="192.0.2.10", token=TOKEN)
    run = service.run_now(flow_id=FLOW)
    return service, app, run["id"]


def test_every_route_answers_401_json_without_the_token(guarded):
    service, app, run_id = guarded
    client = app.test_client()
    routes = list(all_routes(app, run_id))
    assert ("GET", "/") in routes and ("GET", "/static/js/api.js") in routes and ("POST", "/runflow") in routes
    for method, path in routes:
        answer = client.open(path, method=method, json={}, headers=HOST)
        assert answer.status_code == 401, (method, path)
        if method != "HEAD":
            assert "token" in answer.get_json()["error"], (method, path)
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert service.get("flow", FLOW)


def test_the_bearer_token_opens_every_kind_of_route(guarded):
    _, app, run_id = guarded
    client = app.test_client()
    assert client.get("/api/flows", headers=BEARER).status_code == 200
    assert client.get("/flows", headers=BEARER).status_code == 200
    assert client.get("/static/js/api.js", headers=BEARER).status_code == 200
    assert client.post(f"/api/flows/{FLOW}/runs", headers=BEARER).status_code == 202  # Authorization: no preflight-free write
    assert client.delete(f"/api/runs/{run_id}", headers=BEARER).status_code == 200


@pytest.mark.parametrize("authorization", [f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", "Bearer", f"Basic {TOKEN}",
                                           f"bearer  {TOKEN[1:]}", "Bearer \u00e9t\u00e9"])
def test_a_wrong_token_gets_401(guarded, authorization):
    _, app, _ = guarded
    answer = app.test_client().get("/api/flows", headers={**HOST, "Authorization": authorization})
    assert answer.status_code == 401 and answer.get_json()["error"]


def cookie_header(answer) -> str:
    cookies = answer.headers.getlist("Set-Cookie")
    assert len(cookies) == 1, cookies
    return cookies[0]


def test_the_url_token_becomes_an_httponly_strict_cookie_and_leaves_the_url(guarded):
    _, app, _ = guarded
    client = app.test_client()
    answer = client.get(f"/?token={TOKEN}", headers=HOST)
    assert answer.status_code == 303 and answer.headers["Location"] == "/"
    cookie = cookie_header(answer)
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert TOKEN not in cookie
    assert cookie.startswith(session_cookie_name(TOKEN) + "=")
    assert client.get("/", headers=HOST).status_code == 200  # the test client keeps the cookie
    assert client.get("/static/js/api.js", headers=HOST).status_code == 200
    assert client.get("/api/flows", headers=HOST).status_code == 200
    other = client.get(f"/api/flows?summary=true&token={TOKEN}", headers=HOST)
    assert other.status_code == 303 and other.headers["Location"] == "/api/flows?summary=true"
    away = client.get("/", query_string={"token": TOKEN}, headers=HOST, environ_overrides={"PATH_INFO": "//evil.example/"})
    assert away.status_code == 303 and away.headers["Location"] == "/evil.example/"  # werkzeug keeps the path on this site


def test_a_wrong_url_token_or_a_forged_cookie_gets_401(guarded):
    _, app, _ = guarded
    client = app.test_client()
    wrong = client.get("/?token=nope", headers=HOST)
    assert wrong.status_code == 401 and not wrong.headers.getlist("Set-Cookie")
    client.set_cookie(session_cookie_name(TOKEN), TOKEN, domain="192.0.2.10")
    assert client.get("/api/flows", headers=HOST).status_code == 401


def test_the_login_page_works_without_scripts(guarded):
    _, app, _ = guarded
    client = app.test_client()
    page = client.get("/login", headers=HOST)
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert '<form method="post" action="/login">' in html and 'name="token"' in html and "<script" not in html
    wrong = client.post("/login", data={"token": "nope"}, headers=HOST)
    assert wrong.status_code == 401 and "wrong token" in wrong.get_data(as_text=True).lower()
    right = client.post("/login", data={"token": TOKEN}, headers={**HOST, "Origin": "http://192.0.2.10:5000"})
    assert right.status_code == 303 and right.headers["Location"] == "/"
    assert "HttpOnly" in cookie_header(right)
    assert client.get("/api/flows", headers=HOST).status_code == 200
    cross = app.test_client().post("/login", data={"token": TOKEN}, headers={**HOST, "Origin": "https://evil.example"})
    assert cross.status_code == 403


def test_a_browser_opening_the_editor_without_a_session_gets_the_login_page(guarded):
    _, app, _ = guarded
    answer = app.test_client().get("/", headers={**HOST, "Accept": "text/html,application/xhtml+xml"})
    assert answer.status_code == 401 and 'name="token"' in answer.get_data(as_text=True)


def test_loopback_needs_no_token_unless_asked(make_app):
    _, app = make_app()
    assert app.test_client().get("/api/flows").status_code == 200
    _, strict = make_app(require_token=True, token=TOKEN)
    client = strict.test_client()
    assert client.get("/api/flows").status_code == 401
    assert client.get("/api/flows", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_a_generated_token_is_kept_beside_the_database_with_mode_0600(make_app, tmp_path):
    service, _ = make_app(bind_host="0.0.0.0")
    path = service.config.db_path.with_suffix(".token")
    token = path.read_text().strip()
    assert len(token) >= 40 and service.config.token == token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    service2, _ = make_app(bind_host="0.0.0.0", db_path=service.config.db_path)
    assert service2.config.token == token


def test_ensure_token_prefers_the_environment_then_the_named_file(tmp_path, monkeypatch):
    from pyflow.service import Config
    named = tmp_path / "secrets" / "pyflow-token"
    config = Config(db_path=tmp_path / "db.sqlite", bind_host="0.0.0.0", token=None, token_file=named)
    token, source = ensure_token(config)
    assert source == "generated" and named.read_text().strip() == token
    assert ensure_token(Config(db_path=tmp_path / "db.sqlite", bind_host="0.0.0.0", token=None,
                               token_file=named)) == (token, "file")
    os.chmod(named, 0o644)
    ensure_token(Config(db_path=tmp_path / "db.sqlite", bind_host="0.0.0.0", token=None, token_file=named))
    assert stat.S_IMODE(named.stat().st_mode) == 0o600
    monkeypatch.setenv("PYFLOW_TOKEN", TOKEN)
    from_env = Config(db_path=tmp_path / "other.sqlite", bind_host="0.0.0.0")
    assert ensure_token(from_env) == (TOKEN, "environment")
    assert not (tmp_path / "other.token").exists()
    assert ensure_token(Config(db_path=tmp_path / "x.db", token=None)) == (None, "none")  # loopback


def test_a_generated_token_never_starts_with_a_dash(tmp_path, monkeypatch):
    """`pyflow ... --token TOKEN` reads a token that starts with "-" as an option of its own (one
    generated token in 64 would): such a draw is drawn again."""
    from pyflow.server import security
    from pyflow.service import Config
    draws = iter(["-starts-with-a-dash", "_fine-token"])
    monkeypatch.setattr(security.secrets, "token_urlsafe", lambda size: next(draws))
    config = Config(db_path=tmp_path / "db.sqlite", bind_host="0.0.0.0", token=None,
                    token_file=tmp_path / "pyflow-token")
    assert ensure_token(config) == ("_fine-token", "generated")
