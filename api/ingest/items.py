"""Request bodies to the items the writer appends: decode, check each item, derive the rest.

Steps of `parse_signals`, `parse_bindings` and `parse_legacy`:

1. Decode the body as its declared shape (`api.ingest.shapes`) in one pass: the fast path.
2. If it does not fit, decode the envelope with each item left raw, then each item on its own,
   so that every bad item is named (index, id, reason) instead of the first only. A body that
   is no JSON object of the right envelope is a 400 (`bad_body`).
3. More than AOP_INGEST_MAX_ITEMS items: 413 (`too_many_items`).
4. Check what the shape cannot say: a served channel, a 32-byte wallet, an aligned legacy
   epoch.
5. Turn each good item into an `Item`: its Avro record, its partition, its window (for the
   lateness rule) and its fingerprint (for duplicates).

Lateness, the future and duplicates depend on the writer's clock and memory: `time_refusal`
is checked by the handler (so one answer names every refused item) and again by the writer,
which also checks duplicates (`api.ingest.writer`).

Refusal reasons: `malformed` (an item that is not an object), `unknown_field`, `bad_<field>`
(missing, wrong type, out of range or pattern: `bad_id`, `bad_channel`, `bad_user`,
`bad_kind`, `bad_value`, `bad_observed_at`, `bad_wallet`, `bad_signals`), `unknown_channel`,
`bad_epoch`, `late`, `future`, and from the writer `id_reused`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from hashlib import blake2b
from typing import Any, Final, TypeVar

import msgspec
from solders.pubkey import Pubkey

from aop.api.errors import BadRequestError, PayloadTooLargeError
from aop.api.ingest.channels import ServedChannels
from aop.api.ingest.shapes import (
    BindingItem,
    BindingsRequest,
    LegacyEvent,
    LegacyRequest,
    SignalItem,
    SignalsRequest,
)
from aop.api.shapes import RefusedItem
from aop.core.attention.signals import (
    LEGACY_KINDS,
    SignalRuleError,
    check_epoch,
    is_future,
    is_late,
    signal_window_ms,
    user_key,
)

__all__ = [
    "Item",
    "ItemRules",
    "Parsed",
    "binding_fingerprint",
    "binding_item",
    "legacy_ids",
    "parse_bindings",
    "parse_legacy",
    "parse_signals",
    "raw_id",
    "refusal_reason",
    "signal_fingerprint",
    "signal_item",
    "time_refusal",
]

#: the reason of a refusal for being behind the watermark, and for being ahead of the clock.
LATE: Final = "late"
FUTURE: Final = "future"


@dataclass(frozen=True, slots=True)
class Item:
    """One good item of a request, ready for the writer."""

    #: its position in the request's list (a legacy signal: its event's).
    index: int
    id: str
    #: the Avro Signal or Binding record (`schemas/avro/`).
    record: dict[str, Any]
    #: the partition a signal goes to; None for a binding (every partition).
    partition: int | None
    #: the channel (a signal's record key); "" for a binding.
    channel: str
    #: the span of time it claims, unix ms (`core.attention.signals.signal_window_ms`).
    first_ms: int
    last_ms: int
    #: what it counts as, hashed: the same id with another fingerprint is refused.
    fingerprint: bytes


@dataclass(frozen=True, slots=True)
class Parsed:
    """A request's good items and the refusals of its bad ones (write nothing if any)."""

    items: list[Item]
    refused: list[RefusedItem]


@dataclass(frozen=True)
class ItemRules:
    """What checking an item needs besides the item: the served channels (and partitions),
    the attention epoch length and the most items a request may hold."""

    channels: ServedChannels
    epoch_seconds: int
    max_items: int


class _RawItems(msgspec.Struct):
    items: list[msgspec.Raw]


class _RawLegacy(msgspec.Struct):
    epoch: Any
    events: list[msgspec.Raw]


