"""Small builders for engine tests: nodespecs and flows from Python source snippets."""

from pyflow.model.nodespec import parse_nodespec


def spec(spec_id, func, inputs=(), outputs=None, cache=True, limits=None):
    doc = {"id": spec_id, "title": spec_id, "func": func, "cache": cache,
           "port": {"input": [p if isinstance(p, dict) else {"name": p, "order": i} for i, p in enumerate(inputs)]}}
    if outputs is not None:
        doc["port"]["output"] = [o if isinstance(o, dict) else {"name": o} for o in outputs]
    if limits:
        doc["limits"] = limits
    return parse_nodespec(doc)


def flow(nodes, links=(), flow_id="f"):
    """nodes: [(id, spec_id, {port: value}, is_end?)]; links: [("a:out", "b:x")]."""
    docs = []
    for entry in nodes:
        node_id, spec_id, values = entry[:3]
        doc = {"id": node_id, "spec_id": spec_id, "name": node_id,
               "ports": [{"name": k, "value": v} for k, v in (values or {}).items()]}
        if len(entry) > 3 and entry[3]:
            doc["is_end"] = 1
        docs.append(doc)
    return {"id": flow_id, "name": flow_id, "nodes": docs,
            "links": [{"source": s, "target": t} for s, t in links]}


INC = spec("t.inc", "def func(a):\n    return a + 1\n", [{"name": "a", "type": "Int", "required": True}],
           [{"name": "out", "type": "Int"}])
ADD = spec("t.add", "def func(a, b):\n    return a + b\n", [{"name": "a", "type": "Int"}, {"name": "b", "type": "Int"}],
           [{"name": "out", "type": "Int"}])
FAIL = spec("t.fail", "def func(a):\n    raise ValueError('bad ' + str(a))\n", ["a"])
SLEEP = spec("t.sleep", "import time\ndef func(s):\n    time.sleep(float(s))\n    return s\n", ["s"])
PAIR = spec("t.pair", "def func(a):\n    return {'x': a, 'y': -a}\n", [{"name": "a", "type": "Int"}],
            [{"name": "x", "type": "Int"}, {"name": "y", "type": "Int"}])
SPECS = {s.id: s for s in (INC, ADD, FAIL, SLEEP, PAIR)}


class DictCache:
    """A result cache in a dict: what the runner needs of one."""

    def __init__(self):
        self.records = {}

    def get_many(self, keys):
        return {k: self.records[k] for k in keys if k in self.records}

    def put(self, key, record):
        self.records[key] = record


def boundary(node_id, kind, name, **extra):
    ports = [{"name": "name", "value": name}] + [{"name": k, "value": v} for k, v in extra.items()]
    return {"id": node_id, "spec_id": f"pyflow.flow.{kind}", "ports": ports}


def wrapper(flow_id, inner_spec, values=None):
    """A flow with input x, one node of `inner_spec` fed from it (port a), and output y."""
    node = {"id": "step", "spec_id": inner_spec, "ports": [{"name": k, "value": v} for k, v in (values or {}).items()]}
    return {"id": flow_id, "nodes": [boundary("x", "input", "x", type="Int"), node, boundary("y", "output", "y")],
            "links": [{"source": "x:out", "target": "step:a"}, {"source": "step:out", "target": "y:value"}]}
