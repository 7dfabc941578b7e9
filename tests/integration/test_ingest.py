"""`aop ingest` on the real broker: what lands on aop.attention.signals, and the documented
answer to each kind of bad request (401, 413, 422 naming every refused item, 429).

One ingest process serves the module (its topics under a fresh prefix, 4 partitions, 60 s
attention epochs, 5 s lateness, pure watermarks every 0.2 s). Expected values come from the
requests themselves and from the fold's own derivation of a channel's partition
(`core.fold_config`), never from the ingest's answers.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from solders.pubkey import Pubkey

from aop.api.ingest.app import INGEST_OPERATIONS
from aop.runtime.settings import Settings, load_settings
from tests.conftest import new_topic_prefix
from tests.support.ingest import (
    Batch,
    IngestProcess,
    fold_partitions,
    read_batches,
    write_tokens,
)

PARTITIONS = 4
#: three channels on partitions 0, 1 and 2 (checked below): partition 3 stays idle.
CHANNELS = ("twitch:ch-15", "twitch:ch-0", "twitch:ch-3")
LATENESS_S = 5
SKEW_S = 2
EPOCH_S = 60
WALLETS = [
    "Dxk8mAb3C7AM8JN6tAJfVuSja5yidhZM5sEKW3SRX2BM",
    "GnGzNdsQMxMpJfMeqnkGPsvHm8kwaDidiKjNU2dCVZop",
]
FOLD_PARTITION = fold_partitions(CHANNELS, PARTITIONS)


@pytest.fixture(scope="module")
def ingest(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[IngestProcess, Settings, dict[str, str]]]:
    workdir = tmp_path_factory.mktemp("ingest")
    tokens = write_tokens(workdir / "tokens", ["collector", "greedy", "metered", "legacy"])
    env = {
        "AOP_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "AOP_TOPIC_PREFIX": new_topic_prefix(),
        "AOP_CHAIN_PARTITIONS": str(PARTITIONS),
        "AOP_CHANNELS": ",".join(CHANNELS),
        "AOP_ATTENTION_EPOCH_SECONDS": str(EPOCH_S),
        "AOP_ATTENTION_ALLOWED_LATENESS_S": str(LATENESS_S),
        "AOP_INGEST_CLOCK_SKEW_S": str(SKEW_S),
        "AOP_INGEST_WATERMARK_INTERVAL_S": "0.2",
        "AOP_INGEST_TOKENS_FILE": str(workdir / "tokens"),
        "AOP_INGEST_MAX_BODY_BYTES": str(64 * 1024),
        "AOP_INGEST_MAX_ITEMS": "200",
        "AOP_INGEST_RATE_LIMIT": "50",
        "AOP_INGEST_RATE_BURST": "1000",
        "AOP_LOG_LEVEL": "WARNING",
    }
    process = IngestProcess(env, workdir / "ingest.log")
    process.start()
    try:
        yield process, load_settings(env), tokens
    finally:
        assert process.stop() == 0, process.log()[-3000:]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _post(
    service: IngestProcess, path: str, body: Any, token: str | None, **headers: str
) -> httpx.Response:
    auth = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return httpx.post(f"{service.url}{path}", json=body, headers={**auth, **headers}, timeout=30)


def _signal(channel: str = CHANNELS[0], **fields: Any) -> dict[str, Any]:
    return {
        "id": f"s-{uuid.uuid4().hex[:12]}",
        "channel": channel,
        "user": "Viewer",
        "kind": "chat",
        "value": 1,
        "observed_at": _now_ms(),
        **fields,
    }


def _ids_on_log(batches: list[Batch]) -> list[str]:
    return [s["id"] for b in batches for s in b.value["signals"]] + [
        g["id"] for b in batches for g in b.value["bindings"]
    ]


def test_the_channels_sit_on_three_of_the_four_partitions() -> None:
    """The module's premise: partition 3 carries no served channel."""
    assert sorted(FOLD_PARTITION.values()) == [0, 1, 2]


