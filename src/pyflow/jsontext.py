"""The one way PyFlow writes JSON text for storage, HTTP answers and events, and its rule for lone
surrogates.

Compact text from one shared encoder (json.dumps with options builds a new encoder on each call, which
costs about as much as encoding a node's result). A string holding a lone surrogate ("a\\ud800b", which
node code can return) has no UTF-8 form: such a value is written with every non-ASCII character escaped
instead, which is the same JSON and reads back as the same value.
"""

from __future__ import annotations

import re
from json import JSONEncoder
from typing import Any

SURROGATE = re.compile("[\ud800-\udfff]")

_compact = JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_compact_ascii = JSONEncoder(separators=(",", ":")).encode
_compact_repr = JSONEncoder(separators=(",", ":"), default=repr).encode  # ASCII: always UTF-8-safe


def has_lone_surrogate(text: str) -> bool:
    return not text.isascii() and SURROGATE.search(text) is not None


def compact_json(value: Any) -> str:
    """Compact JSON text of `value` that can always be written as UTF-8."""
    text = _compact(value)
    return _compact_ascii(value) if has_lone_surrogate(text) else text


def compact_json_any(value: Any) -> str:
    """ASCII compact JSON of `value`, anything JSON cannot hold written as its repr: for event text,
    which must never fail to encode (a value that cannot be carried fails its node elsewhere)."""
    return _compact_repr(value)


def safe_text(text: str) -> str:
    """`text` with every lone surrogate replaced by U+FFFD, so that UTF-8 can carry it (error messages,
    tracebacks, output: text where no value is at stake)."""
    return SURROGATE.sub("\ufffd", text) if has_lone_surrogate(text) else text
