import pytest

from pyflow.model.errors import InvalidInput
from pyflow.model.nodespec import check_nodespec
from pyflow.model.signature import infer_ports, nodespec_from_source

TYPED = '''
from typing import TypedDict, List

class Stats(TypedDict):
    total: int
    mean: float

def summarize(values: List[int], scale: float = 1.0, label: str = "x") -> Stats:
    """Summarize numbers."""
    return {"total": sum(values), "mean": sum(values) / len(values) * scale}
'''


def test_ports_types_defaults_and_typeddict_outputs():
    spec = nodespec_from_source(TYPED, "demo.stats")
    assert spec["id"] == "demo.stats" and spec["title"] == "Summarize numbers."
    inputs = spec["port"]["input"]
    assert [(p["name"], p["type"], p["order"]) for p in inputs] == [("values", "List", 0), ("scale", "Float", 1),
                                                                     ("label", "String", 2)]
    assert inputs[0]["required"] is True and inputs[1]["default"] == 1.0
    assert spec["port"]["output"] == [{"name": "total", "type": "Int"}, {"name": "mean", "type": "Float"}]
    assert spec["func"].startswith("from __future__ import annotations")  # Stats/List need not exist
    assert "def func(values" in spec["func"]
    assert check_nodespec(spec) == []


def test_outputs_from_the_original_docstring_form():
    source = 'def func(a):\n    """\n    :returns: self, notself\n    """\n    return {"self": a, "notself": not a}\n'
    assert [p["name"] for p in infer_ports(source)["output"]] == ["self", "notself"]


def test_original_node_file_supplies_id_and_title():
    source = 'spec = {"title": "JSON Path", "id": "pyflow.transform.jsonpath"}\noutput_keys = []\n\n' \
             'def func(source, path):\n    return source\n'
    spec = nodespec_from_source(source)
    assert (spec["id"], spec["title"]) == ("pyflow.transform.jsonpath", "JSON Path")
    assert spec["port"]["output"] == [{"name": "out", "type": "Any"}]
    assert spec["func"].startswith("def func(source, path)")


def test_builtin_annotations_need_no_future_import():
    spec = nodespec_from_source("def add(a: int, b: int = 2) -> int:\n    return a + b\n")
    assert spec["func"].startswith("def func(a: int")
    assert spec["port"]["output"] == [{"name": "out", "type": "Int"}]


@pytest.mark.parametrize("default", ["b'x'", "{1}", "1j", "...", "1e400", "[-1e400]", "{'a': (1, 1e999)}"])
def test_defaults_json_cannot_hold_are_left_out(default):
    """Found by fuzzing /api/nodespecs/infer: these defaults failed the JSON answer (500) or made it
    invalid JSON (Infinity)."""
    ports = infer_ports(f"def func(a={default}, b=2):\n    return a\n")
    assert ports["input"] == [{"name": "a", "order": 0, "type": "Any"},
                              {"name": "b", "order": 1, "type": "Any", "default": 2}]


@pytest.mark.parametrize("source", ["def func(a: " + "x." * 3000 + "y):\n    return a\n",
                                    "def func(a=" + "1+" * 3000 + "1):\n    return a\n"])
def test_source_nested_too_deeply_to_parse_is_invalid(source):
    with pytest.raises(InvalidInput) as info:
        infer_ports(source)
    assert info.value.details[0]["path"] == "/func"


def test_the_docstring_becomes_the_markdown_description_and_its_first_line_the_title():
    source = ('def to_fahrenheit(celsius: float) -> float:\n'
              '    """Celsius to Fahrenheit.\n\n'
              '    Multiplies by **9/5** and adds 32:\n\n'
              '    - `0` gives `32.0`\n'
              '    """\n'
              '    return celsius * 9 / 5 + 32\n')
    spec = nodespec_from_source(source, spec_id="temp.f")
    assert spec["title"] == "Celsius to Fahrenheit."
    assert spec["description"] == "Celsius to Fahrenheit.\n\nMultiplies by **9/5** and adds 32:\n\n- `0` gives `32.0`"
