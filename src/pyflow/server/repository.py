"""/api/repository (import and export), /api/port-types, /api/schemas/<name> and /api/health."""

from __future__ import annotations

from flask import Blueprint, request

from ..model.errors import InvalidInput, detail
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
    mode = request.args.get("mode", "merge")
    if mode not in ("merge", "replace"):
        raise InvalidInput("bad import mode", [detail("/mode", f"mode must be merge or replace, not {mode!r}")])
    return json_response(service().import_bundle(json_body(), mode))


@bp.get("/port-types")
def port_types():
    return json_response(service().port_types())


@bp.get("/schemas/<name>")
def schema(name):
    return json_response(service().schema(name))


@bp.get("/health")
def health():
    return json_response(service().health())
