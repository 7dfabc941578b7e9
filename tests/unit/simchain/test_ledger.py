"""Pure pieces: the runtime's log limit and the account store's slot-versioned reads."""

from __future__ import annotations

from solders.pubkey import Pubkey

from aop.simchain.ledger import Account, AccountStore
from aop.simchain.logs import LogCollector


def test_log_collector_truncates_like_agave() -> None:
    """A message reaching 10 000 bytes is dropped with one `Log truncated`; shorter later
    messages that still fit are kept."""
    logs = LogCollector()
    assert logs.log("x" * 9_990) is True
    assert logs.log("y" * 10) is False  # 10 000 bytes would reach the limit
    assert logs.log("z" * 20) is False
    assert logs.log("w" * 9) is True
    assert logs.messages == ["x" * 9_990, "Log truncated", "w" * 9]
    assert logs.truncated is True


def test_account_store_reads_at_a_slot() -> None:
    """A read at slot S sees the last write at or before S; None deletes."""
    store = AccountStore()
    key, owner = Pubkey.new_unique(), Pubkey.new_unique()
    store.put(key, Account(1, b"a", owner), 10)
    store.put(key, Account(2, b"b", owner), 12)
    store.put(key, None, 15)
    assert store.get(key, at_slot=9) is None
    assert store.get(key, at_slot=11) == Account(1, b"a", owner)
    assert store.get(key, at_slot=14) == Account(2, b"b", owner)
    assert store.get(key, at_slot=15) is None
    assert store.get(key) is None
