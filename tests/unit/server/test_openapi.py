"""The OpenAPI document: valid OpenAPI 3.1, every route of the app in it, built from the model's schemas."""

import re

import pytest
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError
from referencing.exceptions import Unresolvable

from pyflow.executors.inprocess import InProcessExecutor
from pyflow.model.validation import SCHEMA_NAMES, load_schema
from pyflow.server import create_app
from pyflow.server.openapi import build_document, model_schemas
from pyflow.service import Config, PyflowService

IGNORED_METHODS = {"HEAD", "OPTIONS"}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    config = Config(db_path=tmp_path_factory.mktemp("openapi") / "db.sqlite", load_stdlib=False)
    service = PyflowService(config, InProcessExecutor())
    yield create_app(service)
    service.close()


def rule_paths(rule: str) -> list[str]:
    """A Flask rule as OpenAPI path templates: `<any(a, b):x>` gives one path per choice, and every
    other variable becomes `{}` (documents name their parameters as they like)."""
    paths = [rule]
    choice = re.compile(r"<any\(([^)]*)\):\w+>")
    while any(choice.search(p) for p in paths):
        paths = [p[:m.start()] + option.strip() + p[m.end():]
                 for p in paths if (m := choice.search(p)) for option in m.group(1).split(",")] + \
                [p for p in paths if not choice.search(p)]
    return [re.sub(r"<[^>]+>", "{}", p) for p in paths]


def app_routes(app) -> set[tuple[str, str]]:
    return {(path, method.lower()) for rule in app.url_map.iter_rules()
            for path in rule_paths(rule.rule) for method in rule.methods - IGNORED_METHODS}


def documented_routes(document) -> set[tuple[str, str]]:
    return {(re.sub(r"\{[^}]+\}", "{}", path), method)
            for path, item in document["paths"].items() for method in item}


def test_the_document_is_valid_openapi_3_1():
    document = build_document()
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_the_validator_rejects_a_broken_reference():
    """The validity test above could fail: a dangling reference is caught."""
    document = build_document()
    broken = {**document, "paths": {**document["paths"], "/x": {"get": {
        "responses": {"200": {"description": "x", "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/nothing"}}}}}}}}}
    with pytest.raises((OpenAPIValidationError, Unresolvable)):
        validate(broken)


def test_every_route_of_the_app_is_documented_and_nothing_else(app):
    routes = app_routes(app)
    assert ("/api/nodespecs/{}", "put") in routes and ("/runflow", "post") in routes  # the listing works
    documented = documented_routes(build_document())
    assert routes - documented == set(), "routes without documentation"
    assert documented - routes == set(), "documented routes the app does not have"


def test_the_app_serves_the_document(app):
    response = app.test_client().get("/api/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.get_json() == build_document()


def test_model_schemas_are_the_files_the_server_validates_with():
    components = model_schemas()
    for name in SCHEMA_NAMES:
        original = load_schema(name)
        assert components[name]["properties"].keys() == original["properties"].keys()
        for def_name in original.get("$defs", {}):
            assert f"{name}.{def_name}" in components
    assert components["flow"]["properties"]["id"] == {"$ref": "#/components/schemas/nodespec.objectId"}
    assert components["flow.node"]["properties"]["ports"]["items"] == {"$ref": "#/components/schemas/flow.portValue"}
    assert components["nodespec"]["properties"]["limits"] == load_schema("nodespec")["properties"]["limits"]


def test_every_error_is_the_json_error_body_and_statuses_apply_by_rule():
    document = build_document()
    error = document["components"]["schemas"]["Error"]
    assert error["required"] == ["error", "details"]
    for response in document["components"]["responses"].values():
        assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            statuses = set(operation["responses"])
            assert {"400", "401", "403", "421"} <= statuses, (method, path)
            if method in ("post", "put", "delete"):
                assert {"413", "415"} <= statuses, (method, path)
            if path.endswith(("/run", "/runs", "/runflow", "/test")) and method == "post":
                assert {"429", "503"} <= statuses, (method, path)
    assert "Retry-After" in document["components"]["responses"]["E503"]["headers"]
    assert "503" in document["paths"]["/api/health"]["get"]["responses"]
