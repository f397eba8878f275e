"""The Flask application: an app factory, thin blueprints, and one error handler.

Handlers parse the request, call the service (the runtime API) and render JSON. Every error, whether a
domain error carrying its status or an HTTP error from routing, leaves as JSON:
{"error": message, "details": [{"path": JSON pointer, "message": ...}]}.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, send_from_directory
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from ..model.errors import PyflowError
from ..service import PyflowService
from . import environments, legacy, objects, openapi, repository, requestlog, runs, security
from .http import error_response, json_response
from .serving import body_too_large_message

STATIC_DIR = Path(__file__).resolve().parent.parent.parent / "static"


def create_app(service: PyflowService, static_dir: Path | None = None) -> Flask:
    static_root = Path(static_dir or STATIC_DIR)
    app = Flask(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = service.config.max_body_mb * 1024 * 1024
    app.json.sort_keys = False
    app.extensions["pyflow"] = service
    requestlog.install(app)  # first: its clock starts before the checks, which it logs too
    security.install(app, service.config)
    for blueprint in (objects.bp, runs.bp, repository.bp, environments.bp, openapi.bp, legacy.bp):
        app.register_blueprint(blueprint)
    _register_errors(app)
    _register_static(app, static_root)
    return app


def _register_errors(app: Flask) -> None:
    @app.errorhandler(PyflowError)
    def domain_error(error: PyflowError):
        headers = {}
        if getattr(error, "retry_after", None):
            headers["Retry-After"] = str(error.retry_after)
        return json_response(error.to_dict(), error.status, headers)

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(error):
        message = body_too_large_message(app.config["MAX_CONTENT_LENGTH"])
        return error_response(413, message)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        headers = {}
        if error.code == 405 and error.valid_methods:
            headers["Allow"] = ", ".join(error.valid_methods)
        return error_response(error.code or 500, error.description or error.name, headers)

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        app.logger.exception("unhandled error")
        return error_response(500, f"internal error: {type(error).__name__}")


def _register_static(app: Flask, root: Path) -> None:
    @app.get("/")
    def index():
        # The build's copy names the editor's chunks for preloading (build.mjs); the source works without.
        built = root / "dist" / "index.html"
        return send_from_directory(built.parent if built.exists() else root, "index.html")

    @app.get("/static/<path:filename>")
    def static_files(filename):
        return send_from_directory(root, filename)