def test_signals_land_in_their_channels_partitions_before_the_202(ingest: Any) -> None:
    service, settings, tokens = ingest
    a1 = _signal(CHANNELS[0], user="Alice", kind="bits", value=250)
    b1 = _signal("TWITCH:CH-0", user="bob")
    a2 = _signal(CHANNELS[0], kind="presence")
    answer = _post(service, "/v1/signals", {"items": [a1, b1, a2]}, tokens["collector"])
    assert answer.status_code == 202, answer.text
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert (body["accepted"], body["duplicates"]) == (3, 0)
    mine = [b for b in read_batches(settings) if b.value["request_id"] == body["request_id"]]
    assert sorted((b.partition, b.key) for b in mine) == sorted(
        [
            (FOLD_PARTITION[CHANNELS[0]], CHANNELS[0].encode()),
            (FOLD_PARTITION["twitch:ch-0"], b"twitch:ch-0"),
        ]
    )

    def avro(item: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": item["id"],
            "channel": item["channel"].lower(),
            "user": item["user"],
            "kind": item["kind"],
            "value": item["value"],
            "observed_at_ms": item["observed_at"],
            "epoch": None,
        }

    by_partition = {b.partition: b.value for b in mine}
    assert by_partition[FOLD_PARTITION[CHANNELS[0]]]["signals"] == [avro(a1), avro(a2)]
    assert by_partition[FOLD_PARTITION["twitch:ch-0"]]["signals"] == [avro(b1)]
    for value in by_partition.values():
        assert value["source"] == "collector" and value["bindings"] == []
        assert value["watermark_ms"] <= a1["observed_at"]  # no later than its own signals


def test_a_batch_posted_twice_counts_once(ingest: Any) -> None:
    service, settings, tokens = ingest
    items = [_signal(CHANNELS[i % 3], value=i + 1) for i in range(5)]
    first = _post(service, "/v1/signals", {"items": items}, tokens["collector"])
    again = _post(service, "/v1/signals", {"items": items}, tokens["collector"])
    mixed = _post(service, "/v1/signals", {"items": [*items[:2], _signal()]}, tokens["collector"])
    assert [
        (r.status_code, r.json()["accepted"], r.json()["duplicates"]) for r in (first, again, mixed)
    ] == [
        (202, 5, 0),
        (202, 0, 5),
        (202, 1, 2),
    ]
    # another source's ids are its own
    other = _post(service, "/v1/signals", {"items": items[:1]}, tokens["metered"])
    assert (other.json()["accepted"], other.json()["duplicates"]) == (1, 0)
    on_log = _ids_on_log(read_batches(settings))
    assert [on_log.count(item["id"]) for item in items] == [2, 1, 1, 1, 1]  # 2: two sources


def test_a_legacy_batch_posted_twice_counts_once(ingest: Any) -> None:
    service, settings, tokens = ingest
    epoch = _now_ms() // 1000 // EPOCH_S * EPOCH_S
    body = {
        "epoch": epoch,
        "events": [
            {"channel": CHANNELS[1], "user": "Al", "signals": {"presence": 3, "bits": 10}},
            {"channel": CHANNELS[2], "user": "Bo", "signals": {"sub": 1, "gift": 0}},
        ],
    }
    first = _post(service, "/ingest", body, tokens["legacy"])
    again = _post(service, "/ingest", body, tokens["legacy"])
    assert (first.status_code, first.json()["accepted"], first.json()["duplicates"]) == (202, 3, 0)
    assert (again.status_code, again.json()["accepted"], again.json()["duplicates"]) == (202, 0, 3)
    signals = [
        s
        for b in read_batches(settings)
        if b.value["request_id"] == first.json()["request_id"]
        for s in b.value["signals"]
    ]
    assert sorted(
        (s["channel"], s["user"], s["kind"], s["value"], s["epoch"]) for s in signals
    ) == [
        (CHANNELS[1], "Al", "bits", 10, epoch),
        (CHANNELS[1], "Al", "presence", 3, epoch),
        (CHANNELS[2], "Bo", "sub", 1, epoch),
    ]


