"""Subflows in the model (model/subflow.py): a flow's ports from its boundary nodes, boundary names,
and flows that would contain themselves."""

from pyflow.model.flow import analyze_flow
from pyflow.model.subflow import with_flows

from ..engine.helpers import SPECS, boundary, wrapper


def test_boundary_nodes_give_the_subflow_its_ports():
    specs = with_flows(SPECS, [wrapper("inner", "t.inc")])
    sub = specs["flow:inner"]
    assert [(p.name, p.type, p.required) for p in sub.inputs] == [("x", "Int", True)]
    assert [(p.name, p.type) for p in sub.outputs] == [("y", "Any")]


def test_a_flow_containing_itself_is_refused_naming_the_chain():
    a = wrapper("a", "flow:b")
    b = wrapper("b", "t.inc")
    specs = with_flows(SPECS, [a, b])
    b_loop = wrapper("b", "flow:a")
    _, problems = analyze_flow(b_loop, specs)
    assert any("b -> a -> b" in p["message"] and p["path"] == "/nodes/1/spec_id" for p in problems)
    _, problems = analyze_flow(wrapper("a", "flow:a"), specs)
    assert any("a -> a" in p["message"] for p in problems)


def test_boundary_names_must_be_port_names_and_unique():
    doc = {"id": "f", "links": [], "nodes": [boundary("p", "input", "x"), boundary("q", "input", "x"),
                                              boundary("r", "output", "no good")]}
    _, problems = analyze_flow(doc, with_flows(SPECS, []))
    messages = " ".join(p["message"] for p in problems)
    assert "two flow input nodes are named 'x'" in messages and "needs a port name" in messages
