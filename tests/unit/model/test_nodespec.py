from pyflow.model.nodespec import check_nodespec, parse_nodespec

GOOD = {"id": "t.add", "title": "Add", "func": "def func(a, b):\n    return a + b\n",
        "port": {"input": [{"name": "a", "order": 0, "type": "Int"}, {"name": "b", "order": 1, "type": "Int"}]}}


def paths(problems):
    return {p["path"] for p in problems}


def test_valid_spec_without_outputs_gets_out():
    assert check_nodespec(GOOD) == []
    spec = parse_nodespec(GOOD)
    assert [p.name for p in spec.outputs] == ["out"]
    assert [p.name for p in spec.inputs] == ["a", "b"]


def test_original_quirks_are_accepted():
    doc = {"id": "pyflow.transform.append", "title": "Append",
           "func": 'def func(a,b):\n\t"""\n    :params: a,b\n    """\n\treturn a + b',
           "port": {"input": [{"name": "b", "order": "1", "required": "true"}, {"name": "a", "order": "0"}]}}
    assert check_nodespec(doc) == []
    spec = parse_nodespec(doc)
    assert [p.name for p in spec.inputs] == ["a", "b"]  # ordered by "order", given as strings
    assert spec.inputs[1].required is True
    assert spec.inputs[0].type == "Any"


def test_syntax_error_reports_line_and_column():
    problems = check_nodespec({**GOOD, "func": "def func(a, b):\n    return a +\n"})
    assert problems == [{"path": "/func", "message": problems[0]["message"]}]
    assert "line 2" in problems[0]["message"] and "column" in problems[0]["message"]


def test_every_problem_is_listed_together():
    doc = {**GOOD, "port": {"input": [{"name": "a", "type": "Integer"}, {"name": "a", "type": "Int"}],
                            "output": [{"name": "x", "type": "Nope"}]}}
    found = paths(check_nodespec(doc))
    assert {"/port/input/0/type", "/port/input/1/name", "/port/output/0/type"} <= found


def test_missing_fields_and_bad_ids_are_reported():
    found = paths(check_nodespec({"id": "../etc", "port": {}}))
    assert {"", "/id"} <= found


def test_func_must_define_func_and_accept_its_inputs():
    assert "must define" in check_nodespec({**GOOD, "func": "def other(a, b):\n    pass\n"})[0]["message"]
    problems = check_nodespec({**GOOD, "func": "def func(a):\n    return a\n"})
    assert problems[0]["path"] == "/port/input" and "2 input ports" in problems[0]["message"]
    assert check_nodespec({**GOOD, "func": "def func(*args):\n    return sum(args)\n"}) == []


def test_source_is_never_executed(tmp_path):
    marker = tmp_path / "ran"
    doc = {**GOOD, "func": f"open({str(marker)!r}, 'w').write('x')\ndef func(a, b):\n    return 1\n"}
    assert check_nodespec(doc) == []
    assert not marker.exists()


def test_ids_the_rest_api_routes_are_reserved():
    problems = check_nodespec({**GOOD, "id": "tree"})
    assert problems[0]["path"] == "/id" and "reserved" in problems[0]["message"]
    assert check_nodespec({**GOOD, "id": "my.tree"}) == []


def test_a_signature_that_does_not_match_the_ports_is_refused_naming_the_parameters():
    one_port = {**GOOD, "port": {"input": [{"name": "celsius", "order": 0, "type": "Float"}]}}
    problems = check_nodespec({**one_port, "func": "def func(celsius, offset):\n    return celsius + offset\n"})
    assert [p["path"] for p in problems] == ["/port/input"]
    assert "'offset'" in problems[0]["message"] and "'celsius'" not in problems[0]["message"]
    problems = check_nodespec({**GOOD, "func": "def func(a, c):\n    return a\n"})
    messages = " ".join(p["message"] for p in problems)
    assert "'c'" in messages and "'b'" in messages
    problems = check_nodespec({**one_port, "func": "def func(celsius, *, scale):\n    return celsius\n"})
    assert "'scale'" in problems[0]["message"]


def test_defaults_and_catch_alls_let_ports_and_parameters_differ():
    one_port = {**GOOD, "port": {"input": [{"name": "celsius", "order": 0}]}}
    assert check_nodespec({**one_port, "func": "def func(celsius, offset=0):\n    return celsius\n"}) == []
    assert check_nodespec({**GOOD, "func": "def func(a, bee=1, **kwargs):\n    return a\n"}) == []
    assert check_nodespec({**GOOD, "func": "def func(a, *rest):\n    return a\n"}) == []