def test_an_id_used_for_another_item_is_refused(ingest: Any) -> None:
    service, _settings, tokens = ingest
    item = _signal()
    assert _post(service, "/v1/signals", {"items": [item]}, tokens["collector"]).status_code == 202
    reused = {**item, "value": 7}
    answer = _post(service, "/v1/signals", {"items": [_signal(), reused]}, tokens["collector"])
    assert answer.status_code == 422
    (refused,) = answer.json()["error"]["items"]
    assert (refused["index"], refused["id"], refused["reason"]) == (1, item["id"], "id_reused")


@pytest.mark.parametrize(
    "authorization",
    [None, "Basic dXNlcjpwYXNz", "Bearer", "Bearer aopi_not-a-token-of-the-file"],
)
def test_requests_without_a_valid_token_get_401_and_write_nothing(
    ingest: Any, authorization: str | None
) -> None:
    service, settings, _ = ingest
    item = _signal()
    headers = {"Authorization": authorization} if authorization is not None else {}
    answer = httpx.post(f"{service.url}/v1/signals", json={"items": [item]}, headers=headers)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert answer.json()["error"]["code"] == "unauthorized"
    if authorization and len(authorization) > 7:
        assert authorization[7:] not in answer.text
    assert item["id"] not in _ids_on_log(read_batches(settings))


def test_oversized_bodies_and_too_many_items_get_413(ingest: Any) -> None:
    service, settings, tokens = ingest
    big = [
        _signal(id=f"big-{uuid.uuid4().hex}".ljust(128, "-"), user="u" * 128) for _ in range(200)
    ]
    size = len(httpx.Request("POST", "/", json={"items": big}).content)
    assert size > 64 * 1024
    answer = _post(service, "/v1/signals", {"items": big}, tokens["collector"])
    assert (answer.status_code, answer.json()["error"]["code"]) == (413, "body_too_large")
    assert "AOP_INGEST_MAX_BODY_BYTES" in answer.json()["error"]["message"]
    many = [_signal() for _ in range(201)]
    answer = _post(service, "/v1/signals", {"items": many}, tokens["collector"])
    assert (answer.status_code, answer.json()["error"]["code"]) == (413, "too_many_items")
    on_log = set(_ids_on_log(read_batches(settings)))
    assert on_log.isdisjoint(item["id"] for item in [*big, *many])


def test_malformed_items_are_each_named_and_nothing_of_the_request_is_written(
    ingest: Any,
) -> None:
    service, settings, tokens = ingest
    good = _signal()
    items = [
        good,
        _signal(value=-3),
        "a string",
        _signal(channel="twitch:not-served"),
        {**_signal(), "kind": "shout"},
        {**_signal(), "colour": "red"},
        _signal(observed_at="2026-12-07T00:00:00Z"),
    ]
    answer = _post(service, "/v1/signals", {"items": items}, tokens["collector"])
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "items_refused"
    assert [(r["index"], r["id"], r["reason"]) for r in error["items"]] == [
        (1, items[1]["id"], "bad_value"),
        (2, "", "malformed"),
        (3, items[3]["id"], "unknown_channel"),
        (4, items[4]["id"], "bad_kind"),
        (5, items[5]["id"], "unknown_field"),
        (6, items[6]["id"], "bad_observed_at"),
    ]
    assert good["id"] not in _ids_on_log(read_batches(settings))
    bad_body = httpx.post(
        f"{service.url}/v1/signals",
        content=b"[1, 2]",
        headers={
            "Authorization": f"Bearer {tokens['collector']}",
            "Content-Type": "application/json",
        },
    )
    assert (bad_body.status_code, bad_body.json()["error"]["code"]) == (400, "bad_body")
    text = httpx.post(
        f"{service.url}/v1/signals",
        content=b"{}",
        headers={"Authorization": f"Bearer {tokens['collector']}", "Content-Type": "text/plain"},
    )
    assert (text.status_code, text.json()["error"]["code"]) == (415, "unsupported_media_type")


