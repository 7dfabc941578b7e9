"""The workload: deterministic, coherent staking, failures without events, truncated logs."""

from __future__ import annotations

from collections import Counter

import pytest

from aop.core.events import (
    ChannelEmergencyUnstaked,
    ChannelStaked,
    ChannelUnstaked,
    CumulativeRewardsClaimed,
    decode_event,
)
from aop.core.pda import associated_token_address
from aop.core.program_logs import extract_program_data
from aop.simchain import SimChain, SimConfig
from aop.simchain.keys import Keys
from aop.simchain.program.staking import boost_bps

BUSY = SimConfig(
    seed=11,
    slot_ms=400,
    rate=60,
    finality_depth=3,
    wallets=40,
    channels=("twitch:a", "twitch:b", "youtube:c", "kick:d"),
    root_interval_slots=10,
    failed_tx_ratio=0.08,
    multi_event_ratio=0.3,
    admin_event_ratio=0.05,
)


def run(config: SimConfig, slots: int) -> SimChain:
    chain = SimChain(config)
    chain.produce_slots(slots)
    return chain


def test_same_seed_same_chain_other_seed_other_chain() -> None:
    """Equal configs give byte-identical event records; another seed does not."""
    first, second = run(BUSY, 15), run(BUSY, 15)
    assert first.emitted_events() == second.emitted_events()
    assert len(first.emitted_events()) > 100
    assert run(BUSY.replace(seed=12), 15).emitted_event_ids() != first.emitted_event_ids()


def test_positions_open_and_close_coherently() -> None:
    """Every unstake closes an open position of the same user, channel, nft_mint and amount;
    no pair is staked twice; boost and penalty follow the program's rules."""
    chain = run(BUSY, 50)
    channels = {bytes(chain.channel_config(name)) for name in BUSY.channels}
    open_positions: dict[tuple[bytes, bytes], ChannelStaked] = {}
    staked_pairs: set[tuple[bytes, bytes]] = set()
    kinds: Counter[str] = Counter()
    for emitted in chain.emitted_events():
        event = decode_event(emitted.data)
        kinds[type(event).__name__] += 1
        if isinstance(event, ChannelStaked | ChannelUnstaked | ChannelEmergencyUnstaked):
            assert event.channel in channels
            assert event.timestamp == chain.block_time(emitted.slot)
        if isinstance(event, ChannelStaked):
            key = (event.user, event.channel)
            assert key not in staked_pairs
            staked_pairs.add(key)
            open_positions[key] = event
            assert event.boost_bps == boost_bps(event.lock_duration)
        elif isinstance(event, ChannelUnstaked):
            opened = open_positions.pop((event.user, event.channel))
            assert (event.nft_mint, event.amount) == (opened.nft_mint, opened.amount)
        elif isinstance(event, ChannelEmergencyUnstaked):
            opened = open_positions.pop((event.user, event.channel))
            assert (event.nft_mint, event.staked_amount) == (opened.nft_mint, opened.amount)
            assert event.penalty_amount == opened.amount * 20 // 100
            assert event.returned_amount == opened.amount - event.penalty_amount
        elif isinstance(event, CumulativeRewardsClaimed):
            assert event.channel == bytes(chain.channel_config("sim:claims"))
    assert (
        min(kinds["ChannelStaked"], kinds["ChannelUnstaked"], kinds["ChannelEmergencyUnstaked"]) > 0
    )
    assert kinds["CumulativeRewardsClaimed"] > 0
    assert kinds["PublisherUpdated"] + kinds["CreatorFeeUpdated"] + kinds["ProtocolPaused"] > 0
    assert {len({b for (_, b) in staked_pairs})} == {4}


def test_failed_transactions_count_no_events() -> None:
    """Failed transactions land (err set) but none of their `Program data:` lines count,
    including a stake logged before the instruction that failed."""
    chain = run(BUSY, 30)
    record = set(chain.emitted_event_ids())
    failed = [
        tx
        for slot in range(BUSY.first_slot + 1, chain.finalized_slot + 1)
        for tx in chain.ledger.block(slot).txs  # type: ignore[union-attr]
        if tx.err is not None
    ]
    assert failed
    assert all(tx.events == () for tx in failed)
    logged = [tx for tx in failed if extract_program_data(tx.logs, BUSY.program_id).payloads]
    assert logged, "expected a failed transaction that logged an event before failing"
    assert not {f"{tx.signature}:0" for tx in logged} & record
    codes = Counter(str(tx.err["InstructionError"][1]) for tx in failed)
    assert set(codes) <= {
        "{'Custom': 6050}",
        "{'Custom': 6052}",
        "{'Custom': 0}",
        "{'Custom': 6005}",
    }


