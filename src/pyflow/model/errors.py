"""Domain errors that carry their own HTTP status.

Every layer raises these; only the server turns them into responses (one error handler), and the
command line prints them. Keeping the status on the error, as Node-RED's runtime API does, keeps the
HTTP handlers thin.
"""

from __future__ import annotations


class PyflowError(Exception):
    """Base class: a message for people, a status for HTTP, and optional per-field details."""

    status = 500

    def __init__(self, message: str, details: list[dict] | None = None, **extra):
        super().__init__(message)
        self.message = message
        self.details = details or []
        self.extra = extra

    def to_dict(self) -> dict:
        return error_body(self.message, self.details, **self.extra)


class InvalidInput(PyflowError):
    """The request or document is malformed; `details` lists every problem with a JSON pointer."""

    status = 400


class NotFound(PyflowError):
    status = 404


class Conflict(PyflowError):
    status = 409


class PreconditionFailed(PyflowError):
    """If-Match named a revision that is no longer current."""

    status = 412


class PayloadTooLarge(PyflowError):
    status = 413


class UnsupportedMediaType(PyflowError):
    status = 415


class TooManyRequests(PyflowError):
    status = 429

    def __init__(self, message: str, retry_after: int = 1):
        super().__init__(message)
        self.retry_after = retry_after


class ServiceUnavailable(PyflowError):
    """The server cannot do this now (storage failing, a deadline passed); `retry_after` seconds is
    when trying again makes sense."""

    status = 503

    def __init__(self, message: str, details: list[dict] | None = None, retry_after: int = 5, **extra):
        super().__init__(message, details, **extra)
        self.retry_after = retry_after


class StorageUnavailable(ServiceUnavailable):
    """The database cannot be written: the disk is full, or SQLite reported another failure."""


def error_body(message: str, details: list[dict] | None = None, **extra) -> dict:
    """The JSON body of every error answer: {"error": message, "details": [detail, ...], **extra}."""
    return {"error": message, "details": details or [], **extra}


def detail(path: str, message: str) -> dict:
    """One entry of an error's details list: a JSON pointer and what is wrong there."""
    return {"path": path, "message": message}


def pointer(*parts) -> str:
    """Build a JSON pointer (RFC 6901) from path parts, escaping '~' and '/'."""
    escaped = (str(p).replace("~", "~0").replace("/", "~1") for p in parts)
    return "".join("/" + p for p in escaped)