def test_late_and_future_signals_are_refused(ingest: Any) -> None:
    service, _settings, tokens = ingest
    now = _now_ms()
    on_time = _signal(observed_at=now - (LATENESS_S - 2) * 1000)
    late = _signal(observed_at=now - (LATENESS_S + 10) * 1000)
    future = _signal(observed_at=now + (SKEW_S + 30) * 1000)
    answer = _post(service, "/v1/signals", {"items": [on_time, late, future]}, tokens["collector"])
    assert answer.status_code == 422
    assert [(r["index"], r["reason"]) for r in answer.json()["error"]["items"]] == [
        (1, "late"),
        (2, "future"),
    ]
    assert (
        _post(service, "/v1/signals", {"items": [on_time]}, tokens["collector"]).status_code == 202
    )
    # a legacy epoch is late once the watermark passed its end: two epochs ago is
    past = (now // 1000 // EPOCH_S - 2) * EPOCH_S
    legacy = {
        "epoch": past,
        "events": [{"channel": CHANNELS[0], "user": "x", "signals": {"presence": 1}}],
    }
    answer = _post(service, "/ingest", legacy, tokens["legacy"])
    assert answer.status_code == 422
    assert [r["reason"] for r in answer.json()["error"]["items"]] == ["late"]
    unaligned = {**legacy, "epoch": past + 1}
    answer = _post(service, "/ingest", unaligned, tokens["legacy"])
    assert (answer.status_code, answer.json()["error"]["code"]) == (400, "bad_epoch")


def test_a_source_over_its_rate_gets_429_with_retry_after(ingest: Any) -> None:
    """50 items/s, bursts of 1000 (the bucket starts full): five requests of 200 pass
    whatever their pace; the sixth needs 200 more, which 4 s of refill give (t s after the
    first request the bucket holds 50 t), so unless the five took 4 s it waits: 429 with
    Retry-After the whole seconds its deficit takes to refill, (200 - 50 t) / 50 rounded up."""
    service, _, tokens = ingest
    started = time.monotonic()
    answers = [
        _post(service, "/v1/signals", {"items": [_signal() for _ in range(200)]}, tokens["greedy"])
        for _ in range(6)
    ]
    elapsed = time.monotonic() - started
    assert elapsed < 3.0, "too slow to test the bucket"
    assert [a.status_code for a in answers] == [202] * 5 + [429]
    wait = int(answers[5].headers["retry-after"])
    assert wait in range(math.ceil((200 - 50 * elapsed) / 50), 5)
    assert answers[5].json()["error"]["code"] == "rate_limited"
    # other sources have their own bucket
    assert (
        _post(service, "/v1/signals", {"items": [_signal()]}, tokens["metered"]).status_code == 202
    )
    time.sleep(wait)
    retry = _post(
        service, "/v1/signals", {"items": [_signal() for _ in range(200)]}, tokens["greedy"]
    )
    assert retry.status_code == 202


def test_bindings_land_on_every_partition(ingest: Any) -> None:
    service, settings, tokens = ingest
    items = [
        {
            "id": f"b-{uuid.uuid4().hex[:8]}",
            "user": f"User{i}",
            "wallet": w,
            "observed_at": _now_ms(),
        }
        for i, w in enumerate(WALLETS)
    ]
    answer = _post(service, "/v1/bindings", {"items": items}, tokens["collector"])
    assert answer.status_code == 202 and answer.json()["accepted"] == 2
    mine = [
        b for b in read_batches(settings) if b.value["request_id"] == answer.json()["request_id"]
    ]
    assert sorted(b.partition for b in mine) == list(range(PARTITIONS))
    expected = [
        {
            "id": i["id"],
            "user": i["user"],
            "wallet": bytes(Pubkey.from_string(i["wallet"])),
            "observed_at_ms": i["observed_at"],
        }
        for i in items
    ]
    for batch in mine:
        assert batch.value["bindings"] == expected
        assert batch.value["signals"] == []
        assert batch.key == str(batch.partition).encode()
    again = _post(service, "/v1/bindings", {"items": items}, tokens["collector"])
    assert (again.json()["accepted"], again.json()["duplicates"]) == (0, 2)


def test_idle_partitions_get_rising_pure_watermarks(ingest: Any) -> None:
    _service, settings, _ = ingest
    before = _now_ms()
    time.sleep(1.5)
    idle = [b for b in read_batches(settings) if b.partition == 3]
    after = _now_ms()
    pure = [b for b in idle if b.value["source"] == ""]
    assert pure
    assert all(b.value["signals"] == [] for b in idle)  # no channel: bindings at most
    for b in pure:
        assert b.value["signals"] == [] and b.value["bindings"] == []
        assert b.key == b"3"
    watermarks = [b.value["watermark_ms"] for b in pure]
    assert watermarks == sorted(watermarks)
    recent = [w for w in watermarks if w >= before - LATENESS_S * 1000]
    assert len(recent) >= 5  # every 0.2 s for 1.5 s (some slack for a busy machine)
    assert max(recent) <= after - LATENESS_S * 1000
    for partition in range(PARTITIONS):  # each partition's watermarks never go back
        marks = [
            b.value["watermark_ms"] for b in read_batches(settings) if b.partition == partition
        ]
        assert marks == sorted(marks)


def _sample(text: str, name: str, labels: dict[str, str]) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def test_metrics_count_items_by_source_outcome_and_reason(ingest: Any) -> None:
    service, _, tokens = ingest

    def scrape() -> str:
        return httpx.get(f"{service.url}/metrics").text

    def counts(text: str) -> tuple[float, float, float]:
        labels = {"source": "metered", "kind": "signal"}
        return (
            _sample(text, "aop_ingest_items_total", {**labels, "outcome": "accepted"}),
            _sample(text, "aop_ingest_items_total", {**labels, "outcome": "duplicate"}),
            _sample(
                text, "aop_ingest_refused_items_total", {"source": "metered", "reason": "late"}
            ),
        )

    start = counts(scrape())
    items = [_signal() for _ in range(3)]
    _post(service, "/v1/signals", {"items": items}, tokens["metered"])
    _post(service, "/v1/signals", {"items": items[:2]}, tokens["metered"])
    _post(service, "/v1/signals", {"items": [_signal(observed_at=1)]}, tokens["metered"])
    end = counts(scrape())
    assert [b - a for a, b in zip(start, end, strict=True)] == [3, 2, 1]
    text = scrape()
    assert _sample(text, "aop_ingest_watermark_lag_seconds", {}) < LATENESS_S + 2
    assert _sample(text, "aop_ingest_request_seconds_count", {"route": "/v1/signals"}) > 0


def test_the_openapi_document_lists_exactly_the_routes(ingest: Any) -> None:
    service, _, _ = ingest
    document = httpx.get(f"{service.url}/openapi.json").json()
    documented = [
        (path, method.upper()) for path, ops in document["paths"].items() for method in ops
    ]
    assert documented == [(op.path, op.method) for op in INGEST_OPERATIONS]
    post = document["paths"]["/v1/signals"]["post"]
    assert post["security"] == [{"bearer": []}]
    assert post["responses"]["422"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Refusal"
    }
    assert httpx.get(f"{service.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{service.url}/readyz").json() == {"status": "ready"}
