"""Repository bundles ({"nodespec": {...}, "flow": {...}}) and their directory form for git.

The bundle is the original PyFlow's repo.json shape plus "format_version". The directory form keeps one
pretty-printed file per object (nodespecs/<id>.json, flows/<id>.json) with a stable key order so that
diffs stay small.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

from ..jsontext import has_lone_surrogate
from .errors import InvalidInput, detail, pointer
from .flow import analyze_flow
from .limits import parse_json
from .nodespec import NodeSpec, check_nodespec, parse_nodespec
from .subflow import with_flows
from .validation import schema_errors

FORMAT_VERSION = 2
IMPORT_MODES = ("merge", "replace")
MANIFEST = "pyflow-repository.json"
KIND_DIRS = {"nodespec": "nodespecs", "flow": "flows"}
KEY_ORDER = ("id", "title", "name", "description", "tags", "spec_id", "is_end", "ui", "port", "ports",
             "input", "output", "order", "type", "default", "required", "value", "limits", "image",
             "requirements", "cache", "func", "nodes", "links", "source", "target", "x", "y")


def check_import_mode(mode: Any) -> str:
    """`mode` when it is a way to import a bundle: merge (add and update) or replace (the bundle becomes
    the whole repository)."""
    if mode not in IMPORT_MODES:
        raise InvalidInput("bad import mode", [detail("/mode", f"mode must be merge or replace, not {mode!r}")])
    return mode


def empty_bundle() -> dict:
    return {"format_version": FORMAT_VERSION, "nodespec": {}, "flow": {}}


def check_bundle(bundle: Any, existing_specs: Mapping[str, NodeSpec] | None = None) -> list[dict]:
    """Every problem in a bundle. Flows are checked against the bundle's nodespecs plus `existing_specs`
    (the repository's, when merging)."""
    problems = schema_errors("bundle", bundle)
    if problems:
        return problems
    version = bundle.get("format_version", 1)
    if version > FORMAT_VERSION:
        return [detail("/format_version", f"format version {version} is newer than this server reads ({FORMAT_VERSION})")]
    specs = dict(existing_specs or {})
    for key, doc in bundle.get("nodespec", {}).items():
        found = check_nodespec(doc, ("nodespec", key)) + _key_problem(key, doc, "nodespec")
        problems += found
        if not found:
            specs[key] = parse_nodespec(doc)
    specs = with_flows(specs, [{**doc, "id": key} for key, doc in bundle.get("flow", {}).items()
                               if isinstance(doc, dict)])
    for key, doc in bundle.get("flow", {}).items():
        _, found = analyze_flow(doc, specs)
        problems += [detail(pointer("flow", key) + d["path"], d["message"]) for d in found]
        problems += _key_problem(key, doc, "flow")
    return problems


def _key_problem(key: str, doc: dict, kind: str) -> list[dict]:
    if isinstance(doc, dict) and doc.get("id") not in (None, key):
        return [detail(pointer(kind, key, "id"), f"id {doc.get('id')!r} differs from its key {key!r}")]
    return []


def ordered(value: Any) -> Any:
    """Reorder dict keys: well-known keys in a fixed order, then the rest alphabetically."""
    if isinstance(value, dict):
        rank = {k: i for i, k in enumerate(KEY_ORDER)}
        keys = sorted(value, key=lambda k: (rank.get(k, len(rank)), k))
        return {k: ordered(value[k]) for k in keys}
    if isinstance(value, list):
        return [ordered(v) for v in value]
    return value


def dumps_object(doc: dict) -> str:
    """The directory form's text for one object: pretty, stable key order, trailing newline; non-ASCII
    characters escaped only when a lone surrogate leaves no UTF-8 form (see pyflow.jsontext)."""
    text = json.dumps(ordered(doc), indent=2, ensure_ascii=False)
    return (json.dumps(ordered(doc), indent=2) if has_lone_surrogate(text) else text) + "\n"


def write_atomic(path: Path, text: str) -> None:
    """Write through a temporary file and rename, so a crash never leaves a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_directory(bundle: dict, root: Path) -> None:
    """Write `bundle` as a directory; files of objects no longer in the bundle are removed."""
    root = Path(root)
    write_atomic(root / MANIFEST, json.dumps({"format_version": FORMAT_VERSION}, indent=2) + "\n")
    for kind, dirname in KIND_DIRS.items():
        folder = root / dirname
        folder.mkdir(parents=True, exist_ok=True)
        wanted = {f"{key}.json" for key in bundle.get(kind, {})}
        for stale in folder.glob("*.json"):
            if stale.name not in wanted:
                stale.unlink()
        for key, doc in bundle.get(kind, {}).items():
            write_atomic(folder / f"{key}.json", dumps_object(doc))


def read_directory(root: Path) -> dict:
    """Read a directory-form repository into a bundle; unreadable files are reported all together."""
    root = Path(root)
    if not root.is_dir():
        raise InvalidInput(f"{root} is not a directory", [detail("/", "not a directory")])
    bundle = empty_bundle()
    problems = []
    for kind, dirname in KIND_DIRS.items():
        for path in sorted((root / dirname).glob("*.json")):
            try:
                bundle[kind][path.stem] = parse_json(path.read_bytes(), path.name, base=pointer(kind, path.stem))
            except OSError as exc:
                problems.append(detail(pointer(kind, path.stem), f"{path.name}: {exc}"))
            except InvalidInput as exc:
                problems += [{**d, "message": f"{exc.message}: {d['message']}"} for d in exc.details]
    if problems:
        raise InvalidInput("unreadable repository files", problems)
    return bundle


def load_bundle_file(path: Path) -> dict:
    """Read a bundle file or a directory-form repository (or any one JSON document: a nodespec, a
    flow), within the nesting limit."""
    path = Path(path)
    if path.is_dir():
        return read_directory(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc}", [detail("/", str(exc))]) from None
    return parse_json(raw, str(path))