def test_injected_truncated_transaction() -> None:
    """inject_truncated: one transaction of five stakes; its logs stop at `Log truncated`, the
    record keeps only the events whose `Program data:` line is visible."""
    chain = SimChain(BUSY.replace(rate=0))
    chain.workload.inject_truncated(1)
    chain.produce_slots(1 + BUSY.finality_depth)
    [tx] = chain.ledger.block(BUSY.first_slot + 1).txs  # type: ignore[union-attr]
    assert tx.err is None and tx.truncated
    assert tx.logs.count("Log truncated") == 1
    assert sum(len(line) for line in tx.logs if line != "Log truncated") < 10_000
    visible = extract_program_data(tx.logs, BUSY.program_id)
    assert visible.truncated
    assert len(visible.payloads) + tx.hidden_events == 5
    assert chain.emitted_event_ids() == [
        f"{tx.signature}:{i}" for i in range(len(visible.payloads))
    ]
    assert chain.truncated_transactions() == [
        {"signature": tx.signature, "slot": tx.slot, "hidden_events": tx.hidden_events}
    ]


def test_rate_and_skew() -> None:
    """About rate x slot time events per slot; the first channel is the busiest."""
    chain = run(BUSY.replace(failed_tx_ratio=0, admin_event_ratio=0), 30)
    expected = BUSY.rate * 0.4 * (chain.finalized_slot - BUSY.first_slot)
    assert 0.8 * expected < len(chain.emitted_events()) < 1.2 * expected
    stakes = Counter(
        decode_event(e.data).channel  # type: ignore[union-attr]
        for e in chain.emitted_events()
        if e.name == "ChannelStaked"
    )
    assert stakes.most_common(1)[0][0] == bytes(chain.channel_config("twitch:a"))


def test_rotated_channels_move_the_hot_spot_to_the_next_channel() -> None:
    """After `rotate_channels(1)` the second channel gets the most stakes, as the first did."""
    chain = SimChain(BUSY.replace(failed_tx_ratio=0, admin_event_ratio=0))
    chain.produce_slots(5)
    already = len(chain.emitted_events())
    chain.workload.rotate_channels(1)
    assert chain.workload.status()["channel_shift"] == 1
    chain.produce_slots(30)
    stakes = Counter(
        decode_event(e.data).channel  # type: ignore[union-attr]
        for e in chain.emitted_events()[already:]
        if e.name == "ChannelStaked"
    )
    assert stakes.most_common(1)[0][0] == bytes(chain.channel_config("twitch:b"))
    chain.workload.rotate_channels(3)
    assert chain.workload.channel_shift == 0


def test_fill_lands_every_drawn_event(monkeypatch: pytest.MonkeyPatch) -> None:
    """A slot gets the events drawn for it, not fewer: with one event per transaction and no
    failures, 150 drawn events are 150 landed events."""
    config = BUSY.replace(
        claim_channels=(), failed_tx_ratio=0, admin_event_ratio=0, multi_event_ratio=0
    )
    chain = SimChain(config)
    monkeypatch.setattr(chain.workload, "_draw_count", lambda: 150)
    chain.produce_slot()
    [block] = [chain.ledger.sealed(config.first_slot + 1)]
    assert sum(len(tx.events) for tx in block.txs) == 150
    assert len(block.txs) == 150


def test_multi_event_transactions_stay_within_solana_limits() -> None:
    """With every staking transaction carrying several events: 1-3 events per transaction,
    each indexed from 0 under its signature, every packet within 1,232 bytes and no logs cut
    at 10 KB."""
    chain = run(BUSY.replace(multi_event_ratio=1.0, claim_channels=()), 30)
    landed = [
        tx
        for slot in range(BUSY.first_slot + 1, chain.finalized_slot + 1)
        for tx in chain.ledger.sealed(slot).txs
        if tx.err is None
    ]
    assert {len(tx.events) for tx in landed} == {1, 2, 3}
    assert max(len(tx.raw) for tx in landed) <= 1_232
    assert not any(tx.truncated for tx in landed)
    assert all(
        [event.event_index for event in tx.events] == list(range(len(tx.events))) for tx in landed
    )
    assert chain.emitted_event_ids() == [event.id for tx in landed for event in tx.events]


