"""/api/repository (import and export), /api/port-types, /api/schemas/<name> and /api/health."""

from __future__ import annotations

from flask import Blueprint, request

from ..timestamps import file_stamp
from .http import json_body, json_response, service

bp = Blueprint("repository", __name__, url_prefix="/api")
HEALTH_RETRY_S = 10


@bp.get("/repository/export")
def export_repository():
    stamp = file_stamp()
    headers = {"Content-Disposition": f'attachment; filename="pyflow-repository-{stamp}.json"'}
    return json_response(service().export_bundle(), headers=headers)


@bp.post("/repository/import")
def import_repository():
    return json_response(service().import_bundle(json_body(), request.args.get("mode", "merge")))


@bp.post("/repository/import/preview")
def preview_import():
    return json_response(service().preview_import(json_body()))


@bp.get("/port-types")
def port_types():
    return json_response(service().port_types())


@bp.get("/schemas/<name>")
def schema(name):
    return json_response(service().schema(name))


@bp.get("/health")
def health():
    """200 when every check passes; 503 with the failing checks named (as an error body) otherwise."""
    report = service().health()
    if report["status"] == "ok":
        return json_response(report)
    return json_response(report, 503, {"Retry-After": str(HEALTH_RETRY_S)})
