from pyflow.model.flow import analyze_flow
from pyflow.model.nodespec import parse_nodespec

SPECS = {
    "t.inc": parse_nodespec({"id": "t.inc", "title": "Inc", "func": "def func(a):\n    return a + 1\n",
                             "port": {"input": [{"name": "a", "type": "Int"}], "output": [{"name": "out", "type": "Int"}]}}),
    "t.two": parse_nodespec({"id": "t.two", "title": "Two", "func": "def func(a):\n    return {}\n",
                             "port": {"input": [{"name": "a"}], "output": [{"name": "x"}, {"name": "y"}]}}),
}


def flow(nodes, links):
    return {"id": "f", "name": "F", "nodes": [{"id": n, "spec_id": s, "ports": []} for n, s in nodes],
            "links": [{"source": a, "target": b} for a, b in links]}


def messages(problems):
    return " | ".join(p["path"] + " " + p["message"] for p in problems)


def test_valid_flow_builds_graph():
    graph, problems = analyze_flow(flow([("n1", "t.inc"), ("n2", "t.inc")], [("n1:out", "n2:a")]), SPECS)
    assert problems == []
    assert graph.inbound["n2"] == {"a": ("n1", "out")}
    assert graph.predecessors["n2"] == ("n1",)


def test_all_structural_problems_reported_together():
    doc = flow([("n1", "t.inc"), ("n2", "t.missing"), ("n3", "t.inc"), ("n1", "t.inc")],
               [("n1:nope", "n3:a"), ("n3:a", "n1:a"), ("n1:out", "n3:out"), ("ghost:out", "n3:a")])
    doc["nodes"][0]["ports"] = [{"name": "zzz", "value": "1"}]
    _, problems = analyze_flow(doc, SPECS)
    text = messages(problems)
    assert "/nodes/1/spec_id node 'n2' uses an unknown nodespec 't.missing'" in text
    assert "/nodes/3/id duplicate node id 'n1'" in text
    assert "/nodes/0/ports/0/name" in text and "has a value for 'zzz', but its nodespec 't.inc' has no input port" in text
    assert "/links/0/source" in text and "no output port 'nope'" in text
    assert "/links/1/source" in text and "from an output to an input" in text
    assert "/links/2/target" in text and "is an output port" in text
    assert "/links/3/source unknown node 'ghost'" in text


def test_two_links_into_one_input():
    doc = flow([("n1", "t.inc"), ("n2", "t.inc"), ("n3", "t.inc")], [("n1:out", "n3:a"), ("n2:out", "n3:a")])
    _, problems = analyze_flow(doc, SPECS)
    assert problems[0]["path"] == "/links/1/target"
    assert "already has a link from 'n1:out'" in problems[0]["message"]


def test_cycle_names_its_nodes():
    doc = flow([("a", "t.inc"), ("b", "t.inc"), ("c", "t.inc"), ("d", "t.inc")],
               [("a:out", "b:a"), ("b:out", "c:a"), ("c:out", "a:a"), ("c:out", "d:a")])
    _, problems = analyze_flow(doc, SPECS)
    assert len(problems) == 1 and problems[0]["path"] == "/links"
    cycle = problems[0]["message"].split(": ", 1)[1].split(" -> ")
    assert set(cycle) == {"a", "b", "c"} and "d" not in cycle


def test_schema_problems_stop_before_graph_checks():
    graph, problems = analyze_flow({"id": "bad id", "nodes": "x"}, SPECS)
    assert graph is None
    assert {p["path"] for p in problems} >= {"/id", "/nodes", ""}


def test_original_quirks_are_valid(compat_bundle):
    specs = {k: parse_nodespec(v) for k, v in compat_bundle["nodespec"].items()}
    for doc in compat_bundle["flow"].values():
        assert analyze_flow(doc, specs)[1] == []


def test_order_puts_every_node_after_its_sources_layer_by_layer_and_sinks_feed_nothing():
    from pyflow.model.flow import link_table, topological_order
    # d <- b <- a, d <- c <- a (d twice from b), e alone; listed out of order on purpose
    inbound = {"d": {"x": ("b", "out"), "y": ("c", "out"), "z": ("b", "other")}, "b": {"x": ("a", "out")},
               "c": {"x": ("a", "out")}, "a": {}, "e": {}}
    links = link_table(inbound, inbound)
    order = topological_order(links)
    assert order[:2] == ["a", "e"] and order[2:4] == ["b", "c"] and order[4] == "d"
    assert links.indegree == {"d": 2, "b": 1, "c": 1, "a": 0, "e": 0}
    assert {n: links.successors_of(n) for n in inbound} == {"a": ["b", "c"], "b": ["d"], "c": ["d"], "d": [], "e": []}
    cycle = {"x": {"in": ("y", "out")}, "y": {"in": ("x", "out")}, "z": {}}
    assert topological_order(link_table(cycle, cycle)) == ["z"]  # short: a cycle
    graph, _ = analyze_flow(flow([("n1", "t.inc"), ("n2", "t.inc"), ("n3", "t.inc")], [("n1:out", "n2:a")]), SPECS)
    assert graph.sinks() == ["n2", "n3"] and graph.order.index("n1") < graph.order.index("n2")
