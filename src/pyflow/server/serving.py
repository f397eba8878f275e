"""The connection layer of `pyflow serve`: Tornado's HTTP server in front of the Flask app.

Why Tornado (docs/serving.md has the measurements): connections cost an event loop's bookkeeping, not a
thread, so slow or idle clients and event-stream followers cannot take the threads the API needs; its
HTTP/1.1 server has the deadlines and limits this needs (header and idle timeout, body timeout, header
size) and hands a request's body to us piece by piece, so a body over the limit is refused from its
Content-Length before any of it is read, and a chunked one is cut at the limit.

The Flask app stays the one home of request rules. Every request, event streams included, is answered
by it on a small thread pool. For an event stream the view checks the request as always (404, a bad
Last-Event-ID, whatever before_request hooks refuse) and, seeing `STREAM_OFFLOAD` in its environ,
answers only a header naming the run and the last event seen; this layer strips it and follows the run
on the event loop (`StreamHub`), woken by the run's threads, with no thread per follower.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import resource
import signal
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http import HTTPStatus
from typing import Callable

from tornado import gen
from tornado.httpserver import HTTPServer
from tornado.httputil import (HTTPHeaders, HTTPMessageDelegate, HTTPServerConnectionDelegate, HTTPServerRequest,
                              RequestStartLine, ResponseStartLine)
from tornado.ioloop import IOLoop
from tornado.iostream import IOStream, StreamClosedError
from tornado.netutil import bind_sockets
from tornado.wsgi import WSGIContainer

from ..jsontext import compact_json
from ..model.errors import error_body
from .runs import STREAM_HEADER, STREAM_OFFLOAD
from .streams import EventSource, StreamHub

log = logging.getLogger(__name__)

MIB = 1024 * 1024
MAX_HEADER_BYTES = 64 * 1024
LINGER_BYTES = 4 * MIB  # after refusing a body, read and drop at most this much of it...
LINGER_S = 2.0  # ...for at most this long, so the client reads the answer instead of a reset


@dataclass(frozen=True)
class Limits:
    threads: int = 16  # the pool answering requests; event streams hold none of it
    header_timeout_s: float = 10  # to send a request's headers, or to stay idle between requests
    body_timeout_s: float = 60  # to send a request's body
    max_body_bytes: int = 32 * MIB
    streams_per_client: int = 32  # open event streams per client address
    keepalive_s: float = 15.0  # a heartbeat on a stream after this long without an event
    trusted_proxies: tuple = ()  # ipaddress networks whose X-Forwarded-For names the client


FORWARDED_HOPS = 32  # the most X-Forwarded-For entries read, from the nearest


def client_address(peer: str, forwarded_for: list[str], trusted: tuple) -> str:
    """The client's address: the peer's, unless the peer is a trusted proxy; then the nearest address in
    X-Forwarded-For (read from the right, as each proxy appends the one it took the request from) that is
    not a trusted proxy. Entries further left are the client's own say, and never believed; an unreadable
    entry stops the walk at the last trusted hop, which then counts as the client."""
    if not trusted or not _trusted(_ip(peer), trusted):
        return peer
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",")][-FORWARDED_HOPS:]
    client = peer
    for hop in reversed(hops):
        ip = _ip(hop)
        if ip is None:
            break
        client = hop
        if not _trusted(ip, trusted):
            break
    return client


def _ip(text: str):
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(ip, trusted: tuple) -> bool:
    return ip is not None and any(ip in network for network in trusted)


def body_too_large_message(max_bytes: int) -> str:
    return f"the request body is larger than {max_bytes // MIB} MiB"


def error_bytes(message: str) -> bytes:
    """An error body for answers this layer writes itself, outside the Flask app."""
    return compact_json(error_body(message)).encode()


def raise_open_file_limit() -> None:
    """Each connection is a file descriptor: take the soft limit up to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open file limit from %s: %s", soft, exc)


