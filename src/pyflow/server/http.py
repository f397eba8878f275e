"""Request parsing and response helpers shared by the blueprints."""

from __future__ import annotations

from flask import Response, current_app, request

from ..jsontext import compact_json
from ..model.errors import InvalidInput, PreconditionFailed, UnsupportedMediaType, detail, error_body
from ..model.limits import parse_json
from ..model.types import truthy
from ..service import PyflowService
from ..storage import Record


def service() -> PyflowService:
    return current_app.extensions["pyflow"]


def json_response(body, status: int = 200, headers: dict | None = None) -> Response:
    text = compact_json(body)
    response = Response(text, status=status, mimetype="application/json")
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def error_response(status: int, message: str, headers: dict | None = None, details: list[dict] | None = None,
                   **extra) -> Response:
    """An error answer in the one error body shape, for refusals that are not a raised PyflowError."""
    return json_response(error_body(message, details, **extra), status, headers)


def record_response(record: Record, status: int = 200, location: str | None = None) -> Response:
    headers = {"ETag": record.etag}
    if location:
        headers["Location"] = location
    return json_response(record.doc, status, headers)


def is_json_request() -> bool:
    mimetype = (request.mimetype or "").lower()
    return mimetype == "application/json" or mimetype.endswith("+json")


def json_body(optional: bool = False):
    """The request's JSON body. 415 for another media type, 400 (with line and column) for bad JSON, and
    400 with a JSON pointer for a body nested deeper than the limit (pyflow.model.limits). (Form posts
    never get here: any web page can send them, so security.py refuses them.)"""
    raw = request.get_data(cache=True)
    if optional and not raw:
        return None
    if not is_json_request():
        raise UnsupportedMediaType(f"expected a JSON body (Content-Type: application/json), "
                                   f"got {request.mimetype or 'no Content-Type'}")
    return _parse(raw)


def _parse(raw) -> object:
    """Parse a body: 400 when it is not UTF-8, not JSON, holds a number JSON cannot hold (1e309, NaN),
    or is nested deeper than the limit (checked in the raw text first, so that no depth of nesting can
    make the parser recurse)."""
    return parse_json(raw, "the body")


def require_object(body, what: str = "body") -> dict:
    if not isinstance(body, dict):
        raise InvalidInput(f"the {what} must be a JSON object", [detail("", f"expected an object, got "
                                                                            f"{type(body).__name__}")])
    return body


def if_match() -> int | None:
    """The revision an If-Match header names (werkzeug parses the header: '"12"', 'W/"12"', '*'); None
    when there is none or it is '*'. A header naming anything but one revision of this server fails."""
    tags = request.if_match
    if not tags or tags.star_tag:
        return None
    named = tags.as_set(include_weak=True)
    value = next(iter(named)) if len(named) == 1 else None  # werkzeug reads '""' as the tag None
    if not isinstance(value, str) or not value.isdigit():
        raise PreconditionFailed(f"If-Match {request.headers.get('If-Match')!r} names no revision of this server")
    return int(value)


def flag(name: str) -> bool:
    return truthy(request.args.get(name) or "")


def int_arg(name: str, default: int, minimum: int = 0, maximum: int = 10_000) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"bad query parameter {name}", [detail(f"/{name}", f"{raw!r} is not a whole number")]) from None
    if not minimum <= value <= maximum:
        raise InvalidInput(f"bad query parameter {name}",
                           [detail(f"/{name}", f"must be between {minimum} and {maximum}")])
    return value
