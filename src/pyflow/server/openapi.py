"""The OpenAPI 3.1 description of every route, served at /api/openapi.json.

It is built from data: the model's JSON Schemas (the very files the server validates with, their
`$defs` lifted into components so every tool resolves them), a few response shapes, the table of
error statuses and the table of operations below. Statuses that apply to whole classes of routes are
added by rule rather than by hand: 401/403/421 everywhere (access tokens, cross-site and Host
checks), 413 and 415 on every state-changing route, 429 and 503 with Retry-After on run routes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from flask import Blueprint

from .. import __version__
from ..model.validation import SCHEMA_NAMES, load_schema
from ..service.runs import RUN_STATUSES
from .http import json_response
from .runs import RUN_PAGE

bp = Blueprint("openapi", __name__, url_prefix="/api")

REF = "#/components/schemas/"
STATE_CHANGING = ("post", "put", "patch", "delete")


def ref(name: str) -> dict:
    return {"$ref": REF + name}


# ------------------------------------------------------------------------------ model JSON Schemas
def model_schemas() -> dict:
    """The model's schemas as components: `flow`, `flow.node`, `nodespec.objectId`, ...

    Each file's `$defs` become components of their own and its `$ref`s (local, or to a sibling file by
    name) are rewritten to point at them; `$id` and `$schema` are dropped, since a base URI would
    redirect the document-local references."""
    components = {}
    for name in SCHEMA_NAMES:
        schema = {k: v for k, v in load_schema(name).items() if k not in ("$id", "$schema", "$defs")}
        components[name] = _rewrite_refs(schema, name)
        for def_name, definition in load_schema(name).get("$defs", {}).items():
            components[f"{name}.{def_name}"] = _rewrite_refs(definition, name)
    return components


def _rewrite_refs(node, owner: str):
    if isinstance(node, list):
        return [_rewrite_refs(item, owner) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _rewrite_refs(value, owner) for key, value in node.items()}
    if isinstance(out.get("$ref"), str):
        out["$ref"] = _component_ref(out["$ref"], owner)
    return out


def _component_ref(target: str, owner: str) -> str:
    document, _, fragment = target.partition("#")
    name = document.removesuffix(".schema.json") if document else owner
    if not fragment:
        return REF + name
    if not fragment.startswith("/$defs/") or fragment.count("/") != 2:
        raise ValueError(f"cannot lift schema reference {target!r} into components")
    return REF + f"{name}.{fragment.removeprefix('/$defs/')}"


# ------------------------------------------------------------------------------ response shapes
def _obj(required: tuple = (), **properties) -> dict:
    return {"type": "object", "required": list(required), "properties": properties}


STRING, INT, BOOL = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
NULLABLE_STRING = {"type": ["string", "null"]}
RUN_STATUS = {"type": "string", "enum": list(RUN_STATUSES)}
NODE_STATUS = {"type": "string", "enum": ["success", "fail", "skipped", "cancelled"]}

SHAPES = {
    "Error": _obj(("error", "details"), error=STRING, details={"type": "array", "items": _obj(
        ("path", "message"), path=STRING, message=STRING)}),
    "NodespecSummary": _obj(("id", "revision", "updated_at", "title"), id=STRING, revision=INT,
                            updated_at=STRING, title=STRING, description=STRING),
    "FlowSummary": _obj(("id", "revision", "updated_at", "name", "node_count", "link_count"), id=STRING,
                        revision=INT, updated_at=STRING, name=STRING, description=STRING, node_count=INT,
                        link_count=INT),
    "TreeItem": _obj(("id", "title", "path", "children"), id=STRING, title=STRING, path=STRING,
                     children={"type": "array", "items": ref("TreeItem")}, value=ref("nodespec")),
    "NodeError": {"type": ["object", "null"], "properties": {"type": STRING, "message": STRING,
                                                             "traceback": {"type": "array", "items": STRING,
                                                                           "description": "lines"}}},
    "NodeResult": _obj(("id", "name", "spec_id", "status"), id=STRING, name=STRING, spec_id=STRING,
                       status=NODE_STATUS, inputs={"type": "object"}, outputs={"type": "object"},
                       error=ref("NodeError"), stdout={"type": ["string", "null"]},
                       started_at=NULLABLE_STRING, duration_ms={"type": ["number", "null"]},
                       cached={"type": ["boolean", "null"]}, worker=NULLABLE_STRING,
                       path={"type": "array", "items": STRING,
                             "description": "node ids from the outermost flow down (inside subflows: several)"},
                       reason={"type": ["string", "null"], "description": "\"branch not taken\" for a skipped branch"},
                       items={"type": "array", "description": "a mapped node's items: index, status, "
                                                              "duration_ms, cached, error",
                              "items": _obj(("index", "status"), index=INT, status=NODE_STATUS,
                                            duration_ms={"type": "number"}, cached=BOOL, error=ref("NodeError"))}),
    "Subflow": _obj(("id", "title", "flow", "port"), id={"type": "string", "pattern": "^flow:"}, title=STRING,
                    flow=STRING, tags={"type": "array", "items": STRING},
                    port=_obj(("input", "output"), input={"type": "array", "items": {"type": "object"}},
                              output={"type": "array", "items": {"type": "object"}})),
    "RunResult": _obj(("run_id", "status", "nodes"), run_id=STRING, status=RUN_STATUS, reason=NULLABLE_STRING,
                      nodes={"type": "array", "items": ref("NodeResult")}),
    "RunAccepted": _obj(("id", "status", "url", "events"), id=STRING, status=RUN_STATUS, url=STRING,
                        events=STRING),
    "RunState": _obj(("id", "status"), id=STRING, status=RUN_STATUS),
    "NodeOutput": _obj(("kind",), kind={"type": "string", "enum": ["json", "artifact"]}, value={},
                       artifact={"type": "object", "description": "digest, type, format, size, summary, thumbnail"},
                       preview={"type": "object", "description": "the checked preview the producing sandbox wrote"}),
    "Run": _obj(("id", "status", "created_at"), id=STRING, flow_id=NULLABLE_STRING, status=RUN_STATUS,
                reason=NULLABLE_STRING, created_at=STRING, started_at=NULLABLE_STRING,
                finished_at=NULLABLE_STRING, request={"type": "object"}, snapshot={"type": "object"},
                nodes={"type": "array", "items": ref("NodeResult")},
                tree={"type": "array", "items": {"type": "object"},
                      "description": "the node results nested under their subflow nodes (runs that expanded "
                                     "subflows only)"}),
    "RunList": _obj(("runs", "total", "limit", "offset"), runs={"type": "array", "items": ref("Run")},
                    total=INT, limit=INT, offset=INT),
    "RunEvent": {"description": "one Server-Sent Event; data is the event's JSON",
                 **_obj(("event", "data"), id={"type": "string", "pattern": "^[0-9]+$"}, event={"enum": [
                     "run_queued", "run_started", "node_started", "node_progress", "node_finished", "node_cached",
                     "node_skipped", "environment", "run_finished"]}, data={"type": "string", "contentMediaType": "application/json"},
                    retry=INT)},
    "Deleted": _obj(("deleted",), deleted=STRING),
    "Environment": _obj(("key", "requirements", "packages"), key=STRING,
                        requirements={"type": "array", "items": STRING},
                        packages={"type": "array", "items": STRING, "description": "the lock: name==version"},
                        python=STRING, platform=STRING, index=STRING, size_bytes=INT, created_at=STRING,
                        last_used=NULLABLE_STRING, nodespecs={"type": "array", "items": STRING}, warm=BOOL,
                        log={"type": "array", "items": STRING}),
    "PrepareRequest": _obj(("requirements",), requirements={"type": "array", "items": STRING, "maxItems": 50}),
    "PruneRequest": _obj((), days={"type": "number", "minimum": 0}, gb={"type": "number", "minimum": 0}),
    "Pruned": _obj(("removed",), removed={"type": "array", "items": {"type": "object"}}),
    "Health": _obj(("status", "version", "executor"), status=STRING, version=STRING,
                   executor=_obj(("name",), name=STRING, isolation=STRING,
                                 warnings={"type": "array", "items": STRING}),
                   queue=INT, concurrency=INT),
    "PortType": _obj(("name", "accepts"), name=STRING, description=STRING,
                     accepts={"type": "array", "items": STRING}),
    "ImportSummary": _obj(("mode", "created", "updated", "unchanged", "deleted"), mode=STRING, created=INT,
                          updated=INT, unchanged=INT, deleted=INT, changes={"type": "object"},
                          backup={"type": "string", "description": "the file beside the database holding what "
                                                                   "the import overwrote or deleted, as a bundle"}),
    "ImportPreview": _obj(("clashes", "created", "unchanged"), clashes={"type": "array", "items": _obj(
        ("kind", "id", "changes", "used_by"), kind={"enum": ["nodespec", "flow"]}, id=STRING,
        changes={"type": "array", "items": STRING}, used_by={"type": "array", "items": STRING})},
        created={"type": "array", "items": STRING}, unchanged={"type": "array", "items": STRING}),
    "InferredPorts": _obj(("input", "output"), input={"type": "array", "items": ref("nodespec.inputPort")},
                          output={"type": "array", "items": ref("nodespec.outputPort")}),
    "InferRequest": _obj(("func",), func=STRING, function=STRING),
    "TestRequest": _obj((), inputs={"type": "object", "description": "input port name: value"}),
    "DraftTestRequest": _obj(("nodespec",), nodespec=ref("nodespec"),
                             inputs={"type": "object", "description": "input port name: value"}),
    "InlineRun": {"description": "a run request with the flow inline, or a bare flow document",
                  "anyOf": [{"allOf": [ref("run_request"), {"required": ["flow"]}]}, ref("flow")]},
    "InlineAsyncRun": {"allOf": [ref("run_request"), {"required": ["flow"]}]},
    "LegacyNodes": {"type": "object", "additionalProperties": ref("nodespec")},
    "LegacyPort": _obj(("name",), name=STRING, value=True, type=NULLABLE_STRING),
    "LegacyNodeResult": _obj(("id", "name", "inputs", "outputs", "status", "error"), id=STRING, name=STRING,
                             inputs={"type": "array", "items": ref("LegacyPort")},
                             outputs={"type": "array", "items": ref("LegacyPort")},
                             status={"type": "string", "enum": ["success", "fail", "skipped"]}, error=STRING),
    "LegacySuccess": _obj(("success",), success=BOOL),
    "LegacyPortTypes": _obj(("types",), types={"type": "array", "items": STRING}),
    "RepositoryPath": _obj(("path",), path={"type": "string", "description": "under the server's repository "
                                                                         "directory (--repo-dir)"}),
}

# ------------------------------------------------------------------------------ error statuses
RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before trying again",
                               "schema": {"type": "string"}}}
ERRORS = {
    400: ("The request is invalid: every problem is listed in details with its JSON pointer; nothing was "
          "changed. Also a document nested too deeply, or a Host header the server does not answer to."),
    401: "A token is required (bound to an address other than loopback): Authorization: Bearer TOKEN.",
    403: "A cross-site browser request (Origin or Sec-Fetch-Site) from an origin that is not allowed.",
    404: "No such object, run or file.",
    405: "The method is not allowed on this path; Allow lists those that are.",
    409: ("A conflict: the object exists already, a nodespec is used by flows (details name them; "
          "?force=true overrides), or the run is in a state that does not allow it."),
    412: "If-Match names a revision that is no longer the current one, or no revision at all.",
    413: "The request body is larger than the server accepts (--max-body-mb).",
    415: "A state-changing request without Content-Type: application/json.",
    421: "The Host header names a host the server does not answer to (DNS rebinding protection).",
    429: "The run queue is full, or a client follows too many event streams at once.",
    503: "The server cannot take this now (shutting down, or a component is unavailable).",
}
WITH_RETRY_AFTER = (429, 503)
EVERY_ROUTE = (400, 401, 403, 421)


def error_responses() -> dict:
    responses = {}
    for status, description in ERRORS.items():
        response = {"description": description,
                    "content": {"application/json": {"schema": ref("Error")}}}
        if status in WITH_RETRY_AFTER:
            response["headers"] = RETRY_AFTER
        if status == 405:
            response["headers"] = {"Allow": {"schema": {"type": "string"}}}
        responses[f"E{status}"] = response
    return responses


# ------------------------------------------------------------------------------ parameters
def _param(name: str, where: str, schema: dict, description: str = "", required: bool | None = None) -> dict:
    param = {"name": name, "in": where, "required": where == "path" if required is None else required,
             "schema": schema}
    if description:
        param["description"] = description
    return param


OBJECT_ID = ref("nodespec.objectId")
PATH_SEGMENT = {"type": "string", "pattern": "^[^/]+$"}
PARAMS = {
    "nodespec_id": _param("nodespec_id", "path", OBJECT_ID),
    # GET /api/nodespecs/tree is the palette tree, so a nodespec with the id "tree" is not read there.
    "readable_nodespec_id": _param("nodespec_id", "path", {"allOf": [OBJECT_ID, {"not": {"const": "tree"}}]},
                                   "any nodespec id but 'tree' (GET /api/nodespecs/tree is the palette tree)"),
    "flow_id": _param("flow_id", "path", OBJECT_ID),
    "stored_flow_id": _param("flow_id", "path", OBJECT_ID),
    "tested_nodespec_id": _param("nodespec_id", "path", OBJECT_ID),
    "node_id": _param("node_id", "path", OBJECT_ID, "a nodespec id"),
    "run_id": _param("run_id", "path", PATH_SEGMENT),
    "env_key": _param("key", "path", PATH_SEGMENT, "an environment's key"),
    "run_node_id": _param("node_id", "path", PATH_SEGMENT, "a node of the run's flow"),
    "output_port": _param("port", "path", PATH_SEGMENT, "an output port of the node"),
    "raw": _param("raw", "query", BOOL, "true: stream the artifact itself, with its format's content type"),
    "thumbnail": _param("thumbnail", "query", BOOL, "true: stream the artifact's PNG thumbnail"),
    "filename": _param("filename", "path", {"type": "string"}, "a file of the editor"),
    "schema_name": _param("name", "path", {"type": "string", "enum": list(SCHEMA_NAMES)}, "which schema"),
    "if_match": _param("If-Match", "header", STRING, "the ETag of the revision this change is based on "
                                                      "(412 when it is no longer current); '*' for any"),
    "force": _param("force", "query", BOOL, "true: delete or change a nodespec even when flows use it"),
    "summary": _param("summary", "query", BOOL, "true: entries without function sources, nodes and links"),
    "run_flow": _param("flow", "query", STRING, "only runs of this flow"),
    "run_status": _param("status", "query", RUN_STATUS, "only runs in this state"),
    **{name: _param(name, "query", {"type": "integer", "default": default, "minimum": low, "maximum": high})
       for name, (default, low, high) in RUN_PAGE.items()},
    "mode": _param("mode", "query", {"type": "string", "enum": ["merge", "replace"], "default": "merge"},
                   "merge: add and update; replace: the repository becomes the bundle"),
    "last_event_id": _param("Last-Event-ID", "header", {"type": "string", "pattern": "^[0-9]{1,15}$"},
                            "resume after this event id"),
    "last_event_id_query": _param("last_event_id", "query", {"type": "string", "pattern": "^[0-9]{1,15}$"},
                                  "resume after this event id (for clients that cannot set headers)"),
}

HEADERS = {
    "ETag": {"description": "the revision of the object, for If-Match", "schema": STRING},
    "Location": {"description": "the URL of the created object or run", "schema": STRING},
}


# ------------------------------------------------------------------------------ examples
# Working requests against a server with the standard library: documentation, and the first requests a
# fuzzer sends, so that it reaches stored objects and real runs.
EXAMPLE_SPEC = {"id": "example.scale", "title": "Scale",
                "port": {"input": [{"name": "x", "order": 0, "type": "Float", "required": True},
                                   {"name": "factor", "order": 1, "type": "Float", "default": 2}],
                         "output": [{"name": "out", "type": "Float"}]},
                "func": "def func(x, factor):\n    return x * factor\n", "limits": {"timeout_s": 5}}
EXAMPLE_FLOW = {"id": "example.flow", "name": "Example",
                "nodes": [{"id": "add", "spec_id": "pyflow.math.add", "name": "2 + 3",
                           "ports": [{"name": "a", "value": "2"}, {"name": "b", "value": "3"}],
                           "ui": {"x": 40, "y": 40}},
                          {"id": "double", "spec_id": "pyflow.math.multiply", "name": "Double", "is_end": True,
                           "ports": [{"name": "b", "value": "2"}], "ui": {"x": "300px", "y": "40px"}}],
                "links": [{"source": "add:out", "target": "double:a"}]}
EXAMPLE_RUN = {"values": {"add1": {"a": 10}}, "cache": False}
BODY_EXAMPLES = {
    "createNodespec": EXAMPLE_SPEC, "replaceNodespec": EXAMPLE_SPEC, "legacySaveNode": EXAMPLE_SPEC,
    "legacyPutNode": EXAMPLE_SPEC, "createFlow": EXAMPLE_FLOW, "replaceFlow": EXAMPLE_FLOW,
    "legacySaveFlow": EXAMPLE_FLOW, "legacyRunFlow": EXAMPLE_FLOW,
    "inferPorts": {"func": "def func(a: int, b: float = 1.0) -> float:\n    return a * b\n"},
    "testNodespec": {"inputs": {"a": 1, "b": 2}},
    "testDraftNodespec": {"nodespec": EXAMPLE_SPEC, "inputs": {"x": 1.5}},
    "runFlowNow": EXAMPLE_RUN, "startFlowRun": EXAMPLE_RUN,
    "runInlineFlowNow": {"flow": EXAMPLE_FLOW}, "startInlineRun": {"flow": EXAMPLE_FLOW},
    "importRepository": {"format_version": 2, "nodespec": {EXAMPLE_SPEC["id"]: EXAMPLE_SPEC}, "flow": {}},
    "legacyDumpRepository": {"path": "example.json"}, "legacyLoadRepository": {"path": "example.json"},
}
PARAM_EXAMPLES = {"nodespec_id": "example.scale", "readable_nodespec_id": "pyflow.math.add",
                  "tested_nodespec_id": "pyflow.math.add", "flow_id": "example.flow",
                  "stored_flow_id": "pyflow.samples.arithmetic", "node_id": "pyflow.math.add",
                  "filename": "dist/app.css"}


# ------------------------------------------------------------------------------ operations
@dataclass(frozen=True)
class Ok:
    """A success response: status, body schema (a component name or a schema), description, headers."""

    status: int
    schema: str | dict | None
    description: str
    headers: tuple = ()
    media: str = "application/json"
    links: tuple = ()  # (link name, operationId, {parameter: runtime expression})


@dataclass(frozen=True)
class Op:
    method: str
    path: str
    operation_id: str
    summary: str
    tag: str
    ok: tuple
    errors: tuple = ()
    params: tuple = ()
    body: str | dict | None = None
    body_required: bool = True
    runs_code: bool = False  # runs node code: 429 and 503 (queue, executor), bounded fuzzing
    body_media: str = "application/json"


def _object_links(id_param: str, *operations: str) -> tuple:
    """Links from an answer carrying a stored object to the operations that take its id."""
    return tuple((op, op, {id_param: "$response.body#/id"}) for op in operations)


def _etag_link(operation_id: str, id_param: str) -> tuple:
    return (operation_id, operation_id, {id_param: f"$request.path.{id_param}",
                                         "header.If-Match": "$response.header.ETag"})


RUN_LINKS = tuple((op, op, {"run_id": "$response.body#/id"})
                  for op in ("getRun", "followRunEvents", "cancelRun", "deleteRun"))


def _crud(collection: str, kind: str, component: str, summary_schema: str) -> list[Op]:
    """The five CRUD operations of /api/nodespecs or /api/flows."""
    title = kind.capitalize()
    id_param = f"{kind}_id"
    item = f"/api/{collection}/{{{id_param}}}"
    after_create = {"nodespec": ("getNodespec", "replaceNodespec", "deleteNodespec", "testNodespec"),
                    "flow": ("getFlow", "replaceFlow", "deleteFlow", "runFlowNow", "startFlowRun")}[kind]
    readable = "readable_nodespec_id" if kind == "nodespec" else id_param
    return [
        Op("get", f"/api/{collection}", f"list{title}s", f"Every {kind}", collection,
           (Ok(200, {"type": "array", "items": {"anyOf": [ref(component), ref(summary_schema)]}},
               f"every {kind}, or with ?summary=true their summaries"),), params=("summary",)),
        Op("post", f"/api/{collection}", f"create{title}", f"Create a {kind}", collection,
           (Ok(201, component, "created", ("ETag", "Location"), links=_object_links(id_param, *after_create)),),
           (409,), body=component),
        Op("get", item, f"get{title}", f"Read a {kind}", collection,
           (Ok(200, component, "the current revision", ("ETag",),
               links=(_etag_link(f"replace{title}", id_param), _etag_link(f"delete{title}", id_param))),),
           (404,), params=(readable,)),
        Op("put", item, f"replace{title}", f"Replace a {kind}", collection,
           (Ok(200, component, "replaced", ("ETag",)), Ok(201, component, "created", ("ETag",))),
           (404, 409, 412), params=(id_param, "if_match", "force"), body=component),
        Op("delete", item, f"delete{title}", f"Delete a {kind}", collection,
           (Ok(200, "Deleted", "deleted"),), (404, 409, 412), params=(id_param, "if_match", "force")),
    ]


def _nodespec_tools() -> list[Op]:
    return [
        Op("get", "/api/nodespecs/tree", "nodespecTree", "The palette tree, grouped by dotted id", "nodespecs",
           (Ok(200, {"type": "array", "items": ref("TreeItem")}, "the tree"),)),
        Op("get", "/api/subflows", "listSubflows", "Every flow as a node for other flows (flow:<id>)", "flows",
           (Ok(200, {"type": "array", "items": ref("Subflow")}, "the flows' node forms"),)),
        Op("post", "/api/nodespecs/infer", "inferPorts", "Ports from a function's signature", "nodespecs",
           (Ok(200, "InferredPorts", "the ports"),), body="InferRequest"),
        Op("post", "/api/nodespecs/test", "testDraftNodespec", "Run one node of an unsaved nodespec", "nodespecs",
           (Ok(200, "NodeResult", "the node's result"),), body="DraftTestRequest", runs_code=True),
        Op("post", "/api/nodespecs/{nodespec_id}/test", "testNodespec", "Run one node of a stored nodespec",
           "nodespecs", (Ok(200, "NodeResult", "the node's result"),), (404,), params=("tested_nodespec_id",),
           body="TestRequest", body_required=False, runs_code=True),
    ]


def _runs() -> list[Op]:
    sync = Ok(200, "RunResult", "the finished run with every planned node's result")
    accepted = Ok(202, "RunAccepted", "queued", ("Location",), links=RUN_LINKS)
    return [
        Op("post", "/api/flows/{flow_id}/run", "runFlowNow", "Run a stored flow and wait for it", "runs", (sync,),
           (404,), params=("stored_flow_id",), body="run_request", body_required=False, runs_code=True),
        Op("post", "/api/run", "runInlineFlowNow", "Run a flow sent inline and wait for it", "runs", (sync,),
           body="InlineRun", runs_code=True),
        Op("post", "/api/flows/{flow_id}/runs", "startFlowRun", "Queue a run of a stored flow", "runs", (accepted,),
           (404,), params=("stored_flow_id",), body="run_request", body_required=False, runs_code=True),
        Op("post", "/api/runs", "startInlineRun", "Queue a run of a flow sent inline", "runs", (accepted,),
           body="InlineAsyncRun", runs_code=True),
        Op("get", "/api/runs", "listRuns", "Run history, newest first", "runs", (Ok(200, "RunList", "a page of runs"),),
           params=("run_flow", "run_status", "limit", "offset")),
        Op("get", "/api/runs/{run_id}", "getRun", "A run with every node's result", "runs",
           (Ok(200, "Run", "the run"),), (404,), params=("run_id",)),
        Op("delete", "/api/runs/{run_id}", "deleteRun", "Delete a finished run", "runs",
           (Ok(200, "Deleted", "deleted"),), (404, 409), params=("run_id",)),
        Op("post", "/api/runs/{run_id}/cancel", "cancelRun", "Cancel a queued or running run", "runs",
           (Ok(200, "RunState", "the run had finished already"), Ok(202, "RunState", "cancelling")),
           (404, 409), params=("run_id",)),
        Op("get", "/api/runs/{run_id}/nodes/{node_id}/outputs/{port}", "getNodeOutput",
           "A node's output: its JSON value, or its artifact's metadata and preview (?raw=1: the artifact)", "runs",
           (Ok(200, "NodeOutput", "the value, or the artifact's metadata and preview; with raw or thumbnail, the "
                                  "file itself (application/octet-stream, application/x-npy, image/png, ...)"),),
           (404,), params=("run_id", "run_node_id", "output_port", "raw", "thumbnail")),
        Op("get", "/api/runs/{run_id}/events", "followRunEvents", "The run's events (Server-Sent Events)", "runs",
           (Ok(200, "RunEvent", "the run's events as they happen, from the first or after Last-Event-ID, until "
                                "run_finished", media="text/event-stream"),),
           (404, 429, 503), params=("run_id", "last_event_id", "last_event_id_query")),
    ]


def _repository() -> list[Op]:
    return [
        Op("get", "/api/repository/export", "exportRepository", "The whole repository as one bundle", "repository",
           (Ok(200, "bundle", "the bundle (as an attachment)"),)),
        Op("post", "/api/repository/import", "importRepository", "Import a bundle, all or nothing", "repository",
           (Ok(200, "ImportSummary", "what changed"),), (409,), params=("mode",), body="bundle"),
        Op("post", "/api/repository/import/preview", "previewImport",
           "What a merge import would overwrite or create, changing nothing", "repository",
           (Ok(200, "ImportPreview", "the clashes, with what changes and which flows use each nodespec"),),
           body="bundle"),
        Op("get", "/api/port-types", "portTypes", "Port types and what each accepts over a link", "repository",
           (Ok(200, {"type": "array", "items": ref("PortType")}, "the types"),)),
        Op("get", "/api/schemas/{name}", "schema", "A JSON Schema the server checks documents with", "repository",
           (Ok(200, {"type": "object"}, "the schema (JSON Schema 2020-12)"),), (404,), params=("schema_name",)),
        Op("get", "/api/health", "health", "Whether the server and its executor work", "repository",
           (Ok(200, "Health", "healthy"),), (503,)),
        Op("get", "/api/openapi.json", "openapi", "This document", "repository",
           (Ok(200, {"type": "object"}, "OpenAPI 3.1"),)),
    ]


def _environments() -> list[Op]:
    tag = "environments"
    return [
        Op("get", "/api/environments", "listEnvironments", "Environments of third-party packages", tag,
           (Ok(200, {"type": "array", "items": ref("Environment")}, "every environment"),)),
        Op("post", "/api/environments", "prepareEnvironment", "Build (or find) the environment of requirements",
           tag, (Ok(200, "Environment", "ready, with the installer's log"),), (403, 409), body="PrepareRequest",
           runs_code=True),
        Op("delete", "/api/environments/{key}", "removeEnvironment", "Remove an environment", tag,
           (Ok(200, "Deleted", "removed"),), (404, 409), params=("env_key",)),
        Op("post", "/api/environments/prune", "pruneEnvironments", "Remove unused environments", tag,
           (Ok(200, "Pruned", "what was removed"),), body="PruneRequest", body_required=False),
    ]


def _legacy() -> list[Op]:
    tag = "original"

    def record(schema: str, what: str, links: tuple = ()) -> Ok:
        return Ok(200, schema, what, ("ETag",), links=links)

    node_links = _object_links("node_id", "legacyGetNode", "legacyPutNode", "legacyDeleteNode")
    return [
        Op("get", "/nodes", "legacyListNodes", "Every nodespec, by id", tag, (Ok(200, "LegacyNodes", "id: nodespec"),)),
        Op("post", "/nodes", "legacySaveNode", "Create or replace a nodespec", tag,
           (record("nodespec", "saved", node_links),),
           (409,), body="nodespec"),
        Op("get", "/nodes/{node_id}", "legacyGetNode", "Read a nodespec", tag, (record("nodespec", "the nodespec"),),
           (404,), params=("node_id",)),
        Op("put", "/nodes/{node_id}", "legacyPutNode", "Replace a nodespec", tag, (record("nodespec", "replaced"),),
           (404, 409), params=("node_id",), body="nodespec"),
        Op("delete", "/nodes/{node_id}", "legacyDeleteNode", "Delete a nodespec", tag,
           (Ok(200, "LegacySuccess", "deleted"),), (404, 409), params=("node_id",)),
        Op("get", "/nodestree", "legacyNodesTree", "The palette tree", tag,
           (Ok(200, {"type": "array", "items": ref("TreeItem")}, "the tree"),)),
        Op("get", "/flows", "legacyListFlows", "Every flow", tag,
           (Ok(200, {"type": "array", "items": ref("flow")}, "the flows"),)),
        Op("post", "/flows", "legacySaveFlow", "Create or replace a flow", tag,
           (record("flow", "saved", _object_links("flow_id", "legacyGetFlow")),), (409,), body="flow"),
        Op("get", "/flows/{flow_id}", "legacyGetFlow", "Read a flow", tag, (record("flow", "the flow"),), (404,),
           params=("flow_id",)),
        Op("post", "/runflow", "legacyRunFlow", "Run a flow sent inline and wait for it", tag,
           (Ok(200, {"type": "array", "items": ref("LegacyNodeResult")}, "every planned node's result"),),
           body="flow", runs_code=True),
        Op("get", "/ports/types", "legacyPortTypes", "The port type names", tag,
           (Ok(200, "LegacyPortTypes", "types"),)),
        Op("post", "/dumprepo", "legacyDumpRepository", "Write the repository to a file on the server", tag,
           (Ok(200, "RepositoryPath", "written"),), body="RepositoryPath"),
        Op("post", "/loadrepo", "legacyLoadRepository", "Import a repository file on the server", tag,
           (Ok(200, "RepositoryPath", "imported"),), (409,), body="RepositoryPath"),
    ]


def _editor() -> list[Op]:
    return [
        Op("get", "/", "editor", "The browser editor", "editor", (Ok(200, STRING, "the page", media="text/html"),)),
        Op("get", "/static/{filename}", "editorFile", "A file of the editor", "editor",
           (Ok(200, None, "the file", media="*/*"),), (404,), params=("filename",)),
        Op("get", "/login", "loginPage", "The form that trades the access token for a session cookie", "editor",
           (Ok(200, STRING, "the form", media="text/html"),
            Ok(303, None, "no token is needed here: on to the editor", ("Location",)))),
        Op("post", "/login", "login", "Trade the access token for an HttpOnly session cookie", "editor",
           (Ok(303, None, "signed in (or no token is needed): on to the editor", ("Location",)),),
           body={"type": "object", "properties": {"token": STRING}}, body_media="application/x-www-form-urlencoded"),
    ]


def operations() -> list[Op]:
    return [*_crud("nodespecs", "nodespec", "nodespec", "NodespecSummary"), *_nodespec_tools(),
            *_crud("flows", "flow", "flow", "FlowSummary"), *_runs(), *_repository(), *_environments(), *_legacy(), *_editor()]


# ------------------------------------------------------------------------------ the document
def error_statuses(op: Op) -> list[int]:
    """The error statuses an operation documents: its own, plus those that apply by rule."""
    statuses = set(op.errors) | set(EVERY_ROUTE)
    if op.method in STATE_CHANGING:
        statuses |= {413, 415}
    if op.runs_code:
        statuses |= {429, 503}
    return sorted(statuses)


def _response(ok: Ok) -> dict:
    response: dict = {"description": ok.description}
    if ok.schema is not None or ok.media != "application/json":
        schema = ref(ok.schema) if isinstance(ok.schema, str) else ok.schema
        response["content"] = {ok.media: {"schema": schema} if schema is not None else {}}
    if ok.headers:
        response["headers"] = {name: {"$ref": f"#/components/headers/{name}"} for name in ok.headers}
    if ok.links:
        response["links"] = {name: {"operationId": target, "parameters": dict(parameters)}
                             for name, target, parameters in ok.links}
    return response


def _operation(op: Op) -> dict:
    responses = {str(ok.status): _response(ok) for ok in op.ok}
    responses.update({str(s): {"$ref": f"#/components/responses/E{s}"} for s in error_statuses(op)})
    operation = {"operationId": op.operation_id, "summary": op.summary, "tags": [op.tag],
                 "responses": responses}
    if op.params:
        operation["parameters"] = [{"$ref": f"#/components/parameters/{name}"} for name in op.params]
    if op.body:
        media = {"schema": ref(op.body) if isinstance(op.body, str) else op.body}
        if op.operation_id in BODY_EXAMPLES:
            media["example"] = BODY_EXAMPLES[op.operation_id]
        operation["requestBody"] = {"required": op.body_required, "content": {op.body_media: media}}
    return operation


DESCRIPTION = """PyFlow's REST API (under /api) and the original PyFlow's routes, kept for its scripts.

