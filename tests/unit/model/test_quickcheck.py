"""The fast flow check must never accept what the flow schema rejects, and must accept typical flows."""

import copy

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyflow.model.quickcheck import flow_certainly_valid
from pyflow.model.validation import schema_errors

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
bad_values = st.one_of(st.none(), st.booleans(), st.floats(allow_nan=False), st.integers(),
                       st.sampled_from(["", "x y", "a:b:c", "n\n", "é", "..", "12\n", "px", "1e3", "N" * 201]),
                       st.lists(st.integers(), max_size=1), st.dictionaries(st.text(max_size=2), st.none(), max_size=1))


def _slots(doc):
    """Every (container, key) in a document, where a bad value can be put."""
    found, stack = [], [doc]
    while stack:
        current = stack.pop()
        keys = range(len(current)) if isinstance(current, list) else list(current)
        for key in keys:
            found.append((current, key))
            if isinstance(current[key], (dict, list)):
                stack.append(current[key])
    return found


@st.composite
def flows(draw):
    """A valid flow, half the time with one piece replaced by a bad value."""
    doc = copy.deepcopy(draw(valid_flows))
    if draw(st.booleans()):
        container, key = draw(st.sampled_from(_slots(doc)))
        container[key] = draw(bad_values)
    return doc


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
