"""Trace differing wallets: where their replayed and stored amounts part, and their events.

Run only when leaves differ (it reads the partition a second time, up to the record that
closed the first differing root). For each traced wallet it records:

1. its amount in every root the fold emits on the way, next to its stored amount in the same
   root_seq (`RootStore.wallet_amounts`); the first root_seq where they differ is where the
   wallet diverges (a root where the wallet has no leaf counts as 0; a root whose proofs were
   pruned holds no leaves to compare and is skipped);
2. its policy events of the channel as the log holds them (stakes and claims by wallet, closes
   by the position's owner), each with its offset, id, slot and epoch, and whether the fold
   ignored it (late: at or below the partition's watermark; a repeated id; another program);
3. the events of the diverging epoch are listed (or, if the wallet has none there, its last
   ones: its amount then follows from positions opened before).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from aop.core.epoch import EpochClock
from aop.core.errors import EventDecodeError
from aop.core.fold import ReferenceFold
from aop.core.fold_config import FoldConfig
from aop.core.policy import CLOSE, OPEN, policy_event_from_payload
from aop.log.avro import codec_for
from aop.log.slot_batch import SlotBatchDecoder
from aop.replay.compare import TracedEvent, WalletTrace
from aop.replay.engine import ChannelTarget, FoldStep, fold_steps, narrow_config
from aop.runtime.settings import Settings

__all__ = ["trace_wallets"]

#: events listed per traced wallet.
MAX_EVENTS = 50


def trace_wallets(
    settings: Settings,
    config: FoldConfig,
    target: ChannelTarget,
    wallets: Sequence[bytes],
    *,
    stop: int,
    stored: Mapping[bytes, Mapping[int, int]],
    pruned: Collection[int] = (),
    decoder: SlotBatchDecoder | None = None,
) -> list[WalletTrace]:
    """Trace `wallets` of `target`'s channel over records [0, stop) (module docstring).

    Args:
        stored: wallet -> {root_seq: stored amount} (`RootStore.wallet_amounts`).
        pruned: root_seqs whose stored leaves were pruned (`RootStore.pruned_root_seqs`):
            not compared.
    """
    spec = target.spec
    partition = spec.partition
    watched = {bytes(w) for w in wallets}
    fold = ReferenceFold(narrow_config(config, [spec]))
    clock = config.clock
    program_id = str(config.program_id)
    events: dict[bytes, list[TracedEvent]] = {w: [] for w in watched}
    replayed: dict[bytes, dict[int, int]] = {w: {} for w in watched}
    epochs: dict[int, int] = {}
    owners: dict[bytes, bytes] = {}
    decoder = decoder or SlotBatchDecoder(codec_for(settings))
    for step in fold_steps(settings, fold, partition, stop, decoder=decoder):
        if step.batch is not None:
            _scan(step, spec.config, watched, owners, events, clock, program_id)
        for root in step.result.roots:
            if root.key.decode() != target.key:
                continue
            epochs[root.root_seq] = root.epoch
            index = {w: i for i, w in enumerate(root.tree.wallets) if w in watched}
            for wallet in watched:
                at = index.get(wallet)
                replayed[wallet][root.root_seq] = 0 if at is None else root.tree.amounts[at]
    skipped = frozenset(pruned)
    return [
        _trace(w, replayed[w], stored.get(w, {}), epochs, events[w], pruned=skipped)
        for w in wallets
    ]


def _scan(
    step: FoldStep,
    channel: bytes,
    watched: set[bytes],
    owners: dict[bytes, bytes],
    events: dict[bytes, list[TracedEvent]],
    clock: EpochClock,
    program_id: str,
) -> None:
    batch = step.batch or {"events": []}
    offset, watermark = step.offset, step.watermark
    seen: set[str] = set()
    for ev in batch["events"]:
        try:
            event = policy_event_from_payload(ev["data"])
        except EventDecodeError:
            continue
        if event is None or event.channel != channel:
            continue
        ignored = ""
        if ev["slot"] <= watermark:
            ignored = f"late: slot <= the partition's watermark {watermark}"
        elif ev["id"] in seen:
            ignored = "repeated event id in its batch"
        elif ev["program_id"] != program_id:
            ignored = f"other program {ev['program_id']}"
        seen.add(ev["id"])
        wallet = event.wallet
        if event.kind == OPEN and not ignored:
            owners[event.nft_mint] = event.wallet
        elif event.kind == CLOSE:
            wallet = owners.get(event.nft_mint, event.wallet)
        if wallet not in watched:
            continue
        events[wallet].append(
            TracedEvent(
                offset=offset,
                event_id=ev["id"],
                slot=ev["slot"],
                epoch=clock.epoch_of(ev["slot"]),
                name=event.name,
                amount=event.amount,
                boost_bps=event.boost_bps,
                ignored=ignored,
            )
        )


def _trace(
    wallet: bytes,
    replayed: Mapping[int, int],
    stored: Mapping[int, int],
    epochs: Mapping[int, int],
    events: list[TracedEvent],
    *,
    pruned: frozenset[int] = frozenset(),
) -> WalletTrace:
    diverges = next(
        (s for s in sorted(replayed) if s not in pruned and replayed[s] != stored.get(s, 0)),
        None,
    )
    if diverges is None:
        return WalletTrace(
            wallet,
            None,
            None,
            None,
            None,
            events[-10:],
            len(events),
            note="replayed and stored amounts agree in every root replayed",
        )
    epoch = epochs[diverges]
    in_epoch = [e for e in events if e.epoch == epoch]
    note = ""
    if not in_epoch:
        note = (
            f"no event of this wallet in epoch {epoch}: its amount there follows from positions "
            "opened before (its last events are listed)"
        )
    shown = (in_epoch or events[-10:])[:MAX_EVENTS]
    return WalletTrace(
        wallet,
        diverges,
        epoch,
        replayed[diverges],
        stored.get(diverges, 0),
        shown,
        len(events),
        note,
    )
