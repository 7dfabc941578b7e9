"""Checkpoint arithmetic and the websocket logs cache."""

from __future__ import annotations

from aop.streams.listener.checkpoint import Checkpoint
from aop.streams.listener.model import TxLogs
from aop.streams.listener.rpc_source import LogsCache


def test_checkpoint_resumes_at_the_partition_furthest_behind() -> None:
    checkpoint = Checkpoint((120, 101, 130), "sig")
    assert checkpoint.resume_slot == 101
    assert checkpoint.last_slot == 100
    advanced = checkpoint.advanced(125, "new")
    assert advanced == Checkpoint((126, 126, 130), "new")


def _tx(signature: str, slot: int) -> TxLogs:
    return TxLogs(signature, slot, None, None, ("Program log: x",))


def test_logs_cache_prunes_written_slots_and_bounds_its_size() -> None:
    cache = LogsCache(3)
    for n, slot in enumerate([10, 12, 11, 13]):
        cache.put(_tx(f"s{n}", slot))
    assert len(cache) == 3
    assert cache.get("s0") is None  # the oldest entry was evicted
    cache.prune(12)
    assert [cache.get("s1"), cache.get("s2")] == [None, None]
    assert cache.get("s3") == _tx("s3", 13)
    assert (cache.hits, cache.misses) == (1, 3)
