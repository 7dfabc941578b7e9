"""A program transaction's logs → routed ChainEvents and dead letters (pure).

Rules:

* Only `Program data:` lines of the program's own frames count (`core.program_logs`); the
  n-th of them is event index n, whether or not it decodes.
* A succeeded transaction's events go on the log: known ones with their decoded fields,
  unknown discriminators as `UnknownEvent` (kept, partition 0).
* Dead letters (`aop.dlq`, stage `listener`), one per payload unless stated:
  `failed_transaction` (meta.err set: its events never happened; one per transaction when it
  emitted none), `bad_base64`, `undecodable_event` (short, or a known event's garbled body),
  `log_truncated` (one per transaction: events after the cut are lost; those before are kept),
  `logs_unavailable` (the RPC returned no log messages for the transaction).
* Routing: the `channel` / `channel_config` field's ChannelConfigV2 PDA →
  `core.routing.partition_for_channel`; events without one → `PROTOCOL_PARTITION`.

Speed (the hot path of a catch-up): a payload with a known discriminator, the exact length and
no bool field is unpacked with its event's `struct` layout straight into text fields, without
building the `core.events` object; anything else (unknown, garbled, bools) goes through
`core.events.decode_event`, so both paths give the same fields and the same errors (the unit
tests compare them on every event type). Base58 text of repeated keys comes from a cache.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import operator
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, get_type_hints

from solders.pubkey import Pubkey

from aop.core.errors import EventDecodeError, ProgramLogError
from aop.core.events import EVENT_TYPES, Event, UnknownEvent, decode_event
from aop.core.program_logs import program_payloads
from aop.core.routing import PROTOCOL_PARTITION, partition_for_channel
from aop.log.chain_event import RoutedEvent
from aop.streams.listener.model import DeadLetter, TxLogs

__all__ = ["DecodedTx", "TxDecoder"]

_DATA_PREFIX = "Program data: "
#: replaces a bad-base64 line so `program_payloads` still numbers the others.
_BAD_LINE_MARK = b"\x00aop:bad-base64\x00"
_CHANNEL_FIELDS = ("channel", "channel_config")
#: pubkey fields rendered without the cache: a stake position's own mint rarely repeats, and
#: caching it would only evict the channels and wallets that do.
_UNIQUE_KEYS = frozenset({"nft_mint"})
_CACHE_MAX = 200_000

#: (values, pubkey_text, cached_text) → fields as text; generated per event type.
_Render = Callable[
    [tuple[Any, ...], Callable[[bytes], str], Callable[[bytes], str | None]], dict[str, str]
]


@dataclass(slots=True)
class DecodedTx:
    """What one transaction contributes to the log."""

    events: list[RoutedEvent]
    dead: list[DeadLetter]
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class _FastEvent:
    """How to turn one known event type's payload into text fields without its object."""

    name: str
    size: int
    unpack: Callable[[bytes, int], tuple[Any, ...]]
    render: _Render
    channel_at: int
    """Index of the channel field in the unpacked values, -1 when there is none."""


