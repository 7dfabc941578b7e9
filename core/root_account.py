"""What a root account says about one of our roots: one judgement, pure.

Settlement reads it before sending a root (`settlement.onchain`), the replay after rebuilding
one (`replay.chain`); each turns the same `Standing` into its own verdict and words.

The account keeps only the newest roots. cumulative-v2 (ChannelConfigV2) and the global
formats (GlobalRootConfig, one per mint): the last 4, entry `root_seq % 4` holding (seq, root,
dataset_hash, published_slot), and `latest_root_seq`; the table's cumulative-v2 column is
theirs too.
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

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from aop.core.accounts import (
    CHANNEL_RING_SLOTS,
    CUMULATIVE_ROOT_HISTORY,
    ChannelConfigV2,
    ChannelState,
    GlobalRootConfig,
)
from aop.core.errors import AccountDecodeError

__all__ = ["OurRoot", "RootAccountJudgement", "Standing", "judge_root_account"]

_FORMATS = ("cumulative-v2", "ring-v0", "global-v4", "global-v5")
#: formats whose roots sit in a 4-entry ring keyed by root_seq (the same rules, two accounts).
_SEQUENCED: dict[str, Callable[[bytes], ChannelConfigV2 | GlobalRootConfig]] = {
    "cumulative-v2": ChannelConfigV2.decode,
    "global-v4": GlobalRootConfig.decode,
    "global-v5": GlobalRootConfig.decode,
}


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


#: the entry or slot holds our root_seq or epoch.
_HOLDS_OUR_SEQ = (Standing.PUBLISHED, Standing.OTHER_ROOT)


@dataclass(frozen=True)
class OurRoot:
    """The root the account is judged against (cumulative-v2 reads root_seq and
    dataset_hash, ring-v0 epoch; both read root)."""

    format_name: str
    root_seq: int
    epoch: int
    root: bytes
    dataset_hash: bytes


@dataclass(frozen=True)
class RootAccountJudgement:
    """A `Standing` and the account's facts behind it (None where the account has none)."""

    standing: Standing
    ours: OurRoot
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


def judge_root_account(ours: OurRoot, data: bytes | None) -> RootAccountJudgement:
    """Judge the root account's `data` (None: the account does not exist) against `ours`."""
    if ours.format_name not in _FORMATS:
        return RootAccountJudgement(Standing.UNKNOWN_FORMAT, ours, 0)
    sequenced = _SEQUENCED.get(ours.format_name)
    if sequenced is not None:
        index = ours.root_seq % CUMULATIVE_ROOT_HISTORY
    else:
        index = ours.epoch % CHANNEL_RING_SLOTS
    if data is None:
        return RootAccountJudgement(Standing.ABSENT, ours, index)
    try:
        account: ChannelConfigV2 | GlobalRootConfig | ChannelState = (
            sequenced(data) if sequenced is not None else ChannelState.decode(data)
        )
    except AccountDecodeError as exc:
        return RootAccountJudgement(Standing.UNDECODABLE, ours, index, error=str(exc))
    if isinstance(account, ChannelConfigV2 | GlobalRootConfig):
        return _cumulative(ours, index, account)
    return _ring(ours, index, account)


def _cumulative(
    ours: OurRoot, index: int, config: ChannelConfigV2 | GlobalRootConfig
) -> RootAccountJudgement:
    seq, latest = ours.root_seq, config.latest_root_seq
    held = tuple(sorted(e.seq for e in config.roots if e.seq))
    entry = config.root_entry(seq)
    if entry is None:
        if latest >= seq:
            standing = Standing.AHEAD
        elif latest + 1 == seq:
            standing = Standing.NEXT
        else:
            standing = Standing.BEHIND
        return RootAccountJudgement(standing, ours, index, latest, held_seqs=held)
    same = entry.root == ours.root and entry.dataset_hash == ours.dataset_hash
    return RootAccountJudgement(
        Standing.PUBLISHED if same else Standing.OTHER_ROOT,
        ours,
        index,
        latest,
        held_root=entry.root,
        held_dataset_hash=entry.dataset_hash,
        published_slot=entry.published_slot,
        held_seqs=held,
    )


def _ring(ours: OurRoot, index: int, state: ChannelState) -> RootAccountJudgement:
    epoch, latest = ours.epoch, state.latest_epoch
    slot = state.slots[index]
    if state.slot_for(epoch) is None:
        ahead = slot.epoch > epoch or latest > epoch
        standing = Standing.AHEAD if ahead else Standing.NEXT
    else:
        standing = Standing.PUBLISHED if slot.root == ours.root else Standing.OTHER_ROOT
    return RootAccountJudgement(
        standing,
        ours,
        index,
        latest,
        held_root=slot.root if standing in _HOLDS_OUR_SEQ else None,
        slot_epoch=slot.epoch,
    )
