"""Request parsing and response helpers shared by the blueprints."""

from __future__ import annotations

import json
import math

from flask import Response, current_app, request

from ..model.bundle import compact_json
from ..model.errors import InvalidInput, UnsupportedMediaType, detail
from ..service import PyflowService
from ..storage import Record, parse_if_match


def service() -> PyflowService:
    return current_app.extensions["pyflow"]


def json_response(body, status: int = 200, headers: dict | None = None) -> Response:
    text = compact_json(body)
    response = Response(text, status=status, mimetype="application/json")
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def record_response(record: Record, status: int = 200, location: str | None = None) -> Response:
    headers = {"ETag": record.etag}
    if location:
        headers["Location"] = location
    return json_response(record.doc, status, headers)


def is_json_request() -> bool:
    mimetype = (request.mimetype or "").lower()
    return mimetype == "application/json" or mimetype.endswith("+json")


def json_body(allow_form_data: bool = False, optional: bool = False):
    """The request's JSON body. 415 for another media type, 400 (with line and column) for bad JSON.

    `allow_form_data` accepts the original PyFlow's `data=<json>` form posts.
    """
    if allow_form_data and request.mimetype == "application/x-www-form-urlencoded":
        raw = request.form.get("data")
        if raw is None:
            raise InvalidInput("missing form field", [detail("/data", "the form has no 'data' field")])
        return _parse(raw)
    raw = request.get_data(cache=True)
    if optional and not raw:
        return None
    if not is_json_request():
        raise UnsupportedMediaType(f"expected a JSON body (Content-Type: application/json), "
                                   f"got {request.mimetype or 'no Content-Type'}")
    return _parse(raw)


class _NotFinite(ValueError):
    """A number JSON cannot hold: one that overflows a float (1e309), or the literals NaN and Infinity."""


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotFinite(text)
    return value


def _no_constant(name: str):
    raise _NotFinite(name)


def _parse(raw) -> object:
    """Parse a JSON body; numbers must be finite, or they would be stored and answered as `Infinity`
    or `NaN`, which no JSON parser but Python's reads."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        return json.loads(text, parse_float=_finite, parse_constant=_no_constant)
    except _NotFinite as exc:
        raise InvalidInput("the body has a number JSON cannot hold",
                           [detail("", f"{exc} is not a finite number")]) from None
    except UnicodeDecodeError as exc:
        raise InvalidInput("the body is not UTF-8", [detail("", str(exc))]) from None
    except json.JSONDecodeError as exc:
        raise InvalidInput("the body is not valid JSON",
                           [detail("", f"{exc.msg} at line {exc.lineno}, column {exc.colno}")]) from None


def require_object(body, what: str = "body") -> dict:
    if not isinstance(body, dict):
        raise InvalidInput(f"the {what} must be a JSON object", [detail("", f"expected an object, got "
                                                                            f"{type(body).__name__}")])
    return body


def if_match() -> int | None:
    return parse_if_match(request.headers.get("If-Match"))


def flag(name: str) -> bool:
    return (request.args.get(name) or "").strip().lower() in ("1", "true", "yes", "y", "on")


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
