"""The OpenAPI document is generated from the operations the router is built from; its
references resolve and the docs page renders it offline."""

from __future__ import annotations

import json

from aop.api.app import create_app
from aop.api.openapi import docs_html, openapi_document
from aop.api.routes import OPERATIONS
from aop.runtime.settings import load_settings


def test_the_app_routes_exactly_the_documented_operations_in_order() -> None:
    app = create_app(load_settings({"AOP_DATABASE_SCHEMA": "unused"}))
    routed = [(route.path, sorted(route.methods - {"HEAD"})) for route in app.routes]
    document = openapi_document(OPERATIONS)
    documented = [(path, [m.upper()]) for path, ops in document["paths"].items() for m in ops]
    assert routed[0] == ("/v1/channels/{channel}/claims/{wallet}", ["GET"])
    assert routed == documented
    assert len(documented) == 19
    assert {
        "/v1/claims/{wallet}",
        "/v1/global/claims/{wallet}",
        "/v1/global",
        "/v1/global/roots",
        "/v1/global/roots/{root_seq}",
    } <= {path for path, _ in documented}


def test_document_is_openapi_31_json_with_resolvable_refs() -> None:
    document = openapi_document(OPERATIONS)
    assert document["openapi"] == "3.1.0"
    text = json.dumps(document)
    refs = {part.split('"')[0] for part in text.split("#/components/schemas/")[1:]}
    assert refs == set(document["components"]["schemas"])  # every one used, none missing
    for path, operations in document["paths"].items():
        for operation in operations.values():
            assert operation["responses"]["200"]["content"], path
            params = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert params == {seg[1:-1] for seg in path.split("/") if seg.startswith("{")}


def test_claim_operation_documents_its_shape_validators_and_errors() -> None:
    claim = openapi_document(OPERATIONS)["paths"]["/v1/channels/{channel}/claims/{wallet}"]["get"]
    ok = claim["responses"]["200"]
    assert ok["content"] == {"application/json": {"schema": {"$ref": "#/components/schemas/Claim"}}}
    assert set(ok["headers"]) == {"ETag", "Cache-Control"}
    assert sorted(claim["responses"]) == ["200", "304", "400", "404", "503"]
    assert [p["name"] for p in claim["parameters"]] == ["channel", "wallet", "If-None-Match"]


def test_docs_page_is_self_contained() -> None:
    page = docs_html(openapi_document(OPERATIONS))
    assert page.startswith("<!doctype html>")
    assert "<script" not in page and "https://" not in page
    assert "GET /v1/channels/{channel}/claims/{wallet}" in page
