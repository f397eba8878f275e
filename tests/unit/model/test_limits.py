"""The nesting limit on JSON documents: found in the raw text, before parsing, with a JSON pointer."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyflow.model.errors import InvalidInput
from pyflow.model.limits import MAX_DEPTH, TooDeep, check_depth, parse_json
from pyflow.model.types import ConversionError, convert


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


def depth_of(value) -> int:
    """Reference: the nesting of a parsed value (an array or object counts one level)."""
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    return 0


def test_the_documented_limit_is_64():
    assert MAX_DEPTH == 64


def test_at_the_limit_parses_and_one_more_level_is_refused_with_its_pointer():
    assert parse_json(nested(64), "the body") == json.loads(nested(64))
    with pytest.raises(InvalidInput) as caught:
        parse_json('{"a": [1, {"b": ' + nested(63) + "}]}", "the body")
    assert "64" in caught.value.message
    # root object 1, /a 2, /a/1 3, /a/1/b 4 ... the 65th level is /a/1/b followed by 61 zeros
    assert caught.value.details[0]["path"] == "/a/1/b" + "/0" * 61


@pytest.mark.parametrize("levels", [65, 5_000, 100_000, 1_000_000])
def test_very_deep_text_is_refused_without_recursion(levels):
    with pytest.raises(TooDeep) as caught:
        check_depth(nested(levels).encode())
    assert caught.value.pointer == "/0" * 64


def test_brackets_and_escapes_inside_strings_do_not_count():
    text = json.dumps({"s": "[[[[{{{{" * 50, "t": "\\\"[" * 100, "u": ["]]]]" * 30, [[["\\"]]]]})
    check_depth(text)
    tricky = '["]]]]]]]]]]", ' + nested(70) + "]"
    with pytest.raises(TooDeep) as caught:
        check_depth(tricky)
    assert caught.value.pointer == "/1" + "/0" * 63


def test_keys_are_unescaped_in_the_pointer():
    text = '{"a/b~c\\"d": ' + nested(64) + "}"
    with pytest.raises(TooDeep) as caught:
        check_depth(text)
    assert caught.value.pointer == '/a~1b~0c"d' + "/0" * 63


def test_a_json_port_value_too_deep_fails_conversion_instead_of_recursing():
    assert convert("Json", nested(64)) == json.loads(nested(64))
    with pytest.raises(ConversionError, match="64"):
        convert("Json", nested(100_000))
    with pytest.raises(ConversionError, match="64"):
        convert("List", nested(100_000))


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab/~:,'),
                           lambda children: st.lists(children, max_size=3)
                           | st.dictionaries(st.text(alphabet='[]{}"\\ab/~', max_size=4), children, max_size=3),
                           max_leaves=40)


@settings(max_examples=300, deadline=None)
@given(json_values, st.integers(min_value=0, max_value=8))
def test_the_scan_agrees_with_the_parsed_depth(value, limit):
    text = json.dumps(value)
    try:
        check_depth(text, limit)
        refused = False
    except TooDeep as exc:
        refused = True
        target = value
        for part in exc.pointer.split("/")[1:]:
            key = part.replace("~1", "/").replace("~0", "~")
            target = target[int(key)] if isinstance(target, list) else target[key]
        assert isinstance(target, (list, dict)) and exc.pointer.count("/") == limit
    assert refused == (depth_of(value) > limit)


def test_stored_texts_parse_together_as_each_alone_and_a_too_deep_one_names_its_own_place():
    from pyflow.model.limits import MAX_STORED_DEPTH, parse_stored, parse_stored_list
    texts = ['{"id": "a", "outputs": {"out": [1, [2]]}}', '[]', '"x"', '{"deep": ' + nested(MAX_STORED_DEPTH - 1) + "}"]
    assert parse_stored_list(texts) == [parse_stored(t) for t in texts]
    assert parse_stored_list([]) == []
    too_deep = '{"deep": ' + nested(MAX_STORED_DEPTH) + "}"
    with pytest.raises(TooDeep) as alone:
        parse_stored(too_deep)
    with pytest.raises(TooDeep) as together:
        parse_stored_list(texts + [too_deep])
    assert together.value.pointer == alone.value.pointer == "/deep" + "/0" * (MAX_STORED_DEPTH - 1)
