"""The OpenAPI 3.1 document of the read API, generated, and a self-contained docs page.

The paths come from the operations the router is built from (`api.routes.OPERATIONS`), the
schemas from the Structs the handlers answer with (`api.shapes`, through
`msgspec.json.schema_components`): nothing here restates a route or a shape. The document is
the contract: tests validate real answers against its schemas and schemathesis fuzzes every
operation against it.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import Any

import msgspec

from aop.api.operations import IF_NONE_MATCH, Operation, Param
from aop.api.shapes import Error

__all__ = ["docs_html", "openapi_document"]

_REF_TEMPLATE = "#/components/schemas/{name}"
_JSON = "application/json"
_VALIDATORS = {
    "ETag": {"required": True, "schema": {"type": "string"}},
    "Cache-Control": {"required": True, "schema": {"type": "string"}},
}
_INFO = {
    "title": "Attention Oracle Pipeline read API",
    "version": "1",
    "description": "Roots, proofs and datasets of the attention oracle's cumulative "
    'rewards. Errors are {"error": {"code", "message"}}. Amounts are decimal '
    "strings, hashes lower-case hex, keys base58. Immutable answers (a given root's "
    "dataset and proofs) carry Cache-Control immutable; every 200 has a strong ETag.",
}


class _Schemas:
    """Every type the operations name, turned into schemas by ONE schema_components call
    (so each Struct becomes one component, referenced wherever it is used)."""

    def __init__(self, operations: Sequence[Operation]) -> None:
        types: list[Any] = [Error]
        for op in operations:
            types += [op.answer, op.body, *(p.type for p in op.params)]
            types += [t for _, t in op.media] + [t for _, t in op.headers]
            types += [t for _, t in op.error_bodies]
        types.append(IF_NONE_MATCH.type)
        self._types = [t for t in types if t is not None]
        schemas, self.components = msgspec.json.schema_components(
            self._types, ref_template=_REF_TEMPLATE
        )
        self._by_id = {id(t): s for t, s in zip(self._types, schemas, strict=True)}

    def __call__(self, value_type: Any) -> dict[str, Any]:
        return dict(self._by_id[id(value_type)])


def _parameter(param: Param, schema: _Schemas) -> dict[str, Any]:
    out: dict[str, Any] = {"name": param.name, "in": param.where, "required": param.required}
    if param.description:
        out["description"] = param.description
    out["schema"] = schema(param.type)
    return out


def _operation(op: Operation, schema: _Schemas) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": op.answer_doc or op.summary}
    media = op.media or ((_JSON, op.answer),)
    ok["content"] = {media_type: {"schema": schema(t)} for media_type, t in media}
    headers = {
        name: {"required": True, "schema": schema(value_type)} for name, value_type in op.headers
    }
    if op.conditional:
        headers = {**_VALIDATORS, **headers}
    if headers:
        ok["headers"] = headers
    responses: dict[str, Any] = {"200": ok}
    if op.conditional:
        responses["304"] = {
            "description": "the client's copy (If-None-Match) is current",
            "headers": _VALIDATORS,
        }
    bodies = dict(op.error_bodies)
    for status, description in op.errors:
        content = {_JSON: {"schema": schema(bodies.get(status, Error))}}
        responses[str(status)] = {"description": description, "content": content}
    params = [*op.params, IF_NONE_MATCH] if op.conditional else list(op.params)
    out: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary}
    if params:
        out["parameters"] = [_parameter(p, schema) for p in params]
    if op.body is not None:
        out["requestBody"] = {"required": True, "content": {_JSON: {"schema": schema(op.body)}}}
    out["responses"] = responses
    return out


def openapi_document(
    operations: Sequence[Operation], info: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `operations` (`api.routes.OPERATIONS`, or the ingest's),
    served at /openapi.json; `info` is the read API's unless told."""
    schema = _Schemas(operations)
    paths: dict[str, Any] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, schema)
    return {
        "openapi": "3.1.0",
        "info": info or _INFO,
        "paths": paths,
        "components": {"schemas": schema.components},
    }


def docs_html(document: dict[str, Any]) -> str:
    """A self-contained HTML page listing every operation, its parameters and answers."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(document['info']['title'])}</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
        "code,pre{background:#f4f4f4}pre{padding:1em;overflow:auto}"
        "h3{margin-bottom:.2em}td,th{padding:.2em .6em;text-align:left}</style></head><body>",
        f"<h1>{html.escape(document['info']['title'])}</h1>",
        f"<p>{html.escape(document['info']['description'])}</p>",
        "<p>Machine-readable: <a href='/openapi.json'>/openapi.json</a> (OpenAPI 3.1).</p>",
    ]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            parts.append(
                f"<h3><code>{method.upper()} {html.escape(path)}</code></h3>"
                f"<p>{html.escape(operation.get('summary', ''))}</p>"
            )
            params = operation.get("parameters", [])
            if params:
                parts.append("<table><tr><th>parameter</th><th>in</th><th>schema</th></tr>")
                for param in params:
                    parts.append(
                        f"<tr><td><code>{html.escape(param['name'])}</code></td>"
                        f"<td>{param['in']}</td>"
                        f"<td><code>{html.escape(json.dumps(param['schema']))}</code></td></tr>"
                    )
                parts.append("</table>")
            answers = ", ".join(
                f"{code} {html.escape(resp.get('description', ''))}"
                for code, resp in operation["responses"].items()
            )
            parts.append(f"<p>Answers: {answers}</p>")
    parts.append("<h2>Schemas</h2>")
    parts.append(f"<pre>{html.escape(json.dumps(document['components'], indent=2))}</pre>")
    parts.append("</body></html>")
    return "".join(parts)
