"""api.ingest.items: request bodies to items, every bad item named with its reason."""

from __future__ import annotations

import json
from hashlib import blake2b
from typing import Any

import pytest
from solders.pubkey import Pubkey

from aop.api.errors import BadRequestError, PayloadTooLargeError
from aop.api.ingest.channels import ServedChannels
from aop.api.ingest.items import (
    Item,
    ItemRules,
    parse_bindings,
    parse_legacy,
    parse_signals,
    time_refusal,
)
from aop.runtime.settings import CCM_MINT, PROGRAM_ID
from tests.support.ingest import fold_partitions

CHANNELS = ("twitch:lofigirl", "youtube:lofi_girl_sleep", "spotify:oracle", "youtube_lofi")
PARTITIONS = 4
RULES = ItemRules(
    ServedChannels(
        CHANNELS,
        program_id=Pubkey.from_string(PROGRAM_ID),
        mint=Pubkey.from_string(CCM_MINT),
        partitions=PARTITIONS,
    ),
    epoch_seconds=3600,
    max_items=5,
)
#: the fold's own derivation of each channel's partition (core.fold_config)
FOLD = fold_partitions(CHANNELS, PARTITIONS)
WALLET = "Dxk8mAb3C7AM8JN6tAJfVuSja5yidhZM5sEKW3SRX2BM"


def _body(items: list[Any]) -> bytes:
    return json.dumps({"items": items}).encode()


def _signal(**fields: Any) -> dict[str, Any]:
    return {
        "id": "s1",
        "channel": "twitch:lofigirl",
        "user": "Alice",
        "kind": "bits",
        "value": 250,
        "observed_at": 1_796_650_000_123,
        **fields,
    }


def test_a_signal_goes_to_its_channels_chain_partition_with_its_avro_record() -> None:
    parsed = parse_signals(_body([_signal(channel="Twitch:LofiGirl")]), RULES)
    assert parsed.refused == []
    (item,) = parsed.items
    assert item.partition == FOLD["twitch:lofigirl"]
    assert item.channel == "twitch:lofigirl"
    assert item.record == {
        "id": "s1",
        "channel": "twitch:lofigirl",
        "user": "Alice",
        "kind": "bits",
        "value": 250,
        "observed_at_ms": 1_796_650_000_123,
        "epoch": None,
    }
    assert (item.first_ms, item.last_ms) == (1_796_650_000_123, 1_796_650_000_123)


def test_every_channel_maps_to_the_folds_partition() -> None:
    assert {name: RULES.channels.partition_of(name.upper()) for name in CHANNELS} == FOLD


def test_every_bad_item_is_named_with_its_reason_and_good_ones_are_kept_apart() -> None:
    body = _body(
        [
            _signal(id="ok"),
            _signal(id="v0", value=0),
            5,
            _signal(id="k", kind="shout"),
            {k: v for k, v in _signal(id="nu").items() if k != "user"},
            _signal(id="x", extra=1),
        ]
    )
    with pytest.raises(PayloadTooLargeError, match=r"at most 5 items .* \(got 6\)"):
        parse_signals(body, RULES)
    body = _body(
        [
            _signal(id="ok"),
            _signal(id="v0", value=0),
            5,
            _signal(id="k", kind="shout"),
            {k: v for k, v in _signal(id="nu").items() if k != "user"},
        ]
    )
    parsed = parse_signals(body, RULES)
    assert [item.id for item in parsed.items] == ["ok"]
    assert [(r.index, r.id, r.reason) for r in parsed.refused] == [
        (1, "v0", "bad_value"),
        (2, "", "malformed"),
        (3, "k", "bad_kind"),
        (4, "nu", "bad_user"),
    ]
    assert parsed.refused[0].message == "Expected `int` >= 1 - at `$.value`"


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"id": ""}, "bad_id"),
        ({"id": "a\nb"}, "bad_id"),
        ({"id": "x" * 129}, "bad_id"),
        ({"channel": "é"}, "bad_channel"),
        ({"channel": "x" * 65}, "bad_channel"),
        ({"user": "\x00"}, "bad_user"),
        ({"value": 1_000_000_001}, "bad_value"),
        ({"value": "3"}, "bad_value"),
        ({"observed_at": -1}, "bad_observed_at"),
        ({"observed_at": "2026-12-07T00:00:00Z"}, "bad_observed_at"),
        ({"surprise": True}, "unknown_field"),
        ({"channel": "twitch:other"}, "unknown_channel"),
    ],
)
def test_each_malformed_field_has_its_reason(fields: dict[str, Any], reason: str) -> None:
    parsed = parse_signals(_body([_signal(**fields)]), RULES)
    assert parsed.items == []
    assert [r.reason for r in parsed.refused] == [reason]


@pytest.mark.parametrize("body", [b"", b"[]", b'{"items": 5}', b'{"itemz": []}', b"\xff"])
def test_a_body_that_is_not_the_envelope_is_a_400(body: bytes) -> None:
    with pytest.raises(BadRequestError, match=r'must be a JSON object {"items": \[...\]}') as error:
        parse_signals(body, RULES)
    assert error.value.code == "bad_body"


