"""Reading what node code sent back, with bounded memory: JSON text that node code may have written itself.

A node's result reaches the host as JSON text that the worker's child writes to a pipe, and node code can
write that pipe directly. Python's json.loads turns 16 MB of `[{},{},...]` into five million dicts (400 MB),
so the text is weighed before it is parsed: from counts of its structural characters (taken at C speed,
with string contents set aside only when a first, coarser count is too high) comes an estimate of the
bytes the parsed value would take, and a value whose estimate is over its budget (twice the node's
`result_kb`, plus 32 MB) is refused unparsed. The estimate errs high: its per-object costs are CPython's
own sizes (64-bit, 3.11) with room for list over-allocation and the parser's key memo.

Parsed values are then held to the rules every later reader relies on: nested no deeper than
MAX_DEPTH, and no lone surrogate in any string (UTF-8 cannot carry one, so storage and HTTP could not
encode the value). Text meant for people (error messages, tracebacks) is kept instead, with any lone
surrogate replaced by U+FFFD.
"""

from __future__ import annotations

import json
import re

from ..jsontext import SURROGATE
from ..model.limits import MAX_DEPTH  # the same nesting limit as every document entering the server

BUDGET_SLACK = 32 * 1024 * 1024
# Below this size the estimate is skipped: no JSON text takes more than ~45 times its size in memory.
WORST_RATIO = 48

# Bytes one parsed item may take (CPython 3.11, 64-bit, rounded up; checked against tracemalloc's peak
# for the costliest shapes per byte of text in tests/unit/executors/test_values.py).
LIST_COST = 88  # a list object, with room for its first appended items
DICT_COST = 64  # an empty dict
TABLE_COST = 120  # a non-empty dict's first key table (room for five members)
MEMBER_COST = 48  # each further member: its entry, and table growth
SLOT_COST = 10  # a pointer in a list or dict, with over-allocation
NUMBER_COST = 32  # an int outside the cached small ints, or a float
STRING_COST = 56  # an ASCII str object's header; wider strings' headers take 24 more
KEY_COST = 40  # a distinct key's entry in the parser's memo, while it parses
KEYS_TRACKED = 65536  # distinct keys told apart while weighing; past that, every key counts as new

LONG_STRING = 64
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_ESCAPE_WIDE = re.compile(r"\\u(?:0[1-9a-fA-F]|[1-9a-fA-F][0-9a-fA-F])")
_ESCAPE_ASTRAL = re.compile(r"\\u[dD][89abAB]")
_ESCAPE_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")


class Refused(ValueError):
    """A value the host will not parse or keep: (error type, message)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


def budget_for(limit_bytes: int) -> int:
    """The memory a parsed value may take: twice its text's limit, plus a constant."""
    return 2 * limit_bytes + BUDGET_SLACK


def load(text: str, budget: int):
    """Parse `text` (JSON that node code may have written) if its estimated size is within `budget`.

    Raises Refused for a value over the budget, ValueError or RecursionError for text that is not JSON."""
    if len(text) * WORST_RATIO > budget:
        size = estimated_size(text, budget)
        if size > budget:
            raise Refused("ResultTooLarge", f"the return value would take {_mb(size)} MB in memory, over the "
                                            f"limit of {_mb(budget)} MB")
    return _DECODER.decode(text)


STRUCTURE = ("[", "{", ":", ",", "{}")


