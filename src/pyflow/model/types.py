"""Port types and the value conversions the original PyFlow applied to them.

Values typed into the editor arrive as strings ("2", "true", "a,b"); links carry whatever the upstream
function returned. Each port converts what it receives to its declared type, and a value that cannot be
converted fails the node with a message naming the port, the type and the value.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from .artifacts import ArtifactRef, port_accepts
from .limits import MAX_DEPTH, TooDeep, check_depth

# The one reading of yes/no words, as the original PyFlow had it: Boolean port values, the flags is_end and
# required, query flags such as ?force=true. The editor reads the same words from GET /api/port-types.
TRUE_WORDS = frozenset({"true", "yes", "y", "1", "on"})
FALSE_WORDS = frozenset({"false", "no", "n", "0", "off", ""})


class ConversionError(ValueError):
    """A value could not be converted to a port's type; the message says why."""


def _to_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str):
        return int(value.strip())
    raise ConversionError("not a number")


def _to_float(value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        return float(value.strip())
    raise ConversionError("not a number")


def _to_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise ConversionError("expected one of true/yes/y/1/on or false/no/n/0/off")
    raise ConversionError("not a boolean")


def _to_list(value: Any) -> list:
    if isinstance(value, list):
        return value
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, str):
        if value == "":
            return []
        if value.lstrip().startswith("["):
            parsed = _loads(value)
            if isinstance(parsed, list):
                return parsed
        return value.split(",")
    raise ConversionError("not a list")


def _loads(text: str) -> Any:
    """Parse a string value as JSON within the nesting limit: values (a node's output among them) are
    converted in the server, where a text nested thousands of levels deep must not recurse."""
    try:
        check_depth(text, MAX_DEPTH)
    except TooDeep as exc:
        raise ConversionError(f"the JSON text is nested deeper than {MAX_DEPTH} levels (at {exc.pointer})") from None
    return json.loads(text)


def _to_json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return _loads(value)
        except json.JSONDecodeError as exc:
            raise ConversionError(f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    return value


def _to_dict(value: Any) -> dict:
    """A JSON object: a nodespec that calls `**values` or `.items()` needs one, not any JSON value."""
    parsed = _to_json(value)
    if not isinstance(parsed, dict):
        raise ConversionError(f"expected a JSON object, got {_kind(parsed)}")
    return parsed


def _kind(value: Any) -> str:
    for kinds, word in ((bool, "a boolean"), ((int, float), "a number"), (str, "a string"), (list, "a list")):
        if isinstance(value, kinds):
            return word
    return "null" if value is None else type(value).__name__


def _identity(value: Any) -> Any:
    return value


def _to_array(value: Any) -> Any:
    """A list (or "a,b" text) into an Array port stays a list here; the node's sandbox makes it a numpy
    array when numpy is there. Artifacts are checked by convert()."""
    return _to_list(value)


def _to_table(value: Any) -> Any:
    if isinstance(value, (list, dict)):
        return value  # rows or columns, made a DataFrame in the node's sandbox when pandas is there
    raise ConversionError("not a table")


def _to_image(value: Any) -> Any:
    raise ConversionError("not an image")


CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "String": _to_string,
    "Int": _to_int,
    "Float": _to_float,
    "Boolean": _to_boolean,
    "List": _to_list,
    "Json": _to_json,
    "Dict": _to_dict,
    "Any": _identity,
    "Object": _identity,
    "Array": _to_array,
    "DataFrame": _to_table,
    "Image": _to_image,
}
# Types whose values may be artifacts (files in the artifact store) rather than JSON.
RICH_TYPES = frozenset({"Any", "Object", "Array", "DataFrame", "Image"})

DESCRIPTIONS = {
    "String": "text; other values are converted with str()",
    "Int": "whole number; \"42\" and 42.0 convert",
    "Float": "number; \"1.5\" converts",
    "Boolean": "true/yes/y/1/on or false/no/n/0/off, any case",
    "List": "list; \"a,b\" converts to [\"a\", \"b\"] and \"[1, 2]\" is parsed",
    "Json": "any JSON value; a string is parsed as JSON",
    "Dict": "a JSON object ({\"key\": value}); a string is parsed as JSON and must be an object",
    "Any": "any value, passed unchanged; checked at run time where it flows",
    "Object": "any Python value (JSON values, and others carried as artifacts)",
    "Array": "a numpy array; a list converts",
    "DataFrame": "a pandas DataFrame or pyarrow Table; JSON rows convert",
    "Image": "an image (a PIL image, a matplotlib figure or PNG bytes), shown as PNG",
}

# Which source types a target type accepts over a link without a surprising conversion.
ACCEPTS = {
    "String": {"String", "Int", "Float", "Boolean", "Any"},
    "Int": {"Int", "Any"},
    "Float": {"Float", "Int", "Any"},
    "Boolean": {"Boolean", "Any"},
    "List": {"List", "Any"},
    "Json": {"Json", "Dict", "List", "String", "Int", "Float", "Boolean", "Any"},
    "Dict": {"Dict", "Json", "Any"},
    "Any": set(CONVERTERS),
    "Object": set(CONVERTERS),
    "Array": {"Array", "List", "Any"},
    "DataFrame": {"DataFrame", "Any"},
    "Image": {"Image", "Any"},
}

PORT_TYPES = tuple(CONVERTERS)
DEFAULT_TYPE = "Any"


def is_known_type(name: Any) -> bool:
    return isinstance(name, str) and name in CONVERTERS


def link_compatible(source_type: str, target_type: str) -> bool:
    """True when a link from an output of `source_type` may feed an input of `target_type`."""
    return source_type in ACCEPTS.get(target_type, ())


# The exact Python type that each port type's conversion returns unchanged: a value of it needs no
# conversion (an Int port given an int, say, which is what a link between two Int ports carries).
UNCHANGED = {"String": str, "Int": int, "Float": float, "Boolean": bool, "List": list, "Dict": dict}


def convert(type_name: str, value: Any) -> Any:
    """Convert `value` to `type_name`; None stays None. Raises ConversionError with a reason."""
    if value is None or type(value) is UNCHANGED.get(type_name):
        return value
    if isinstance(value, ArtifactRef):
        if port_accepts(type_name, value):
            return value
        raise ConversionError(f"an artifact of type {value.type} cannot be a {type_name}")
    try:
        return CONVERTERS[type_name](value)
    except ConversionError:
        raise
    except (ValueError, TypeError, OverflowError) as exc:
        raise ConversionError(str(exc) or type(exc).__name__) from None


def truthy(value: Any) -> bool:
    """A flag's meaning (is_end, required, ?force=): a word of TRUE_WORDS in any case, else Python truth."""
    if isinstance(value, str):
        return value.strip().lower() in TRUE_WORDS
    return bool(value)


def describe_types() -> list[dict]:
    """The port types for GET /api/port-types: name, description and accepted link sources; Boolean also
    lists the words it reads as true and as false, which the editor uses for flags too."""
    described = [{"name": name, "description": DESCRIPTIONS[name], "accepts": sorted(ACCEPTS[name])}
                 for name in PORT_TYPES]
    for entry in described:
        if entry["name"] == "Boolean":
            entry.update(true_words=sorted(TRUE_WORDS), false_words=sorted(FALSE_WORDS))
    return described
