"""/api/repository (import and export), /api/port-types, /api/schemas/<name> and /api/health."""

from __future__ import annotations

from flask import Blueprint, request

from ..timestamps import file_stamp
from .http import json_body, json_response, service

bp = Blueprint("repository", __name__, url_prefix="/api")


@bp.get("/repository/export")
def export_repository():
    stamp = file_stamp()
    headers = {"Content-Disposition": f'attachment; filename="pyflow-repository-{stamp}.json"'}
    return json_response(service().export_bundle(), headers=headers)


@bp.post("/repository/import")
def import_repository():
    return json_response(service().import_bundle(json_body(), request.args.get("mode", "merge")))


@bp.get("/port-types")
def port_types():
    return json_response(service().port_types())


@bp.get("/schemas/<name>")
def schema(name):
    return json_response(service().schema(name))


@bp.get("/health")
def health():
    return json_response(service().health())
