"""SlotBatch, the unit on `aop.chain.events`: its encoder and its decoder, written by hand.

One module holds both directions of the log's hot record so that they cannot drift apart;
`schemas/avro/{SlotBatch,ChainEvent}.avsc` is the contract both follow, and each checks itself
against `AvroCodec` (fastavro) at construction and falls back to it on any difference.

Encoder (the listener). fastavro spends ~8 µs per ChainEvent (its map and union handling);
`SlotBatchEncoder`, specialised to the two schemas and caching the strings that repeat
(program id, names, field keys), spends about a quarter of that. The bytes are fastavro's but
for one thing: a non-empty `fields` map (the decoded text the listener adds for humans, ~7
entries, a third of an event's bytes) is written as one block with a negative count followed
by the block's byte size. The Avro spec allows this so that readers projecting a record can
skip the block without parsing it. Every Avro reader decodes it to the same value.

Decoder (the fold and the replay). fastavro builds every field of every ChainEvent, including
the `fields` map: ~15-25 µs per event here, more than the fold itself. The fold reads four
fields of an event: `id`, `slot`, `program_id` and `data`. `SlotBatchDecoder` walks the Avro
binary body and keeps exactly those, skipping the rest without building it (~2-3x faster);
the sized `fields` block is passed in one jump, and maps written entry by entry (fastavro's
way, logs written before the sized block) are walked string by string. Its output is
therefore NOT a full ChainEvent: each event dict has the keys `id`, `slot`, `program_id`,
`data` only; the batch keeps `partition`, `first_slot`, `last_slot`, `events` and
`last_block_time`. A record of an earlier SlotBatch schema (no `last_block_time`) takes the
codec's path, which resolves it to the current one (`last_block_time` None).

Framing: a single-object record whose fingerprint is SlotBatch's, or a Confluent-framed record
whose schema id the `AvroCodec` resolved to SlotBatch once, takes the fast path; anything else
(and a body the fast path cannot parse) goes through `AvroCodec.decode`, which raises
`AvroDecodeError` for garbage.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Sequence
from typing import Any

from aop.log.avro import AvroCodec
from aop.log.chain_event import RoutedEvent

__all__ = [
    "SlotBatchDecoder",
    "SlotBatchEncoder",
    "decode_slot_batch_body",
    "encode_chain_event",
    "encode_long",
    "encode_slot_batch_body",
    "fold_view",
]

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


#: a SlotBatch with nothing in it: what the header of a framing is taken from.
_EMPTY: dict[str, Any] = {
    "partition": 0,
    "first_slot": 0,
    "last_slot": 0,
    "events": [],
    "cursor": None,
    "last_block_time": None,
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
    # last_block_time: ["null", "long"]
    last_block_time = None
    if buf[pos] == 0:
        pos += 1
    elif buf[pos] == 2:
        last_block_time, pos = varint(buf, pos + 1)
    else:
        raise ValueError(f"last_block_time union index must be 0 or 1 (got {buf[pos]})")
    if pos != len(buf):
        raise ValueError(f"{len(buf) - pos} bytes after the SlotBatch body")
    return {
        "partition": partition,
        "first_slot": first_slot,
        "last_slot": last_slot,
        "events": events,
        "last_block_time": last_block_time,
    }


class SlotBatchDecoder:
    """Decodes framed SlotBatch records into fold input (module docstring)."""

    def __init__(self, codec: AvroCodec | None = None) -> None:
        self._codec = codec or AvroCodec()
        self._header = self._codec.encode("SlotBatch", _EMPTY)[:10]
        #: Confluent schema ids known to be SlotBatch (resolved through the codec once).
        self._confluent: set[int] = set()
        self.fast = self._agrees()
        if not self.fast:
            log.warning("hand-written SlotBatch decoding differs from fastavro; using fastavro")

    @property
    def codec(self) -> AvroCodec:
        """The codec it falls back to (readers of the log's other records use it too)."""
        return self._codec

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
            "last_block_time": 1_796_666_400,
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
        "last_block_time": batch.get("last_block_time"),
    }


# --- encoder ----------------------------------------------------------------------------------

_SMALL = 1 << 14


def _zigzag_bytes(value: int) -> bytes:
    zigzag = (value << 1) ^ (value >> 63)
    out = bytearray()
    while zigzag > 0x7F:
        out.append((zigzag & 0x7F) | 0x80)
        zigzag >>= 7
    out.append(zigzag)
    return bytes(out)


_SMALL_LONGS = tuple(_zigzag_bytes(i) for i in range(_SMALL))
_encoded_strings: dict[str, bytes] = {}
_INDEX_TEXT = tuple(str(i).encode() for i in range(256))


def encode_long(value: int) -> bytes:
    """Avro `long`/`int`: zigzag varint."""
    if 0 <= value < _SMALL:
        return _SMALL_LONGS[value]
    return _zigzag_bytes(value)


def _string(text: str) -> bytes:
    raw = text.encode()
    return encode_long(len(raw)) + raw


def _cached_string(text: str) -> bytes:
    """For strings that repeat (names, keys, program ids); the cache is bounded."""
    found = _encoded_strings.get(text)
    if found is None:
        found = _string(text)
        if len(_encoded_strings) < 100_000:
            _encoded_strings[text] = found
    return found


