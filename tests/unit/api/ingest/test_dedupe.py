"""api.ingest.dedupe: ids held while their window has not ended before the watermark."""

from __future__ import annotations

import pytest

from aop.api.ingest.dedupe import SeenIds, seen_key


def test_an_id_is_kept_until_its_bucket_ends_before_the_watermark() -> None:
    seen = SeenIds(bucket_ms=10_000)
    seen.add(seen_key("irc", "a"), b"f-a", last_ms=15_000)  # bucket [10_000, 20_000)
    seen.add(seen_key("irc", "b"), b"f-b", last_ms=25_000)  # bucket [20_000, 30_000)
    assert seen.expire(19_999) == 0
    assert seen.get(seen_key("irc", "a")) == b"f-a"
    assert seen.expire(20_000) == 1
    assert seen.get(seen_key("irc", "a")) is None
    assert seen.get(seen_key("irc", "b")) == b"f-b"
    assert len(seen) == 1
    assert seen.expire(10**9) == 1
    assert len(seen) == 0


def test_a_key_keeps_its_first_fingerprint_and_sources_do_not_share_ids() -> None:
    seen = SeenIds()
    seen.add(seen_key("irc", "a"), b"first", last_ms=5)
    seen.add(seen_key("irc", "a"), b"second", last_ms=10**12)
    assert seen.get(seen_key("irc", "a")) == b"first"
    assert seen.get(seen_key("yt", "a")) is None
    assert len(seen) == 1


def test_buckets_expire_in_order_whatever_order_they_came_in() -> None:
    seen = SeenIds(bucket_ms=100)
    for last in (950, 150, 550, 50):
        seen.add(str(last), b"x", last_ms=last)
    assert seen.expire(600) == 3  # 50, 150, 550 (bucket 500..599 ended)
    assert seen.get("950") == b"x"


def test_bucket_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match=r"bucket_ms must be >= 1 \(got 0\)"):
        SeenIds(bucket_ms=0)
