"""Which (source, id) pairs the log already holds, for as long as they could come again.

An item can be accepted only while its window has not ended before the writer's watermark
(`core.attention.signals.is_late`). So an id needs remembering exactly that long: once its
window ends before the watermark, a second copy would be refused as `late` anyway. Ids are
kept in buckets of their window's end and a bucket is dropped whole once it ends before the
watermark.

The bound, for a live writer whose watermark is its clock minus the allowed lateness L, with
clock skew allowance S and epoch length E: a signal with an `observed_at` is held about
L + S after it was observed (its window is that instant); a legacy signal, which names an
epoch, is held until L after its epoch ends, so at most E + L + S. Memory is about 200 bytes
per held id (measured: `bench/ingest.py`).
"""

from __future__ import annotations

import heapq

__all__ = ["SeenIds", "seen_key"]


def seen_key(source: str, item_id: str) -> str:
    """The dedupe key of an item: its source and its id (neither holds a control character)."""
    return f"{source}\x1f{item_id}"


class SeenIds:
    """`seen_key` -> the fingerprint of what the item counted as, until it expires."""

    def __init__(self, *, bucket_ms: int = 10_000) -> None:
        if bucket_ms < 1:
            raise ValueError(f"bucket_ms must be >= 1 (got {bucket_ms})")
        self._bucket_ms = bucket_ms
        self._fingerprints: dict[str, bytes] = {}
        self._buckets: dict[int, list[str]] = {}
        self._order: list[int] = []  # heap of bucket numbers

    def __len__(self) -> int:
        return len(self._fingerprints)

    def get(self, key: str) -> bytes | None:
        """The fingerprint remembered for `key`, or None."""
        return self._fingerprints.get(key)

    def add(self, key: str, fingerprint: bytes, last_ms: int) -> None:
        """Remember `key` until the watermark passes `last_ms` (its window's end); a key
        already held keeps its first fingerprint."""
        if key in self._fingerprints:
            return
        self._fingerprints[key] = fingerprint
        bucket = last_ms // self._bucket_ms
        keys = self._buckets.get(bucket)
        if keys is None:
            keys = self._buckets[bucket] = []
            heapq.heappush(self._order, bucket)
        keys.append(key)

    def expire(self, watermark_ms: int) -> int:
        """Forget every key whose window ended before `watermark_ms`; how many were dropped
        (whole buckets: a key is kept until its bucket ends before the watermark)."""
        dropped = 0
        while self._order and (self._order[0] + 1) * self._bucket_ms <= watermark_ms:
            for key in self._buckets.pop(heapq.heappop(self._order)):
                del self._fingerprints[key]
                dropped += 1
        return dropped