class _LastLong:
    """Encodes longs, remembering the last one (a batch's events share slots and times)."""

    __slots__ = ("encoded", "value")

    def __init__(self) -> None:
        self.value: int | None = None
        self.encoded = b""

    def __call__(self, value: int) -> bytes:
        if value != self.value:
            self.value, self.encoded = value, encode_long(value)
        return self.encoded


_slot_long = _LastLong()
_time_long = _LastLong()


def encode_chain_event(event: RoutedEvent) -> bytes:
    """The Avro body of `event.record` as a ChainEvent (hot path: few calls per field)."""
    _, slot, signature, event_index, name, block_time, program_id, data, fields, _ = event
    small = _SMALL_LONGS
    strings = _encoded_strings
    sig = signature.encode()
    index = _INDEX_TEXT[event_index] if event_index < 256 else str(event_index).encode()
    id_len = len(sig) + 1 + len(index)
    parts = [
        small[id_len] if id_len < _SMALL else _zigzag_bytes(id_len),
        sig,
        b":",
        index,
        small[len(sig)] if len(sig) < _SMALL else _zigzag_bytes(len(sig)),
        sig,
        _slot_long(slot),
        b"\x00" if block_time is None else b"\x02" + _time_long(block_time),
        encode_long(event_index),
        strings.get(program_id) or _cached_string(program_id),
        strings.get(name) or _cached_string(name),
        encode_long(len(data)),
        data,
    ]
    if fields:  # one block: -count, byte size, entries (module docstring)
        entries = []
        for key, value in fields.items():
            raw = value.encode()
            entries.append(strings.get(key) or _cached_string(key))
            entries.append(small[len(raw)] if len(raw) < _SMALL else _zigzag_bytes(len(raw)))
            entries.append(raw)
        block = b"".join(entries)
        parts.append(_zigzag_bytes(-len(fields)))
        parts.append(small[len(block)] if len(block) < _SMALL else _zigzag_bytes(len(block)))
        parts.append(block)
    parts.append(b"\x00")
    return b"".join(parts)


def encode_slot_batch_body(
    partition: int,
    first_slot: int,
    last_slot: int,
    events: Sequence[RoutedEvent],
    cursor: str | None,
    last_block_time: int | None = None,
) -> bytes:
    """The Avro body of a SlotBatch."""
    parts = [encode_long(partition), encode_long(first_slot), encode_long(last_slot)]
    if events:
        parts.append(encode_long(len(events)))
        parts.extend(encode_chain_event(e) for e in events)
    parts.append(b"\x00")
    parts.append(b"\x00" if cursor is None else b"\x02" + _string(cursor))
    parts.append(b"\x00" if last_block_time is None else b"\x02" + encode_long(last_block_time))
    return b"".join(parts)


class SlotBatchEncoder:
    """Frames SlotBatches as `codec` would (single-object or Confluent header), faster.

    Args:
        codec: gives the header (and registers the schema when a registry is configured).
        topic: the topic the records go to (Confluent subjects are per topic).
    """

    _PROBE = RoutedEvent(3, 2**40, "probe", 7, "Probe", -1, "P", b"\x00\xff", {"k": "v", "é": ""})

    def __init__(self, codec: AvroCodec, *, topic: str) -> None:
        self._codec = codec
        self._topic = topic
        empty = encode_slot_batch_body(0, 0, 0, (), None)
        framed = codec.encode("SlotBatch", _EMPTY, topic=topic)
        self._header = framed[: len(framed) - len(empty)]
        self.fast = framed.endswith(empty) and self._agrees()
        if not self.fast:
            log.warning("hand-written SlotBatch encoding differs from fastavro; using fastavro")

    def encode(
        self,
        partition: int,
        first_slot: int,
        last_slot: int,
        events: Sequence[RoutedEvent],
        cursor: str | None,
        last_block_time: int | None = None,
    ) -> bytes:
        """One framed SlotBatch record."""
        if not self.fast:
            value = {
                "partition": partition,
                "first_slot": first_slot,
                "last_slot": last_slot,
                "events": [e.record for e in events],
                "cursor": cursor,
                "last_block_time": last_block_time,
            }
            return self._codec.encode("SlotBatch", value, topic=self._topic)
        body = encode_slot_batch_body(
            partition, first_slot, last_slot, events, cursor, last_block_time
        )
        return self._header + body

    def _agrees(self) -> bool:
        probe = [self._PROBE, self._PROBE._replace(block_time=None, fields={})]
        value = {
            "partition": 5,
            "first_slot": -3,
            "last_slot": 2**62,
            "events": [e.record for e in probe],
            "cursor": "c",
            "last_block_time": 1_796_666_400,
        }
        mine = self._header + encode_slot_batch_body(5, -3, 2**62, probe, "c", 1_796_666_400)
        reference = self._codec.encode("SlotBatch", value, topic=self._topic)
        # the same value, and the bytes differ by the sized block's one extra varint only
        same_value = self._codec.decode_as("SlotBatch", mine) == value
        return same_value and len(mine) == len(reference) + 1
