"""Pure pieces: the runtime's log limit, the account store's slot-versioned reads and its
pruning, and the ledger's window of recent blocks."""

from __future__ import annotations

import random

import pytest
from solders.pubkey import Pubkey

from aop.simchain.errors import SimChainError
from aop.simchain.ledger import Account, AccountStore, Ledger, TxRecord
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


def test_account_store_prune_keeps_reachable_versions_and_drops_deleted_accounts() -> None:
    """prune(S) keeps the newest version at or before S and every later one; an account
    deleted at or before S leaves the store; one deleted later stays until a prune passes it."""
    store = AccountStore()
    kept, deleted, late = Pubkey.new_unique(), Pubkey.new_unique(), Pubkey.new_unique()
    owner = Pubkey.new_unique()
    for slot in (10, 11, 12):
        store.put(kept, Account(slot, b"", owner), slot)
    store.put(deleted, Account(1, b"", owner), 10)
    store.put(deleted, None, 12)
    store.put(late, Account(1, b"", owner), 10)
    store.delete_many([late, Pubkey.new_unique()], 20)  # an unknown key is not created
    assert len(store) == 3
    assert store.prune(11) == 1  # kept@10 (superseded by kept@11)
    assert store.get(kept, at_slot=11) == Account(11, b"", owner)
    assert store.get(deleted, at_slot=11) == Account(1, b"", owner)
    assert store.get(late, at_slot=19) == Account(1, b"", owner)
    assert store.prune(12) == 1 + 2  # kept@11; deleted@10, then deleted itself
    assert len(store) == 2
    assert store.get(deleted) is None
    assert store.prune(20) == 1 + 1  # late@10 superseded; late: gone entirely
    assert len(store) == 1 and store.get(late, at_slot=19) is None
    assert store.get(kept) == Account(12, b"", owner)


def _tx(signature: str, slot: int, index: int, *keys: str) -> TxRecord:
    return TxRecord(
        signature=signature,
        slot=slot,
        index=index,
        raw=b"",
        version="legacy",
        account_keys=keys,
        err=None,
        logs=(),
        inner_instructions=(),
        fee=5000,
        pre_balances=(),
        post_balances=(),
        units=0,
    )


def _ledger(retain_slots: int) -> Ledger:
    return Ledger(
        first_slot=100, genesis_blockhash="hash-100", genesis_time=0, retain_slots=retain_slots
    )


def test_ledger_keeps_the_newest_retain_slots_blocks() -> None:
    """Genesis is slot 100; after 12 seals the tip is 112 and a window of 5 keeps 108..112,
    with the blockhashes of those slots only."""
    ledger = _ledger(5)
    for slot in range(101, 113):
        ledger.seal(blockhash=f"hash-{slot}", block_time=slot)
    assert (ledger.tip, ledger.first_available) == (112, 108)
    assert [s for s in range(95, 120) if ledger.block(s) is not None] == list(range(108, 113))
    assert ledger.blockhash_slot("hash-107") is None
    assert ledger.blockhash_slot("hash-108") == 108
    with pytest.raises(
        SimChainError, match=r"slot 107 is not kept \(sealed and kept: 108\.\.112\)"
    ):
        ledger.sealed(107)


def test_pruned_transactions_are_forgotten_and_listings_stop_at_the_window() -> None:
    """Three transactions of address A in slots 101, 102 and 104 (window 2: 103..104 kept
    after the tip reaches 104): only the one of slot 104 is found; a pruned `before` lists
    nothing and a pruned `until` is ignored; the count still holds all three."""
    ledger = _ledger(2)
    slots = {101: [_tx("s101", 101, 0, "A", "B")], 102: [_tx("s102", 102, 0, "A")], 103: []}
    slots[104] = [_tx("s104", 104, 0, "A", "C")]
    for slot, txs in slots.items():
        for tx in txs:
            ledger.add_pending(tx)
        ledger.seal(blockhash=f"hash-{slot}", block_time=slot)
    assert ledger.first_available == 103
    assert [ledger.transaction(s, 104) for s in ("s101", "s102")] == [None, None]
    assert not ledger.is_known_signature("s101")
    assert ledger.transaction("s104", 104) is slots[104][0]

    def listed(address: str, **kw: str) -> list[str]:
        return [
            tx.signature
            for tx in ledger.signatures_for_address(address, max_slot=104, limit=10, **kw)
        ]

    assert listed("A") == ["s104"]
    assert listed("B") == []
    assert listed("A", before="s102") == []
    assert listed("A", until="s101") == ["s104"]
    assert ledger.transaction_count() == 3


def test_address_listings_match_a_model_while_the_window_slides() -> None:
    """Hundreds of seals with a 7-slot window, addresses drawn at random: every listing (with
    limits, `before` and `until` anchors) equals a brute-force filter of all transactions."""
    rng = random.Random(5)
    ledger = _ledger(7)
    every: list[TxRecord] = []
    for slot in range(101, 400):
        for index in range(rng.randrange(4)):
            keys = tuple(rng.sample("ABCDE", rng.randint(1, 3)))
            tx = _tx(f"s{slot}-{index}", slot, index, *keys)
            ledger.add_pending(tx)
            every.append(tx)
        ledger.seal(blockhash=f"hash-{slot}", block_time=slot)
        first = max(slot - 6, 100)
        assert ledger.first_available == first
        address = rng.choice("ABCDEF")
        kept = [tx for tx in every if tx.slot >= first and address in tx.account_keys]
        newest_first = [tx.signature for tx in reversed(kept)]
        limit = rng.randint(1, 5)
        found = ledger.signatures_for_address(address, max_slot=slot, limit=limit)
        assert [tx.signature for tx in found] == newest_first[:limit]
        if newest_first:
            anchor = rng.choice(newest_first)
            at = newest_first.index(anchor)
            before = ledger.signatures_for_address(address, max_slot=slot, limit=9, before=anchor)
            until = ledger.signatures_for_address(address, max_slot=slot, limit=9, until=anchor)
            assert [tx.signature for tx in before] == newest_first[at + 1 : at + 10]
            assert [tx.signature for tx in until] == newest_first[:at][:9]
