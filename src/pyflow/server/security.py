"""Who may talk to the server, in one place: before any route runs, a request must

1. name an allowed Host (421 otherwise): DNS rebinding makes a browser send an attacker's page to
   127.0.0.1 under the attacker's own name, so a name the server does not own is refused;
2. not come from another site's page (403): a cross-site `Origin` (including `null`) or a
   `Sec-Fetch-Site` of `cross-site`/`same-site` is refused unless the origin was allowed with
   --cors-origin; a plain link from elsewhere may still open the editor page;
3. carry the token when one is required (401): beyond loopback always, on loopback with
   --require-token. API clients send `Authorization: Bearer TOKEN`; the editor exchanges the token once
   (`/?token=` or the /login form) for an HttpOnly, SameSite=Strict cookie derived from it;
4. if it writes (any method but GET, HEAD and OPTIONS), carry `Content-Type: application/json`, or no
   body and a header no page can send cross-site without a CORS preflight: `X-Requested-With` (any
   value) or `Authorization` (415 otherwise). HTML forms and no-cors fetches can do neither.

Tokens are compared with hmac.compare_digest and never appear in an answer or a log line.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import os
import re
import secrets
import socket
from html import escape
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from flask import Flask, Response, current_app, redirect, request

from ..service.config import Config
from .http import error_response, is_json_request

log = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARD_BINDS = frozenset({"", "0.0.0.0", "::", "*"})
# A Host header: a name or IPv4 address, or a bracketed IPv6 address, and an optional port.
HOST_HEADER = re.compile(r"^(?:\[(?P<v6>[0-9a-fA-F:.]+)\]|(?P<name>[A-Za-z0-9._-]+))(?::(?P<port>\d{1,5}))?$")
NON_SIMPLE_HEADERS = ("X-Requested-With", "Authorization")
CORS_HEADERS = ["Authorization", "Content-Type", "If-Match", "Last-Event-ID", "X-Requested-With"]
COOKIE_MAX_AGE = 30 * 24 * 3600
LOGIN_ENDPOINTS = frozenset({"security.login_page", "security.login"})


# ----------------------------------------------------------------------------------------- policy
def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def token_required(config: Config) -> bool:
    return config.require_token or not is_loopback(config.bind_host)


class Policy:
    """The settings of one server, prepared for the per-request checks."""

    def __init__(self, config: Config):
        bind = config.bind_host.strip("[]").lower()
        self.wildcard = bind in WILDCARD_BINDS
        self.hosts = {bind} | {h.strip("[]").rstrip(".").lower() for h in config.allowed_hosts}
        if self.wildcard or is_loopback(bind):
            self.hosts |= LOOPBACK_NAMES
        if self.wildcard:
            self.hosts |= {socket.gethostname().lower()}
        self.origins = {o.rstrip("/").lower() for o in config.cors_origins}
        self.token = ensure_token(config)[0] if token_required(config) else None

    def host_allowed(self, header: str) -> bool:
        match = HOST_HEADER.match(header or "")
        if not match:
            return False
        name = (match.group("v6") or match.group("name")).rstrip(".").lower()
        if name in self.hosts:
            return True
        # An address literal cannot be a rebound name: a browser sends it only after connecting to it.
        return self.wildcard and _is_address(name)

    def origin_allowed(self, origin: str) -> bool:
        return _same_origin(origin, request.host) or origin.rstrip("/").lower() in self.origins


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


def _same_origin(origin: str, host: str) -> bool:
    """Whether `origin` names this server as the request reached it. The scheme is not compared, so that
    a TLS proxy passing the Host through (the browser says https, the request arrives as http) works."""
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    match = HOST_HEADER.match(host or "")
    if not match:
        return False
    host_name = (match.group("v6") or match.group("name")).lower()
    default = 443 if parts.scheme == "https" else 80
    host_port = int(match.group("port")) if match.group("port") else default
    return parts.hostname.lower() == host_name and (port or default) == host_port


# ------------------------------------------------------------------------------------------ tokens
def ensure_token(config: Config) -> tuple[str | None, str]:
    """The token this server asks for and where it came from: "environment" (PYFLOW_TOKEN or set on
    the config), "file" (kept from an earlier start), "generated" (new, now in the file) or "none" when
    no token is required. Sets config.token."""
    if not token_required(config):
        return None, "none"
    if config.token:
        return config.token, "environment"
    path = Path(config.token_file)
    token, created = _read_or_create(path)
    config.token = token
    return token, "generated" if created else "file"


def _read_or_create(path: Path) -> tuple[str, bool]:
    for _ in range(3):
        try:
            text = path.read_text("utf-8").strip()
        except FileNotFoundError:
            text = ""
        if text:
            _owner_only(path)
            return text, False
        path.parent.mkdir(parents=True, exist_ok=True)
        token = new_token()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue  # another process made it first (or it is empty): read it again
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(token + "\n")
        return token, True
    raise RuntimeError(f"the token file {path} exists but is empty: remove it or put a token in it")


def new_token() -> str:
    """A random access token that does not start with "-", which a command line (`--token TOKEN`) would
    read as an option."""
    while True:
        token = secrets.token_urlsafe(32)
        if not token.startswith("-"):
            return token


def _owner_only(path: Path) -> None:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        log.warning("the token file %s was readable by others (mode %o); it is now 0600", path, mode)
        os.chmod(path, 0o600)


def _digest(token: str, purpose: str) -> str:
    return hmac.new(token.encode("utf-8"), purpose.encode("ascii"), hashlib.sha256).hexdigest()


def session_cookie_name(token: str) -> str:
    """Named after the token, so that two servers on one host (cookies ignore ports) keep their own."""
    return "pyflow_session_" + _digest(token, "cookie name")[:12]


def _session_value(token: str) -> str:
    """Derived from the token, so a restart keeps sessions and a new token ends them; the token itself
    cannot be recovered from it."""
    return _digest(token, "editor session")


def _matches(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


# ------------------------------------------------------------------------------------------ checks
def refuse(status: int, message: str, headers: dict | None = None) -> Response:
    return error_response(status, message, headers)


def check_host(policy: Policy) -> Response | None:
    header = request.headers.get("Host", "")
    if policy.host_allowed(header):
        return None
    return refuse(421, f"this server does not answer to the host name {header!r}: a DNS-rebinding page "
                       f"would look like this; start it with --allowed-host NAME to serve that name")


def check_site(policy: Policy) -> Response | None:
    origin = request.headers.get("Origin")
    if origin is not None and not policy.origin_allowed(origin):
        return refuse(403, f"cross-site request from {origin!r} refused: only this server's own pages, "
                           f"or origins allowed with --cors-origin, may call it")
    site = (request.headers.get("Sec-Fetch-Site") or "").lower()
    if site in ("", "same-origin", "none") or (origin is not None and policy.origin_allowed(origin)):
        return None
    if _top_level_navigation():
        return None  # a link from another site may open the editor (without the SameSite=Strict cookie)
    return refuse(403, f"cross-site request refused (Sec-Fetch-Site: {site})")


def _top_level_navigation() -> bool:
    return (request.method in ("GET", "HEAD") and request.headers.get("Sec-Fetch-Mode") == "navigate"
            and request.headers.get("Sec-Fetch-Dest", "document") == "document")


def check_token(policy: Policy) -> Response | None:
    if policy.token is None or request.endpoint in LOGIN_ENDPOINTS or _cors_preflight(policy):
        return None
    token = policy.token
    authorization = request.headers.get("Authorization")
    if authorization is not None:
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() == "bearer" and _matches(given, token):
            return None
        return _unauthorized()
    if request.method in ("GET", "HEAD") and "token" in request.args:
        return _exchange_url_token(token)
    cookie = request.cookies.get(session_cookie_name(token))
    if cookie is not None and _matches(cookie, _session_value(token)):
        return None
    return _unauthorized()


def _cors_preflight(policy: Policy) -> bool:
    origin = request.headers.get("Origin")
    return (request.method == "OPTIONS" and origin is not None and "Access-Control-Request-Method" in request.headers
            and origin.rstrip("/").lower() in policy.origins)


def _exchange_url_token(token: str) -> Response:
    """`?token=` once, then a cookie, and the same address without the token (so it leaves the
    address bar, history and any Referer)."""
    if not _matches(request.args.get("token", ""), token):
        return _unauthorized()
    rest = [(k, v) for k, v in request.args.items(multi=True) if k != "token"]
    return _with_session(redirect(request.path + (f"?{urlencode(rest)}" if rest else ""), 303), token)


def _with_session(response: Response, token: str) -> Response:
    response.set_cookie(session_cookie_name(token), _session_value(token), max_age=COOKIE_MAX_AGE, path="/",
                        httponly=True, samesite="Strict", secure=_is_https())
    return response


def _is_https() -> bool:
    return request.is_secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https"


def _unauthorized() -> Response:
    headers = {"WWW-Authenticate": 'Bearer realm="pyflow"'}
    if request.method == "GET" and "text/html" in request.headers.get("Accept", "") and not request.path.startswith("/api/"):
        return Response(login_html(), 401, headers, mimetype="text/html")
    return refuse(401, "this server needs its access token: send 'Authorization: Bearer TOKEN', or open "
                       "the editor at the address the server printed (with ?token=) or at /login", headers)


def check_media_type() -> Response | None:
    if request.method in SAFE_METHODS or request.endpoint in LOGIN_ENDPOINTS or request.routing_exception:
        return None  # (no such route or method: its 404 or 405 says more, and nothing runs)
    if is_json_request():
        return None
    has_body = bool(request.content_length) or "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    if not has_body and any(name in request.headers for name in NON_SIMPLE_HEADERS):
        return None
    return refuse(415, "a write needs a JSON body (Content-Type: application/json), or no body and an "
                       "X-Requested-With header; form posts are refused, as any web page could send them")


# ------------------------------------------------------------------------------------------- login
def login_html(message: str = "") -> str:
    note = f'<p class="error">{escape(message)}</p>' if message else ""
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>PyFlow: sign in</title>"
            "<meta name=\"viewport\" content=\"width=device-width\"><style>body{font:16px system-ui,sans-serif;"
            "max-width:28rem;margin:12vh auto;padding:0 1rem}input{font:inherit;width:100%;padding:.4rem;"
            "box-sizing:border-box}button{font:inherit;margin-top:.8rem;padding:.4rem 1rem}.error{color:#b91c1c}"
            "</style></head><body><h1>PyFlow</h1><p>This server needs its access token. It was printed when "
            "the server started (and is kept in the token file beside its database).</p>" + note +
            "<form method=\"post\" action=\"/login\"><label>Token <input type=\"password\" name=\"token\" "
            "autocomplete=\"current-password\" autofocus required></label><button type=\"submit\">Open the "
            "editor</button></form></body></html>")


def _register_login(app: Flask) -> None:
    def login_page():
        if current_app.extensions["pyflow.security"].token is None:
            return redirect("/", 303)
        return Response(login_html(), mimetype="text/html")

    def login():
        token = current_app.extensions["pyflow.security"].token
        if token is None:
            return redirect("/", 303)
        if not _matches(request.form.get("token", ""), token):
            return Response(login_html("Wrong token."), 401, mimetype="text/html")
        return _with_session(redirect("/", 303), token)

    app.add_url_rule("/login", "security.login_page", login_page, methods=["GET"])
    app.add_url_rule("/login", "security.login", login, methods=["POST"])


# ---------------------------------------------------------------------------------------- install
def install(app: Flask, config: Config) -> None:
    """Check every request (in this order: host, site, token, media type) before any route runs."""
    policy = Policy(config)
    app.extensions["pyflow.security"] = policy
    _register_login(app)

    @app.before_request
    def guard():
        return check_host(policy) or check_site(policy) or check_token(policy) or check_media_type()

    @app.after_request
    def hardening_headers(response: Response) -> Response:
        response.headers.setdefault("X-Frame-Options", "DENY")  # no clickjacking through frames
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        # No address (with a ?token=) in a Referer to other sites. Not "no-referrer": under that policy
        # browsers send the login form's Origin as "null", which reads as cross-site.
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    if policy.origins:
        from flask_cors import CORS
        CORS(app, origins=sorted(policy.origins), allow_headers=CORS_HEADERS, supports_credentials=False,
             expose_headers=["ETag", "Location", "Retry-After"], max_age=600)