def test_multi_event_ratio_changes_on_a_running_workload() -> None:
    chain = SimChain(BUSY)
    chain.workload.set_multi_event_ratio(1.0)
    assert chain.workload.status()["multi_event_ratio"] == 1.0
    with pytest.raises(ValueError, match=r"multi_event_ratio must be in 0\.\.1 \(got 1\.5\)"):
        chain.workload.set_multi_event_ratio(1.5)


def test_fill_steps_stop_when_the_slot_is_sealed_meanwhile() -> None:
    """A server fills a slot step by step; a slot sealed between two steps (`sim_advance`)
    ends that fill, so no transaction lands in a slot it was not built for."""
    chain = SimChain(BUSY)
    steps = chain.fill_steps()
    next(steps)
    block = chain.seal_slot()
    assert list(steps) == []
    assert (block.slot, len(block.txs), chain.ledger.pending) == (BUSY.first_slot + 1, 1, [])


def test_deployed_profile_workload_stakes_and_builds_nothing_the_program_refuses() -> None:
    """With the deployed program the workload sends only staking (and its built failures):
    no transaction fails with 101, no CumulativeRewardsClaimed or admin event appears."""
    chain = run(BUSY.replace(program="deployed", claim_channels=()), 40)
    names = Counter(emitted.name for emitted in chain.emitted_events())
    assert set(names) == {"ChannelStaked", "ChannelUnstaked", "ChannelEmergencyUnstaked"}
    assert names["ChannelStaked"] > 100
    errors = [
        tx.err
        for slot in range(BUSY.first_slot + 1, chain.tip + 1)
        for tx in chain.ledger.sealed(slot).txs
        if tx.err is not None
    ]
    assert errors, "the workload's built failures still happen"
    assert all(err["InstructionError"][1] != {"Custom": 101} for err in errors)


#: six wallets at most on two channels: a stake soon needs a seat an idle wallet leaves.
CROWDED = BUSY.replace(
    wallets=6, max_wallets=6, channels=("twitch:a", "youtube:c"), claim_channels=("sim:claims",)
)


def test_wallets_leave_when_the_seats_are_full_and_their_accounts_go() -> None:
    """With six seats the workload keeps six wallets: every other wallet that ever joined
    has left, and its system and token accounts are deleted; stakes never repeat a pair."""
    chain = run(CROWDED, 150)
    status = chain.workload.status()
    joined, left = status["wallets"], status["wallets_left"]
    assert status["wallets_present"] == 6 and left > 20 and joined == 6 + left
    keys = Keys(CROWDED.seed)
    present = [
        index
        for index in range(joined)
        if chain.ledger.accounts.get(keys.wallet_key(index)) is not None
    ]
    assert len(present) == 6
    for index in set(range(joined)) - set(present):
        wallet = keys.wallet_key(index)
        assert (
            chain.ledger.accounts.get(associated_token_address(owner=wallet, mint=CROWDED.mint))
            is None
        )
    staked = [
        (decode_event(e.data).user, decode_event(e.data).channel)  # type: ignore[union-attr]
        for e in chain.emitted_events()
        if e.name == "ChannelStaked"
    ]
    assert len(staked) == len(set(staked)) > 100


def test_state_stops_growing_once_wallets_come_and_go() -> None:
    """After wallets came and went, the accounts (counted once every deletion is final and
    pruned) stay within what six wallets can hold on top of genesis's: system and token
    account, per channel a position, its receipt mint and that mint's token account, and a
    claim state per claim channel; the ledger holds only its window of blocks."""
    config = CROWDED.replace(retain_slots=160)
    chain = SimChain(config)
    at_genesis = len(chain.ledger.accounts) - 2 * config.wallets
    per_wallet = 2 + 3 * len(config.channels) + len(config.claim_channels)
    bound = at_genesis + config.wallet_limit * per_wallet
    sizes = []
    for _ in range(4):
        chain.produce_slots(200)
        chain.workload.enabled = False
        chain.produce_slots(config.finality_depth + 1)  # every deletion is final
        chain.ledger.accounts.prune(chain.finalized_slot)
        sizes.append(len(chain.ledger.accounts))
        chain.workload.enabled = True
        assert chain.ledger.first_available == chain.tip - 160 + 1
    assert max(sizes) <= bound, (sizes, bound)
    assert chain.workload.status()["wallets_left"] > 100
