"""Decode SlotBatch records reading only the fields the fold uses.

A ChainEvent carries, besides what the fold needs (id, slot, program_id, data), the listener's
human-readable copy of the decoded fields, the signature, the event name, block time and index.
Reading the record with a reader schema that leaves those out lets fastavro skip them instead
of building them: ~30% less decoding time per event (measured on listener-shaped records).
Records in Confluent framing (with a schema registry) go through `AvroCodec` unchanged.
"""

from __future__ import annotations

import io
import json
from typing import Any

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

from aop.avro import SCHEMA_DIR, AvroCodec, AvroDecodeError

__all__ = ["SlotBatchDecoder"]

_SINGLE_OBJECT_MAGIC = b"\xc3\x01"
#: the ChainEvent fields the fold reads.
_EVENT_FIELDS = ("id", "slot", "program_id", "data")


def _load(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMA_DIR / f"{name}.avsc").read_text())
    return schema


class SlotBatchDecoder:
    """`decode(data)` -> the SlotBatch dict the fold needs (events with id, slot, program_id,
    data); raises `AvroDecodeError` for anything that is not a SlotBatch."""

    def __init__(self, codec: AvroCodec | None = None) -> None:
        self._codec = codec or AvroCodec()
        event = _load("ChainEvent")
        batch = _load("SlotBatch")
        named: dict[str, Any] = {}
        fastavro.parse_schema(event, named_schemas=named)
        self._writer = fastavro.parse_schema(batch, named_schemas=named)
        canonical = to_parsing_canonical_form(self._writer)
        self._fingerprint = bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))
        event["fields"] = [f for f in event["fields"] if f["name"] in _EVENT_FIELDS]
        batch["fields"] = [
            {**f, "type": {"type": "array", "items": event}} if f["name"] == "events" else f
            for f in batch["fields"]
            if f["name"] != "cursor"
        ]
        self._reader = fastavro.parse_schema(batch)

    def decode(self, data: bytes) -> dict[str, Any]:
        """Decode one record of aop.chain.events.

        Raises:
            AvroDecodeError: not a SlotBatch of this pipeline, or a body that does not parse.
        """
        if data[:2] == _SINGLE_OBJECT_MAGIC and data[2:10] == self._fingerprint:
            try:
                value = fastavro.schemaless_reader(
                    io.BytesIO(data[10:]), self._writer, self._reader
                )
            except Exception as exc:  # fastavro raises assorted errors on garbage
                raise AvroDecodeError(f"SlotBatch body does not parse: {exc}") from exc
            if not isinstance(value, dict):
                raise AvroDecodeError("SlotBatch decoded to a non-record")
            return value
        return self._codec.decode_as("SlotBatch", data)
