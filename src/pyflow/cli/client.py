"""A small REST client for the command line's --server mode (standard library only)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Iterator

from ..model.errors import PyflowError


class RemoteError(PyflowError):
    def __init__(self, status: int, body: dict):
        super().__init__(body.get("error", f"HTTP {status}"), body.get("details"))
        self.status = status


class Client:
    def __init__(self, base_url: str, timeout: float = 60.0):
        self.base = base_url.rstrip("/")
        self.timeout = timeout

    def request(self, method: str, path: str, body=None, params: dict | None = None):
        url = self.base + path + ("?" + urllib.parse.urlencode(params) if params else "")
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            try:
                payload = json.loads(exc.read() or b"{}")
            except ValueError:
                payload = {"error": exc.reason}
            raise RemoteError(exc.code, payload) from None

    def events(self, run_id: str, after: int = 0) -> Iterator[dict]:
        """Follow a run's Server-Sent Events, resuming with Last-Event-ID if the connection drops."""
        last = after
        while True:
            req = urllib.request.Request(f"{self.base}/api/runs/{run_id}/events",
                                         headers={"Accept": "text/event-stream", "Last-Event-ID": str(last)})
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    for event in parse_sse(resp):
                        last = event["id"]
                        yield event
                        if event["event"] == "run_finished":
                            return
                return
            except (urllib.error.URLError, TimeoutError, ConnectionError):
                continue


def parse_sse(lines) -> Iterator[dict]:
    """Parse an SSE byte stream into {id, event, data} dicts (comments and retry lines skipped)."""
    event: dict = {}
    for raw in lines:
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if "data" in event:
                yield {"id": int(event.get("id", 0)), "event": event.get("event", "message"),
                       "data": json.loads(event["data"])}
            event = {}
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "data" and "data" in event:
            event["data"] += "\n" + value
        elif field in ("id", "event", "data"):
            event[field] = value