def estimated_size(text: str, budget: int) -> int:
    """Bytes the parsed value of `text` would take, erring high. A first count treats every character as
    possibly structural and every string as a distinct one; only when that is over `budget` does a
    second one set string contents aside and count repeated keys once. Neither builds more than one
    copy of the text (no lists of pieces, as re.sub would)."""
    width = _char_width(text)
    counts = [text.count(c) for c in STRUCTURE]
    header = STRING_COST + (24 if width > 1 else 0)
    if "\\" in text:  # the parser builds a string with escapes in a growing buffer, then copies it
        width *= 2
    lists, dicts, colons, commas, _ = counts
    coarse = (_containers(lists, dicts, colons, commas, 0) + (commas + lists + dicts + 1) * NUMBER_COST
              + (text.count('"') // 2) * (header + KEY_COST) + len(text) * width)
    if coarse <= budget:
        return coarse
    strings, inside = _strings(text, width, header, budget)
    outside = [max(0, total - hidden) for total, hidden in zip(counts, inside)]
    return _containers(*outside) + _allocating_numbers(text) * NUMBER_COST + strings


def _strings(text: str, width: int, header: int, budget: int) -> tuple[int, list[int]]:
    """What the strings of `text` take (a repeated key once), and the counts of STRUCTURE inside its
    longer strings (a short one hides little). Stops early once the strings alone are over `budget`."""
    strings, keys, inside = 0, set(), [0] * len(STRUCTURE)
    for start, end in map(re.Match.span, _STRING.finditer(text)):
        if text.startswith(":", end):
            key = text[start:end]
            if key in keys:
                continue
            if len(keys) < KEYS_TRACKED:
                keys.add(key)
            strings += KEY_COST
        if end - start > 3 or header > STRING_COST:  # one-character ASCII strs are cached by CPython
            strings += header + (end - start) * width
        if strings > budget:
            break
        if end - start > LONG_STRING:
            inside = [was + text.count(c, start, end) for was, c in zip(inside, STRUCTURE)]
    return strings, inside


def _containers(lists: int, dicts: int, colons: int, commas: int, empty_dicts: int) -> int:
    """Lists, dicts (each with members gets a key table), dict members past the first, and slots."""
    filled = min(max(0, dicts - empty_dicts), colons)
    return (lists * LIST_COST + dicts * DICT_COST + filled * TABLE_COST + (colons - filled) * MEMBER_COST
            + (commas + lists + dicts + 1) * SLOT_COST)


# Number characters become "0", a minus "-", everything else a space: a number that makes an object
# (three characters or more: ints past the cached small ones, fractions, exponents; or a negative) then
# starts with " 000" or " -".
_NUMBER_CLASSES = str.maketrans({chr(c): ("0" if chr(c) in "0123456789.eE+" else "-" if chr(c) == "-" else " ")
                                 for c in range(128)})


def _allocating_numbers(text: str) -> int:
    classes = text.translate(_NUMBER_CLASSES)
    return classes.count(" 000") + classes.count(" -") + classes.startswith(("000", "-"))


def _char_width(text: str) -> int:
    """Bytes per character of the widest string the text can make (escapes are its only non-ASCII)."""
    if "\\u" not in text:
        return 1
    if _ESCAPE_ASTRAL.search(text):
        return 4
    return 2 if _ESCAPE_WIDE.search(text) else 1


def check_value(value, text: str) -> None:
    """Raise Refused for a parsed value nested deeper than MAX_DEPTH or holding a lone surrogate. The
    text says cheaply when neither can be: too few brackets, no surrogate escape."""
    deep = text.count("[") + text.count("{") > MAX_DEPTH
    surrogates = "\\u" in text and _ESCAPE_SURROGATE.search(text) is not None
    if deep or surrogates:
        _walk(value, surrogates)


def _walk(value, surrogates: bool) -> None:
    """One pass over the value, without recursion: its depth, and its strings when they may hold a surrogate."""
    if surrogates:
        _check_strings([value])
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            if surrogates:
                _check_strings(item.keys())
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > MAX_DEPTH:
            raise Refused("ResultError", f"the return value is nested {_depth(item, depth)} levels deep, over "
                                         f"the limit of {MAX_DEPTH}")
        if surrogates:
            _check_strings(children)
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))


def _depth(item, depth: int) -> int:
    """The full depth of a value found too deep, for the message (bounded: the parser's own recursion
    limit already bounds it)."""
    deepest, stack = depth, [(item, depth)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def _check_strings(items) -> None:
    for item in items:
        if isinstance(item, str) and not item.isascii():
            found = SURROGATE.search(item)
            if found:
                raise Refused("ResultError", f"the return value holds a lone surrogate (U+{ord(found.group()):04X}), "
                                             "which UTF-8 cannot carry")


def _refuse_constant(name: str):
    raise ValueError(f"it holds {name}, which JSON cannot carry")


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)  # made once: json.loads with options makes one a call


def _mb(size: int) -> int:
    return -(-size // (1024 * 1024))
