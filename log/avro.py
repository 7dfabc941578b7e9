"""Avro encoding of every record on the log (schemas in `schemas/avro/`).

Two framings, and readers accept both:

* Avro single-object encoding (no registry): `C3 01` + the schema's 8-byte CRC-64-AVRO
  fingerprint (little-endian) + the binary body.
* Confluent wire format (with `AOP_SCHEMA_REGISTRY_URL`, e.g. Redpanda's built-in registry, so
  Redpanda Console shows readable records): `00` + 4-byte big-endian schema id + body. Subjects
  follow the TopicRecordNameStrategy, `<topic>-<record full name>`, because one topic carries
  several record types (EpochRoot and LeafChunk share `aop.epoch.roots`).

Schema evolution. A record type whose schema changed keeps each earlier version in
`schemas/avro/previous/<Name>.<n>.avsc` (`PREVIOUS_VERSIONS`). A record written with an
earlier version (its fingerprint, or its registry schema) is read with that version and
resolved into the current one (Avro schema resolution: an added field takes its default), so
old logs still decode; only fields with defaults may be added.
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

import fastavro
import httpx
from confluent_kafka.schema_registry.error import SchemaRegistryError
from fastavro.schema import fingerprint, to_parsing_canonical_form

from aop.runtime.errors import AopError

if TYPE_CHECKING:
    from aop.runtime.settings import Settings

__all__ = [
    "PREVIOUS_VERSIONS",
    "RECORD_TYPES",
    "SCHEMA_DIR",
    "AvroCodec",
    "AvroDecodeError",
    "SchemaRegistry",
    "codec_for",
]

#: the `.avsc` files, package data of `aop.schemas` (found the same way in a wheel and a checkout)
SCHEMA_DIR = resources.files("aop.schemas") / "avro"
#: record types in dependency order (a schema may only use names defined before it).
RECORD_TYPES = (
    "ChainEvent",
    "SlotBatch",
    "Signal",
    "Binding",
    "SignalBatch",
    "InputRange",
    "EpochRoot",
    "AttentionRoot",
    "LeafChunk",
    "EpochClosed",
    "AttentionClosed",
    "GlobalRoot",
    "SettlementResult",
    "DeadLetter",
)
#: earlier versions of a record type's schema, oldest first (`previous/<Name>.<n>.avsc`):
#: SlotBatch 1 had no `last_block_time`, EpochClosed 1 no `closed_at_time`.
PREVIOUS_VERSIONS: dict[str, tuple[int, ...]] = {"SlotBatch": (1,), "EpochClosed": (1,)}
_SINGLE_OBJECT_MAGIC = b"\xc3\x01"
_CONFLUENT_MAGIC = 0


class AvroDecodeError(AopError, ValueError):
    """Raised when bytes on the log are not a record this codec knows."""


class _Schema:
    def __init__(
        self, name: str, parsed: Any, canonical: str, standalone: str, current: Any = None
    ) -> None:
        self.name = name
        self.parsed = parsed
        self.canonical = canonical
        #: the canonical form with every named type it uses defined inline at its first use:
        #: what a registry stores (it cannot resolve names defined in our other files).
        self.standalone = standalone
        self.fingerprint = bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))
        #: for an earlier version: the current schema its records are resolved into.
        self.current = current


_NAMED_KINDS = ("record", "enum", "fixed")


def _named_definitions(node: Any, out: dict[str, Any]) -> None:
    """Collect every named type defined anywhere in a canonical schema, by full name."""
    if isinstance(node, list):
        for item in node:
            _named_definitions(item, out)
    elif isinstance(node, dict):
        if node.get("type") in _NAMED_KINDS and "name" in node:
            out.setdefault(node["name"], node)
        for key in ("type", "fields", "items", "values"):
            if isinstance(node.get(key), (dict, list)):
                _named_definitions(node[key], out)


def _inline_first_use(node: Any, definitions: dict[str, Any], seen: set[str]) -> Any:
    """`node` with each named type referenced before its definition replaced by that
    definition (once; later uses stay names), as Avro's canonical form does."""
    if isinstance(node, str):
        if node in definitions and node not in seen:
            return _inline_first_use(definitions[node], definitions, seen)
        return node
    if isinstance(node, list):
        return [_inline_first_use(item, definitions, seen) for item in node]
    if not isinstance(node, dict):
        return node
    if node.get("type") in _NAMED_KINDS and "name" in node:
        seen.add(node["name"])
    out = dict(node)
    for key in ("fields", "items", "values"):
        if key in out:
            out[key] = _inline_first_use(out[key], definitions, seen)
    if "type" in out and out["type"] not in _NAMED_KINDS:
        out["type"] = _inline_first_use(out["type"], definitions, seen)
    return out


