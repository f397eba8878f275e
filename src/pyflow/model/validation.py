"""JSON Schema validation of PyFlow documents, reporting every problem with a JSON pointer.

The schemas are files in pyflow/model/schemas so that other tools (and the browser) can use them too.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from .errors import detail, pointer

SCHEMA_NAMES = ("nodespec", "flow", "bundle", "run_request")
_BASE_URI = "https://pyflow.dev/schemas/"


def load_schema(name: str) -> dict:
    """Return the parsed schema document `name` (one of SCHEMA_NAMES)."""
    text = resources.files("pyflow.model").joinpath(f"schemas/{name}.schema.json").read_text("utf-8")
    return json.loads(text)


@lru_cache(maxsize=None)
def _registry() -> Registry:
    pairs = []
    for name in SCHEMA_NAMES:
        schema = load_schema(name)
        pairs.append((_BASE_URI + f"{name}.schema.json", Resource.from_contents(schema)))
    return Registry().with_resources(pairs)


@lru_cache(maxsize=None)
def validator(name: str) -> Draft202012Validator:
    """A compiled validator for schema `name`, shared by all callers."""
    return Draft202012Validator(load_schema(name), registry=_registry())


def schema_errors(name: str, document, base: tuple = ()) -> list[dict]:
    """Every schema violation of `document`, as details sorted by path, under the pointer `base`."""
    found = []
    for error in validator(name).iter_errors(document):
        found.append(detail(pointer(*base, *error.absolute_path), _describe(error)))
    found.sort(key=lambda d: d["path"])
    return found


def _describe(error) -> str:
    """A shorter message than jsonschema's for the cases users meet most."""
    if error.validator == "pattern":
        return f"{error.instance!r} is not a valid name here (allowed: {error.validator_value})"
    if error.validator == "not":
        return f"{error.instance!r} contains characters not allowed here (a line break or '..')"
    if error.validator == "required":
        return error.message.replace("is a required property", "is required")
    return error.message
