"""/api/nodespecs and /api/flows: list, create, read, replace, delete, with revisions and If-Match."""

from __future__ import annotations

from flask import Blueprint, url_for

from ..model.errors import InvalidInput, detail
from .http import flag, if_match, json_body, json_response, record_response, require_object, service

bp = Blueprint("objects", __name__, url_prefix="/api")

KINDS = {"nodespecs": "nodespec", "flows": "flow"}


def _kind(collection: str) -> str:
    return KINDS[collection]


@bp.get("/<any(nodespecs, flows):collection>")
def list_objects(collection):
    records = service().list(_kind(collection))
    if flag("summary"):
        return json_response([summary(r) for r in records])
    return json_response([r.doc for r in records])


def summary(record) -> dict:
    """A list entry without the heavy parts (function source, nodes and links), for pickers."""
    doc = record.doc
    entry = {"id": record.id, "revision": record.revision, "updated_at": record.updated_at,
             "title" if record.kind == "nodespec" else "name": doc.get("title") or doc.get("name") or record.id}
    if doc.get("description"):
        entry["description"] = doc["description"]
    if record.kind == "flow":
        entry["node_count"], entry["link_count"] = len(doc.get("nodes") or []), len(doc.get("links") or [])
    return entry


@bp.post("/<any(nodespecs, flows):collection>")
def create_object(collection):
    doc = require_object(json_body())
    record = service().create(_kind(collection), doc)
    location = url_for("objects.get_object", collection=collection, object_id=record.id)
    return record_response(record, 201, location)


@bp.get("/<any(nodespecs, flows):collection>/<object_id>")
def get_object(collection, object_id):
    return record_response(service().get(_kind(collection), object_id))


@bp.put("/<any(nodespecs, flows):collection>/<object_id>")
def put_object(collection, object_id):
    doc = require_object(json_body())
    record, created = service().put(_kind(collection), object_id, doc, expected=if_match(), force=flag("force"))
    return record_response(record, 201 if created else 200)


@bp.delete("/<any(nodespecs, flows):collection>/<object_id>")
def delete_object(collection, object_id):
    service().delete(_kind(collection), object_id, expected=if_match(), force=flag("force"))
    return json_response({"deleted": object_id})


@bp.get("/nodespecs/tree")
def nodespec_tree():
    return json_response(service().tree())


@bp.get("/subflows")
def subflows():
    """Every flow as a node for other flows (flow:<id>, with its ports): the palette's Flows group."""
    return json_response(service().subflows())


@bp.post("/nodespecs/infer")
def infer_ports():
    body = require_object(json_body())
    source = body.get("func")
    if not isinstance(source, str):
        raise InvalidInput("missing func", [detail("/func", "func must be Python source text")])
    return json_response(service().infer_ports(source, body.get("function")))


@bp.post("/nodespecs/test")
def test_draft_nodespec():
    """Test a nodespec being edited, before it is saved."""
    body = require_object(json_body())
    spec = body.get("nodespec")
    return json_response(service().test_nodespec(spec, _inputs(body)))


@bp.post("/nodespecs/<object_id>/test")
def test_nodespec(object_id):
    body = require_object(json_body(optional=True) or {})
    return json_response(service().test_stored_nodespec(object_id, _inputs(body)))


def _inputs(body: dict) -> dict:
    inputs = body.get("inputs") or {}
    if not isinstance(inputs, dict):
        raise InvalidInput("bad inputs", [detail("/inputs", "inputs must be an object of port: value")])
    return inputs