class TxDecoder:
    """Decodes transactions of one program for a log of `partitions` partitions.

    Keeps two bounded caches (pubkey → base58 text, channel → partition): channels, mints
    and active wallets repeat across events.
    """

    def __init__(self, program_id: str, partitions: int) -> None:
        self._program = Pubkey.from_string(program_id)
        self._program_text = program_id
        self._scan_text = str(self._program)
        self._partitions = partitions
        self._renderers: dict[type, Callable[[Any], tuple[dict[str, str], int]]] = {}
        self._pubkeys: dict[bytes, str] = {}
        self._partition_of: dict[bytes, int] = {}
        self._fast = _fast_events()

    def decode(self, tx: TxLogs) -> DecodedTx:
        """Events and dead letters of `tx` (see the module rules)."""
        if tx.logs is None:
            detail = "the RPC returned no log messages for this transaction"
            return DecodedTx([], [_dead("logs_unavailable", detail, tx.signature, b"", tx)])
        try:
            payloads, truncated = program_payloads(tx.logs, self._scan_text)
            bad_lines: Sequence[str] = ()
        except ProgramLogError:
            sanitized, bad_lines = _mark_bad_lines(tx.logs)
            payloads, truncated = program_payloads(sanitized, self._scan_text)
        out = DecodedTx([], [], truncated)
        if truncated:
            detail = "Log truncated: events after the cut are lost"
            logs = "\n".join(tx.logs).encode()
            out.dead.append(_dead("log_truncated", detail, tx.signature, logs, tx))
        if tx.err is not None:
            detail = f"transaction failed ({tx.err}); its events never happened"
            for index, data in enumerate(payloads):
                out.dead.append(_dead("failed_transaction", detail, _id(tx, index), data, tx))
            if not payloads:
                out.dead.append(_dead("failed_transaction", detail, tx.signature, b"", tx))
            return out
        events, fast, new = out.events, self._fast, tuple.__new__
        for index, data in enumerate(payloads):
            spec = fast.get(data[:8])
            if spec is not None and len(data) == spec.size and not bad_lines:
                values = spec.unpack(data, 8)
                fields = spec.render(values, self._pubkey_text, self._pubkeys.get)
                if spec.channel_at < 0:
                    partition = PROTOCOL_PARTITION
                else:
                    channel = values[spec.channel_at]
                    partition = self._partition_of.get(channel, -1)
                    if partition < 0:
                        partition = self._partition(channel)
                name = spec.name
            else:
                decoded = self._decode_slow(tx, index, data, bad_lines, out.dead)
                if decoded is None:
                    continue
                name, fields, partition = decoded
            # RoutedEvent(...) without its Python-level __new__ (same tuple, a third faster)
            event = (
                partition,
                tx.slot,
                tx.signature,
                index,
                name,
                tx.block_time,
                self._program_text,
                data,
                fields,
                tx.position,
            )
            events.append(new(RoutedEvent, event))
        return out

    def _decode_slow(
        self, tx: TxLogs, index: int, data: bytes, bad_lines: Sequence[str], dead: list[DeadLetter]
    ) -> tuple[str, dict[str, str], int] | None:
        """(name, fields, partition) through `core.events`, or None after adding a dead letter."""
        if bad_lines and data.startswith(_BAD_LINE_MARK):
            line = bad_lines[int(data[len(_BAD_LINE_MARK) :])]
            detail = "`Program data:` payload is not valid base64"
            dead.append(_dead("bad_base64", detail, _id(tx, index), line.encode(), tx))
            return None
        try:
            event = decode_event(data)
        except EventDecodeError as exc:
            dead.append(_dead("undecodable_event", str(exc), _id(tx, index), data, tx))
            return None
        if isinstance(event, UnknownEvent):
            return "UnknownEvent", {"discriminator": event.discriminator.hex()}, PROTOCOL_PARTITION
        render = self._renderers.get(type(event)) or self._renderer(type(event))
        fields, partition = render(event)
        return event.NAME, fields, partition

    def _renderer(self, cls: type[Event]) -> Callable[[Any], tuple[dict[str, str], int]]:
        """event → (fields as text, partition), specialised to `cls`."""
        hints = get_type_hints(cls, include_extras=True)
        names = tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
        converters: dict[str, Callable[[Any], str]] = {"32s": self._pubkey_text, "?": _bool_text}
        texts = tuple(converters.get(_code(hints[name]), str) for name in names)
        channel_at = next((names.index(n) for n in _CHANNEL_FIELDS if n in names), None)
        getter = operator.attrgetter(*names)
        single = len(names) == 1
        partition_of = self._partition

        def render(event: Any) -> tuple[dict[str, str], int]:
            values = (getter(event),) if single else getter(event)
            fields = {n: text(v) for n, text, v in zip(names, texts, values, strict=True)}
            if channel_at is None:
                return fields, PROTOCOL_PARTITION
            return fields, partition_of(values[channel_at])

        self._renderers[cls] = render
        return render

    def _pubkey_text(self, key: bytes) -> str:
        text = self._pubkeys.get(key)
        if text is None:
            if len(self._pubkeys) >= _CACHE_MAX:
                self._pubkeys.clear()
            text = self._pubkeys[key] = str(Pubkey.from_bytes(key))
        return text

    def _partition(self, channel: bytes) -> int:
        partition = self._partition_of.get(channel)
        if partition is None:
            if len(self._partition_of) >= _CACHE_MAX:
                self._partition_of.clear()
            partition = partition_for_channel(channel, self._partitions)
            self._partition_of[channel] = partition
        return partition


