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
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, get_type_hints

from solders.pubkey import Pubkey

from core.errors import EventDecodeError, ProgramLogError
from core.events import Event, UnknownEvent, decode_event
from core.program_logs import extract_program_data
from core.routing import PROTOCOL_PARTITION, partition_for_channel
from streams.listener.model import DeadLetter, RoutedEvent, TxLogs

__all__ = ["DecodedTx", "TxDecoder"]

_DATA_PREFIX = "Program data: "
#: replaces a bad-base64 line so `extract_program_data` still numbers the others.
_BAD_LINE_MARK = b"\x00aop:bad-base64\x00"
_CHANNEL_FIELDS = ("channel", "channel_config")
_CACHE_MAX = 200_000


@dataclass(slots=True)
class DecodedTx:
    """What one transaction contributes to the log."""

    events: list[RoutedEvent]
    dead: list[DeadLetter]
    truncated: bool = False


class TxDecoder:
    """Decodes transactions of one program for a log of `partitions` partitions.

    Keeps two bounded caches (pubkey → base58 text, channel → partition): channels, mints
    and active wallets repeat across events.
    """

    def __init__(self, program_id: str, partitions: int) -> None:
        self._program = Pubkey.from_string(program_id)
        self._program_text = program_id
        self._partitions = partitions
        self._renderers: dict[type, Callable[[Any], tuple[dict[str, str], int]]] = {}
        self._pubkeys: dict[bytes, str] = {}
        self._partition_of: dict[bytes, int] = {}

    def decode(self, tx: TxLogs) -> DecodedTx:
        """Events and dead letters of `tx` (see the module rules)."""
        if tx.logs is None:
            detail = "the RPC returned no log messages for this transaction"
            return DecodedTx([], [_dead("logs_unavailable", detail, tx.signature, b"", tx)])
        try:
            found = extract_program_data(tx.logs, self._program)
            bad_lines: list[str] = []
        except ProgramLogError:
            sanitized, bad_lines = _mark_bad_lines(tx.logs)
            found = extract_program_data(sanitized, self._program)
        out = DecodedTx([], [], found.truncated)
        if found.truncated:
            detail = "Log truncated: events after the cut are lost"
            logs = "\n".join(tx.logs).encode()
            out.dead.append(_dead("log_truncated", detail, tx.signature, logs, tx))
        if tx.err is not None:
            detail = f"transaction failed ({tx.err}); its events never happened"
            for payload in found.payloads:
                source = _id(tx, payload.event_index)
                out.dead.append(_dead("failed_transaction", detail, source, payload.data, tx))
            if not found.payloads:
                out.dead.append(_dead("failed_transaction", detail, tx.signature, b"", tx))
            return out
        for payload in found.payloads:
            index, data = payload.event_index, payload.data
            if bad_lines and data.startswith(_BAD_LINE_MARK):
                line = bad_lines[int(data[len(_BAD_LINE_MARK) :])]
                detail = "`Program data:` payload is not valid base64"
                out.dead.append(_dead("bad_base64", detail, _id(tx, index), line.encode(), tx))
                continue
            try:
                event = decode_event(data)
            except EventDecodeError as exc:
                out.dead.append(_dead("undecodable_event", str(exc), _id(tx, index), data, tx))
                continue
            if isinstance(event, UnknownEvent):
                name = "UnknownEvent"
                fields = {"discriminator": event.discriminator.hex()}
                partition = PROTOCOL_PARTITION
            else:
                name = event.NAME
                render = self._renderers.get(type(event)) or self._renderer(type(event))
                fields, partition = render(event)
            out.events.append(
                RoutedEvent(
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
            )
        return out

    def _renderer(self, cls: type[Event]) -> Callable[[Any], tuple[dict[str, str], int]]:
        """event → (fields as text, partition), specialised to `cls`."""
        hints = get_type_hints(cls, include_extras=True)
        names = tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
        pubkey_text, bool_text = self._pubkey_text, _bool_text
        texts = tuple(
            {"32s": pubkey_text, "?": bool_text}.get(_code(hints[name]), str) for name in names
        )
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
            except binascii.Error:
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