def _standalone(canonical: str, definitions: dict[str, Any]) -> str:
    standalone = _inline_first_use(json.loads(canonical), definitions, set())
    return str(to_parsing_canonical_form(fastavro.parse_schema(standalone)))


@cache
def _schemas() -> dict[str, _Schema]:
    named: dict[str, Any] = {}
    parsed_by_name: dict[str, tuple[Any, str]] = {}
    definitions: dict[str, Any] = {}
    previous: list[tuple[str, Any, str]] = []
    for name in RECORD_TYPES:
        for version in PREVIOUS_VERSIONS.get(name, ()):
            old = json.loads((SCHEMA_DIR / "previous" / f"{name}.{version}.avsc").read_text())
            parsed_old = fastavro.parse_schema(old, named_schemas=dict(named))
            previous.append((name, parsed_old, to_parsing_canonical_form(parsed_old)))
        raw = json.loads((SCHEMA_DIR / f"{name}.avsc").read_text())
        parsed = fastavro.parse_schema(raw, named_schemas=named)
        canonical = to_parsing_canonical_form(parsed)
        _named_definitions(json.loads(canonical), definitions)
        parsed_by_name[name] = (parsed, canonical)
    out: dict[str, _Schema] = {}
    for name, (parsed, canonical) in parsed_by_name.items():
        out[name] = _Schema(name, parsed, canonical, _standalone(canonical, definitions))
    for index, (name, parsed_old, canonical) in enumerate(previous):
        key = f"{name}#{index}"  # not a record type name: never chosen by `encode`
        text = _standalone(canonical, definitions)
        out[key] = _Schema(name, parsed_old, canonical, text, current=out[name].parsed)
    return out


class SchemaRegistry:
    """The two registry calls the codec makes (register a subject's version, fetch a schema by
    id), through confluent-kafka's `SchemaRegistryClient`: its cache, retries with backoff,
    and the registry's TLS and authentication settings, rather than a client of our own."""

    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        from confluent_kafka.schema_registry import SchemaRegistryClient

        self._client = SchemaRegistryClient({"url": url.rstrip("/"), "timeout": timeout})

    def register(self, subject: str, schema: str) -> int:
        from confluent_kafka.schema_registry import Schema

        return int(self._client.register_schema(subject, Schema(schema, "AVRO")))

    def schema_by_id(self, schema_id: int) -> str:
        text = self._client.get_schema(schema_id).schema_str
        if text is None:
            raise AvroDecodeError(f"schema id {schema_id}: the registry returned no schema")
        return str(text)


