"""One structured log line per request, and the log format of the whole server process.

A line names the method, the route pattern (`/api/flows/<object_id>`, never the path or query as
sent, so neither a `?token=` nor an id typed by an attacker lands in the log), the status, the
duration in milliseconds (until the last byte of an event stream), the run id where there is one and
the client address. Headers and cookies are never logged. `pyflow serve --log-format json` writes
every record, these and errors with their traceback alike, as one JSON object per line.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time

from flask import Flask, Response, g, request

from ..timestamps import iso_at

logger = logging.getLogger("pyflow.requests")

RULE_VARIABLE = re.compile(r"<(?:(?P<converter>\w+)(?:\([^)]*\))?:)?(?P<name>\w+)>")
RUN_LOCATION = re.compile(r"^/api/runs/(?P<id>[^/?#]+)$")


def note_run(run_id: str) -> None:
    """Name the run this request is about, for its log line."""
    g.pyflow_run_id = run_id


def route_pattern() -> str | None:
    """The matched rule with its variables as <name>; `any(...)` variables keep the value they matched,
    so /api/<any(nodespecs, flows):collection>/<object_id> logs as /api/flows/<object_id>."""
    rule = request.url_rule
    if rule is None:
        return None
    args = request.view_args or {}

    def variable(match: re.Match) -> str:
        name = match.group("name")
        if match.group("converter") == "any" and name in args:
            return str(args[name])
        return f"<{name}>"

    return RULE_VARIABLE.sub(variable, rule.rule)


def _run_id(response: Response) -> str | None:
    if g.get("pyflow_run_id"):
        return g.pyflow_run_id
    if request.view_args and "run_id" in request.view_args:
        return request.view_args["run_id"]
    match = RUN_LOCATION.match(response.headers.get("Location", ""))
    return match.group("id") if match else None


def install(app: Flask) -> None:
    """Register first, so that the clock starts before any other hook and refusals are logged too."""

    @app.before_request
    def start_clock():
        g.pyflow_started = time.perf_counter()

    @app.after_request
    def log_when_done(response: Response) -> Response:
        started = g.get("pyflow_started", time.perf_counter())
        fields = {"method": request.method, "route": route_pattern(), "status": response.status_code,
                  "run_id": _run_id(response), "client": request.remote_addr}

        def emit():
            fields["duration_ms"] = round((time.perf_counter() - started) * 1000, 2)
            logger.info("%s %s %s", fields["method"], fields["route"] or "-", fields["status"],
                        extra={"request": fields})

        if response.is_streamed:
            response.call_on_close(emit)  # after the last byte: an event stream's line comes at its end
        else:
            emit()
        return response


# ------------------------------------------------------------------------------------- formatting
class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message`, a request's fields after its message, a traceback below."""

    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        text = super().formatMessage(record)
        fields = getattr(record, "request", None)
        if fields:
            text += f" {fields['duration_ms']}ms" if "duration_ms" in fields else ""
            text += f" run={fields['run_id']}" if fields.get("run_id") else ""
            text += f" client={fields['client']}"
        return text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, a request's fields, and the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": iso_at(record.created),
                 "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        entry.update(getattr(record, "request", None) or {})
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["traceback"] = record.exc_text
        return json.dumps(entry, default=str)


def log_thread_errors() -> None:
    """An exception that ends a thread (a run worker, the persister) is logged with its traceback in
    the server's format, instead of printed to stderr past the log collector."""
    def hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        name = args.thread.name if args.thread else "?"
        logging.getLogger("pyflow").error("thread %s ended with an uncaught exception", name,
                                          exc_info=(args.exc_type, args.exc_value, args.exc_traceback))

    threading.excepthook = hook


def configure_logging(log_format: str = "text", level: int = logging.INFO) -> None:
    """Send every logger of the process (the server's, waitress's, Flask's) to stderr in one format."""
    log_thread_errors()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