_T = TypeVar("_T")
_SIGNALS = msgspec.json.Decoder(SignalsRequest)
_BINDINGS = msgspec.json.Decoder(BindingsRequest)
_LEGACY = msgspec.json.Decoder(LegacyRequest)
_RAW_ITEMS = msgspec.json.Decoder(_RawItems)
_RAW_LEGACY = msgspec.json.Decoder(_RawLegacy)
_ANY = msgspec.json.Decoder()
_ENCODE = msgspec.json.Encoder().encode
#: msgspec's error text ends with where: "... - at `$.value`" or "... - at `$[3].user`".
_WHERE = re.compile(r" - at `\$(?:\[\d+\])?\.?([A-Za-z_]*)")
_UNKNOWN_FIELD = "Object contains unknown field"


def signal_fingerprint(record: dict[str, Any]) -> bytes:
    """What an Avro Signal record counts as, hashed (8 bytes): its channel, user (compared
    case-insensitively), kind, value, and its epoch if it names one, else its observed_at_ms
    (a legacy signal's observed_at_ms is only when it was received)."""
    when = record["observed_at_ms"] if record["epoch"] is None else record["epoch"]
    text = (
        f"signal\x1f{record['channel']}\x1f{user_key(record['user'])}\x1f{record['kind']}"
        f"\x1f{record['value']}\x1f{when}"
    )
    return blake2b(text.encode(), digest_size=8).digest()


def binding_fingerprint(record: dict[str, Any]) -> bytes:
    """What an Avro Binding record counts as, hashed: its user, wallet and observed_at_ms."""
    text = (
        f"binding\x1f{user_key(record['user'])}\x1f{bytes(record['wallet']).hex()}"
        f"\x1f{record['observed_at_ms']}"
    )
    return blake2b(text.encode(), digest_size=8).digest()


def refusal_reason(error: msgspec.ValidationError) -> str:
    """The refusal code of a msgspec error about one item: `bad_<field>`, `unknown_field` or
    `malformed` (not an object)."""
    text = str(error)
    if text.startswith(_UNKNOWN_FIELD):
        return "unknown_field"
    missing = re.match(r"Object missing required field `(\w+)`", text)
    if missing:
        return f"bad_{missing.group(1)}"
    where = _WHERE.search(text)
    return f"bad_{where.group(1)}" if where and where.group(1) else "malformed"


def raw_id(raw: msgspec.Raw | bytes) -> str:
    """The `id` of an item that did not decode, if it has a string one."""
    try:
        value = _ANY.decode(raw)
    except msgspec.DecodeError:
        return ""
    found = value.get("id") if isinstance(value, dict) else None
    return found[:128] if isinstance(found, str) else ""


def _envelope_error(exc: msgspec.DecodeError, shape: str) -> BadRequestError:
    return BadRequestError("bad_body", f"the body must be a JSON object {shape} ({exc})")


def _decode_each(
    raws: list[msgspec.Raw], item_type: type[_T]
) -> tuple[list[_T | None], list[RefusedItem]]:
    """Each raw item decoded on its own (step 2); a list with a None for each refused one."""
    decoded: list[_T | None] = []
    refused: list[RefusedItem] = []
    for index, raw in enumerate(raws):
        try:
            decoded.append(msgspec.json.decode(raw, type=item_type))
        except msgspec.ValidationError as exc:
            decoded.append(None)
            refused.append(RefusedItem(index, raw_id(raw), refusal_reason(exc), str(exc)))
    return decoded, refused


def _check_count(count: int, rules: ItemRules) -> None:
    if count > rules.max_items:
        raise PayloadTooLargeError(
            "too_many_items",
            f"a request may hold at most {rules.max_items} items (AOP_INGEST_MAX_ITEMS) "
            f"(got {count})",
        )


def _items_of(
    body: bytes, typed: msgspec.json.Decoder[Any], item_type: type[_T], rules: ItemRules
) -> tuple[list[_T | None], list[RefusedItem]]:
    """Steps 1-3 for an `{"items": [...]}` body."""
    try:
        request = typed.decode(body)
    except msgspec.ValidationError:
        pass
    except msgspec.DecodeError as exc:
        raise _envelope_error(exc, '{"items": [...]}') from None
    else:
        _check_count(len(request.items), rules)
        return list(request.items), []
    try:
        raws = _RAW_ITEMS.decode(body).items
    except msgspec.DecodeError as exc:
        raise _envelope_error(exc, '{"items": [...]}') from None
    _check_count(len(raws), rules)
    return _decode_each(raws, item_type)


