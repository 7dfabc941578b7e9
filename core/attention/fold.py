"""The attention fold: SignalBatches of one partition -> per-(channel, attention epoch) roots.

`AttentionFold.apply(store, offset, batch)` folds one SignalBatch record of
`aop.attention.signals` into an `AttentionStore` and returns a `BatchResult` (roots with
`record_type` "AttentionRoot", rejections, `attention_closed`). The Faust app and the
reference fold run exactly this code, beside the stake-time fold (`core.fold`) and with a
store of its own, so the two topics' interleaving changes neither.

Steps of `apply` for the record at `offset` of partition p (L = the epoch length):

1. A record at or below the folded offset is a replay: nothing changes.
2. Bindings: a binding observed in an epoch already closed on p is late (dead letter
   `late_signal`); the others join the user's history (`core.attention.bindings`).
3. Signals, in record order: each goes to its epoch, the explicit `epoch` (a legacy request's;
   it must be a window start) or the window holding `observed_at_ms`. Refused with a dead
   letter: an unknown channel (`unknown_channel`), a channel of another partition
   (`wrong_partition`), a value <= 0, an empty user or a misaligned epoch (`bad_signal`), an
   epoch already closed (`late_signal`). A (source, id) already counted in that epoch is a
   duplicate: skipped, counted. Otherwise the user's weight in (channel, epoch) grows by
   `table[kind] × value` and its first_seen is the earliest `observed_at_ms`.
4. The watermark becomes max(watermark, `watermark_ms`); every epoch s with s + L <= the
   watermark's second closes, in increasing s, each channel of p in config order: its users
   are paid to their wallets (`wallet_for_epoch`; unbound ones are counted, not paid) by the
   channel's policy, and a channel whose epoch pays anything gets a root with the next
   root_seq: cumulative-v2 totals (previous totals + the epoch's) or the legacy ring-v0
   epoch (`core.attention.legacy`). A refused tree (over 1024 claims, a claim id too long, a
   total overflow...) is a dead letter `refused_<reason>`, uses no root_seq, pays nothing.
5. When the first open epoch advanced, `attention_closed` says every epoch up to the one
   before it is closed (written after the record's roots, like `EpochClosed`).

Each root's `input` names the signals offsets that fed it: [the first record that counted a
signal of its epoch, the record that closed it].
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from aop.core.attention.bindings import BindingEntry, add_binding, prune, wallet_for_epoch
from aop.core.attention.config import AttentionChannel, AttentionConfig
from aop.core.attention.legacy import legacy_inputs, user_hash
from aop.core.attention.signals import epoch_of, user_key
from aop.core.attention.state import NO_EPOCH, AttentionMeta, AttentionStore
from aop.core.claims import ClaimTree, TreeScope, get_claim_format
from aop.core.errors import (
    ClaimIdTooLongError,
    CoreError,
    DuplicateClaimIdError,
    DuplicateWalletError,
    TooManyClaimsError,
)
from aop.core.fold_output import AttentionClosed, BatchResult, RootOutput, leaf_chunks
from aop.core.policy import PolicyRefusedError, check_cumulative_totals, check_epoch_amounts

__all__ = ["AttentionFold"]

#: a user of a closing epoch: (user, weight in hundredths, first_seen ms, wallet or None).
_User = tuple[str, int, int, bytes | None]


class AttentionFold:
    """Folds the SignalBatch records of one partition into an `AttentionStore`."""

    def __init__(self, config: AttentionConfig, partition: int) -> None:
        self.config = config
        self.partition = partition
        self._length = config.epoch_seconds
        self._own = config.channels_of(partition)
        self._program_id = str(config.program_id)
        self._mint = str(config.mint)

    # -- one record -----------------------------------------------------------------------

    def apply(self, store: AttentionStore, offset: int, batch: Mapping[str, Any]) -> BatchResult:
        """Fold the SignalBatch at `offset` into `store` (module docstring)."""
        result = BatchResult(self.partition, offset)
        meta = store.meta() or AttentionMeta()
        if offset <= meta.offset:
            result.skipped = True
            self.touch(store, batch)
            return result
        if batch["partition"] != self.partition:
            detail = (
                f"SignalBatch names partition {batch['partition']}; it was read from partition "
                f"{self.partition}"
            )
            self._reject(result, "partition_mismatch", detail, offset, None, b"")
            store.put_meta(meta._replace(offset=offset))
            return result
        closed_before = meta.open_epoch
        epochs = dict(meta.epochs)
        for binding in batch["bindings"]:
            self._bind(store, binding, closed_before, offset, result)
        source = str(batch["source"])
        for signal in batch["signals"]:
            self._count(store, source, signal, closed_before, epochs, offset, result)
        watermark = max(meta.watermark_ms, int(batch["watermark_ms"]))
        open_epoch = epoch_of(watermark, self._length) if watermark >= 0 else NO_EPOCH
        if open_epoch > closed_before:
            for epoch in sorted(e for e in epochs if e < open_epoch):
                self._close_epoch(store, epoch, epochs.pop(epoch), offset, watermark, result)
            result.attention_closed = AttentionClosed(
                self.partition, open_epoch - self._length, self._length, watermark, offset
            )
        else:
            open_epoch = closed_before
        store.put_meta(AttentionMeta(offset, watermark, open_epoch, tuple(sorted(epochs.items()))))
        return result

    def reject_record(
        self, store: AttentionStore, offset: int, reason: str, detail: str, payload: bytes
    ) -> BatchResult:
        """Reject the whole record at `offset` (e.g. not a SignalBatch): it folds nothing."""
        result = BatchResult(self.partition, offset)
        meta = store.meta() or AttentionMeta()
        if offset <= meta.offset:
            result.skipped = True
            return result
        self._reject(result, reason, detail, offset, None, payload)
        store.put_meta(meta._replace(offset=offset))
        return result

    def touch(self, store: AttentionStore, batch: Mapping[str, Any]) -> None:
        """Read what folding `batch` would read first (a store writes back what it read, which
        repairs a changelog lagging its local state: write-if-touched)."""
        store.meta()
        for binding in batch["bindings"]:
            store.bindings(user_key(str(binding["user"])))
        for signal in batch["signals"]:
            channel = self.config.by_name.get(str(signal["channel"]).lower())
            epoch = self._epoch_of(signal)
            if channel is None or channel.partition != self.partition or epoch is None:
                continue
            store.seen(epoch, f"{batch['source']}\x00{signal['id']}")
            store.participant(channel.config, epoch, user_key(signal["user"]))

    # -- inputs ---------------------------------------------------------------------------

    def _epoch_of(self, signal: Mapping[str, Any]) -> int | None:
        """The signal's epoch, or None if its explicit epoch is not a window start."""
        explicit = signal.get("epoch")
        if explicit is None:
            return epoch_of(int(signal["observed_at_ms"]), self._length)
        epoch = int(explicit)
        return epoch if epoch >= 0 and epoch_of(epoch * 1000, self._length) == epoch else None

    def _bind(
        self,
        store: AttentionStore,
        binding: Mapping[str, Any],
        closed_before: int,
        offset: int,
        result: BatchResult,
    ) -> None:
        user = user_key(str(binding["user"]))
        observed = int(binding["observed_at_ms"])
        what = f"binding {binding['id']!r} of user {user!r}"
        if not user or observed < 0:
            detail = f"{what}: the user must be named and observed_at_ms >= 0 (got {observed})"
            self._reject(
                result, "bad_signal", detail, offset, str(binding["id"]), _payload(binding)
            )
            return
        epoch = epoch_of(observed, self._length)
        if epoch < closed_before:
            detail = (
                f"{what} observed at {observed} ms is in attention epoch {epoch}, closed on this "
                f"partition (epochs before {closed_before} are)"
            )
            self._reject(
                result, "late_signal", detail, offset, str(binding["id"]), _payload(binding)
            )
            return
        entry = (observed, str(binding["id"]), bytes(binding["wallet"]))
        store.put_bindings(user, add_binding(store.bindings(user), entry))
        result.counts["binding"] += 1

    def _count(
        self,
        store: AttentionStore,
        source: str,
        signal: Mapping[str, Any],
        closed_before: int,
        epochs: dict[int, int],
        offset: int,
        result: BatchResult,
    ) -> None:
        signal_id = str(signal["id"])
        name = str(signal["channel"])
        channel = self.config.by_name.get(name.lower())
        if channel is None:
            detail = (
                f"signal {signal_id!r} names channel {name!r}, which this deployment does not serve"
            )
            self._reject(result, "unknown_channel", detail, offset, signal_id, _payload(signal))
            return
        if channel.partition != self.partition:
            detail = (
                f"signal {signal_id!r} of channel {channel.name!r} belongs to partition "
                f"{channel.partition}, not {self.partition}"
            )
            self._reject(result, "wrong_partition", detail, offset, signal_id, _payload(signal))
            return
        user, value, kind = (
            user_key(str(signal["user"])),
            int(signal["value"]),
            signal["kind"],
        )
        epoch = self._epoch_of(signal)
        problem = None
        if kind not in channel.policy.weights:
            problem = f"kind must be a signal kind (got {kind!r})"
        elif value <= 0:
            problem = f"value must be > 0 (got {value})"
        elif not user:
            problem = "the user must be named"
        elif epoch is None:
            problem = (
                f"epoch must be the start of a {self._length} s window (got {signal.get('epoch')})"
            )
        if problem is not None or epoch is None:
            detail = f"signal {signal_id!r}: {problem}"
            self._reject(result, "bad_signal", detail, offset, signal_id, _payload(signal))
            return
        if epoch < closed_before:
            detail = (
                f"signal {signal_id!r} of channel {channel.name!r} is in attention epoch {epoch}, "
                f"closed on this partition (epochs before {closed_before} are)"
            )
            self._reject(result, "late_signal", detail, offset, signal_id, _payload(signal))
            return
        key = f"{source}\x00{signal_id}"
        if store.seen(epoch, key):
            result.counts["skipped_duplicate_signal"] += 1
            return
        store.add_seen(epoch, key)
        entry = store.participant_for_update(channel.config, epoch, user)
        entry[0] += channel.policy.weight(kind, value)
        observed = int(signal["observed_at_ms"])
        if entry[1] < 0 or observed < entry[1]:
            entry[1] = observed
        epochs.setdefault(epoch, offset)
        result.counts[f"signal_{kind}"] += 1

    # -- closing --------------------------------------------------------------------------

    def _close_epoch(
        self,
        store: AttentionStore,
        epoch: int,
        first_offset: int,
        offset: int,
        watermark: int,
        result: BatchResult,
    ) -> None:
        """Step 4 for one epoch: every channel of the partition, then forget the epoch."""
        histories: dict[str, tuple[BindingEntry, ...]] = {}
        for channel in self._own:
            users: list[_User] = []
            for user, (weight, first_seen) in sorted(store.participants(channel.config, epoch)):
                if user not in histories:
                    histories[user] = store.bindings(user)
                users.append((user, weight, first_seen, wallet_for_epoch(histories[user], epoch)))
            if users:
                self._close_channel(
                    store, channel, epoch, users, first_offset, offset, watermark, result
                )
        for user, history in histories.items():
            pruned = prune(history, epoch)
            if pruned != history:
                store.put_bindings(user, pruned)
        store.drop_epoch(epoch, [c.config for c in self._own])
        result.closed_epochs.append(epoch)

    def _close_channel(
        self,
        store: AttentionStore,
        channel: AttentionChannel,
        epoch: int,
        users: Sequence[_User],
        first_offset: int,
        offset: int,
        watermark: int,
        result: BatchResult,
    ) -> None:
        unbound = sum(1 for _, weight, _, wallet in users if weight and wallet is None)
        result.counts["unbound_users"] += unbound
        paid = [u for u in users if u[1] and u[3] is not None]
        previous = store.root_seq(channel.config)
        root_seq = (channel.first_root_seq - 1 if previous is None else previous) + 1
        try:
            built = self._tree(store, channel, epoch, root_seq, paid)
        except PolicyRefusedError as exc:
            what = {"channel": channel.name, "epoch": epoch, "root_seq": root_seq}
            detail = (
                f"channel {channel.name!r} attention epoch {epoch}: {exc.detail}; no root emitted"
            )
            payload = json.dumps(what, sort_keys=True).encode()
            self._reject(result, f"refused_{exc.reason}", detail, offset, None, payload)
            return
        if built is None:
            return
        tree, emission, totals, seconds = built
        if totals:
            store.put_totals(channel.config, totals)
        store.put_root_seq(channel.config, root_seq)
        chunks = leaf_chunks(tree, channel.key, root_seq)
        record = {
            "channel": channel.name,
            "channel_config": channel.key,
            "program_id": self._program_id,
            "mint": self._mint,
            "format": tree.format_name,
            "epoch": epoch,
            "epoch_seconds": self._length,
            "root_seq": root_seq,
            "root": tree.root,
            "dataset_hash": tree.dataset_hash,
            "leaf_count": tree.leaf_count,
            "total": str(tree.total),
            "emission": str(emission),
            "chunk_count": len(chunks),
            "closed_at_ms": watermark,
            "unbound_users": unbound,
            "input": [
                {"partition": self.partition, "first_offset": first_offset, "last_offset": offset}
            ],
        }
        result.roots.append(
            RootOutput(
                self.partition, channel.key.encode(), record, chunks, tree, seconds, "AttentionRoot"
            )
        )

    def _tree(
        self,
        store: AttentionStore,
        channel: AttentionChannel,
        epoch: int,
        root_seq: int,
        paid: Sequence[_User],
    ) -> tuple[ClaimTree, int, dict[bytes, int], float] | None:
        """The epoch's tree, emission and changed totals; None when it pays nothing.

        Raises:
            PolicyRefusedError: the allocation or the tree breaks an invariant.
        """
        policy, fmt = channel.policy, get_claim_format(channel.claim_format)
        scope = TreeScope(self.config.program_id, self.config.mint, channel.name, root_seq, epoch)
        started = time.perf_counter()
        changed: dict[bytes, int] = {}
        try:
            if fmt.per_leaf_claim_id:
                hashes = {user: user_hash(user) for user, _, _, _ in paid}
                amounts, emission = policy.allocate({hashes[u]: w for u, w, _, _ in paid})
                if not amounts:
                    return None
                check_epoch_amounts(emission, amounts)
                claims = [
                    (user, first_seen, wallet, amounts.get(hashes[user], 0))
                    for user, _, first_seen, wallet in paid
                    if wallet is not None
                ]
                inputs = legacy_inputs(self.config.claim_id_template, channel.name, epoch, claims)
                tree = fmt.build(scope, inputs)
                expected = sum(amounts.values())
            else:
                by_wallet: dict[bytes, int] = {}
                for _, weight, _, wallet in paid:
                    if wallet is not None:
                        by_wallet[wallet] = by_wallet.get(wallet, 0) + weight
                amounts, emission = policy.allocate(by_wallet)
                if not amounts:
                    return None
                check_epoch_amounts(emission, amounts)
                previous = dict(store.totals(channel.config))
                changed = {w: previous.get(w, 0) + a for w, a in amounts.items()}
                totals = {**previous, **changed}
                check_cumulative_totals(previous, totals)
                tree = fmt.build_from_amounts(scope, totals)
                expected = sum(totals.values())
        except (DuplicateWalletError, DuplicateClaimIdError) as exc:
            raise PolicyRefusedError("duplicate_claim", str(exc)) from exc
        except TooManyClaimsError as exc:
            raise PolicyRefusedError("too_many_claims", str(exc)) from exc
        except ClaimIdTooLongError as exc:
            raise PolicyRefusedError("claim_id_too_long", str(exc)) from exc
        except PolicyRefusedError:
            raise
        except CoreError as exc:
            raise PolicyRefusedError("tree_build_failed", str(exc)) from exc
        if tree.total != expected:
            raise PolicyRefusedError(
                "tree_mismatch", f"the tree holds {tree.total}, expected {expected}"
            )
        return tree, emission, changed, time.perf_counter() - started

    # -- helpers --------------------------------------------------------------------------

    def _reject(
        self,
        result: BatchResult,
        reason: str,
        detail: str,
        offset: int,
        item_id: str | None,
        payload: bytes,
    ) -> None:
        """A dead letter of the record at `offset` (always `result`'s)."""
        result.reject(self.config.source_topic, reason, detail, item_id, payload)


def _payload(item: Mapping[str, Any]) -> bytes:
    """A Signal or Binding as a dead letter's payload: JSON, bytes in hex, keys sorted."""
    shown = {k: v.hex() if isinstance(v, bytes) else v for k, v in item.items()}
    return json.dumps(shown, sort_keys=True).encode()
