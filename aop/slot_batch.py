"""SlotBatch records -> the dicts the fold reads, written by hand for speed (pure).

fastavro builds every field of every ChainEvent, including the `fields` map of decoded text
the listener adds for humans (~7 entries): ~15-25 µs per event here, more than the fold
itself. The fold reads four fields of an event: `id`, `slot`, `program_id` and `data`. This
decoder walks the Avro binary body of `schemas/avro/SlotBatch.avsc` and keeps exactly those,
skipping the rest without building it (~2-3x faster). The `fields` map, which the listener
writes as one block with its byte size (`streams.listener.encoding`), is passed in one jump;
maps written entry by entry (fastavro's way) are walked string by string. Its output is
therefore NOT a full ChainEvent: each event dict has the keys `id`, `slot`, `program_id`,
`data` only.

Framing: a single-object record whose fingerprint is SlotBatch's, or a Confluent-framed record
whose schema id the `AvroCodec` resolved to SlotBatch once, takes the fast path; anything else
(and a body the fast path cannot parse) goes through `AvroCodec.decode`, which raises
`AvroDecodeError` for garbage. The decoder checks itself against `AvroCodec` at construction
and uses the codec alone if they ever disagree.
"""

from __future__ import annotations

import logging
import struct
from typing import Any

from aop.avro import AvroCodec

__all__ = ["SlotBatchDecoder", "decode_slot_batch_body", "fold_view"]

log = logging.getLogger(__name__)

