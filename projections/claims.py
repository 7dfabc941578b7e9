"""Claimed totals from the log: the one rule that turns a SlotBatch's events into updates.

The live projector (`projections.projector`) and the rebuild's loader (`replay.load`) both
call `claims_of`; they read the same record through different decoders (the projector's
`AvroCodec` gives whole ChainEvents, the loader's `SlotBatchDecoder` keeps only `id`, `slot`,
`program_id` and `data`), so the rule reads only fields that every view of a ChainEvent has:

* an event is a claim when its raw `data` starts with CumulativeRewardsClaimed's
  discriminator. The data is what the program emitted; `name` is the listener's label for
  humans, derived from the same 8 bytes, and is never read here. A record whose name and
  discriminator disagree is therefore judged by the discriminator: named
  CumulativeRewardsClaimed but carrying another event's bytes, it is not a claim; carrying
  the claim's bytes under another name, it is one;
* the signature is the event id's part before its last ':' (`<signature>:<event_index>`,
  `schemas/avro/ChainEvent.avsc`);
* claim bytes that do not decode are returned apart (`BatchClaims.undecodable`): the
  projector dead-letters them, the loader skips them (the projector did so already).

Global claims (`claim_global[_v2]` and the sponsored variants of the deployed program) emit
GlobalRewardsClaimed, which names no mint and no account: one deployment serves one mint, so
the caller passes its GlobalRootConfig address (`global_account`) and those claims update the
claimed totals of that root account, V4 and V5 alike (one ClaimStateGlobal per wallet).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from solders.pubkey import Pubkey

from aop.core.errors import CoreError
from aop.core.events import CumulativeRewardsClaimed, GlobalRewardsClaimed

__all__ = ["BatchClaims", "ClaimUpdate", "UndecodableClaim", "claims_of", "signature_of"]

_CLAIM = CumulativeRewardsClaimed.DISCRIMINATOR
_GLOBAL_CLAIM = GlobalRewardsClaimed.DISCRIMINATOR


@dataclass(frozen=True)
class ClaimUpdate:
    """A CumulativeRewardsClaimed event: the wallet's claimed_total is now `claimed_total`."""

    channel_config: str
    wallet: bytes
    claimed_total: int
    root_seq: int
    slot: int
    signature: str

    @classmethod
    def of(cls, claim: CumulativeRewardsClaimed, *, slot: int, signature: str) -> ClaimUpdate:
        """The update a decoded claim event makes."""
        return cls(
            channel_config=str(Pubkey(claim.channel)),
            wallet=bytes(claim.claimer),
            claimed_total=claim.cumulative_total,
            root_seq=claim.root_seq,
            slot=slot,
            signature=signature,
        )


class UndecodableClaim(NamedTuple):
    """An event with the claim's discriminator whose body does not decode."""

    event_id: str
    error: CoreError


@dataclass(frozen=True)
class BatchClaims:
    """The claimed-total updates of one SlotBatch, in event order, and the refused events."""

    updates: list[ClaimUpdate] = field(default_factory=list)
    undecodable: list[UndecodableClaim] = field(default_factory=list)


def signature_of(event_id: str) -> str:
    """The transaction signature of a ChainEvent id (`<signature>:<event_index>`)."""
    return event_id.rsplit(":", 1)[0]


def claims_of(batch: Mapping[str, Any], *, global_account: str | None = None) -> BatchClaims:
    """Apply the module's rule to a decoded SlotBatch (either decoder's view).

    Args:
        batch: a SlotBatch value; each event needs `id`, `slot` and `data`.
        global_account: the deployment's GlobalRootConfig address; None skips global claims.
    """
    out = BatchClaims()
    for event in batch["events"]:
        data = bytes(event["data"])
        kind = data[:8]
        if kind != _CLAIM and (kind != _GLOBAL_CLAIM or global_account is None):
            continue
        event_id = str(event["id"])
        slot, signature = int(event["slot"]), signature_of(event_id)
        try:
            if kind == _CLAIM:
                claim = CumulativeRewardsClaimed.decode(data)
                out.updates.append(ClaimUpdate.of(claim, slot=slot, signature=signature))
                continue
            global_claim = GlobalRewardsClaimed.decode(data)
        except CoreError as exc:
            out.undecodable.append(UndecodableClaim(event_id, exc))
            continue
        out.updates.append(
            ClaimUpdate(
                channel_config=str(global_account),
                wallet=bytes(global_claim.claimer),
                claimed_total=global_claim.cumulative_total,
                root_seq=global_claim.root_seq,
                slot=slot,
                signature=signature,
            )
        )
    return out
