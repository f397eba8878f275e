"""pyflow.SKIP (pyflow/markers.py): the marker that ends a branch, as every executor carries it."""

import json

from pyflow import SKIP
from pyflow.markers import is_skip


def test_the_marker_is_the_json_object_every_executor_carries():
    assert json.loads(json.dumps(SKIP)) == {"$pyflow": "skip"} and is_skip({"$pyflow": "skip"}) and is_skip(SKIP)
    assert repr(SKIP) == "pyflow.SKIP"


def test_nothing_else_is_the_marker():
    for value in ({"$pyflow": "skip", "x": 1}, "skip", {"$pyflow": "SKIP"}, [SKIP], None, {}):
        assert not is_skip(value)
