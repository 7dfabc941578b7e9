"""What the on-chain root accounts say about a replayed root."""

from __future__ import annotations

from aop.core.accounts import ChannelConfigV2, ChannelSlot, ChannelState, RootEntry
from aop.core.root_account import OurRoot, judge_root_account
from aop.replay.chain import ChainReader, chain_report
from aop.replay.compare import ChainReport

R1, R2, H = b"\x01" * 32, b"\x02" * 32, b"\x0f" * 32
ZERO = bytes(32)


def config(latest: int, *entries: RootEntry) -> ChannelConfigV2:
    roots = [RootEntry(0, ZERO, ZERO, 0)] * 4
    for entry in entries:
        roots[entry.seq % 4] = entry
    return ChannelConfigV2(1, 1, ZERO, ZERO, ZERO, latest, 0, ZERO, 0, tuple(roots))


def compare_cumulative(
    config: ChannelConfigV2, root_seq: int, root: bytes, dataset_hash: bytes
) -> ChainReport:
    ours = OurRoot("cumulative-v2", root_seq, 0, root, dataset_hash)
    return chain_report(judge_root_account(ours, config.encode()), "cfg")


def compare_ring(state: ChannelState, epoch: int, root: bytes) -> ChainReport:
    ours = OurRoot("ring-v0", 0, epoch, root, ZERO)
    return chain_report(judge_root_account(ours, state.encode()), "state")


def test_cumulative_entry_with_our_root_and_hash_matches() -> None:
    account = config(5, RootEntry(5, R1, H, 900))
    assert compare_cumulative(account, 5, R1, H) == ChainReport("match", "", R1, H, 900)


def test_cumulative_entry_with_another_root_or_hash_mismatches() -> None:
    account = config(5, RootEntry(5, R2, H, 900))
    assert compare_cumulative(account, 5, R1, H) == ChainReport(
        "mismatch", f"on-chain root {R2.hex()} dataset_hash {H.hex()}", R2, H, 900
    )
    assert compare_cumulative(account, 5, R2, R1).status == "mismatch"


def test_cumulative_root_replaced_or_not_yet_published_is_not_on_chain() -> None:
    """Only the 4 newest roots are kept (slot seq % 4): root_seq 1 was replaced by 5."""
    account = config(6, RootEntry(5, R1, H, 1), RootEntry(6, R1, H, 2))
    assert compare_cumulative(account, 1, R1, H) == ChainReport(
        "not_on_chain", "latest_root_seq 6; the account holds root_seqs [5, 6]"
    )
    assert compare_cumulative(account, 7, R1, H).status == "not_on_chain"


def test_ring_slot_of_the_epoch_is_compared() -> None:
    slots = [ChannelSlot(0, ZERO, 0, bytes(128))] * 10
    slots[3] = ChannelSlot(13, R1, 2, bytes(128))
    state = ChannelState(1, 1, ZERO, ZERO, 13, tuple(slots))
    assert compare_ring(state, 13, R1) == ChainReport("match", "", R1)
    assert compare_ring(state, 13, R2) == ChainReport("mismatch", f"on-chain root {R1.hex()}", R1)
    assert compare_ring(state, 3, R1) == ChainReport(
        "not_on_chain", "latest_epoch 13; ring slot 3 differs"
    )


def test_chain_off_compares_nothing() -> None:
    reader = ChainReader("http://127.0.0.1:9", mode="off", commitment="finalized", timeout=1)
    assert reader.enabled is False
    report = reader.compare(OurRoot("cumulative-v2", 1, 0, R1, H), "x")
    assert report == ChainReport("skipped", "--no-chain")


def test_absent_undecodable_and_unknown_format_accounts() -> None:
    """No account: not on chain; bytes that are no account of the format: a mismatch."""

    def report(format_name: str, data: bytes | None) -> ChainReport:
        return chain_report(judge_root_account(OurRoot(format_name, 1, 1, R1, H), data), "Acc1")

    assert report("cumulative-v2", None) == ChainReport(
        "not_on_chain", "account Acc1 does not exist"
    )
    assert report("ring-v0", None) == ChainReport("not_on_chain", "account Acc1 does not exist")
    garbage = report("cumulative-v2", b"\x00" * 10)
    assert garbage.status == "mismatch"
    assert garbage.detail.startswith("account Acc1 does not decode: ")
    assert report("v9", None) == ChainReport("skipped", "unknown claim format 'v9'")