def test_a_binding_decodes_its_wallet_and_goes_to_every_partition() -> None:
    good = {"id": "b1", "user": "Bob", "wallet": WALLET, "observed_at": 7}
    short = {**good, "id": "b2", "wallet": "z" * 44}  # base58 of more than 32 bytes
    parsed = parse_bindings(_body([good, short]), RULES)
    (item,) = parsed.items
    assert item.partition is None and item.channel == ""
    assert item.record == {
        "id": "b1",
        "user": "Bob",
        "wallet": bytes(Pubkey.from_string(WALLET)),
        "observed_at_ms": 7,
    }
    assert [(r.index, r.id, r.reason) for r in parsed.refused] == [(1, "b2", "bad_wallet")]


def _legacy(epoch: int, events: list[dict[str, Any]]) -> bytes:
    return json.dumps({"epoch": epoch, "events": events}).encode()


def test_legacy_counts_become_signals_of_the_epoch_with_ids_of_the_batch() -> None:
    events = [
        {"channel": "twitch:lofigirl", "user": "Al", "signals": {"presence": 3, "bits": 10}},
        {"channel": "youtube_lofi", "user": "Bo", "signals": {"sub": 1, "raid": 0}},
    ]
    parsed = parse_legacy(_legacy(7200, events), RULES, received_at_ms=7_300_000)
    assert parsed.refused == []
    # the rule, computed apart: BLAKE2b-64 of the canonical request (fields in declaration
    # order, absent counts 0)
    canonical = {
        "epoch": 7200,
        "events": [
            {
                "channel": e["channel"],
                "user": e["user"],
                "signals": {k: e["signals"].get(k, 0) for k in LEGACY_ORDER},
            }
            for e in events
        ],
    }
    digest = blake2b(
        json.dumps(canonical, separators=(",", ":")).encode(), digest_size=8
    ).hexdigest()
    assert [(i.id, i.record["kind"], i.record["value"]) for i in parsed.items] == [
        (f"legacy:7200:{digest}:0:presence", "presence", 3),
        (f"legacy:7200:{digest}:0:bits", "bits", 10),
        (f"legacy:7200:{digest}:1:sub", "sub", 1),
    ]
    first = parsed.items[0]
    assert first.record["epoch"] == 7200 and first.record["observed_at_ms"] == 7_300_000
    assert (first.first_ms, first.last_ms) == (7_200_000, 10_799_999)
    again = parse_legacy(_legacy(7200, events), RULES, received_at_ms=9_000_000)
    assert [i.id for i in again.items] == [i.id for i in parsed.items]
    assert [i.fingerprint for i in again.items] == [i.fingerprint for i in parsed.items]
    other = parse_legacy(_legacy(10_800, events), RULES, received_at_ms=11_000_000)
    assert {i.id for i in other.items}.isdisjoint(i.id for i in parsed.items)


LEGACY_ORDER = ("presence", "sub", "resub", "gift", "bits", "raid")


def test_legacy_refusals_name_events_and_an_unaligned_epoch_is_a_400() -> None:
    events = [
        {"channel": "twitch:lofigirl", "user": "Al", "signals": {"presence": 1}},
        {"channel": "twitch:lofigirl", "user": "Al", "signals": {"message": 1}},
        {"channel": "twitch:nowhere", "user": "Al", "signals": {"presence": 1}},
    ]
    parsed = parse_legacy(_legacy(7200, events), RULES, received_at_ms=0)
    assert parsed.items == []
    assert [(r.index, r.id, r.reason) for r in parsed.refused] == [
        (1, "", "unknown_field"),
        (2, "", "unknown_channel"),
    ]
    parsed = parse_legacy(_legacy(7200, [events[0], events[2]]), RULES, received_at_ms=0)
    assert [i.index for i in parsed.items] == [0]  # good; the handler writes none of them
    assert [(r.index, r.reason) for r in parsed.refused] == [(1, "unknown_channel")]
    assert parsed.refused[0].id.startswith("legacy:7200:")
    with pytest.raises(BadRequestError, match=r"multiple of 3600 \(got 7201") as error:
        parse_legacy(_legacy(7201, events[:1]), RULES, received_at_ms=0)
    assert error.value.code == "bad_epoch"
    with pytest.raises(BadRequestError, match="bad_epoch: epoch must be an integer"):
        parse_legacy(b'{"epoch": "7200", "events": []}', RULES, received_at_ms=0)


def _item(first_ms: int, last_ms: int) -> Item:
    return Item(0, "i", {}, 0, "c", first_ms, last_ms, b"")


def test_time_refusals_are_late_before_the_watermark_and_future_past_the_skew() -> None:
    kwargs = {"watermark_ms": 1000, "now_ms": 5000, "skew_ms": 100}
    assert time_refusal(_item(1000, 1000), **kwargs) is None
    assert time_refusal(_item(5100, 5100), **kwargs) is None
    late = time_refusal(_item(999, 999), **kwargs)
    future = time_refusal(_item(5101, 5101), **kwargs)
    assert late is not None and late.reason == "late"
    assert future is not None and future.reason == "future"
    # a legacy epoch's window: late only once the watermark passed its end
    assert time_refusal(_item(0, 1000), **kwargs) is None