def signal_item(index: int, signal: SignalItem, rules: ItemRules) -> Item | RefusedItem:
    """Steps 4-5 for one decoded signal: its `Item`, or the refusal of its channel."""
    partition = rules.channels.partition_of(signal.channel)
    if partition is None:
        return _unknown_channel(index, signal.id, signal.channel, rules)
    channel = signal.channel.lower()
    record = {
        "id": signal.id,
        "channel": channel,
        "user": signal.user,
        "kind": signal.kind,
        "value": signal.value,
        "observed_at_ms": signal.observed_at,
        "epoch": None,
    }
    at = signal.observed_at
    return Item(index, signal.id, record, partition, channel, at, at, signal_fingerprint(record))


def binding_item(index: int, binding: BindingItem) -> Item | RefusedItem:
    """Steps 4-5 for one decoded binding: its `Item`, or the refusal of its wallet."""
    try:
        wallet = bytes(Pubkey.from_string(binding.wallet))
    except ValueError:
        return RefusedItem(
            index,
            binding.id,
            "bad_wallet",
            f"wallet must be a base58 public key of 32 bytes (got {binding.wallet!r})",
        )
    record = {
        "id": binding.id,
        "user": binding.user,
        "wallet": wallet,
        "observed_at_ms": binding.observed_at,
    }
    at = binding.observed_at
    return Item(index, binding.id, record, None, "", at, at, binding_fingerprint(record))


def _split(outcomes: list[Item | RefusedItem], refused: list[RefusedItem]) -> Parsed:
    items = [o for o in outcomes if isinstance(o, Item)]
    refused = refused + [o for o in outcomes if isinstance(o, RefusedItem)]
    return Parsed(items, _by_index(refused))


def parse_signals(body: bytes, rules: ItemRules) -> Parsed:
    """A `POST /v1/signals` body (module docstring, steps 1-5).

    Raises:
        BadRequestError: the body is not `{"items": [...]}` (400 `bad_body`).
        PayloadTooLargeError: more than `rules.max_items` items (413).
    """
    decoded, refused = _items_of(body, _SIGNALS, SignalItem, rules)
    outcomes = [signal_item(i, s, rules) for i, s in enumerate(decoded) if s is not None]
    return _split(outcomes, refused)


def parse_bindings(body: bytes, rules: ItemRules) -> Parsed:
    """A `POST /v1/bindings` body (module docstring, steps 1-5).

    Raises:
        BadRequestError: the body is not `{"items": [...]}` (400 `bad_body`).
        PayloadTooLargeError: more than `rules.max_items` items (413).
    """
    decoded, refused = _items_of(body, _BINDINGS, BindingItem, rules)
    outcomes = [binding_item(i, b) for i, b in enumerate(decoded) if b is not None]
    return _split(outcomes, refused)


def legacy_ids(request: LegacyRequest) -> str:
    """The id prefix of a legacy request's signals: `legacy:<epoch>:<digest>`, where digest is
    16 hex digits of BLAKE2b over the request as decoded (its canonical JSON: field order
    fixed, absent counts 0). The same batch posted again gives the same ids."""
    digest = blake2b(_ENCODE(request), digest_size=8).hexdigest()
    return f"legacy:{request.epoch}:{digest}"


def parse_legacy(body: bytes, rules: ItemRules, received_at_ms: int) -> Parsed:
    """A legacy `POST /ingest` body: each non-zero count of an event becomes one signal of
    that kind in the request's epoch, observed at `received_at_ms` (the legacy contract has no
    time of its own), with id `<legacy_ids(request)>:<event index>:<kind>`. Refusals name
    the event (its index, its id without the kind).

    Raises:
        BadRequestError: the body is not `{"epoch": ..., "events": [...]}` (400 `bad_body`),
            or its epoch is not an epoch id (400 `bad_epoch`).
        PayloadTooLargeError: more than `rules.max_items` events (413).
    """
    request, events, refused = _legacy_events(body, rules)
    prefix = legacy_ids(request) if request is not None else None
    epoch = request.epoch if request is not None else 0
    first_ms, last_ms = signal_window_ms(received_at_ms, epoch, rules.epoch_seconds)
    items: list[Item] = []
    for index, event in enumerate(events):
        if event is None:
            continue
        partition = rules.channels.partition_of(event.channel)
        if partition is None:
            event_id = f"{prefix}:{index}" if prefix else ""
            refused.append(_unknown_channel(index, event_id, event.channel, rules))
            continue
        if prefix is None:  # another event is refused: none is written
            continue
        channel = event.channel.lower()
        for kind in LEGACY_KINDS:
            value = getattr(event.signals, kind)
            if not value:
                continue
            signal_id = f"{prefix}:{index}:{kind}"
            record = {
                "id": signal_id,
                "channel": channel,
                "user": event.user,
                "kind": kind,
                "value": value,
                "observed_at_ms": received_at_ms,
                "epoch": epoch,
            }
            fingerprint = signal_fingerprint(record)
            items.append(
                Item(index, signal_id, record, partition, channel, first_ms, last_ms, fingerprint)
            )
    return Parsed(items, _by_index(refused))


