"""The object store: nodespecs and flows, with revisions and If-Match, reference checks, and atomic
imports and exports of the whole repository.

`ObjectStore` holds the rules; a backend such as SQLite supplies a handful of primitives that run inside
`transaction()`. Every write is checked in full before anything is stored, so a rejected write changes
nothing.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import Any, Callable

from ..model.bundle import FORMAT_VERSION, check_bundle, check_import_mode
from ..model.diff import flow_changes, nodespec_changes
from ..model.errors import Conflict, InvalidInput, NotFound, PreconditionFailed, detail, pointer
from ..model.flow import analyze_flow, referenced_spec_ids
from ..model.limits import MAX_STORED_DEPTH, TooDeep
from ..model.nodespec import NodeSpec, check_nodespec, parse_nodespec
from ..model.subflow import flow_nodespec, flow_spec_id, subflow_id, with_flows
from .store import Store

KINDS = ("nodespec", "flow")


@dataclass(frozen=True)
class Record:
    kind: str
    id: str
    doc: dict  # None only in UnreadableDocument.record, for a write that replaces or removes the row
    revision: int
    updated_at: str

    @property
    def etag(self) -> str:
        return f'"{self.revision}"'


class UnreadableDocument(Conflict):
    """A stored object whose document cannot be read: nested deeper than any document this version
    accepts, so only an older version stored it. It still has an id and a revision, so it can be
    deleted or replaced; lists and exports skip it and say so."""

    def __init__(self, kind: str, object_id: str, revision: int, updated_at: str, cause: TooDeep):
        super().__init__(f"the stored {kind} {object_id!r} is nested deeper than {MAX_STORED_DEPTH} levels, "
                         f"which only an older version of PyFlow stored; delete it, or replace it (PUT or an "
                         f"import)", [detail(cause.pointer, f"nested deeper than {MAX_STORED_DEPTH} levels here")])
        self.record = Record(kind, object_id, None, revision, updated_at)  # no document: id and revision only

    def skipped(self) -> dict:
        """The entry naming this object in a list of what an export or a listing left out."""
        record = self.record
        return detail(pointer(record.kind, record.id), f"left out: the stored {record.kind} is nested deeper "
                                                       f"than {MAX_STORED_DEPTH} levels (at {self.details[0]['path']})")


class ObjectStore(Store):
    """Storage of nodespecs and flows. Subclasses implement the primitives below the line."""

    # ------------------------------------------------------------------------------------ objects
    def list(self, kind: str) -> list[Record]:
        """Every readable object of `kind`; rows an older version stored too deep are left out."""
        _check_kind(kind)
        return self._list(kind)

    def _current(self, kind: str, object_id: str) -> Record | None:
        """The stored object a write replaces or removes. A row that cannot be read still has the id and
        revision a write needs (its `doc` is None)."""
        try:
            return self._read(kind, object_id)
        except UnreadableDocument as exc:
            return exc.record

    def get(self, kind: str, object_id: str) -> Record:
        return self._existing(kind, object_id, self._read)

    def revision_of(self, kind: str, object_id: str) -> int:
        """An object's current revision, without reading the object."""
        return self._existing(kind, object_id, self._read_revision)

    def has(self, kind: str, object_id: str) -> bool:
        """Whether an object is stored (readable or not), without reading it."""
        _check_kind(kind)
        return self._read_revision(kind, object_id) is not None

    # -- what the repository keeps about itself (not objects: never exported)
    def setting(self, key: str) -> str | None:
        """A value the repository keeps about itself, or None when it was never set."""
        return self._setting(key)

    def put_setting(self, key: str, value: str) -> None:
        with self.transaction():
            self._put_setting(key, value)

    @staticmethod
    def _existing(kind: str, object_id: str, read):
        """What `read` finds of an object, or NotFound."""
        _check_kind(kind)
        found = read(kind, object_id)
        if found is None:
            raise NotFound(f"no {kind} {object_id!r}")
        return found

    def specs(self) -> dict[str, NodeSpec]:
        """All nodespecs, parsed for the engine. Every run and every flow save needs them, so they are
        kept until the repository's revision counter moves (any write does that)."""
        stamp = self._revision()
        cached = self.__dict__.get("_specs")
        if cached is not None and cached[0] == stamp:
            return dict(cached[1])
        parsed = {record.id: parse_nodespec(record.doc) for record in self._list("nodespec")}
        parsed = {**with_flows(parsed, []), **self._flow_specs()}
        self.__dict__["_specs"] = (stamp, parsed)
        return dict(parsed)

    def _flow_specs(self) -> dict[str, NodeSpec]:
        """Every flow as a subflow (flow:<id>). A flow is read again only when its revision moved, so
        writes elsewhere cost no re-reading of big flows, and plans keep the very subflow they used."""
        known: dict[str, tuple[int, NodeSpec]] = self.__dict__.get("_subflows") or {}
        fresh = {}
        for flow_id, revision in self._revisions("flow").items():
            hit = known.get(flow_id)
            if hit is None or hit[0] != revision:
                record = self._current("flow", flow_id)
                if record is None or record.doc is None:  # removed meanwhile, or unreadable
                    continue
                hit = (record.revision, flow_nodespec(record.doc))
            fresh[flow_id] = hit
        self.__dict__["_subflows"] = fresh
        return {spec.id: spec for _, spec in fresh.values()}

    def save(self, kind: str, doc: Any, object_id: str | None = None, expected: int | None = None,
             create_only: bool = False, must_exist: bool = False, force: bool = False) -> tuple[Record, bool]:
        """Create or replace an object; returns (record, created). `expected` is an If-Match revision.

        Replacing a nodespec in a way that breaks flows using it (a port they link or set removed, say)
        answers 409 naming those flows and what breaks, unless `force`."""
        _check_kind(kind)
        if isinstance(doc, dict) and object_id is not None:
            if doc.get("id") is None:
                doc = {**doc, "id": object_id}
            elif doc["id"] != object_id:
                raise InvalidInput("id mismatch", [detail("/id", f"the body's id {doc['id']!r} differs from "
                                                                 f"the id in the address {object_id!r}")])
        with self.transaction():
            problems = self._problems(kind, doc)
            if problems:
                raise InvalidInput(f"invalid {kind}", problems)
            current = self._current(kind, doc["id"])
            _check_precondition(kind, doc["id"], current, expected, create_only, must_exist)
            if current is not None and current.doc == doc:
                return current, False
            if kind == "nodespec" and current is not None and not force:
                self._check_users_still_fit(doc)
            if kind == "flow" and current is not None and not force:
                self._check_flow_users_still_fit(doc)
            record = self._write(kind, doc)
            if kind == "flow":
                self._set_refs(doc["id"], referenced_spec_ids(doc))
            return record, current is None

    def _check_users_still_fit(self, spec_doc: dict) -> None:
        users = self._users_of(spec_doc["id"])
        if not users:
            return
        specs = {**self.specs(), spec_doc["id"]: parse_nodespec(spec_doc)}
        problems, broken = self._broken_users(users, specs)
        if problems:
            raise Conflict(f"this change to nodespec {spec_doc['id']!r} breaks {len(broken)} flow(s) that use "
                           f"it; fix them first, or save with ?force=true", problems, flows=broken)

    def _check_flow_users_still_fit(self, flow_doc: dict) -> None:
        """A flow used as a subflow may change only in ways that leave the flows using it valid."""
        users = [f for f in self._users_of(flow_spec_id(flow_doc["id"])) if f != flow_doc["id"]]
        if not users:
            return
        specs = with_flows(self.specs(), [flow_doc])
        problems, broken = self._broken_users(users, specs)
        if problems:
            raise Conflict(f"this change to flow {flow_doc['id']!r} breaks {len(broken)} flow(s) that use it as "
                           f"a subflow; fix them first, or save with ?force=true", problems, flows=broken)

    def _broken_users(self, users: list[str], specs: dict) -> tuple[list[dict], list[str]]:
        """The problems each of the flows `users` would have with `specs` (under /flow/<id>), and which."""
        problems, broken = [], []
        for flow_id in users:
            record = self._current("flow", flow_id)
            found = analyze_flow(record.doc, specs)[1] if record is not None and record.doc is not None else []
            if found:
                broken.append(flow_id)
                problems += [detail(pointer("flow", flow_id) + d["path"], d["message"]) for d in found]
        return problems, broken

    def _problems(self, kind: str, doc: Any) -> list[dict]:
        if kind == "nodespec":
            return check_nodespec(doc)
        _, problems = analyze_flow(doc, self.specs())
        return problems

    def delete(self, kind: str, object_id: str, expected: int | None = None, force: bool = False) -> None:
        _check_kind(kind)
        with self.transaction():
            current = self._current(kind, object_id)
            if current is None:
                raise NotFound(f"no {kind} {object_id!r}")
            if expected is not None and current.revision != expected:
                raise PreconditionFailed(f"{kind} {object_id!r} changed since revision {expected} "
                                         f"(now {current.revision})", current_revision=current.revision)
            if not force:
                users = self._users_of(object_id if kind == "nodespec" else flow_spec_id(object_id))
                users = [f for f in users if kind == "nodespec" or f != object_id]
                if users:
                    what = "nodespec" if kind == "nodespec" else "flow as a subflow"
                    raise Conflict(f"{kind} {object_id!r} is used by {len(users)} flow(s)"
                                   f"{' as a subflow' if kind == 'flow' else ''}; "
                                   f"delete with ?force=true to delete it anyway",
                                   [detail(pointer("flow", f), f"uses this {what}") for f in users],
                                   flows=users)
            self._remove(kind, object_id)
            if kind == "flow":
                self._set_refs(object_id, set())

    # ------------------------------------------------------------------------------ import/export
    def export_bundle(self) -> dict:
        """The whole repository; objects that cannot be read are named under "skipped" (which an
        import ignores) instead of failing the export."""
        skipped: list[UnreadableDocument] = []
        bundle = {"format_version": FORMAT_VERSION,
                  "nodespec": {r.id: r.doc for r in self._list("nodespec", skipped)},
                  "flow": {r.id: r.doc for r in self._list("flow", skipped)}}
        if skipped:
            bundle["skipped"] = [exc.skipped() for exc in skipped]
        return bundle

    def import_bundle(self, bundle: Any, mode: str = "merge", keep_replaced: Callable[[dict], str] | None = None) -> dict:
        """Import a whole bundle in one transaction: everything or (with every error listed) nothing.

        :param keep_replaced: given the stored documents the import overwrites or deletes (a bundle), before
            any is written; what it answers is the summary's "backup". When it raises, nothing is imported."""
        check_import_mode(mode)
        with self.transaction():
            existing = self.specs() if mode == "merge" else {}
            incoming = bundle.get("nodespec") if isinstance(bundle, dict) else None
            if isinstance(incoming, dict) and mode == "merge":  # anything else is reported by check_bundle
                existing = {k: v for k, v in existing.items() if k not in incoming}
            flows_in = bundle.get("flow") if isinstance(bundle, dict) else None
            if isinstance(flows_in, dict):  # the bundle's flows replace the stored ones as subflows too
                existing = {k: v for k, v in existing.items() if subflow_id(k) not in flows_in}
            problems = check_bundle(bundle, existing)
            if problems:
                raise InvalidInput(f"the bundle has {len(problems)} problem(s); nothing was imported", problems)
            if mode == "merge":
                problems = self._merge_problems(bundle)
                if problems:
                    raise InvalidInput("the bundle conflicts with the repository; nothing was imported", problems)
            replaced = self._replaced_by(bundle, mode)
            backup = keep_replaced(replaced) if keep_replaced and (replaced["nodespec"] or replaced["flow"]) else None
            summary = self._apply_bundle(bundle, mode)
            if backup is not None:
                summary["backup"] = backup
            return summary

    def _replaced_by(self, bundle: dict, mode: str) -> dict:
        """The stored documents an import of `bundle` would overwrite (merge and replace) or delete
        (replace), as a bundle that can be imported to put them back. Objects too deep to read have no
        document to keep."""
        replaced: dict = {"format_version": FORMAT_VERSION, "nodespec": {}, "flow": {}}
        for kind in KINDS:
            incoming = bundle.get(kind, {})
            stored = self._list(kind) if mode == "replace" else \
                [r for r in (self._current(kind, key) for key in incoming) if r is not None]
            for record in (r for r in stored if r.doc is not None):
                new = incoming.get(record.id)
                if new is None or (new if "id" in new else {**new, "id": record.id}) != record.doc:
                    replaced[kind][record.id] = record.doc
        return replaced

    def preview_import(self, bundle: Any) -> dict:
        """What a merge of `bundle` would do, changing nothing: every stored object it would overwrite
        (with what changes and, for nodespecs, which flows use it), what it would create and what it
        leaves as it is. A bundle the import would refuse is refused the same way."""
        with self.transaction():
            incoming = bundle.get("nodespec") if isinstance(bundle, dict) else None
            existing = self.specs()
            if isinstance(incoming, dict):
                existing = {k: v for k, v in existing.items() if k not in incoming}
            problems = check_bundle(bundle, existing)
            if problems:
                raise InvalidInput(f"the bundle has {len(problems)} problem(s)", problems)
            preview: dict = {"clashes": [], "created": [], "unchanged": []}
            for kind in KINDS:
                for key, doc in bundle.get(kind, {}).items():
                    doc = doc if "id" in doc else {**doc, "id": key}
                    current = self._current(kind, key)
                    if current is None:
                        preview["created"].append(f"{kind}/{key}")
                    elif current.doc == doc:
                        preview["unchanged"].append(f"{kind}/{key}")
                    else:
                        changes = (nodespec_changes if kind == "nodespec" else flow_changes)(current.doc, doc)
                        used_by = sorted(self._users_of(key)) if kind == "nodespec" else []
                        preview["clashes"].append({"kind": kind, "id": key, "changes": changes, "used_by": used_by})
            return preview

    def _merge_problems(self, bundle: dict) -> list[dict]:
        """Flows already stored must still fit the nodespecs the bundle replaces."""
        specs = with_flows({**self.specs(), **{k: parse_nodespec(v) for k, v in bundle.get("nodespec", {}).items()}},
                           [{**doc, "id": key} for key, doc in bundle.get("flow", {}).items()])
        problems = []
        for record in self._list("flow"):
            if record.id in bundle.get("flow", {}):
                continue
            _, found = analyze_flow(record.doc, specs)
            problems += [detail(pointer("stored-flow", record.id) + d["path"], d["message"]) for d in found]
        return problems

    def _apply_bundle(self, bundle: dict, mode: str) -> dict:
        summary = {"mode": mode, "created": 0, "updated": 0, "unchanged": 0, "deleted": 0,
                   "changes": {"created": [], "updated": [], "deleted": []}}
        if mode == "replace":
            for kind in ("flow", "nodespec"):
                unreadable: list[UnreadableDocument] = []
                records = self._list(kind, unreadable) + [exc.record for exc in unreadable]
                for record in records:
                    if record.id not in bundle.get(kind, {}):
                        self._remove(kind, record.id)
                        if kind == "flow":
                            self._set_refs(record.id, set())
                        summary["deleted"] += 1
                        summary["changes"]["deleted"].append(f"{kind}/{record.id}")
        for kind in KINDS:
            for key, doc in bundle.get(kind, {}).items():
                doc = doc if "id" in doc else {**doc, "id": key}
                current = self._current(kind, key)
                if current is not None and current.doc == doc:
                    summary["unchanged"] += 1
                    continue
                self._write(kind, doc)
                if kind == "flow":
                    self._set_refs(key, referenced_spec_ids(doc))
                change = "created" if current is None else "updated"
                summary[change] += 1
                summary["changes"][change].append(f"{kind}/{key}")
        return summary

    def is_empty(self) -> bool:
        unreadable: list[UnreadableDocument] = []
        return not self._list("nodespec", unreadable) and not self._list("flow", unreadable) and not unreadable

    # -------------------------------------------------------------------------- primitives (backend)
    @abstractmethod
    def _setting(self, key: str) -> str | None:
        """A setting's value, or None."""

    @abstractmethod
    def _put_setting(self, key: str, value: str) -> None:
        """Store a setting (inside the caller's transaction)."""

    @abstractmethod
    def _revision(self) -> int:
        """The latest revision handed out: it changes whenever any object is written or removed."""

    @abstractmethod
    def _list(self, kind: str, skipped: list | None = None) -> list[Record]:
        """Readable objects of `kind` by id; each one that cannot be read is left out, and its
        UnreadableDocument appended to `skipped` when given."""

    @abstractmethod
    def _read(self, kind: str, object_id: str) -> Record | None:
        """The object, None when absent; UnreadableDocument when its document cannot be read."""

    @abstractmethod
    def _read_revision(self, kind: str, object_id: str) -> int | None: ...

    @abstractmethod
    def _revisions(self, kind: str) -> dict[str, int]:
        """The revision of every object of `kind`, by id, without reading the objects."""

    @abstractmethod
    def _write(self, kind: str, doc: dict) -> Record: ...

    @abstractmethod
    def _remove(self, kind: str, object_id: str) -> None: ...

    @abstractmethod
    def _set_refs(self, flow_id: str, spec_ids: set[str]) -> None: ...

    @abstractmethod
    def _users_of(self, spec_id: str) -> list[str]: ...


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise NotFound(f"unknown object kind {kind!r}")


def _check_precondition(kind: str, object_id: str, current: Record | None, expected: int | None,
                        create_only: bool, must_exist: bool) -> None:
    if create_only and current is not None:
        raise Conflict(f"{kind} {object_id!r} already exists; use PUT to replace it",
                       [detail("/id", f"{object_id!r} is taken")])
    if must_exist and current is None and expected is not None:
        raise PreconditionFailed(f"{kind} {object_id!r} no longer exists")
    if expected is not None and current is not None and current.revision != expected:
        raise PreconditionFailed(f"{kind} {object_id!r} changed since revision {expected} (now "
                                 f"{current.revision}); reload it or send its current ETag",
                                 current_revision=current.revision)
