"""The flow save path's fast check (model/quickcheck.py) against a compiled schema validator.

The hand-written check earns its place only while it is at least 3x faster than fastjsonschema compiled
from the same flow.schema.json, on the flows the editor saves (10 to 10,000 nodes, a chain of typical
nodes). jsonschema itself, which words the problems when the fast check says no, is shown for scale.
"""

from __future__ import annotations

import time

from . import busy_warning, table, verdict

SIZES = (10, 100, 1_000, 10_000)
GOAL = 3.0


def flow_of(size: int) -> dict:
    """A chain of `size` nodes in the editor's shape: names, two port values, pixel positions."""
    nodes = [{"id": f"n{i}", "spec_id": "pyflow.math.add", "name": "Add", "ui": {"x": f"{40 * i}px", "y": 40},
              "ports": [{"name": "a", "value": "1"}, {"name": "b", "value": 2}]} for i in range(size)]
    links = [{"source": f"n{i - 1}:out", "target": f"n{i}:a"} for i in range(1, size)]
    return {"id": "bench.flow", "name": "Bench", "nodes": nodes, "links": links}


def compiled_validator():
    """fastjsonschema's code for flow.schema.json, its references to the other schemas resolved locally."""
    import fastjsonschema

    from pyflow.model.validation import SCHEMA_NAMES, load_schema
    schemas = {f"https://pyflow.dev/schemas/{name}.schema.json": load_schema(name) for name in SCHEMA_NAMES}
    return fastjsonschema.compile(load_schema("flow"), handlers={"https": lambda uri: schemas[uri.split("#")[0]]},
                                  use_formats=False)


def best_us(check, doc, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        check(doc)
        best = min(best, time.perf_counter() - started)
    return best * 1e6


def main() -> None:
    from pyflow.model.quickcheck import flow_certainly_valid
    from pyflow.model.validation import validator
    compiled = compiled_validator()
    rows, ratios = [], []
    for size in SIZES:
        doc = flow_of(size)
        assert flow_certainly_valid(doc), "the benchmark's flow must be one the fast check accepts"
        rounds = 30 if size <= 1_000 else 5
        hand, fast = best_us(flow_certainly_valid, doc, rounds), best_us(compiled, doc, rounds)
        full = best_us(lambda d: list(validator("flow").iter_errors(d)), doc, max(2, rounds // 10))
        ratios.append(fast / hand)
        rows.append([f"{size:,} nodes", hand / size, fast / size, full / size, f"{fast / hand:.1f}x"])
    print(table(["flow", "hand check us/node", "fastjsonschema us/node", "jsonschema us/node", "fastjsonschema/hand"],
                rows, "Flow save path: certainly-valid check, best of several rounds"))
    print(verdict(f"the hand check is at least {GOAL:g}x faster than a compiled validator at every size",
                  min(ratios) >= GOAL, f"lowest ratio {min(ratios):.1f}x"))
    warning = busy_warning()
    if warning:
        print(warning)