class PyflowHTTP(HTTPServerConnectionDelegate):
    """One `_Request` per request; the WSGI app on `pool`, event streams on `hub`."""

    def __init__(self, app, hub: StreamHub, pool: ThreadPoolExecutor, limits: Limits):
        self.app, self.hub, self.pool, self.limits = app, hub, pool, limits
        self.container = WSGIContainer(app, executor=pool)

    def start_request(self, server_conn, request_conn) -> HTTPMessageDelegate:
        return _Request(self, request_conn)


class _Request(HTTPMessageDelegate):
    def __init__(self, server: PyflowHTTP, conn):
        self.server, self.conn = server, conn
        self.start_line: RequestStartLine | None = None
        self.headers: HTTPHeaders | None = None
        self.chunks: list[bytes] = []
        self.size = 0
        self.refused = False

    def headers_received(self, start_line, headers):
        self.start_line, self.headers = start_line, headers
        self.client = client_address(self.conn.context.remote_ip, headers.get_list("X-Forwarded-For"),
                                     self.server.limits.trusted_proxies)
        try:
            declared = int(headers.get("Content-Length", "0"))
        except ValueError:
            return None  # Tornado answers 400 for a malformed length
        if declared > self.server.limits.max_body_bytes:
            self.refused = True
            return self._refuse_unread()
        return None

    def data_received(self, chunk: bytes):
        if self.refused:
            return
        self.size += len(chunk)
        if self.size > self.server.limits.max_body_bytes:
            # A chunked body past the limit: answer now; Tornado closes the connection once the answer
            # is sent, which stops reading the rest.
            self.refused, self.chunks = True, []
            self._write(413, error_bytes(body_too_large_message(self.server.limits.max_body_bytes)),
                        {"Connection": "close"})
            self.conn.finish()
            return
        self.chunks.append(chunk)

    def finish(self):
        if not self.refused:
            IOLoop.current().spawn_callback(self._respond)

    def on_connection_close(self):
        self.chunks = []

    async def _refuse_unread(self) -> None:
        """413 for a declared length over the limit, before reading any of the body; the stream is
        taken from Tornado so nothing else is written on it."""
        stream = self.conn.detach()
        body = error_bytes(body_too_large_message(self.server.limits.max_body_bytes))
        head = (f"HTTP/1.1 413 Payload Too Large\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
        try:
            await stream.write(head + body)
        except StreamClosedError:
            return
        await linger_close(stream)

    async def _respond(self) -> None:
        request = HTTPServerRequest(connection=self.conn, start_line=self.start_line, headers=self.headers,
                                    body=b"".join(self.chunks))
        self.chunks = []
        environ = self.server.container.environ(request)
        environ["REMOTE_ADDR"] = self.client
        environ[STREAM_OFFLOAD] = True
        loop = IOLoop.current()
        try:
            status, headers, body = await loop.run_in_executor(self.server.pool, call_wsgi, self.server.app, environ)
        except Exception:
            log.exception("the application failed outside its error handlers")
            status, headers, body = "500 Internal Server Error", [("Content-Type", "application/json")], \
                error_bytes("internal error")
        code, reason = int(status.split(" ", 1)[0]), status.partition(" ")[2]
        header_obj = HTTPHeaders()
        for key, value in headers:
            header_obj.add(key, value)
        target = header_obj.pop(STREAM_HEADER, None)
        if target is not None and code == 200 and self.start_line.method != "HEAD":
            header_obj.pop("Content-Length", None)  # the view's empty body: the stream is chunked
            await self._stream(target, header_obj)
            return
        self._write(code, body, header_obj, reason)
        self.conn.finish()

    async def _stream(self, target: str, headers: HTTPHeaders) -> None:
        run_id, _, after = target.partition(" ")
        client = self.client
        if not self.server.hub.admit(client):
            cap = self.server.limits.streams_per_client
            message = (f"this client already has {cap} open event streams, the most allowed; "
                       f"close one and try again")
            self._write(429, error_bytes(message), {"Retry-After": "5"})
            self.conn.finish()
            return
        await self.server.hub.follow(self.conn, client, run_id, int(after), headers)

    def _write(self, code: int, body: bytes, headers, reason: str = "") -> None:
        header_obj = headers if isinstance(headers, HTTPHeaders) else HTTPHeaders(headers)
        if code >= 400 and "Content-Type" not in header_obj:
            header_obj["Content-Type"] = "application/json"
        if code not in (204, 304) and "Content-Length" not in header_obj:
            header_obj["Content-Length"] = str(len(body))
        self.conn.write_headers(ResponseStartLine("HTTP/1.1", code, reason or _reason(code)), header_obj, body)


def _reason(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "Unknown"


def call_wsgi(app, environ: dict) -> tuple[str, list, bytes]:
    """Run the WSGI app to completion on a pool thread: its status, headers and whole body."""
    captured: dict = {}
    chunks: list[bytes] = []

    def start_response(status, headers, exc_info=None):
        captured["status"], captured["headers"] = status, headers
        return chunks.append

    result = app(environ, start_response)
    try:
        for chunk in result:
            chunks.append(chunk)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return captured["status"], captured["headers"], b"".join(chunks)


async def linger_close(stream: IOStream) -> None:
    """Close after an early answer without resetting the connection: say we are done sending, then
    drop a bounded amount of what the client still sends, as nginx's lingering close does."""
    loop = IOLoop.current()
    deadline = loop.time() + LINGER_S
    budget = LINGER_BYTES
    try:
        stream.socket.shutdown(socket.SHUT_WR)
        while budget > 0:
            data = await gen.with_timeout(deadline, stream.read_bytes(65536, partial=True),
                                          quiet_exceptions=(StreamClosedError,))
            budget -= len(data)
    except (StreamClosedError, TimeoutError, OSError) as exc:  # the client left or kept sending: done either way
        log.debug("lingering close ended: %r", exc)
    finally:
        stream.close()


def build_server(app, events: EventSource, limits: Limits) -> tuple[HTTPServer, StreamHub, ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(max_workers=limits.threads, thread_name_prefix="pyflow-http")
    hub = StreamHub(events, pool, limits.streams_per_client, limits.keepalive_s)
    # Tornado's own body cap sits above ours: ours answers 413 JSON first (from the declared length,
    # or as a chunked body passes the limit); Tornado's would answer a bare 400.
    server = HTTPServer(PyflowHTTP(app, hub, pool, limits), idle_connection_timeout=limits.header_timeout_s,
                        body_timeout=limits.body_timeout_s, max_header_size=MAX_HEADER_BYTES,
                        max_body_size=limits.max_body_bytes * 2 + MIB, decompress_request=False)
    return server, hub, pool


async def serve_until(app, events: EventSource, host: str, port: int, limits: Limits,
                      on_listening: Callable[[int], None], stop: asyncio.Event) -> None:
    """Serve on the running loop until `stop` is set; `on_listening` hears the bound port. Event streams
    follow runs through `events` (the service)."""
    server, hub, pool = build_server(app, events, limits)
    sockets = bind_sockets(port, host, backlog=1024)
    server.add_sockets(sockets)
    on_listening(sockets[0].getsockname()[1])
    try:
        await stop.wait()
    finally:
        server.stop()
        hub.close()
        pool.shutdown(wait=False, cancel_futures=True)


def run(app, events: EventSource, host: str, port: int, limits: Limits,
        on_listening: Callable[[int], None]) -> None:
    """Serve until SIGTERM or SIGINT; event streams follow runs through `events` (the service)."""
    raise_open_file_limit()

    async def main() -> None:
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(signum, stop.set)
        await serve_until(app, events, host, port, limits, on_listening, stop)

    asyncio.run(main())
