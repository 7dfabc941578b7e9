"""The OpenAPI document lists exactly the app's routes; the docs page renders it offline."""

from __future__ import annotations

import json

from aop.api.app import create_app
from aop.api.openapi import docs_html, openapi_document
from aop.runtime.settings import load_settings


def test_every_route_is_documented_and_nothing_else() -> None:
    app = create_app(load_settings({"AOP_DATABASE_SCHEMA": "unused"}))
    routes = {(route.path, method.lower()) for route in app.routes for method in route.methods}
    routes = {(path, method) for path, method in routes if method != "head"}
    documented = {
        (path, method)
        for path, operations in openapi_document()["paths"].items()
        for method in operations
    }
    assert routes == documented


def test_document_is_openapi_31_json_with_resolvable_refs() -> None:
    document = openapi_document()
    assert document["openapi"] == "3.1.0"
    text = json.dumps(document)
    for name in document["components"]["schemas"]:
        assert f"#/components/schemas/{name}" in text or name in ("Error",)
    refs = {part.split('"')[0] for part in text.split("#/components/schemas/")[1:]}
    assert refs <= set(document["components"]["schemas"])
    for path, operations in document["paths"].items():
        for operation in operations.values():
            assert operation["responses"], path
            params = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert params == {seg[1:-1] for seg in path.split("/") if seg.startswith("{")}


def test_docs_page_is_self_contained() -> None:
    page = docs_html(openapi_document())
    assert page.startswith("<!doctype html>")
    assert "<script" not in page and "https://" not in page
    assert "GET /v1/channels/{channel}/claims/{wallet}" in page
