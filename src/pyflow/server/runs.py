"""Runs: synchronous (run now, answer the results) and asynchronous (202, history, SSE, cancel)."""

from __future__ import annotations


from flask import Blueprint, Response, request, send_file, stream_with_context, url_for

from ..model.errors import InvalidInput, detail
from ..model.types import truthy
from ..model.validation import schema_errors
from .http import int_arg, json_body, json_response, require_object, service
from .requestlog import note_run

bp = Blueprint("runs", __name__, url_prefix="/api")

# GET /api/runs paging: (default, minimum, maximum) of each query parameter.
RUN_PAGE = {"limit": (50, 1, 500), "offset": (0, 0, 10_000_000)}


def _run_request(inline: bool) -> dict:
    """{"flow"?, "values"?, "cache"?} checked against the run request schema."""
    body = require_object(json_body(optional=True) or {})
    problems = schema_errors("run_request", body)
    if inline and "flow" not in body:
        problems.append(detail("/flow", "an inline run needs the flow document in 'flow'"))
    if problems:
        raise InvalidInput("invalid run request", problems)
    return body


def sync_result(run: dict) -> dict:
    note_run(run["id"])
    return {"run_id": run["id"], "status": run["status"], "reason": run.get("reason"), "nodes": run["nodes"]}


@bp.post("/flows/<flow_id>/run")
def run_stored_flow_now(flow_id):
    body = _run_request(inline=False)
    run = service().run_now(flow_id=flow_id, values=body.get("values"), use_cache=body.get("cache", True))
    return json_response(sync_result(run))


@bp.post("/run")
def run_inline_flow_now():
    body = json_body()
    # Accept a bare flow document as well as {"flow": ..., "values": ...}.
    if isinstance(body, dict) and "nodes" in body and "flow" not in body:
        body = {"flow": body}
    body = require_object(body)
    problems = schema_errors("run_request", body) + ([] if "flow" in body else
                                                      [detail("/flow", "the flow document is missing")])
    if problems:
        raise InvalidInput("invalid run request", problems)
    run = service().run_now(flow=body["flow"], values=body.get("values"), use_cache=body.get("cache", True))
    return json_response(sync_result(run))


def _accepted(run: dict):
    location = url_for("runs.get_run", run_id=run["id"])
    body = {"id": run["id"], "status": run["status"], "url": location,
            "events": url_for("runs.run_events", run_id=run["id"])}
    return json_response(body, 202, {"Location": location})


@bp.post("/flows/<flow_id>/runs")
def start_stored_run(flow_id):
    body = _run_request(inline=False)
    return _accepted(service().start_run(flow_id=flow_id, values=body.get("values"),
                                         use_cache=body.get("cache", True)))


@bp.post("/runs")
def start_inline_run():
    body = _run_request(inline=True)
    return _accepted(service().start_run(flow=body["flow"], values=body.get("values"),
                                         use_cache=body.get("cache", True)))


@bp.get("/runs")
def list_runs():
    limit, offset = (int_arg(name, *RUN_PAGE[name]) for name in ("limit", "offset"))
    runs, total = service().list_runs(request.args.get("flow") or None, request.args.get("status") or None,
                                      limit, offset)
    return json_response({"runs": runs, "total": total, "limit": limit, "offset": offset})


@bp.get("/runs/<run_id>")
def get_run(run_id):
    return json_response(service().get_run(run_id))


@bp.get("/runs/<run_id>/nodes/<node_id>/outputs/<port>")
def node_output(run_id, node_id, port):
    """The output's JSON value, or its artifact's metadata and preview; `?raw=1` streams the artifact
    itself (`?thumbnail=1` its PNG thumbnail) with its content type."""
    if truthy(request.args.get("raw", "")) or truthy(request.args.get("thumbnail", "")):
        raw = service().node_output_raw(run_id, node_id, port, thumbnail=truthy(request.args.get("thumbnail", "")))
        response = send_file(raw.path, mimetype=raw.content_type, as_attachment=not raw.inline,
                             download_name=raw.filename, conditional=True, max_age=0)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
        return response
    return json_response(service().node_output(run_id, node_id, port))


@bp.delete("/runs/<run_id>")
def delete_run(run_id):
    service().delete_run(run_id)
    return json_response({"deleted": run_id})


@bp.post("/runs/<run_id>/cancel")
def cancel_run(run_id):
    run, ending = service().cancel_run(run_id)
    return json_response({"id": run["id"], "status": run["status"]}, 202 if ending else 200)


# A server that follows event streams itself (server/serving.py) sets this WSGI environ key; the view
# then checks the request as always and answers only this header, naming what to stream. The server
# strips it and streams off its request threads, as nginx does with X-Accel-Redirect.
STREAM_OFFLOAD = "pyflow.stream_offload"
STREAM_HEADER = "X-Pyflow-Stream"
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
STREAM_PRELUDE = "retry: 1000\n\n"


@bp.get("/runs/<run_id>/events")
def run_events(run_id):
    after = request.headers.get("Last-Event-ID") or request.args.get("last_event_id") or "0"
    try:
        after_id = max(0, int(after))
    except ValueError:
        raise InvalidInput("bad Last-Event-ID", [detail("/Last-Event-ID", f"{after!r} is not an event id")]) from None
    service().get_run(run_id, with_nodes=False)  # 404 before the stream starts
    if request.environ.get(STREAM_OFFLOAD):
        return Response(mimetype="text/event-stream", headers={**STREAM_HEADERS, STREAM_HEADER: f"{run_id} {after_id}"})
    events = service().stream(run_id, after_id)

    def generate():
        yield STREAM_PRELUDE
        for batch in events:
            yield sse_text(batch)

    return Response(stream_with_context(generate()), mimetype="text/event-stream", headers=STREAM_HEADERS)


def sse_text(batch: list[dict]) -> str:
    """A batch of events on the wire; an empty batch is a heartbeat."""
    if not batch:
        return ": keepalive\n\n"
    return "".join(f"id: {event['id']}\nevent: {event['event']}\ndata: {event['text']}\n\n" for event in batch)
