"""What a channel's root account says about one of our roots: one judgement, pure.

Settlement reads it before sending a root (`settlement.onchain`), the replay after rebuilding
one (`replay.chain`); each turns the same `Standing` into its own verdict and words.

The account keeps only the newest roots. cumulative-v2 (ChannelConfigV2): the last 4, entry
`root_seq % 4` holding (seq, root, dataset_hash, published_slot), and `latest_root_seq`.
ring-v0 (ChannelState, created by the program on its first publish): the last 10 epochs, slot
`epoch % 10` holding (epoch, root), and `latest_epoch`. For our (root_seq, epoch, root,
dataset_hash) the account is, checked in this order:

| standing | cumulative-v2 | ring-v0 |
|---|---|---|
| UNKNOWN_FORMAT | neither format | |
| ABSENT | no account | no account |
| UNDECODABLE | the data is not a ChannelConfigV2 | not a ChannelState |
| PUBLISHED | entry holds root_seq, our root and dataset_hash | slot holds epoch and our root |
| OTHER_ROOT | entry holds root_seq, another root or hash | slot holds epoch, another root |
| AHEAD | `latest_root_seq >= root_seq` | slot holds a later epoch, or `latest_epoch > epoch` |
| NEXT | `latest_root_seq + 1 == root_seq` | otherwise |
| BEHIND | `latest_root_seq + 1 < root_seq` (roots between are missing) | never: epochs may skip |

(ring-v0's zero root marks an empty slot: a slot holding our epoch with it counts as not
holding it.)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from aop.core.accounts import (
    CHANNEL_RING_SLOTS,
    CUMULATIVE_ROOT_HISTORY,
    ChannelConfigV2,
    ChannelState,
)
from aop.core.errors import AccountDecodeError

__all__ = ["RootAccountJudgement", "Standing", "judge_root_account"]

_FORMATS = ("cumulative-v2", "ring-v0")


class Standing(Enum):
    """Where the account stands with respect to our root (see the module's table)."""

    UNKNOWN_FORMAT = "unknown_format"
    ABSENT = "absent"
    UNDECODABLE = "undecodable"
    PUBLISHED = "published"
    OTHER_ROOT = "other_root"
    AHEAD = "ahead"
    NEXT = "next"
    BEHIND = "behind"


@dataclass(frozen=True)
class RootAccountJudgement:
    """A `Standing` and the account's facts behind it (None where the account has none)."""

    standing: Standing
    format_name: str
    #: the entry (cumulative-v2: root_seq % 4) or ring slot (ring-v0: epoch % 10) of our root.
    index: int
    #: latest_root_seq (cumulative-v2) or latest_epoch (ring-v0).
    latest: int | None = None
    #: what that entry or slot holds for our root_seq or epoch (PUBLISHED, OTHER_ROOT).
    held_root: bytes | None = None
    held_dataset_hash: bytes | None = None
    published_slot: int | None = None
    #: ring-v0: the epoch the slot holds.
    slot_epoch: int | None = None
    #: cumulative-v2: the root_seqs the account holds, ascending.
    held_seqs: tuple[int, ...] = ()
    #: UNDECODABLE: the decoder's message.
    error: str = ""


def judge_root_account(
    format_name: str,
    data: bytes | None,
    *,
    root_seq: int,
    epoch: int,
    root: bytes,
    dataset_hash: bytes,
) -> RootAccountJudgement:
    """Judge the root account's `data` (None: the account does not exist) against our root.

    Args:
        format_name: the channel's claim format ("cumulative-v2" or "ring-v0").
        root_seq, dataset_hash: our root's (cumulative-v2; ring-v0 ignores them).
        epoch: our root's (ring-v0; cumulative-v2 ignores it).
    """
    if format_name not in _FORMATS:
        return RootAccountJudgement(Standing.UNKNOWN_FORMAT, format_name, 0)
    if format_name == "cumulative-v2":
        return _cumulative(data, root_seq, root, dataset_hash)
    return _ring(data, epoch, root)


def _cumulative(
    data: bytes | None, seq: int, root: bytes, dataset_hash: bytes
) -> RootAccountJudgement:
    index = seq % CUMULATIVE_ROOT_HISTORY
    if data is None:
        return RootAccountJudgement(Standing.ABSENT, "cumulative-v2", index)
    try:
        config = ChannelConfigV2.decode(data)
    except AccountDecodeError as exc:
        return RootAccountJudgement(Standing.UNDECODABLE, "cumulative-v2", index, error=str(exc))
    latest = config.latest_root_seq
    held = tuple(sorted(e.seq for e in config.roots if e.seq))
    entry = config.root_entry(seq)
    if entry is not None:
        same = entry.root == root and entry.dataset_hash == dataset_hash
        return RootAccountJudgement(
            Standing.PUBLISHED if same else Standing.OTHER_ROOT,
            "cumulative-v2",
            index,
            latest,
            held_root=entry.root,
            held_dataset_hash=entry.dataset_hash,
            published_slot=entry.published_slot,
            held_seqs=held,
        )
    if latest >= seq:
        standing = Standing.AHEAD
    elif latest + 1 == seq:
        standing = Standing.NEXT
    else:
        standing = Standing.BEHIND
    return RootAccountJudgement(standing, "cumulative-v2", index, latest, held_seqs=held)


def _ring(data: bytes | None, epoch: int, root: bytes) -> RootAccountJudgement:
    index = epoch % CHANNEL_RING_SLOTS
    if data is None:
        return RootAccountJudgement(Standing.ABSENT, "ring-v0", index)
    try:
        state = ChannelState.decode(data)
    except AccountDecodeError as exc:
        return RootAccountJudgement(Standing.UNDECODABLE, "ring-v0", index, error=str(exc))
    latest = state.latest_epoch
    slot = state.slots[index]
    if state.slot_for(epoch) is not None:
        return RootAccountJudgement(
            Standing.PUBLISHED if slot.root == root else Standing.OTHER_ROOT,
            "ring-v0",
            index,
            latest,
            held_root=slot.root,
            slot_epoch=slot.epoch,
        )
    standing = Standing.AHEAD if slot.epoch > epoch or latest > epoch else Standing.NEXT
    return RootAccountJudgement(standing, "ring-v0", index, latest, slot_epoch=slot.epoch)
