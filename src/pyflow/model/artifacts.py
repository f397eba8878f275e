"""Artifact references: how a value that is not JSON (an array, a table, an image, any picklable object)
is named wherever node results travel (outputs, events, run history, the result cache).

A reference is `{"$artifact": {"digest", "type", "format", "size", "summary", "thumbnail"}}`: metadata,
never the bytes, which stay in the artifact store (storage/artifacts.py) and are only ever loaded inside
a downstream node's sandbox. In the engine a reference is an `ArtifactRef` (a dict, so it stores and
streams as JSON unchanged); a plain dict of the same shape coming from a node or a flow is not one, which
is what keeps a node from naming another run's artifact: the host refuses such a JSON value, and only
references the server made itself, or read back from its own storage, become `ArtifactRef`s again.
"""

from __future__ import annotations

import re
from typing import Any

ARTIFACT_KEY = "$artifact"
DIGEST = re.compile(r"^[0-9a-f]{64}$")  # sha256, hex, computed by the server

# format -> (file extension, content type of the raw download)
FORMATS = {
    "npy": ("npy", "application/x-npy"),
    "arrow": ("arrow", "application/vnd.apache.arrow.file"),
    "png": ("png", "image/png"),
    "pickle": ("pickle", "application/octet-stream"),
}
# Which stored types each rich port type takes: (top-level module, class name) of the producing value
# (libraries move their classes between submodules: pandas.DataFrame, pandas.core.frame.DataFrame).
ARRAY_TYPES = (("numpy", "ndarray"),)
TABLE_TYPES = (("pandas", "DataFrame"), ("pyarrow", "Table"))


class ArtifactRef(dict):
    """A reference the server made: {"$artifact": metadata}. Only these are bound into sandboxes."""

    @property
    def meta(self) -> dict:
        return self[ARTIFACT_KEY]

    @property
    def digest(self) -> str:
        return self.meta["digest"]

    @property
    def format(self) -> str:
        return self.meta["format"]

    @property
    def type(self) -> str:
        return self.meta["type"]


def make_ref(meta: dict) -> ArtifactRef:
    return ArtifactRef({ARTIFACT_KEY: dict(meta)})


def is_reference_shape(value: Any) -> bool:
    """A dict shaped like a reference (an ArtifactRef, or a forged one)."""
    return isinstance(value, dict) and ARTIFACT_KEY in value


def trusted_ref(value: Any) -> ArtifactRef | None:
    """A reference read back from the server's own storage, checked for shape; None when it is none."""
    if isinstance(value, ArtifactRef):
        return value
    if not is_reference_shape(value) or len(value) != 1:
        return None
    meta = value[ARTIFACT_KEY]
    if (not isinstance(meta, dict) or not isinstance(meta.get("digest"), str) or not DIGEST.match(meta["digest"])
            or meta.get("format") not in FORMATS or not isinstance(meta.get("type"), str)):
        return None
    return make_ref(meta)


def revive_outputs(outputs: dict) -> dict:
    """Outputs read back from storage (the result cache), with their references made live again."""
    return {name: trusted_ref(value) or value for name, value in outputs.items()}


def port_accepts(port_type: str, ref: ArtifactRef) -> bool:
    """Whether an artifact may enter a port of `port_type` (Any and Object take every one)."""
    if port_type in ("Any", "Object"):
        return True
    kind = (ref.type.split(".", 1)[0], ref.type.rsplit(".", 1)[-1])
    if port_type == "Array":
        return kind in ARRAY_TYPES
    if port_type == "DataFrame":
        return kind in TABLE_TYPES
    if port_type == "Image":
        return ref.format == "png"
    return False


def summary(kind: str, fmt: str, size: int, preview: dict | None) -> str:
    """The one-line summary the editor and `pyflow runs show` print: `DataFrame 1,000 x 5`,
    `ndarray 100 x 3 float64`, `Image 640 x 480`, else the type's name and size."""
    short = kind.rsplit(".", 1)[-1]
    preview = preview or {}
    table, array, image = preview.get("table"), preview.get("array"), preview.get("image")
    try:
        if isinstance(table, dict):
            return f"{short} {int(table['rows']):,} x {len(table['columns']):,}"
        if isinstance(array, dict):
            shape = " x ".join(f"{int(n):,}" for n in array["shape"]) or "scalar"
            return f"{short} {shape} {array['dtype']}"[:120]
        if isinstance(image, dict):
            return f"Image {int(image['width']):,} x {int(image['height']):,}"
        if "length" in preview:
            return f"{short} of {int(preview['length']):,}"[:120]
    except (KeyError, TypeError, ValueError):
        pass
    return f"{short} ({_size(size)})"[:120]


def _size(size: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:,} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)