def _legacy_events(
    body: bytes, rules: ItemRules
) -> tuple[LegacyRequest | None, list[LegacyEvent | None], list[RefusedItem]]:
    """Steps 1-3 for a legacy body: the request (None when an event does not decode), its
    events (None for each refused one) and their refusals; the epoch checked."""
    shape = '{"epoch": ..., "events": [...]}'
    try:
        request = _LEGACY.decode(body)
    except msgspec.ValidationError:
        pass
    except msgspec.DecodeError as exc:
        raise _envelope_error(exc, shape) from None
    else:
        _check_epoch(request.epoch, rules)
        _check_count(len(request.events), rules)
        return request, list(request.events), []
    try:
        envelope = _RAW_LEGACY.decode(body)
    except msgspec.DecodeError as exc:
        raise _envelope_error(exc, shape) from None
    _check_epoch(envelope.epoch, rules)
    _check_count(len(envelope.events), rules)
    events, refused = _decode_each(envelope.events, LegacyEvent)
    if not refused:  # every event fits: the envelope is what the shape refused
        raise BadRequestError("bad_body", f"the body does not fit POST /ingest's {shape}")
    return None, events, refused


def _check_epoch(epoch: Any, rules: ItemRules) -> None:
    if type(epoch) is not int:
        shown = _ENCODE(epoch)[:40].decode(errors="replace")
        raise BadRequestError(
            "bad_epoch",
            f"epoch must be an integer, the unix second an epoch starts at (got {shown})",
        )
    try:
        check_epoch(epoch, rules.epoch_seconds)
    except SignalRuleError as exc:
        raise BadRequestError(exc.reason, f"{exc} (AOP_ATTENTION_EPOCH_SECONDS)") from None


def _unknown_channel(index: int, item_id: str, channel: str, rules: ItemRules) -> RefusedItem:
    served = ", ".join(rules.channels.names) or "none: AOP_CHANNELS is empty"
    return RefusedItem(
        index,
        item_id,
        "unknown_channel",
        f"channel {channel!r} is not served here (served: {served})",
    )


def _by_index(refused: list[RefusedItem]) -> list[RefusedItem]:
    return sorted(refused, key=lambda r: r.index)


def time_refusal(item: Item, *, watermark_ms: int, now_ms: int, skew_ms: int) -> RefusedItem | None:
    """The refusal of `item` for its time, if any: `late` (its window ends before the
    watermark) or `future` (its window starts after the clock plus the skew)."""
    if is_late(item.last_ms, watermark_ms):
        return RefusedItem(
            item.index,
            item.id,
            LATE,
            f"its time ({_span(item)}) is before the ingest's watermark {watermark_ms} "
            "(the clock minus AOP_ATTENTION_ALLOWED_LATENESS_S): its epoch may be closed",
        )
    if is_future(item.first_ms, now_ms, skew_ms):
        return RefusedItem(
            item.index,
            item.id,
            FUTURE,
            f"its time ({_span(item)}) is after the ingest's clock {now_ms} plus "
            f"{skew_ms} ms (AOP_INGEST_CLOCK_SKEW_S): check the collector's clock",
        )
    return None


def _span(item: Item) -> str:
    if item.first_ms == item.last_ms:
        return f"{item.first_ms} unix ms"
    return f"epoch {item.first_ms // 1000}: {item.first_ms}..{item.last_ms} unix ms"