_SINGLE_OBJECT = b"\xc3\x01"
_PROBE_EVENT = {
    "id": "sig:7",
    "signature": "sig",
    "slot": 2**40,
    "block_time": -1,
    "event_index": 7,
    "program_id": "P",
    "name": "Probe",
    "data": b"\x00\xff" * 70,
    "fields": {"k": "v" * 200, "é": ""},
}


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    """A zigzag varint at `pos`: (value, position after it)."""
    b = buf[pos]
    pos += 1
    n = b & 0x7F
    shift = 7
    while b & 0x80:
        b = buf[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        shift += 7
    return (n >> 1) ^ -(n & 1), pos


def decode_slot_batch_body(buf: bytes, pos: int = 0) -> dict[str, Any]:
    """Decode a SlotBatch Avro body starting at `pos` (see the module docstring).

    Raises:
        IndexError, UnicodeDecodeError, ValueError: the bytes are not a whole SlotBatch body.
    """
    varint = _varint
    partition, pos = varint(buf, pos)
    first_slot, pos = varint(buf, pos)
    last_slot, pos = varint(buf, pos)
    events: list[dict[str, Any]] = []
    append = events.append
    programs: dict[bytes, str] = {}
    while True:
        count, pos = varint(buf, pos)
        if count == 0:
            break
        if count < 0:  # a block with its byte size (not written by fastavro, but legal)
            count = -count
            _, pos = varint(buf, pos)
        for _ in range(count):
            # id: string (a length under 64 is one byte: length << 1)
            b = buf[pos]
            if b < 0x80:
                end = pos + 1 + (b >> 1)
                event_id = buf[pos + 1 : end].decode()
            else:
                n, pos = varint(buf, pos)
                end = pos + n
                event_id = buf[pos:end].decode()
            # signature: string, skipped
            b = buf[end]
            if b < 0x80:
                pos = end + 1 + (b >> 1)
            else:
                n, pos = varint(buf, end)
                pos += n
            # slot: long, inlined (the hottest varint)
            b = buf[pos]
            pos += 1
            n = b & 0x7F
            shift = 7
            while b & 0x80:
                b = buf[pos]
                pos += 1
                n |= (b & 0x7F) << shift
                shift += 7
            slot = (n >> 1) ^ -(n & 1)
            # block_time: ["null", "long"]; the long is skipped
            b = buf[pos]
            if b == 2:
                pos += 1
                while buf[pos] & 0x80:
                    pos += 1
            elif b:
                raise ValueError(f"block_time union index must be 0 or 1 (got {b})")
            pos += 1
            # event_index: int, skipped
            while buf[pos] & 0x80:
                pos += 1
            pos += 1
            # program_id: string (repeats: decoded once per batch)
            b = buf[pos]
            if b < 0x80:
                pos += 1
                end = pos + (b >> 1)
            else:
                n, pos = varint(buf, pos)
                end = pos + n
            raw = buf[pos:end]
            program_id = programs.get(raw)
            if program_id is None:
                program_id = programs[raw] = raw.decode()
            # name: string, skipped
            b = buf[end]
            if b < 0x80:
                pos = end + 1 + (b >> 1)
            else:
                n, pos = varint(buf, end)
                pos += n
            # data: bytes
            b = buf[pos]
            if b < 0x80:
                pos += 1
                end = pos + (b >> 1)
            else:
                n, pos = varint(buf, pos)
                end = pos + n
            data = buf[pos:end]
            if len(data) != end - pos:
                raise ValueError("truncated event data")
            pos = end
            # fields: map<string>, skipped block by block
            while True:
                b = buf[pos]
                if b == 0:
                    pos += 1
                    break
                if b & 1 and b < 0x80:  # a sized block (the listener's): jump over it
                    b = buf[pos + 1]
                    if b < 0x80:  # under 64 bytes
                        pos += 2 + (b >> 1)
                        continue
                    c = buf[pos + 2]
                    if c < 0x80 and not b & 1:  # under 8,192 bytes (a size is never < 0)
                        pos += 3 + (((b & 0x7F) | (c << 7)) >> 1)
                        continue
                    size, pos = varint(buf, pos + 1)
                    if size < 0:
                        raise ValueError(f"negative map block size {size}")
                    pos += size
                    continue
                if b < 0x80:  # a block of fewer than 64 entries
                    entries = b >> 1
                    pos += 1
                else:
                    entries, pos = varint(buf, pos)
                    if entries < 0:
                        size, pos = varint(buf, pos)
                        if size < 0:
                            raise ValueError(f"negative map block size {size}")
                        pos += size
                        continue
                for _ in range(entries + entries):
                    b = buf[pos]
                    if b < 0x80:
                        pos += 1 + (b >> 1)
                    else:
                        n, pos = varint(buf, pos)
                        pos += n
            append({"id": event_id, "slot": slot, "program_id": program_id, "data": data})
    # cursor: ["null", "string"]
    if buf[pos] == 0:
        pos += 1
    elif buf[pos] == 2:
        n, pos = varint(buf, pos + 1)
        pos += n
    else:
        raise ValueError(f"cursor union index must be 0 or 1 (got {buf[pos]})")
    if pos != len(buf):
        raise ValueError(f"{len(buf) - pos} bytes after the SlotBatch body")
    return {
        "partition": partition,
        "first_slot": first_slot,
        "last_slot": last_slot,
        "events": events,
    }


class SlotBatchDecoder:
    """Decodes framed SlotBatch records into fold input (module docstring)."""

    def __init__(self, codec: AvroCodec | None = None) -> None:
        self._codec = codec or AvroCodec()
        empty = {"partition": 0, "first_slot": 0, "last_slot": 0, "events": [], "cursor": None}
        self._header = self._codec.encode("SlotBatch", empty)[:10]
        #: Confluent schema ids known to be SlotBatch (resolved through the codec once).
        self._confluent: set[int] = set()
        self.fast = self._agrees()
        if not self.fast:
            log.warning("hand-written SlotBatch decoding differs from fastavro; using fastavro")

    def decode(self, data: bytes) -> dict[str, Any]:
        """The SlotBatch in `data` as fold input.

        Raises:
            AvroDecodeError: not a SlotBatch record of this pipeline.
        """
        if self.fast:
            body_at = 0
            if data[:10] == self._header:
                body_at = 10
            elif data[:1] == b"\x00" and len(data) >= 5:
                schema_id = struct.unpack(">I", data[1:5])[0]
                if schema_id not in self._confluent:
                    return self._slow(data, schema_id)
                body_at = 5
            if body_at:
                try:
                    return decode_slot_batch_body(data, body_at)
                except (IndexError, UnicodeDecodeError, ValueError):
                    pass  # the codec names the problem
        return self._slow(data, None)

    def _slow(self, data: bytes, schema_id: int | None) -> dict[str, Any]:
        value = self._codec.decode_as("SlotBatch", data)
        if schema_id is not None:
            self._confluent.add(schema_id)
        return value

    def _agrees(self) -> bool:
        batch = {
            "partition": 5,
            "first_slot": -3,
            "last_slot": 2**62,
            "events": [_PROBE_EVENT, dict(_PROBE_EVENT, block_time=None, fields={})],
            "cursor": "c" * 100,
        }
        framed = self._codec.encode("SlotBatch", batch)
        try:
            mine = decode_slot_batch_body(framed, 10)
        except (IndexError, UnicodeDecodeError, ValueError):
            return False
        reference = self._codec.decode_as("SlotBatch", framed)
        return mine == fold_view(reference)


def fold_view(batch: dict[str, Any]) -> dict[str, Any]:
    """The fields of a fully decoded SlotBatch that this decoder keeps."""
    keep = ("id", "slot", "program_id", "data")
    return {
        "partition": batch["partition"],
        "first_slot": batch["first_slot"],
        "last_slot": batch["last_slot"],
        "events": [{k: e[k] for k in keep} for e in batch["events"]],
    }
