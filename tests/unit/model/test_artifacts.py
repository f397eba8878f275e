"""Artifact references: which ports take them, what a stored one must look like, their summaries."""

from __future__ import annotations

import pytest

from pyflow.model.artifacts import ArtifactRef, make_ref, revive_outputs, summary, trusted_ref
from pyflow.model.types import ConversionError, convert, link_compatible

DIGEST = "a" * 64


def ref(kind: str, fmt: str = "pickle") -> ArtifactRef:
    return make_ref({"digest": DIGEST, "type": kind, "format": fmt, "size": 10, "summary": "x", "thumbnail": False})


@pytest.mark.parametrize("port, kind, fmt, ok", [
    ("Any", "builtins.set", "pickle", True),
    ("Object", "builtins.set", "pickle", True),
    ("Array", "numpy.ndarray", "npy", True),
    ("Array", "builtins.set", "pickle", False),
    ("DataFrame", "pandas.core.frame.DataFrame", "arrow", True),
    ("DataFrame", "pandas.DataFrame", "pickle", True),
    ("DataFrame", "pyarrow.lib.Table", "arrow", True),
    ("DataFrame", "numpy.ndarray", "npy", False),
    ("Image", "PIL.Image.Image", "png", True),
    ("Image", "builtins.bytes", "pickle", False),
    ("Int", "numpy.ndarray", "npy", False),
    ("String", "builtins.set", "pickle", False),
    ("Json", "builtins.set", "pickle", False),
    ("List", "builtins.set", "pickle", False),
])
def test_which_ports_take_an_artifact(port, kind, fmt, ok):
    artifact = ref(kind, fmt)
    if ok:
        assert convert(port, artifact) is artifact
    else:
        with pytest.raises(ConversionError, match=f"an artifact of type {kind} cannot be a {port}"):
            convert(port, artifact)


def test_json_values_into_rich_ports():
    assert convert("Object", {"a": 1}) == {"a": 1}
    assert convert("Array", "1,2") == ["1", "2"] and convert("Array", [1, 2]) == [1, 2]
    assert convert("DataFrame", [{"a": 1}]) == [{"a": 1}]
    for port, value in (("DataFrame", 3), ("Image", "picture.png")):
        with pytest.raises(ConversionError):
            convert(port, value)


def test_link_rules_of_the_rich_types():
    assert link_compatible("Image", "Object") and link_compatible("Json", "Object") and link_compatible("List", "Array")
    assert link_compatible("Any", "Image") and not link_compatible("Image", "Array")
    assert not link_compatible("DataFrame", "Json")


@pytest.mark.parametrize("stored", [
    {"$artifact": {"digest": "../../etc/passwd", "type": "x", "format": "pickle"}},
    {"$artifact": {"digest": DIGEST, "type": "x", "format": "exe"}},
    {"$artifact": {"digest": DIGEST, "format": "pickle"}},
    {"$artifact": {"digest": DIGEST, "type": "x", "format": "pickle"}, "extra": 1},
    {"$artifact": [DIGEST]},
    {"digest": DIGEST},
])
def test_only_well_formed_stored_references_are_revived(stored):
    assert trusted_ref(stored) is None
    assert revive_outputs({"out": stored}) == {"out": stored}


def test_a_stored_reference_is_revived():
    revived = revive_outputs({"out": {"$artifact": {"digest": DIGEST, "type": "builtins.set", "format": "pickle"}}})
    assert isinstance(revived["out"], ArtifactRef) and revived["out"].digest == DIGEST


@pytest.mark.parametrize("kind, preview, expected", [
    ("pandas.DataFrame", {"table": {"rows": 1000, "columns": list("abcde")}}, "DataFrame 1,000 x 5"),
    ("numpy.ndarray", {"array": {"shape": [100, 3], "dtype": "float32"}}, "ndarray 100 x 3 float32"),
    ("PIL.Image.Image", {"image": {"width": 640, "height": 480}}, "Image 640 x 480"),
    ("builtins.set", {"length": 3}, "set of 3"),
    ("__pyflow_node__.Point", {}, "Point (2.0 KB)"),
    ("builtins.set", {"table": {"rows": "x"}}, "set (2.0 KB)"),
])
def test_summaries(kind, preview, expected):
    assert summary(kind, "pickle", 2048, preview) == expected
