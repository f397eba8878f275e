import pytest

from pyflow.model.types import ConversionError, convert, describe_types, link_compatible


@pytest.mark.parametrize("word", ["true", "TRUE", "Yes", "y", "1", " on "])
def test_boolean_words_convert_to_true(word):
    assert convert("Boolean", word) is True


@pytest.mark.parametrize("word", ["false", "No", "n", "0", ""])
def test_boolean_false_words(word):
    assert convert("Boolean", word) is False


def test_boolean_rejects_unknown_words():
    with pytest.raises(ConversionError, match="true/yes/y/1"):
        convert("Boolean", "maybe")


def test_list_from_comma_text_and_json_array():
    assert convert("List", "a,b") == ["a", "b"]
    assert convert("List", "[1, 2]") == [1, 2]
    assert convert("List", "") == []
    assert convert("List", (1, 2)) == [1, 2]


def test_json_parses_text_and_reports_position():
    assert convert("Json", '{"a": [1, 2]}') == {"a": [1, 2]}
    with pytest.raises(ConversionError, match="line 1 column"):
        convert("Json", "{bad")


def test_int_as_the_original_did():
    assert convert("Int", "42") == 42
    assert convert("Int", 9.0) == 9 and isinstance(convert("Int", 9.0), int)
    with pytest.raises(ConversionError):
        convert("Int", "4.5")
    with pytest.raises(ConversionError):
        convert("Int", [1])


def test_float_string_and_none_passthrough():
    assert convert("Float", "1.5") == 1.5
    assert convert("Float", None) is None
    assert convert("String", 5) == "5"
    assert convert("String", {"a": 1}) == '{"a": 1}'
    assert convert("Any", {"x": [1]}) == {"x": [1]}


def test_link_compatibility_and_description():
    assert link_compatible("Int", "Float")
    assert not link_compatible("String", "Int")
    assert link_compatible("Json", "Any") and link_compatible("Any", "Boolean")
    names = [t["name"] for t in describe_types()]
    assert names == ["String", "Int", "Float", "Boolean", "List", "Json", "Dict", "Any", "Object", "Array", "DataFrame",
                     "Image"]


def test_dict_is_a_json_object_and_refuses_other_values_over_links():
    assert convert("Dict", '{"name": "Ada"}') == {"name": "Ada"}
    assert convert("Dict", {"a": 1}) == {"a": 1}
    for value in ("[1, 2]", 50.0, "50", [1]):
        with pytest.raises(ConversionError, match="JSON object"):
            convert("Dict", value)
    assert not link_compatible("Float", "Dict") and not link_compatible("List", "Dict")
    assert link_compatible("Dict", "Dict") and link_compatible("Json", "Dict") and link_compatible("Dict", "Json")
    assert "Dict" in [t["name"] for t in describe_types()]


def test_dict_annotations_read_as_dict():
    from pyflow.model.signature import infer_ports

    ports = infer_ports("def func(values: dict, m: typing.Mapping) -> dict:\n    return values\n")
    assert [p["type"] for p in ports["input"]] == ["Dict", "Dict"] and ports["output"][0]["type"] == "Dict"
