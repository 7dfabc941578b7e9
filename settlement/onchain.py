"""What the channel's root account says about one of our roots, before anything is sent.

Verdicts:

* `ON_CHAIN`: the account already holds our root for this sequence (nothing to send);
* `NEXT`: the account is exactly one step behind our root (send it);
* `MISMATCH`: the chain is ahead of us, behind us, or holds a different root for our
  sequence; the channel stops until an operator acts;
* `MISSING`: a cumulative-v2 channel whose ChannelConfigV2, or a mint whose GlobalRootConfig
  (global-v4/v5), does not exist (not initialized).

The account is judged by `core.root_account.judge_root_account` (the replay reads the same
judgement): PUBLISHED -> `ON_CHAIN`; NEXT -> `NEXT`; a cumulative-v2 chain BEHIND by roots a
dry run already walked (`assumed_published`) -> `NEXT`; ABSENT -> `MISSING` (cumulative-v2)
or `NEXT` (ring-v0: the program creates the ChannelState on first publish); anything else ->
`MISMATCH`.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from enum import Enum

from aop.core.root_account import OurRoot, RootAccountJudgement, Standing, judge_root_account

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
    ours: OurRoot, data: bytes | None, *, assumed_published: Collection[int] = ()
) -> ChainView:
    """Compare our root with the root account's data (None: the account does not exist).

    Args:
        assumed_published: cumulative-v2 root_seqs to treat as published although the
            account does not show them (a dry run walks several roots without sending).
    """
    judged = judge_root_account(ours, data)
    standing = judged.standing
    if standing is Standing.UNKNOWN_FORMAT:
        return ChainView(Verdict.MISMATCH, f"unknown claim format {ours.format_name!r}")
    if standing is Standing.UNDECODABLE:
        return ChainView(Verdict.MISMATCH, f"the channel account does not decode: {judged.error}")
    if ours.format_name == "ring-v0":
        return _ring(judged)
    return _cumulative(judged, assumed_published)


def _cumulative(judged: RootAccountJudgement, assumed: Collection[int]) -> ChainView:
    standing, latest, index = judged.standing, judged.latest, judged.index
    seq, root, dataset_hash = judged.ours.root_seq, judged.ours.root, judged.ours.dataset_hash
    if standing is Standing.ABSENT:
        if judged.ours.format_name == "cumulative-v2":
            action = "initialize the channel (initialize_channel_cumulative)"
            account = "ChannelConfigV2"
        else:
            action = "initialize the mint's global root config (initialize_global_root)"
            account = "GlobalRootConfig"
        return ChainView(
            Verdict.MISSING,
            f"the {account} account does not exist; operator action: {action} and release it",
        )
    if standing is Standing.PUBLISHED:
        return ChainView(
            Verdict.ON_CHAIN,
            f"slot {index} already holds root_seq {seq} with our root",
            latest,
            judged.published_slot,
        )
    if standing is Standing.OTHER_ROOT:
        held_root, held_hash = judged.held_root or b"", judged.held_dataset_hash or b""
        return ChainView(
            Verdict.MISMATCH,
            f"slot {index} holds root_seq {seq} with root {held_root.hex()} / dataset_hash "
            f"{held_hash.hex()}, ours is {root.hex()} / {dataset_hash.hex()}",
            latest,
        )
    if standing is Standing.AHEAD:
        return ChainView(
            Verdict.MISMATCH,
            f"the chain is ahead: latest_root_seq {latest} >= our root_seq {seq}, and the ring "
            "does not hold our root",
            latest,
        )
    if standing is Standing.NEXT or (
        latest is not None and all(s in assumed for s in range(latest + 1, seq))
    ):
        return ChainView(Verdict.NEXT, f"latest_root_seq {latest}", latest)
    return ChainView(
        Verdict.MISMATCH,
        f"the chain is behind: latest_root_seq {latest} + 1 != our root_seq {seq}",
        latest,
    )


def _ring(judged: RootAccountJudgement) -> ChainView:
    standing, latest, index = judged.standing, judged.latest, judged.index
    epoch, root = judged.ours.epoch, judged.ours.root
    if standing is Standing.ABSENT:
        return ChainView(Verdict.NEXT, "no ChannelState yet (the program creates it)", None)
    if standing is Standing.PUBLISHED:
        return ChainView(
            Verdict.ON_CHAIN,
            f"ring slot {index} already holds epoch {epoch} with our root",
            latest,
        )
    if standing is Standing.OTHER_ROOT:
        return ChainView(
            Verdict.MISMATCH,
            f"ring slot {index} holds epoch {epoch} with root {(judged.held_root or b'').hex()}, "
            f"ours is {root.hex()}",
            latest,
        )
    if standing is Standing.AHEAD:
        return ChainView(
            Verdict.MISMATCH,
            f"the chain is ahead: latest_epoch {latest}, ring slot {index} holds epoch "
            f"{judged.slot_epoch}, ours is epoch {epoch}",
            latest,
        )
    return ChainView(Verdict.NEXT, f"latest_epoch {latest}", latest)
