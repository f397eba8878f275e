"""The original PyFlow server's routes, kept for its users and their scripts.

Same paths, methods and answer shapes as before (/nodes answers a map of id to nodespec, DELETE answers
{"success": true}, /runflow answers a list of node results, /ports/types answers {"types": [...]}), but
with the new server's validation, storage and sandboxed execution behind them.
"""

from __future__ import annotations

from flask import Blueprint

from ..model.errors import InvalidInput, detail
from ..model.types import PORT_TYPES
from .http import json_body, json_response, record_response, require_object, service
from .requestlog import note_run

bp = Blueprint("legacy", __name__)

# The original's statuses (STATUS_SUCCESS and the others in its last version's src/fbp/node.py); a
# cancelled node did not exist there and reads as failed.
LEGACY_STATUS = {"success": "success", "fail": "fail", "skipped": "skipped", "cancelled": "fail"}


def _with_default_output(doc: dict) -> dict:
    port = dict(doc.get("port") or {})
    if "output" not in port:
        port["output"] = [{"name": "out"}]
    return {**doc, "port": port}


@bp.route("/nodes", methods=["GET"])
def list_nodes():
    return json_response({r.id: _with_default_output(r.doc) for r in service().list("nodespec")})


@bp.route("/nodes", methods=["POST"])
def save_node():
    doc = require_object(json_body())
    return record_response(service().upsert("nodespec", doc))


@bp.route("/nodes/<node_id>", methods=["GET"])
def get_node(node_id):
    return record_response(service().get("nodespec", node_id))


@bp.route("/nodes/<node_id>", methods=["PUT"])
def put_node(node_id):
    doc = require_object(json_body())
    record, _ = service().put("nodespec", node_id, doc)
    return record_response(record)


@bp.route("/nodes/<node_id>", methods=["DELETE"])
def delete_node(node_id):
    service().delete("nodespec", node_id)
    return json_response({"success": True})


@bp.route("/nodestree", methods=["GET"])
def nodes_tree():
    return json_response(service().tree())


@bp.route("/flows", methods=["GET"])
def list_flows():
    return json_response([r.doc for r in service().list("flow")])


@bp.route("/flows", methods=["POST"])
def save_flow():
    doc = require_object(json_body())
    return record_response(service().upsert("flow", doc))


@bp.route("/flows/<flow_id>", methods=["GET"])
def get_flow(flow_id):
    return record_response(service().get("flow", flow_id))


@bp.route("/runflow", methods=["POST"])
def run_flow():
    flow = require_object(json_body())
    run = service().run_now(flow=flow)
    note_run(run["id"])
    return json_response([legacy_node_result(n, run["snapshot"]) for n in run["nodes"]])


def legacy_node_result(result: dict, snapshot: dict) -> dict:
    """A node result in the original's shape: ports as lists of {name, value, type}, error as text."""
    spec = snapshot.get("nodespec", {}).get(result["spec_id"], {})
    port = spec.get("port") or {}
    in_types = {p["name"]: p.get("type", "String") for p in port.get("input") or []}
    out_types = {p["name"]: p.get("type", "String") for p in port.get("output") or [{"name": "out"}]}
    error = result.get("error")
    return {
        "id": result["id"],
        "name": result["name"],
        "inputs": [{"name": k, "value": v, "type": in_types.get(k)} for k, v in result["inputs"].items()],
        "outputs": [{"name": k, "value": result["outputs"].get(k), "type": t} for k, t in out_types.items()]
        if result["status"] == "success" else [],
        "status": LEGACY_STATUS.get(result["status"], result["status"]),
        "error": error["message"] if error else "None",
    }


@bp.route("/ports/types", methods=["GET"])
def port_types():
    return json_response({"types": list(PORT_TYPES)})


def _path_body() -> dict:
    body = require_object(json_body())
    if "path" not in body:
        raise InvalidInput("missing path", [detail("/path", "path is required")])
    return body


@bp.route("/dumprepo", methods=["POST"])
def dump_repo():
    body = _path_body()
    service().dump_to(body["path"])
    return json_response(body)


@bp.route("/loadrepo", methods=["POST"])
def load_repo():
    body = _path_body()
    service().load_from(body["path"])
    return json_response(body)
