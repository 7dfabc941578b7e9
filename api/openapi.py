"""The OpenAPI 3.1 document of the read API (hand-written) and a self-contained docs page.

The document is the contract: a test validates real answers against its schemas and a
schemathesis run fuzzes every operation against it. Keep it in step with `api.routes`.
"""

from __future__ import annotations

import html
import json
from typing import Any

from aop.api.dataset import DATASET_FORMATS, MEDIA_TYPES
from aop.api.params import I64_MAX, MAX_LIMIT, U64_MAX

__all__ = ["docs_html", "openapi_document"]

BASE58 = "^[1-9A-HJ-NP-Za-km-z]{32,44}$"
HEX32 = "^[0-9a-f]{64}$"

_PUBKEY = {"type": "string", "pattern": BASE58, "description": "base58 public key"}
_HEX = {"type": "string", "pattern": HEX32, "description": "32 bytes, lower-case hex"}
_U64 = {"type": "string", "pattern": "^[0-9]{1,20}$", "description": "u64, decimal string"}
_U128 = {"type": "string", "pattern": "^[0-9]{1,39}$", "description": "u128, decimal string"}
_SEQ = {"type": "integer", "minimum": 0, "maximum": I64_MAX}
_COUNT = {"type": "integer", "minimum": 0}
_STAMP = {"type": "string", "format": "date-time"}
_FORMAT = {"type": "string", "enum": ["cumulative-v2", "ring-v0"]}
_STATUS = {
    "type": ["string", "null"],
    "description": "settlement_outbox status (pending, sent, published, failed, dry_run, "
    "sequence_mismatch); null when unknown",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _object(properties: dict[str, Any], *, required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        "additionalProperties": False,
    }


_ROOT_SUMMARY = _object(
    {
        "root_seq": _SEQ,
        "epoch": _SEQ,
        "root": _HEX,
        "dataset_hash": _HEX,
        "leaf_count": _COUNT,
        "total": _U128,
        "settlement_status": _STATUS,
    }
)
_CHANNEL_SUMMARY = _object(
    {
        "name": {"type": "string"},
        "channel_config": _PUBKEY,
        "format": _FORMAT,
        "latest_root_seq": _SEQ,
        "latest_epoch": _SEQ,
    }
)
_CLAIM_COMMON = {
    "channel": {"type": "string"},
    "channel_config": _PUBKEY,
    "format": _FORMAT,
    "program_id": _PUBKEY,
    "mint": _PUBKEY,
    "wallet": _PUBKEY,
    "claim_state": {
        **_nullable(_PUBKEY),
        "description": "ClaimStateV2 PDA of (channel_config, wallet); null for ring-v0",
    },
    "root_seq": _SEQ,
    "epoch": _SEQ,
    "leaf_index": _COUNT,
    "amount": {**_U64, "description": "what the leaf commits to (cumulative-v2: the total)"},
    "cumulative_total": _nullable(_U64),
    "claim_id": {
        **_nullable({"type": "string"}),
        "description": "ring-v0 claim id '<channel>:<epoch>'; null for cumulative-v2",
    },
    "leaf": _HEX,
    "root": _HEX,
    "proof": {"type": "array", "items": _HEX, "maxItems": 32},
}

SCHEMAS: dict[str, Any] = {
    "Error": _object(
        {
            "error": _object(
                {
                    "code": {"type": "string", "pattern": "^[a-z_]+$"},
                    "message": {"type": "string"},
                }
            )
        }
    ),
    "Health": _object({"status": {"type": "string", "enum": ["ok"]}}),
    "Ready": _object({"status": {"type": "string", "enum": ["ready"]}}),
    "ChannelSummary": _CHANNEL_SUMMARY,
    "ChannelList": _object(
        {
            "channels": {"type": "array", "items": _ref("ChannelSummary"), "maxItems": MAX_LIMIT},
            "next_after": {
                **_nullable(_PUBKEY),
                "description": "pass as ?after= for the next page; null on the last page",
            },
        }
    ),
    "RootSummary": _ROOT_SUMMARY,
    "ChannelDetail": _object(
        {
            "name": {"type": "string"},
            "channel_config": _PUBKEY,
            "subject_id": _HEX,
            "format": _FORMAT,
            "program_id": _PUBKEY,
            "mint": _PUBKEY,
            "latest_root_seq": _SEQ,
            "latest_epoch": _SEQ,
            "updated_at": _STAMP,
            "latest_root": _nullable(_ref("RootSummary")),
        }
    ),
    "RootList": _object(
        {
            "channel": {"type": "string"},
            "channel_config": _PUBKEY,
            "roots": {"type": "array", "items": _ref("RootSummary"), "maxItems": MAX_LIMIT},
            "next_before": {
                **_nullable(_SEQ),
                "description": "pass as ?before= for the next page; null on the last page",
            },
        }
    ),
    "InputRange": _object({"partition": _COUNT, "first_offset": _COUNT, "last_offset": _COUNT}),
    "Settlement": _object(
        {
            "status": {"type": "string"},
            "signature": {"type": ["string", "null"]},
            "slot": _nullable(_COUNT),
            "attempts": _COUNT,
            "updated_at": _STAMP,
        }
    ),
    "RootDetail": _object(
        {
            "channel": {"type": "string"},
            "channel_config": _PUBKEY,
            "format": _FORMAT,
            "program_id": _PUBKEY,
            "mint": _PUBKEY,
            "root_seq": _SEQ,
            "epoch": _SEQ,
            "root": _HEX,
            "dataset_hash": _HEX,
            "leaf_count": _COUNT,
            "tree_depth": {"type": "integer", "minimum": 0, "maximum": 32},
            "total": _U128,
            "emission": _U128,
            "closed_at_slot": _COUNT,
            "input_offsets": {"type": "array", "items": _ref("InputRange")},
            "created_at": _STAMP,
            "settlement": _nullable(_ref("Settlement")),
            "dataset_url": {"type": "string"},
        }
    ),
    "Claim": _object(
        {
            **_CLAIM_COMMON,
            "claimed_total": _nullable(_U64),
            "claimable": {
                **_nullable(_U64),
                "description": "max(0, cumulative_total - claimed_total); null for ring-v0",
            },
            "latest_root_seq": _SEQ,
            "stale": {
                "type": "boolean",
                "description": "the program no longer keeps this root (cumulative-v2: "
                "root_seq <= latest_root_seq - 4; ring-v0: epoch <= latest_epoch - 10)",
            },
            "settlement_status": _STATUS,
        }
    ),
    "RootClaim": _object({**_CLAIM_COMMON, "dataset_hash": _HEX}),
    "WalletClaims": _object(
        {
            "wallet": _PUBKEY,
            "claims": {"type": "array", "items": _ref("Claim"), "maxItems": MAX_LIMIT},
            "next_after": _nullable(_PUBKEY),
        }
    ),
    "VerifyRequest": {
        "type": "object",
        "properties": {
            "format": {"type": "string", "enum": ["cumulative-v2"]},
            "channel": {
                "type": "string",
                "minLength": 1,
                "maxLength": 64,
                "pattern": "^[\\x00-\\x7f]+$",
                "description": "channel name (its config PDA is derived with mint, program_id)",
            },
            "channel_config": _PUBKEY,
            "mint": {**_PUBKEY, "description": "default: the service's AOP_MINT"},
            "program_id": {**_PUBKEY, "description": "default: the service's AOP_PROGRAM_ID"},
            "root_seq": {
                "oneOf": [_SEQ, {"type": "string", "pattern": "^[0-9]{1,19}$"}],
            },
            "wallet": _PUBKEY,
            "cumulative_total": {
                "oneOf": [
                    {"type": "integer", "minimum": 0, "maximum": U64_MAX},
                    {"type": "string", "pattern": "^[0-9]{1,20}$"},
                ]
            },
            "proof": {
                "type": "array",
                "items": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"},
                "maxItems": 32,
            },
            "root": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"},
        },
        "required": ["root_seq", "wallet", "cumulative_total", "proof", "root"],
        "oneOf": [{"required": ["channel"]}, {"required": ["channel_config"]}],
        "additionalProperties": False,
    },
    "VerifyResult": _object(
        {
            "valid": {"type": "boolean"},
            "leaf": _HEX,
            "computed_root": _HEX,
            "channel_config": _PUBKEY,
        }
    ),
    "DatasetEntry": _object({"index": _COUNT, "wallet": _PUBKEY, "amount": _U64}),
}

_CHANNEL_PARAM = {
    "name": "channel",
    "in": "path",
    "required": True,
    "description": "channel name (1-64 ASCII characters, case-insensitive) or its config "
    "PDA (base58); a PDA that is also some channel's name means the PDA",
    "schema": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[\\x00-\\x7f]+$"},
}
_WALLET_PARAM = {
    "name": "wallet",
    "in": "path",
    "required": True,
    "description": "base58 public key (32 bytes)",
    "schema": {"type": "string", "pattern": BASE58},
}
_ROOT_SEQ_PARAM = {
    "name": "root_seq",
    "in": "path",
    "required": True,
    "schema": _SEQ,
}
_LIMIT_PARAM = {
    "name": "limit",
    "in": "query",
    "required": False,
    "description": f"page size, 1..{MAX_LIMIT}",
    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
}
_AFTER_PARAM = {
    "name": "after",
    "in": "query",
    "required": False,
    "description": "a channel config PDA: the page starts after it (`next_after` of a page)",
    "schema": {"type": "string", "pattern": BASE58},
}
_BEFORE_PARAM = {
    "name": "before",
    "in": "query",
    "required": False,
    "description": "only roots with root_seq below this (`next_before` of a page)",
    "schema": _SEQ,
}
_IF_NONE_MATCH = {
    "name": "If-None-Match",
    "in": "header",
    "required": False,
    "description": "an ETag of an earlier answer: 304 without a body if it still holds",
    "schema": {"type": "string"},
}
_FORMAT_PARAM = {
    "name": "format",
    "in": "query",
    "required": False,
    "description": "json (default): a JSON array of entries; ndjson: one entry per line; "
    "binary: the canonical dataset bytes (keccak256 of the body = dataset_hash)",
    "schema": {"type": "string", "enum": list(DATASET_FORMATS)},
}

_VALIDATOR_HEADERS = {
    "ETag": {"required": True, "schema": {"type": "string"}},
    "Cache-Control": {"required": True, "schema": {"type": "string"}},
}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": _json(_ref("Error"))}


def _ok(schema_name: str, description: str, *, validators: bool = True) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": _json(_ref(schema_name))}
    if validators:
        response["headers"] = _VALIDATOR_HEADERS
    return response


_NOT_MODIFIED = {
    "description": "the client's copy (If-None-Match) is current",
    "headers": _VALIDATOR_HEADERS,
}
_BAD = _error("malformed parameter (the error code names it)")
_UNAVAILABLE = _error("database unreachable or busy; retry (Retry-After)")


def _get(
    operation_id: str,
    summary: str,
    parameters: list[dict[str, Any]],
    ok: dict[str, Any],
    *,
    not_found: str | None = None,
    conditional: bool = True,
    description: str = "",
) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": ok}
    if conditional:
        responses["304"] = _NOT_MODIFIED
    responses["400"] = _BAD
    if not_found:
        responses["404"] = _error(not_found)
    responses["503"] = _UNAVAILABLE
    return {
        "get": {
            "operationId": operation_id,
            "summary": summary,
            "description": description,
            "parameters": parameters + ([_IF_NONE_MATCH] if conditional else []),
            "responses": responses,
        }
    }


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document served at /openapi.json."""
    dataset_content = {
        MEDIA_TYPES["json"]: {"schema": {"type": "array", "items": _ref("DatasetEntry")}},
        MEDIA_TYPES["ndjson"]: {"schema": {"type": "string"}},
        MEDIA_TYPES["binary"]: {"schema": {"type": "string", "format": "binary"}},
    }
    dataset_headers = {
        **_VALIDATOR_HEADERS,
        "X-AOP-Root": {"required": True, "schema": {"type": "string", "pattern": HEX32}},
        "X-AOP-Dataset-Hash": {"required": True, "schema": {"type": "string", "pattern": HEX32}},
        "X-AOP-Leaf-Count": {"required": True, "schema": {"type": "string", "pattern": "^[0-9]+$"}},
        "X-AOP-Format": {"required": True, "schema": _FORMAT},
    }
    paths: dict[str, Any] = {
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "summary": "Liveness: the process answers",
                "responses": {"200": _ok("Health", "alive", validators=False)},
            }
        },
        "/readyz": {
            "get": {
                "operationId": "readyz",
                "summary": "Readiness: the database answers with the projection tables",
                "responses": {
                    "200": _ok("Ready", "ready", validators=False),
                    "503": _UNAVAILABLE,
                },
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics (aop_api_requests_total, aop_api_request_seconds)",
                "responses": {
                    "200": {
                        "description": "Prometheus text exposition",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document (OpenAPI 3.1)",
                "responses": {
                    "200": {
                        "description": "the OpenAPI document",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
        "/docs": {
            "get": {
                "operationId": "docs",
                "summary": "Human-readable documentation (self-contained HTML)",
                "responses": {
                    "200": {
                        "description": "HTML page",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/v1/channels": _get(
            "listChannels",
            "Channels with roots, in config-PDA order",
            [_LIMIT_PARAM, _AFTER_PARAM],
            _ok("ChannelList", "a page of channels (default 100, at most 1000)"),
        ),
        "/v1/channels/{channel}": _get(
            "getChannel",
            "A channel: name, subject id, config PDA, format, latest root",
            [_CHANNEL_PARAM],
            _ok("ChannelDetail", "the channel (short max-age: the latest root moves)"),
            not_found="channel_not_found",
        ),
        "/v1/channels/{channel}/roots": _get(
            "listRoots",
            "A channel's roots, newest first",
            [_CHANNEL_PARAM, _LIMIT_PARAM, _BEFORE_PARAM],
            _ok("RootList", "a page of roots (default 50, at most 1000)"),
            not_found="channel_not_found",
        ),
        "/v1/channels/{channel}/roots/{root_seq}": _get(
            "getRoot",
            "One root: hashes, leaf count, total, epoch, input offsets, settlement",
            [_CHANNEL_PARAM, _ROOT_SEQ_PARAM],
            _ok(
                "RootDetail",
                "the root; cached as immutable once its settlement status is `published`",
            ),
            not_found="channel_not_found or root_not_found",
        ),
        "/v1/channels/{channel}/roots/{root_seq}/claims/{wallet}": _get(
            "getRootClaim",
            "A wallet's leaf and proof in one given root (immutable)",
            [_CHANNEL_PARAM, _ROOT_SEQ_PARAM, _WALLET_PARAM],
            _ok("RootClaim", "leaf, proof, root (Cache-Control immutable)"),
            not_found="channel_not_found, root_not_found or wallet_not_found",
        ),
        "/v1/channels/{channel}/claims/{wallet}": _get(
            "getClaim",
            "Everything a claim transaction needs, against the newest root holding the wallet",
            [_CHANNEL_PARAM, _WALLET_PARAM],
            _ok("Claim", "the claim (short max-age: claimed_total and stale change)"),
            not_found="channel_not_found or wallet_not_found",
        ),
        "/v1/wallets/{wallet}/claims": _get(
            "listWalletClaims",
            "A wallet's claims in every channel",
            [_WALLET_PARAM, _LIMIT_PARAM, _AFTER_PARAM],
            _ok("WalletClaims", "a page of claims (default 100, at most 1000)"),
            not_found="wallet_not_found (no leaf in any channel; first page only)",
        ),
        "/v1/roots/{channel}/{root_seq}/dataset": {
            "get": {
                "operationId": "getDataset",
                "summary": "A root's full dataset (streamed), to recompute root and dataset_hash",
                "parameters": [_CHANNEL_PARAM, _ROOT_SEQ_PARAM, _FORMAT_PARAM, _IF_NONE_MATCH],
                "responses": {
                    "200": {
                        "description": "every leaf in leaf order (Cache-Control immutable)",
                        "headers": dataset_headers,
                        "content": dataset_content,
                    },
                    "304": _NOT_MODIFIED,
                    "400": _BAD,
                    "404": _error("channel_not_found or root_not_found"),
                    "503": _error("database unavailable, or too many dataset streams"),
                },
            }
        },
        "/v1/verify": {
            "post": {
                "operationId": "verify",
                "summary": "Recompute a cumulative-v2 leaf and fold a proof into a root",
                "requestBody": {"required": True, "content": _json(_ref("VerifyRequest"))},
                "responses": {
                    "200": _ok("VerifyResult", "whether the proof holds", validators=False),
                    "400": _error("malformed body or field (the error code names it)"),
                    "413": _error("body larger than AOP_API_MAX_BODY_BYTES"),
                    "415": _error("body not application/json"),
                },
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Attention Oracle Pipeline read API",
            "version": "1",
            "description": "Roots, proofs and datasets of the attention oracle's cumulative "
            'rewards. Errors are {"error": {"code", "message"}}. Amounts are decimal '
            "strings, hashes lower-case hex, keys base58. Immutable answers (a given root's "
            "dataset and proofs) carry Cache-Control immutable; every 200 has a strong ETag.",
        },
        "paths": paths,
        "components": {"schemas": SCHEMAS},
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