class AvroCodec:
    """Encodes and decodes the pipeline's records; one instance per process is enough."""

    def __init__(self, registry: SchemaRegistry | None = None) -> None:
        self._schemas = _schemas()
        self._by_fingerprint = {s.fingerprint: s for s in self._schemas.values()}
        self._by_standalone = {s.standalone: s for s in self._schemas.values()}
        self._registry = registry
        self._confluent_ids: dict[tuple[str, str], int] = {}
        self._by_confluent_id: dict[int, _Schema] = {}

    def encode(self, record_type: str, value: Mapping[str, Any], *, topic: str = "") -> bytes:
        """Frame `value` as `record_type`; with a registry, in Confluent framing for `topic`."""
        schema = self._schemas[record_type]
        out = io.BytesIO()
        if self._registry is None:
            out.write(_SINGLE_OBJECT_MAGIC)
            out.write(schema.fingerprint)
        else:
            schema_id = self._confluent_id(self._registry, schema, topic)
            out.write(struct.pack(">bI", _CONFLUENT_MAGIC, schema_id))
        fastavro.schemaless_writer(out, schema.parsed, value)
        return out.getvalue()

    def decode(self, data: bytes) -> tuple[str, dict[str, Any]]:
        """Return (record type, value) for bytes in either framing.

        Raises:
            AvroDecodeError: unknown framing or schema, or a body that does not parse.
        """
        schema, body_at = self._schema_of(data)
        try:
            value = fastavro.schemaless_reader(
                io.BytesIO(data[body_at:]), schema.parsed, schema.current
            )
        except Exception as exc:  # fastavro raises assorted errors on garbage
            raise AvroDecodeError(f"{schema.name} body does not parse: {exc}") from exc
        if not isinstance(value, dict):
            raise AvroDecodeError(f"{schema.name} decoded to {type(value).__name__}, not a record")
        return schema.name, value

    def decode_as(self, record_type: str, data: bytes) -> dict[str, Any]:
        """Decode, insisting on `record_type`."""
        name, value = self.decode(data)
        if name != record_type:
            raise AvroDecodeError(f"expected a {record_type} record (got {name})")
        return value

    def _schema_of(self, data: bytes) -> tuple[_Schema, int]:
        if data[:2] == _SINGLE_OBJECT_MAGIC and len(data) >= 10:
            schema = self._by_fingerprint.get(bytes(data[2:10]))
            if schema is None:
                raise AvroDecodeError(f"unknown schema fingerprint {bytes(data[2:10]).hex()}")
            return schema, 10
        if data[:1] == b"\x00" and len(data) >= 5:
            return self._confluent_schema(struct.unpack(">I", data[1:5])[0]), 5
        head = bytes(data[:4]).hex()
        raise AvroDecodeError(f"not an Avro record of this pipeline (starts {head})")

    def _confluent_id(self, registry: SchemaRegistry, schema: _Schema, topic: str) -> int:
        key = (topic, schema.name)
        if key not in self._confluent_ids:
            subject = f"{topic}-aop.v1.{schema.name}"
            schema_id = registry.register(subject, schema.standalone)
            self._confluent_ids[key] = schema_id
            self._by_confluent_id[schema_id] = schema
        return self._confluent_ids[key]

    def _confluent_schema(self, schema_id: int) -> _Schema:
        if schema_id not in self._by_confluent_id:
            if self._registry is None:
                raise AvroDecodeError(
                    f"Confluent-framed record (schema id {schema_id}) but no "
                    "AOP_SCHEMA_REGISTRY_URL is set to look it up"
                )
            try:
                text = self._registry.schema_by_id(schema_id)
            except (httpx.HTTPError, SchemaRegistryError) as exc:
                detail = f"schema id {schema_id}: registry lookup failed: {exc}"
                raise AvroDecodeError(detail) from exc
            canonical = to_parsing_canonical_form(fastavro.parse_schema(json.loads(text)))
            schema = self._by_standalone.get(canonical)
            if schema is None:
                detail = f"schema id {schema_id} is not one of this pipeline's schemas"
                raise AvroDecodeError(detail)
            self._by_confluent_id[schema_id] = schema
        return self._by_confluent_id[schema_id]


def codec_for(settings: Settings) -> AvroCodec:
    """The codec every service uses: Confluent framing through the registry at
    `AOP_SCHEMA_REGISTRY_URL` when it is set, Avro single-object encoding otherwise (readers
    accept both either way, so a pipeline can switch without rewriting its log)."""
    url = settings.schema_registry_url
    return AvroCodec(SchemaRegistry(url) if url else None)
