"""A small REST client for the command line's --server mode (standard library only)."""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Iterable, Iterator

from ..model.errors import PyflowError, error_body
from .sse import iter_events, response_chunks

RECONNECT_S = 1.0


class RemoteError(PyflowError):
    def __init__(self, status: int, body: dict):
        super().__init__(body.get("error", f"HTTP {status}"), body.get("details"))
        self.status = status


class Client:
    def __init__(self, base_url: str, timeout: float = 60.0, token: str | None = None):
        self.base = base_url.rstrip("/")
        self.timeout = timeout
        # Every request says it is no HTML form (a write without a body needs that) and, for a server
        # beyond loopback, carries the token.
        self.headers = {"X-Requested-With": "pyflow"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str, path: str, body=None, params: dict | None = None):
        url = self.base + path + ("?" + urllib.parse.urlencode(params) if params else "")
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method,
                                     headers={**self.headers, "Content-Type": "application/json",
                                              "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise remote_error(exc) from None

    def events(self, run_id: str, after: int = 0) -> Iterator[dict]:
        """Follow a run's Server-Sent Events, resuming with Last-Event-ID when the connection drops, a
        second apart (as the server's retry field asks), until `timeout` passes without reaching it."""
        last, heard = after, time.monotonic()
        while True:
            req = urllib.request.Request(f"{self.base}/api/runs/{run_id}/events",
                                         headers={**self.headers, "Accept": "text/event-stream",
                                                  "Last-Event-ID": str(last)})
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    heard = time.monotonic()  # connected: the server is there, however quiet the run
                    for event in run_events(response_chunks(resp)):
                        last, heard = event["id"], time.monotonic()
                        yield event
                        if event["event"] == "run_finished":
                            return
                problem = "the stream ended before the run did"  # a restart or a proxy: resume it
            except urllib.error.HTTPError as exc:  # the server answered: retrying will not help
                raise remote_error(exc) from None
            except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError) as exc:
                problem = str(exc) or type(exc).__name__
            if time.monotonic() - heard > self.timeout:
                raise RemoteError(503, error_body(f"lost the event stream of run {run_id}: {problem}"))
            time.sleep(RECONNECT_S)


def remote_error(exc: urllib.error.HTTPError) -> RemoteError:
    """The server's JSON error answer as an exception the command line reports."""
    try:
        payload = json.loads(exc.read() or b"{}")
    except ValueError:
        payload = error_body(exc.reason)
    return RemoteError(exc.code, payload)


def run_events(chunks: Iterable[bytes]) -> Iterator[dict]:
    """A run's event stream as {id, event, data} dicts, data parsed from its JSON."""
    for event in iter_events(chunks):
        yield {"id": int(event.id or 0), "event": event.event, "data": json.loads(event.data)}