def _fast_events() -> dict[bytes, _FastEvent]:
    """Discriminator → fast decoder, for every known event type without a bool field."""
    out = {}
    for cls in EVENT_TYPES.values():
        hints = get_type_hints(cls, include_extras=True)
        names = tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
        codes = tuple(_code(hints[name]) for name in names)
        if "?" in codes:  # a bool byte must be checked to be 0/1: the slow path does it
            continue
        codec = struct.Struct("<" + "".join(codes))
        channel_at = next((names.index(n) for n in _CHANNEL_FIELDS if n in names), -1)
        render = _render_function(names, codes)
        out[cls.DISCRIMINATOR] = _FastEvent(
            cls.NAME, 8 + codec.size, codec.unpack_from, render, channel_at
        )
    return out


def _render_function(names: tuple[str, ...], codes: tuple[str, ...]) -> _Render:
    """A function building the fields dict of one event type in one expression.

    Generated (like `collections.namedtuple` does) because a dict display with a call per
    field costs half of a generic loop over (name, converter, value). The only inputs to the
    source are the keys, written with `repr`, and the codes, chosen among fixed snippets.
    """
    variables = [f"v{i}" for i in range(len(names))]
    items = []
    for name, code, var in zip(names, codes, variables, strict=True):
        if code != "32s":
            text = f"str({var})"
        elif name in _UNIQUE_KEYS:
            text = f"str(from_bytes({var}))"
        else:
            text = f"(cached({var}) or pubkey({var}))"
        items.append(f"{name!r}: {text}")
    source = (
        "def render(values, pubkey, cached):\n"
        f"    {', '.join(variables)}, = values\n"
        f"    return {{{', '.join(items)}}}\n"
    )
    namespace: dict[str, Any] = {"from_bytes": Pubkey.from_bytes}
    exec(source, namespace)
    render: _Render = namespace["render"]
    return render


def _id(tx: TxLogs, index: int) -> str:
    return f"{tx.signature}:{index}"


def _dead(reason: str, detail: str, source: str, payload: bytes, tx: TxLogs) -> DeadLetter:
    return DeadLetter(reason, f"slot {tx.slot}: {detail}", source, payload, tx.slot)


def _mark_bad_lines(logs: Sequence[str]) -> tuple[list[str], list[str]]:
    """Replace each bad-base64 data line by a marked payload naming it; return both lists."""
    sanitized: list[str] = []
    bad: list[str] = []
    for line in logs:
        if line.startswith(_DATA_PREFIX):
            try:
                binascii.a2b_base64(line[len(_DATA_PREFIX) :].strip(), strict_mode=True)
            except ValueError:  # binascii.Error, or a plain ValueError for non-ASCII text
                mark = _BAD_LINE_MARK + str(len(bad)).encode()
                bad.append(line)
                line = _DATA_PREFIX + base64.b64encode(mark).decode()
        sanitized.append(line)
    return sanitized, bad


def _code(annotation: object) -> str:
    metadata = getattr(annotation, "__metadata__", ("",))
    return str(metadata[0])


def _bool_text(value: bool) -> str:
    return "true" if value else "false"
