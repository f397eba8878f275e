"""Node outputs as the REST API and the command line show them, and the artifact collector.

An output is either a JSON value, answered as it is, or an artifact reference, answered with the
artifact's metadata and its checked preview (storage/previews.py); the raw file is streamed on request
with the content type of its format. Nothing here loads an artifact: the server never unpickles or
parses a value a node made.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from ..model.artifacts import FORMATS, trusted_ref
from ..model.errors import NotFound, detail
from ..storage.artifacts import ArtifactStore

log = logging.getLogger(__name__)


@dataclass
class RawArtifact:
    path: Path
    content_type: str
    filename: str
    inline: bool


def open_store(config) -> ArtifactStore:
    """The artifact store `config` names (a directory, or an fsspec URL with its local cache)."""
    return ArtifactStore(config.artifacts_dir, config.artifacts_bytes, config.artifacts_cache_dir)


def find_output(run: dict, node_id: str, port: str):
    """The value of output `port` of node `node_id` in a stored run; NotFound naming what is missing."""
    for node in run.get("nodes") or []:
        if node.get("id") == node_id:
            outputs = node.get("outputs") or {}
            if port not in outputs:
                raise NotFound(f"node {node_id!r} of run {run['id']!r} has no output {port!r}",
                               [detail("/port", f"outputs: {', '.join(sorted(outputs)) or 'none'}")])
            return outputs[port]
    raise NotFound(f"run {run['id']!r} has no node {node_id!r}", [detail("/node", "no such node in the run")])


def describe_output(store: ArtifactStore, value) -> dict:
    """{"kind": "json", "value"} or {"kind": "artifact", "artifact": metadata, "preview": checked preview}."""
    ref = trusted_ref(value)
    if ref is None:
        return {"kind": "json", "value": value}
    available = store.exists(ref.digest, ref.format)
    return {"kind": "artifact", "artifact": {**ref.meta, "available": available},
            "preview": (store.preview(ref.digest) if available else None) or {}}


def raw_output(store: ArtifactStore, value, name: str, thumbnail: bool = False) -> RawArtifact:
    """The artifact file (or its thumbnail) behind an output, to stream; NotFound when the output is
    JSON or the artifact was collected."""
    ref = trusted_ref(value)
    if ref is None:
        raise NotFound("this output is a JSON value, not an artifact", [detail("/raw", "read the value without ?raw")])
    ext, content_type = FORMATS[ref.format]
    if thumbnail:
        path = store.data_path(ref.digest, ref.format).with_suffix(".thumb.png")
        ext, content_type = "png", "image/png"
    else:
        path = store.data_path(ref.digest, ref.format)
    if not path.is_file():
        raise NotFound("the artifact is no longer stored (collected, or never had a thumbnail)",
                       [detail("/raw", f"artifact {ref.digest}")])
    return RawArtifact(path, content_type, f"{name}.{ext}", inline=content_type == "image/png")


def cached_usable(store: ArtifactStore):
    """A check for cached results: a record naming an artifact that was collected is not used."""
    def usable(record: dict) -> bool:
        for value in (record.get("outputs") or {}).values():
            ref = trusted_ref(value)
            if ref is not None and not store.exists(ref.digest, ref.format):
                return False
        return True
    return usable


def collect(store: ArtifactStore, referenced: set[str]) -> dict:
    """Remove the artifacts nothing references any more; logs what it did."""
    done = store.collect(referenced)
    if done["removed"]:
        log.info("artifact collector removed %d artifact(s), %d MB", done["removed"], done["freed_bytes"] >> 20)
    return done
