"""How deeply JSON documents may nest, checked in the raw text before anything parses it.

Python's JSON decoder, the encoder, jsonschema and every recursive walk over a document use the call
stack, one or more frames per level: a request nested a few thousand levels deep used to end in
RecursionError (500), and a stored document ~975 levels deep made every later read of it fail. So every
JSON text entering PyFlow (request bodies, bundles, repository directories, files and values the command
line reads) is refused when it nests deeper than MAX_DEPTH, with the JSON pointer of the first place
that does; the scan counts brackets outside strings in C-speed byte operations and never recurses.

Reads of stored documents use the larger MAX_STORED_DEPTH: a run, its events and node results wrap
documents and values that entered within MAX_DEPTH in a few more levels. A stored text deeper than that
can only come from an older version and is reported instead of parsed.
"""

from __future__ import annotations

import json
import math
import re
from array import array
from itertools import accumulate
from typing import Any

from .errors import InvalidInput, detail, pointer

MAX_DEPTH = 64  # arrays and objects inside one another; documented in the README (REST API)
MAX_STORED_DEPTH = 2 * MAX_DEPTH

_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{}')
_OPEN_CLOSE = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # +1 and, read as a signed byte, -1
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},:]', re.DOTALL)


class TooDeep(ValueError):
    """A JSON text nests deeper than `limit`; `pointer` is the first array or object beyond it."""

    def __init__(self, limit: int, where: str):
        super().__init__(f"nested deeper than {limit} levels at {where or '/'}")
        self.limit = limit
        self.pointer = where


def deepest(raw: bytes) -> int:
    """The deepest nesting of arrays and objects in a JSON text, ignoring brackets inside strings.

    Escaped backslashes and quotes are removed first, so that every remaining quote opens or closes a
    string; of the brackets and quotes left, those outside strings lie between a closing and the next
    opening quote."""
    if b"\\" in raw:
        if b"\\\\" in raw:
            raw = raw.replace(b"\\\\", b"")
        raw = raw.replace(b'\\"', b"")
    structure = raw.translate(None, _NOT_STRUCTURE)
    if b'"' in structure:
        # Usually no string holds a bracket, and each string is left as "" (removing those, paired left
        # to right, leaves no quote exactly then); else keep what lies between strings.
        plain = structure.replace(b'""', b"")
        structure = plain if b'"' not in plain else b"".join(structure.split(b'"')[::2])
    return max(accumulate(array("b", structure.translate(_OPEN_CLOSE))), default=0)


def check_depth(raw: bytes | str, limit: int = MAX_DEPTH) -> None:
    """Raise TooDeep when the JSON text `raw` nests deeper than `limit`. Cheap for shallow texts: a
    text with no more opening brackets than the limit cannot be too deep."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else bytes(raw)
    if data.count(b"[") + data.count(b"{") <= limit or deepest(data) <= limit:
        return
    # No place found only in a text that is not JSON either: refused all the same, at its root.
    raise TooDeep(limit, first_too_deep(data, limit) or "")


def first_too_deep(data: bytes, limit: int) -> str | None:
    """The JSON pointer of the first array or object nested deeper than `limit`, read token by token up
    to it (only called once the fast scan found one, so the walk stops early in the text)."""
    path: list[list] = []  # per open container: [is_object, key or index, expecting a key]
    for match in _TOKEN.finditer(data):
        token = match.group()
        top = path[-1] if path else None
        if token in (b"[", b"{"):
            if len(path) == limit:
                return pointer(*(entry[1] for entry in path))
            path.append([token == b"{", None if token == b"{" else 0, token == b"{"])
        elif token in (b"]", b"}"):
            if path:
                path.pop()
        elif top is None:
            continue
        elif token == b",":
            if top[0]:
                top[2] = True
            else:
                top[1] += 1
        elif token == b":":
            top[2] = False
        elif top[0] and top[2]:
            top[1] = _key(token)
    return None


def _key(token: bytes) -> str:
    try:
        return json.loads(token)
    except ValueError:
        return token[1:-1].decode("utf-8", "replace")


def parse_stored(text: str | bytes) -> Any:
    """Parse a JSON text read back from storage; TooDeep (from an older version) instead of recursing."""
    check_depth(text, MAX_STORED_DEPTH)
    return json.loads(text)


def parse_stored_list(texts: list[str]) -> list:
    """Parse many JSON texts read back from storage (a run's node results), as parse_stored would each:
    joined into one array, checked and parsed in one call each rather than one per text (a run of 1,000
    nodes reads 1,000 texts). A text too deep raises TooDeep with its own pointer, as parse_stored."""
    if not texts:
        return []
    joined = "[" + ",".join(texts) + "]"
    try:
        check_depth(joined, MAX_STORED_DEPTH + 1)  # the array adds one level
    except TooDeep:
        for text in texts:
            check_depth(text, MAX_STORED_DEPTH)
        raise
    return json.loads(joined)


class NotFinite(ValueError):
    """A number JSON cannot hold: one that overflows a float (1e309), or the literals NaN and Infinity,
    which Python's parser reads but would then be stored and answered as text no other parser reads."""


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise NotFinite(text)
    return value


def _no_constant(name: str):
    raise NotFinite(name)


def parse_json(raw: bytes | str, what: str, limit: int = MAX_DEPTH, base: str = "") -> Any:
    """Parse a JSON text that comes from outside: InvalidInput (400) naming `what` when it is not UTF-8,
    not JSON, holds a number JSON cannot hold, or is nested deeper than `limit`, each with a JSON
    pointer (under `base`)."""
    try:
        check_depth(raw, limit)
        text = raw.decode("utf-8") if isinstance(raw, (bytes, bytearray)) else raw
        return json.loads(text, parse_float=_finite, parse_constant=_no_constant)
    except NotFinite as exc:
        raise InvalidInput(f"{what} has a number JSON cannot hold",
                           [detail(base, f"{exc} is not a finite number")]) from None
    except TooDeep as exc:
        raise InvalidInput(f"{what} is nested deeper than {limit} levels (arrays and objects)",
                           [detail(base + exc.pointer, f"nested deeper than {limit} levels here")]) from None
    except RecursionError:  # not expected after the scan; never a 500 all the same
        raise InvalidInput(f"{what} is nested too deeply to read", [detail(base, "nested too deeply")]) from None
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{what} is not UTF-8", [detail(base, str(exc))]) from None
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{what} is not valid JSON",
                           [detail(base, f"{exc.msg} at line {exc.lineno}, column {exc.colno}")]) from None
