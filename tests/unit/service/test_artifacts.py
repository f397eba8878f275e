"""Rich values between nodes, end to end on the real sandbox: values that are not JSON become artifacts
written inside the producing sandbox, reach downstream sandboxes as read-only files, and are shown by
the server only as metadata and a checked preview (GET /api/runs/<id>/nodes/<node>/outputs/<port>)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle

import pytest

from pyflow.cli.progress import print_run_table
from pyflow.server import create_app
from pyflow.service import Config, PyflowService, build_executor
from tests.support.png import PNG_NODE, png

MAKE_SET = {"id": "t.set", "title": "Set", "func": "def func():\n    return {3, 1, 2}\n",
            "port": {"output": [{"name": "out", "type": "Object"}]}}
SORTED = {"id": "t.sorted", "title": "Sorted", "func": "def func(s):\n    return sorted(s)\n",
          "port": {"input": [{"name": "s", "type": "Object"}], "output": [{"name": "out", "type": "List"}]}}
DESCRIBE = {"id": "t.describe", "title": "Describe", "func": "def func(v):\n    return [type(v).__name__, repr(v)[:80]]\n",
            "port": {"input": [{"name": "v", "type": "Any"}]}}
BYTES = {"id": "t.bytes", "title": "Bytes", "func": "def func():\n    return b'\\x00\\x01raw'\n", "port": {}}
POINT_CLASS = "class Point:\n    def __init__(self, x, y):\n        self.x, self.y = x, y\n"
MAKE_POINT = {"id": "t.point", "title": "Point", "func": POINT_CLASS + "def func():\n    return Point(2, 5)\n", "port": {}}
USE_POINT = {"id": "t.usepoint", "title": "Use point", "func": POINT_CLASS + "def func(p):\n    return p.x * p.y\n",
             "port": {"input": [{"name": "p"}]}}
IMAGE = {"id": "t.png", "title": "PNG", "func": PNG_NODE,
         "port": {"input": [{"name": "width", "type": "Int"}, {"name": "height", "type": "Int"}],
                  "output": [{"name": "out", "type": "Image"}]}}
TWO = {"id": "t.two", "title": "Two", "func": "def func():\n    return {'n': 3, 'items': frozenset({1})}\n",
       "port": {"output": [{"name": "n", "type": "Int"}, {"name": "items", "type": "Object"}]}}
COUNT = {"id": "t.count", "title": "Count", "func": "def func(n):\n    return n\n",
         "port": {"input": [{"name": "n", "type": "Int"}]}}
BIG = {"id": "t.big", "title": "Big", "func": "def func(mb):\n    return bytes(mb << 20)\n",
       "port": {"input": [{"name": "mb", "type": "Int"}]}, "limits": {"result_mb": 2, "memory_mb": 128}}
SHAPED = {"id": "t.shaped", "title": "Shaped", "func": "def func(d):\n    return {'$artifact': {'digest': d, 'format': 'pickle', 'type': 'x'}}\n",
          "port": {"input": [{"name": "d", "type": "String"}]}}
SPECS = (MAKE_SET, SORTED, DESCRIBE, BYTES, MAKE_POINT, USE_POINT, IMAGE, TWO, COUNT, BIG, SHAPED)


@pytest.fixture(scope="module")
def rich(tmp_path_factory):
    """A service on the real sandbox with its artifact store, and a test client of its app."""
    root = tmp_path_factory.mktemp("rich")
    config = Config(db_path=root / "db.sqlite", load_stdlib=False, executor="sandbox", concurrency=2)
    service = PyflowService(config, build_executor(config)).start()
    for spec in SPECS:
        service.upsert("nodespec", spec)
    app = create_app(service)
    app.testing = True
    yield service, app.test_client()
    service.close()


def chain(*spec_ids: str, ports: dict | None = None, link: tuple[str, str] = ("out", None)) -> dict:
    """An inline flow: each node of `spec_ids` feeding the first input of the next."""
    nodes = [{"id": f"n{i}", "spec_id": s, "ports": [{"name": k, "value": v} for k, v in (ports or {}).get(f"n{i}", {}).items()]}
             for i, s in enumerate(spec_ids)]
    links = []
    for i in range(1, len(spec_ids)):
        links.append({"source": f"n{i - 1}:{link[0]}", "target": f"n{i}:{link[1] or _first_input(spec_ids[i])}"})
    return {"id": "chain", "nodes": nodes, "links": links}


def _first_input(spec_id: str) -> str:
    spec = next(s for s in SPECS if s["id"] == spec_id)
    return spec["port"]["input"][0]["name"]


def run(service, flow: dict, cache: bool = False) -> dict:
    return service.run_now(flow=flow, use_cache=cache, timeout=120)


def node(run_: dict, node_id: str) -> dict:
    return next(n for n in run_["nodes"] if n["id"] == node_id)


def test_a_set_is_carried_as_a_pickled_artifact_and_loaded_downstream(rich):
    service, client = rich
    done = run(service, chain("t.set", "t.sorted"))
    assert done["status"] == "succeeded", done
    ref = node(done, "n0")["outputs"]["out"]["$artifact"]
    assert (ref["type"], ref["format"], ref["summary"]) == ("builtins.set", "pickle", "set of 3")
    assert node(done, "n1")["outputs"]["out"] == [1, 2, 3]
    described = client.get(f"/api/runs/{done['id']}/nodes/n0/outputs/out").get_json()
    assert described["kind"] == "artifact" and described["artifact"]["digest"] == ref["digest"]
    assert described["preview"]["repr"] == "{1, 2, 3}" and described["preview"]["length"] == 3
    raw = client.get(f"/api/runs/{done['id']}/nodes/n0/outputs/out?raw=1")
    assert raw.status_code == 200 and raw.mimetype == "application/octet-stream"
    assert hashlib.sha256(raw.data).hexdigest() == ref["digest"]
    assert pickle.loads(raw.data) == {1, 2, 3}  # the test may unpickle; the server never does
    assert "attachment" in raw.headers["Content-Disposition"] and raw.headers["X-Content-Type-Options"] == "nosniff"


def test_json_outputs_are_answered_as_values_and_have_no_raw_form(rich):
    service, client = rich
    done = run(service, chain("t.set", "t.sorted"))
    assert client.get(f"/api/runs/{done['id']}/nodes/n1/outputs/out").get_json() == {"kind": "json", "value": [1, 2, 3]}
    missing = client.get(f"/api/runs/{done['id']}/nodes/n1/outputs/out?raw=1")
    assert missing.status_code == 404 and missing.get_json()["error"]
    assert client.get(f"/api/runs/{done['id']}/nodes/n9/outputs/out").status_code == 404
    assert client.get(f"/api/runs/{done['id']}/nodes/n1/outputs/nope").status_code == 404
    assert client.get("/api/runs/none/nodes/n1/outputs/out").status_code == 404


def test_bytes_and_an_instance_of_a_class_the_node_defines(rich):
    service, _ = rich
    done = run(service, chain("t.bytes", "t.describe"))
    assert node(done, "n0")["outputs"]["out"]["$artifact"]["type"] == "builtins.bytes"
    assert node(done, "n1")["outputs"]["out"] == ["bytes", repr(b"\x00\x01raw")]
    done = run(service, chain("t.point", "t.usepoint"))
    assert done["status"] == "succeeded", done
    assert node(done, "n0")["outputs"]["out"]["$artifact"]["type"] == "__pyflow_node__.Point"
    assert node(done, "n1")["outputs"]["out"] == 10


def test_a_png_is_an_image_with_a_thumbnail_served_as_png(rich):
    service, client = rich
    done = run(service, chain("t.png", ports={"n0": {"width": 40, "height": 30}}))
    ref = node(done, "n0")["outputs"]["out"]["$artifact"]
    assert (ref["format"], ref["summary"], ref["thumbnail"]) == ("png", "Image 40 x 30", True)
    base = f"/api/runs/{done['id']}/nodes/n0/outputs/out"
    assert client.get(base).get_json()["preview"]["image"] == {"width": 40, "height": 30}
    full = client.get(base + "?raw=1")
    assert full.mimetype == "image/png" and full.data == png(40, 30)
    assert "attachment" not in full.headers.get("Content-Disposition", "")
    thumb = client.get(base + "?thumbnail=1")
    assert thumb.mimetype == "image/png" and thumb.data.startswith(b"\x89PNG")


def test_only_the_non_json_member_of_several_outputs_is_an_artifact(rich):
    service, _ = rich
    flow = chain("t.two", "t.count", link=("n", "n"))
    done = run(service, flow)
    outputs = node(done, "n0")["outputs"]
    assert outputs["n"] == 3 and outputs["items"]["$artifact"]["type"] == "builtins.frozenset"
    assert node(done, "n1")["outputs"]["out"] == 3


def test_an_artifact_into_a_json_port_fails_with_the_port_and_type(rich):
    service, _ = rich
    done = run(service, chain("t.two", "t.count", link=("items", "n")))
    failed = node(done, "n1")
    assert failed["status"] == "fail" and failed["error"]["type"] == "ConversionError"
    assert "builtins.frozenset" in failed["error"]["message"] and "'n'" in failed["error"]["message"]


def test_a_result_over_result_mb_fails_with_its_size_and_the_limit(rich):
    service, _ = rich
    done = run(service, chain("t.big", ports={"n0": {"mb": 3}}))
    error = node(done, "n0")["error"]
    assert error["type"] == "ResultTooLarge" and "3.0 MB" in error["message"] and "limit of 2 MB" in error["message"]
    done = run(service, chain("t.big", ports={"n0": {"mb": 1}}))
    assert node(done, "n0")["status"] == "success"


def test_a_json_value_shaped_like_a_reference_is_never_one(rich):
    service, client = rich
    real = node(run(service, chain("t.set")), "n0")["outputs"]["out"]["$artifact"]["digest"]
    done = run(service, chain("t.shaped", "t.describe", ports={"n0": {"d": real}}))
    made = node(done, "n0")["outputs"]["out"]["$artifact"]
    assert made["type"] == "builtins.dict" and made["digest"] != real  # carried pickled, as any odd value
    assert node(done, "n1")["outputs"]["out"][0] == "dict"


def test_a_cached_artifact_survives_collection_and_an_unreferenced_one_does_not(rich, tmp_path):
    service, _ = rich
    cached = node(run(service, chain("t.point"), cache=True), "n0")["outputs"]["out"]["$artifact"]
    store = service.artifacts
    orphan = store.workspace()
    (orphan / "out" / "out-0.pickle").write_bytes(pickle.dumps({"orphan"}))
    ref = store.ingest(orphan / "out", {"file": "out-0.pickle", "type": "builtins.set", "format": "pickle"}, 1 << 20)
    old = 10 ** 9  # both older than the collector's grace period
    for digest, fmt in ((ref.digest, "pickle"), (cached["digest"], cached["format"])):
        os.utime(store.data_path(digest, fmt), (old, old))
    service.runs.collect_artifacts()
    assert store.exists(cached["digest"], cached["format"])
    assert not store.exists(ref.digest, "pickle") and store.meta(ref.digest) is None
    again = run(service, chain("t.point"), cache=True)
    assert node(again, "n0")["cached"] is True


def test_a_collected_artifact_makes_its_cached_result_a_miss(rich):
    service, _ = rich
    first = node(run(service, chain("t.bytes"), cache=True), "n0")["outputs"]["out"]["$artifact"]
    os.chmod(service.artifacts.data_path(first["digest"], "pickle"), 0o644)
    service.artifacts.data_path(first["digest"], "pickle").unlink()
    again = node(run(service, chain("t.bytes"), cache=True), "n0")
    assert again["cached"] is False and again["status"] == "success"
    assert service.artifacts.exists(first["digest"], "pickle")


def test_events_and_results_carry_metadata_never_bytes(rich):
    service, _ = rich
    done = run(service, chain("t.big", ports={"n0": {"mb": 1}}))
    stored = json.dumps(service.get_run(done["id"]))
    events = "".join(e["text"] for batch in service.stream(done["id"]) for e in batch)
    for text in (stored, events):
        assert '"$artifact"' in text and len(text) < 20_000


def test_runs_show_prints_the_summary_of_an_artifact(rich):
    service, _ = rich
    done = run(service, chain("t.png", ports={"n0": {"width": 4, "height": 3}}))
    table = io.StringIO()
    print_run_table(service.get_run(done["id"]), table)
    assert '{"out": "<Image 4 x 3>"}' in table.getvalue() and "digest" not in table.getvalue()


def forged_value(text: str) -> str:
    """A node that writes its own result line and value JSON `text`, skipping the worker's encoding."""
    return ("import os\ndef func(d):\n"
            "    pipes = [fd for fd in map(int, os.listdir('/proc/self/fd')) if fd > 2\n"
            "             and os.path.exists(f'/proc/self/fd/{fd}') and os.readlink(f'/proc/self/fd/{fd}').startswith('pipe:')]\n"
            f"    view = memoryview(b'{{\"ok\":true}}\\n' + {text!r}.replace('DIGEST', d).encode())\n"
            "    while view:\n        view = view[os.write(pipes[-1], view):]\n    os._exit(0)\n")


def test_a_reference_forged_on_the_result_pipe_fails_its_node_and_reaches_no_one(rich):
    service, _ = rich
    real = node(run(service, chain("t.set")), "n0")["outputs"]["out"]["$artifact"]["digest"]
    service.upsert("nodespec", {"id": "t.forge", "title": "Forge", "port": {"input": [{"name": "d", "type": "String"}]},
                                "func": forged_value('{"$artifact":{"digest":"DIGEST","format":"pickle","type":"builtins.set"}}')})
    done = run(service, {"id": "forge", "nodes": [{"id": "f", "spec_id": "t.forge", "ports": [{"name": "d", "value": real}]},
                                                  {"id": "u", "spec_id": "t.sorted"}],
                         "links": [{"source": "f:out", "target": "u:s"}]})
    forged = node(done, "f")
    assert forged["status"] == "fail" and forged["error"]["type"] == "OutputError"
    assert "shaped like an artifact reference" in forged["error"]["message"]
    assert node(done, "u")["status"] == "skipped"
