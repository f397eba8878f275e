"""The fast flow check must never accept what the flow schema rejects, and must accept typical flows."""

import copy
from urllib.parse import urljoin

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jsonschema import Draft202012Validator

from pyflow.model.quickcheck import flow_certainly_valid
from pyflow.model.validation import _BASE_URI, _registry, load_schema, schema_errors

FLOW_URI = _BASE_URI + "flow.schema.json"

good_names = st.sampled_from(["n1", "a.b", "ok_1", "x", "node-7", "N" * 200])
coordinates = st.one_of(st.integers(), st.sampled_from(["77px", " 12 ", "-3.5px", "8"]))
port = st.fixed_dictionaries({"name": st.sampled_from(["a", "value", "N" * 100])}, optional={"value": st.one_of(st.none(), st.text(max_size=3))})
node = st.fixed_dictionaries(
    {"id": good_names, "spec_id": good_names},
    optional={"name": good_names, "ports": st.lists(port, max_size=2),
              "is_end": st.sampled_from([1, True, "1", None, 0]),
              "ui": st.fixed_dictionaries({}, optional={"x": coordinates, "y": coordinates})})
link = st.fixed_dictionaries({"source": st.sampled_from(["a:out", "n1:x"]), "target": st.sampled_from(["b:in", "x:y"])})
valid_flows = st.fixed_dictionaries({"id": good_names, "nodes": st.lists(node, max_size=3),
                                     "links": st.lists(link, max_size=3)},
                                    optional={"name": good_names, "description": good_names})


# ------------------------------------------------------------------------------------------------------
# Bad values come from the schema itself: for the place in the document where a value is put, the schema
# that governs it is looked up (references followed), candidates are made from its keywords (other types,
# lengths one past each bound, the valid value with characters its pattern forbids), and the schema keeps
# only the candidates it rejects. A keyword added to the schema adds its cases here without a list to edit.

def governing(path: tuple) -> tuple[dict, str]:
    """The subschema of flow.schema.json for the value at `path` (keys and indexes) in a flow, and its
    absolute address (so that its own references resolve when it is checked alone)."""
    address, schema = FLOW_URI + "#", load_schema("flow")
    for step in (None, *path):
        if step is not None:
            key = "items" if isinstance(step, int) else f"properties/{step}"
            schema = schema.get("items", True) if isinstance(step, int) else schema.get("properties", {}).get(step, True)
            address += "/" + key
        while isinstance(schema, dict) and "$ref" in schema:
            address = urljoin(address, schema["$ref"])
            schema = _registry().resolver().lookup(address).contents
    return (schema if isinstance(schema, dict) else {}), address


def _branches(schema: dict) -> list[dict]:
    return [schema] + [branch for key in ("oneOf", "anyOf") for branch in schema.get(key, [])]


def candidates(schema: dict, valid) -> list:
    """Values suggested by the keywords of `schema` (and its branches) and by the valid value there."""
    found = [None, True, 0, -1, 1.5, "", [], {}, [1], {"k": None}]
    for branch in _branches(schema):
        for bound in ("maxLength", "maxItems"):
            if bound in branch and branch[bound] <= 1000:
                size = branch[bound] + 1
                found.append("N" * size if bound == "maxLength" else [{"name": "a"}] * size)
        if branch.get("minLength", 0) > 0:
            found.append("")
        if "pattern" in branch or "not" in branch:
            text = valid if isinstance(valid, str) else "a"
            found += [text + suffix for suffix in (":", " ", "\n", ":x:y", "..", "é")]
            found += ["-" + text, " " + text, "..", "px", "1e3", "a:b:c", "x y"]
    return found


def violations(path: tuple, valid) -> list:
    """Every candidate value the schema rejects at `path`."""
    schema, address = governing(path)
    check = Draft202012Validator({"$ref": address}, registry=_registry())
    return [value for value in candidates(schema, valid) if not check.is_valid(value)]


def _slots(doc, path=()):
    """Every (container, key, path) in a document, where a bad value can be put."""
    found = []
    keys = range(len(doc)) if isinstance(doc, list) else list(doc)
    for key in keys:
        found.append((doc, key, path + (key,)))
        if isinstance(doc[key], (dict, list)):
            found += _slots(doc[key], path + (key,))
    return found


@st.composite
def flows(draw):
    """A valid flow, half the time with one value replaced by one its schema rejects."""
    doc = copy.deepcopy(draw(valid_flows))
    if draw(st.booleans()):
        container, key, path = draw(st.sampled_from(_slots(doc)))
        bad = violations(path, container[key])
        if bad:
            container[key] = draw(st.sampled_from(bad))
    return doc


RICH_FLOW = {"id": "f", "name": "F", "description": "d", "links": [{"source": "a:out", "target": "b:in"}],
             "nodes": [{"id": "a", "spec_id": "s", "name": "A", "is_end": 1, "ui": {"x": "7px", "y": 3},
                        "ports": [{"name": "p", "value": "1"}]}]}


def test_fast_check_rejects_every_value_the_schema_rejects_at_every_place():
    """Exhaustive over the places of a flow that uses every property, and every derived bad value."""
    tried = 0
    for index, (_, _, path) in enumerate(_slots(RICH_FLOW)):
        doc = copy.deepcopy(RICH_FLOW)
        container, key, _ = _slots(doc)[index]
        for bad in violations(path, container[key]):
            container[key] = bad
            assert not flow_certainly_valid(doc), (path, bad)
            tried += 1
    assert tried > 100


def test_every_constrained_place_in_a_flow_has_values_the_schema_rejects():
    for container, key, path in _slots(RICH_FLOW):
        if path[-1] not in ("value", "is_end"):  # a port value may be anything, is_end nearly
            assert violations(path, container[key]), path


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flows())
def test_fast_check_never_accepts_what_the_schema_rejects(doc):
    if flow_certainly_valid(doc):
        assert schema_errors("flow", doc) == [], doc


@settings(max_examples=300, deadline=None)
@given(valid_flows)
def test_fast_check_accepts_valid_flows(doc):
    assert schema_errors("flow", doc) == []
    assert flow_certainly_valid(doc)


def test_fast_check_accepts_the_original_flows(compat_bundle):
    for doc in compat_bundle["flow"].values():
        assert flow_certainly_valid(doc)
