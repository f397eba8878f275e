"""The weighing of a node's JSON text before it is parsed (values.py): never far below what json.loads
really takes, for the shapes that take the most per byte, and not far above it for ordinary data."""

from __future__ import annotations

import json
import tracemalloc

import pytest

from pyflow.executors import values

SIZE = 1 << 20


def repeated(item: str, opener: str = "[", closer: str = "]") -> str:
    return opener + ",".join([item] * (SIZE // (len(item) + 1))) + closer


SHAPES = {
    "empty objects": repeated("{}"),
    "empty lists": repeated("[]"),
    "lists in lists": repeated("[[]]"),
    "one-member objects": repeated('{"a":{}}'),
    "distinct keys": "{" + ",".join(f'"{i:x}":0' for i in range(SIZE // 8)) + "}",
    "objects under distinct keys": "{" + ",".join(f'"{i:x}":{{}}' for i in range(SIZE // 10)) + "}",
    "large ints": repeated("1000"),
    "floats": repeated("1e9"),
    "small ints": repeated("7"),
    "negative ints": repeated("-7"),
    "short strings": repeated('"abcde"'),
    "one string": '"' + "x" * SIZE + '"',
    "wide string": '"' + "x" * SIZE + '\\ud83d\\ude00"',
    "JSON in a string": json.dumps(json.dumps([{"a": [1, 2, {}]}] * (SIZE // 20))),
    "nested 64 deep": repeated("[" * 63 + "]" * 63),
    "nested objects": repeated('{"a":' * 20 + "1" + "}" * 20),
    "records": json.dumps([{"id": i, "name": f"item {i}", "tags": ["x", "y:z"], "score": i / 7}
                           for i in range(SIZE // 80)]),
}


def parsed_peak(text: str) -> int:
    tracemalloc.start()
    try:
        value = json.loads(text)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        del value


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_the_estimate_is_never_far_below_the_parsed_size(name):
    """Both counts, the coarse one (every character possibly structural) and the fine one (strings set
    aside), are at least 90% of the parser's peak; the budget's constant covers the rest."""
    text = SHAPES[name]
    peak = parsed_peak(text)
    coarse = values.estimated_size(text, 1 << 40)
    fine = values.estimated_size(text, coarse - 1)
    assert coarse >= 0.9 * peak and fine >= 0.9 * peak, (coarse / peak, fine / peak)
    if name in ("records", "JSON in a string", "one string", "short strings"):
        assert fine <= 2 * peak, fine / peak


def test_the_fine_count_stops_once_the_strings_alone_are_over_budget():
    text = repeated('"abcdefghijklmnopqrstuvwxyz"')
    assert values.estimated_size(text, 10_000) < values.estimated_size(text, 1 << 30) / 10


def test_small_text_is_parsed_without_weighing(monkeypatch):
    calls = []
    monkeypatch.setattr(values, "estimated_size", lambda *args: calls.append(args) or 0)
    assert values.load('{"a": [1, 2]}', values.budget_for(1024)) == {"a": [1, 2]}
    assert calls == []