Every error is JSON: {"error": message, "details": [{"path": JSON pointer, "message": ...}]}. A method a
path does not allow answers 405 with Allow. State-changing requests send Content-Type: application/json.
Bound to loopback the server needs no token; otherwise send Authorization: Bearer TOKEN (or the editor's
session cookie)."""

TAGS = [("nodespecs", "Python functions with typed ports"), ("flows", "DAGs of nodes"),
        ("runs", "running flows, history, events"), ("repository", "import, export, server facts"),
        ("original", "the original PyFlow's routes"), ("editor", "the browser editor")]


@lru_cache(maxsize=1)
def build_document() -> dict:
    paths: dict = {}
    for op in operations():
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {"title": "PyFlow", "version": __version__, "description": DESCRIPTION,
                 "license": {"name": "MIT", "identifier": "MIT"}},
        "servers": [{"url": "/"}],
        "tags": [{"name": name, "description": text} for name, text in TAGS],
        "paths": paths,
        "components": {
            "schemas": {**model_schemas(), **SHAPES},
            "responses": error_responses(),
            "parameters": {key: {**param, "example": PARAM_EXAMPLES[key]} if key in PARAM_EXAMPLES else param
                           for key, param in PARAMS.items()},
            "headers": HEADERS,
            "securitySchemes": {
                "token": {"type": "http", "scheme": "bearer",
                          "description": "PYFLOW_TOKEN, or the token printed at start"}},
        },
        # No token is needed on loopback: the empty alternative.
        "security": [{}, {"token": []}],
    }


@bp.get("/openapi.json")
def openapi_document():
    return json_response(build_document())
