"""What the channel's root account says about one of our roots, before anything is sent.

Verdicts:

* `ON_CHAIN`: the account already holds our root for this sequence (nothing to send);
* `NEXT`: the account is exactly one step behind our root (send it);
* `MISMATCH`: the chain is ahead of us, behind us, or holds a different root for our
  sequence; the channel stops until an operator acts;
* `MISSING`: a cumulative-v2 channel whose ChannelConfigV2 does not exist (not initialized).

cumulative-v2 (ChannelConfigV2): on-chain iff `roots[seq % 4]` has seq, our root and our
dataset_hash; next iff `latest_root_seq + 1 == seq`. ring-v0 (ChannelState, created by the
program on first publish): on-chain iff the slot `epoch % 10` holds our epoch and root; next
iff that slot holds an older epoch (or none) and `latest_epoch <= epoch`.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from enum import Enum

from aop.core.accounts import ChannelConfigV2, ChannelState
from aop.core.errors import AccountDecodeError

__all__ = ["ChainView", "Verdict", "classify"]


class Verdict(Enum):
    ON_CHAIN = "on_chain"
    NEXT = "next"
    MISMATCH = "mismatch"
    MISSING = "missing"


@dataclass(frozen=True)
class ChainView:
    """A verdict, why, and the newest sequence the account shows (root_seq or epoch)."""

    verdict: Verdict
    detail: str
    chain_seq: int | None = None
    published_slot: int | None = None


def classify(
    format_name: str,
    data: bytes | None,
    *,
    root_seq: int,
    epoch: int,
    root: bytes,
    dataset_hash: bytes,
    assumed_published: Collection[int] = (),
) -> ChainView:
    """Compare our root with the root account's data (None: the account does not exist).

    Args:
        assumed_published: cumulative-v2 root_seqs to treat as published although the
            account does not show them (a dry run walks several roots without sending).
    """
    if format_name == "cumulative-v2":
        return _cumulative(data, root_seq, root, dataset_hash, assumed_published)
    if format_name == "ring-v0":
        return _ring(data, epoch, root)
    return ChainView(Verdict.MISMATCH, f"unknown claim format {format_name!r}")


def _cumulative(
    data: bytes | None,
    seq: int,
    root: bytes,
    dataset_hash: bytes,
    assumed: Collection[int],
) -> ChainView:
    if data is None:
        return ChainView(
            Verdict.MISSING,
            "the ChannelConfigV2 account does not exist; operator action: initialize the "
            "channel (initialize_channel_cumulative) and release it",
        )
    try:
        config = ChannelConfigV2.decode(data)
    except AccountDecodeError as exc:
        return ChainView(Verdict.MISMATCH, f"the channel account does not decode: {exc}")
    latest = config.latest_root_seq
    entry = config.root_entry(seq)
    if entry is not None:
        if entry.root == root and entry.dataset_hash == dataset_hash:
            return ChainView(
                Verdict.ON_CHAIN,
                f"slot {seq % 4} already holds root_seq {seq} with our root",
                latest,
                entry.published_slot,
            )
        return ChainView(
            Verdict.MISMATCH,
            f"slot {seq % 4} holds root_seq {seq} with root {entry.root.hex()} / dataset_hash "
            f"{entry.dataset_hash.hex()}, ours is {root.hex()} / {dataset_hash.hex()}",
            latest,
        )
    if latest >= seq:
        return ChainView(
            Verdict.MISMATCH,
            f"the chain is ahead: latest_root_seq {latest} >= our root_seq {seq}, and the ring "
            "does not hold our root",
            latest,
        )
    if latest + 1 == seq or all(s in assumed for s in range(latest + 1, seq)):
        return ChainView(Verdict.NEXT, f"latest_root_seq {latest}", latest)
    return ChainView(
        Verdict.MISMATCH,
        f"the chain is behind: latest_root_seq {latest} + 1 != our root_seq {seq}",
        latest,
    )


def _ring(data: bytes | None, epoch: int, root: bytes) -> ChainView:
    if data is None:
        return ChainView(Verdict.NEXT, "no ChannelState yet (the program creates it)", None)
    try:
        state = ChannelState.decode(data)
    except AccountDecodeError as exc:
        return ChainView(Verdict.MISMATCH, f"the channel account does not decode: {exc}")
    slot = state.slots[epoch % len(state.slots)]
    if slot.epoch == epoch and slot.root != bytes(32):
        if slot.root == root:
            return ChainView(
                Verdict.ON_CHAIN,
                f"ring slot {epoch % 10} already holds epoch {epoch} with our root",
                state.latest_epoch,
            )
        return ChainView(
            Verdict.MISMATCH,
            f"ring slot {epoch % 10} holds epoch {epoch} with root {slot.root.hex()}, ours is "
            f"{root.hex()}",
            state.latest_epoch,
        )
    if slot.epoch > epoch or state.latest_epoch > epoch:
        return ChainView(
            Verdict.MISMATCH,
            f"the chain is ahead: latest_epoch {state.latest_epoch}, ring slot {epoch % 10} "
            f"holds epoch {slot.epoch}, ours is epoch {epoch}",
            state.latest_epoch,
        )
    return ChainView(Verdict.NEXT, f"latest_epoch {state.latest_epoch}", state.latest_epoch)
