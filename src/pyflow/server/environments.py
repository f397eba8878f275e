"""/api/environments: the environments of third-party packages (list, prepare, remove, prune)."""

from __future__ import annotations

from flask import Blueprint

from .http import json_body, json_response, service

bp = Blueprint("environments", __name__, url_prefix="/api")


@bp.get("/environments")
def list_environments():
    return json_response(service().list_environments())


@bp.post("/environments")
def prepare_environment():
    """Build the environment of {"requirements": [...]} now (or find it): the editor's Prepare button."""
    return json_response(service().prepare_environment(json_body()))


@bp.delete("/environments/<key>")
def remove_environment(key):
    service().remove_environment(key)
    return json_response({"deleted": key})


@bp.post("/environments/prune")
def prune_environments():
    return json_response(service().prune_environments(json_body(optional=True)))
