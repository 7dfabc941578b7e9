"""The combiner: every channel's roots -> one global root per mint and chain epoch (pure).

The deployed program takes one root per mint (global-v4 / global-v5, `core.claims.
global_roots`). The fold builds per-channel roots; `GlobalCombiner` adds them up, wallet by
wallet, into the global root of each chain epoch. The service (`streams.combiner`) feeds it the
records of aop.epoch.roots in log order per partition (partitions interleave freely) and
writes what it returns; the replay feeds it the reference fold's output. Only the inputs
decide the output: the same log gives byte-identical GlobalRoot records, whatever the
interleaving of partitions, crashes and restarts.

Inputs:

* `add_root(partition, offset, record, dataset, part=...)`: a complete channel root (its
  EpochRoot record and its dataset, the LeafChunks' entries joined) feeding the leaf `part`
  ("base_yield": stake-time; "attention_bonus": a second reward stream, added later without
  changing this code);
* `add_closed(partition, offset, record)`: an EpochClosed marker: every epoch <= its `epoch`
  is closed for every channel of the partition; its `closed_at_time` is the block time that
  closed it;
* `add_attention_closed(partition, offset, record)`: an AttentionClosed marker: every
  attention epoch starting <= its `epoch` is closed on the partition.

Steps:

1. A root is pending under its epoch (a chain epoch; an attention root under its attention
   epoch, apart). A root already applied or pending (same root account and root_seq: the fold
   may write a root twice after a crash) is skipped; a root of an epoch already combined is
   refused (`late_root`).
2. Chain epoch e is complete once every one of the P partitions has a marker >= e. Complete
   epochs are taken in increasing order. With attention on (`CombineConfig.attention_epoch_
   seconds`), e's end time T(e) is the smallest `closed_at_time` of the P markers that closed
   it (unknown if one is null), and e takes exactly the attention epochs that ended at or
   before T(e): every attention root with s + L <= T(e), i.e. s <= A(e) = floor(T(e)/L)·L - L.
   e waits until every partition has closed attention epoch A(e), so which attention roots a
   global root holds never depends on how the two topics interleave; an unknown T(e) takes
   none (they wait for a later e). An epoch that takes no new root gives no global root
   (nothing changed).
3. Combining e takes every pending chain root of an epoch <= e and the attention roots of step
   2, in (root account, root_seq) order.
   A cumulative root (cumulative-v2) adds, per wallet, its total minus the channel's previous
   root's total (0 before the first); an epoch root (ring-v0) adds its amounts.
4. Guards, before anything changes: each root's leaves sum to the total it declares, and the
   global totals sum to what the channels declare (their latest cumulative `total`s plus
   every epoch root's; each is the sum of the channel's emissions, the fold's own guard)
   (`sum_mismatch`); no wallet's addition is negative and none drops out of a cumulative
   channel (`total_decreased`); every base + bonus fits a u64 (`total_overflow`). A refused
   epoch is a `GlobalRefusal` (a dead letter), consumes no root_seq and changes no state;
   cumulative channels then carry its rewards into the next epoch's root.
5. The tree is built with the global format at the next root_seq (`first_root_seq` for the
   first), and returned as a `GlobalOutput`: the GlobalRoot record, its LeafChunks, the tree.

The GlobalRoot record is also the checkpoint (`CombinerState.from_global_root`): its
`sources` name each channel's latest root taken in (where it is on the log), its `resume`
offsets where reading continues; both are functions of the log, not of read timing.
"""

from __future__ import annotations

import bisect
import json
import struct
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from operator import itemgetter
from typing import Any, Literal

from solders.pubkey import Pubkey

from aop.core.claims import ClaimTree, TreeScope, get_claim_format, get_global_format
from aop.core.errors import CoreError
from aop.core.fold_output import leaf_chunks
from aop.core.pda import GlobalProtocolSeeds
from aop.core.validation import U64_MAX

__all__ = [
    "PARTS",
    "CombineConfig",
    "CombinerState",
    "GlobalCombiner",
    "GlobalOutput",
    "GlobalRefusal",
    "Part",
    "decode_parts",
]

Part = Literal["base_yield", "attention_bonus"]
#: the leaf parts, in their order in a global-v5 leaf.
PARTS: tuple[Part, ...] = ("base_yield", "attention_bonus")


@dataclass(frozen=True)
class CombineConfig:
    """The deployment facts the combiner needs.

    Args:
        program_id, mint: whose roots are combined (others are skipped, counted).
        format_name: "global-v4" or "global-v5".
        partitions: P, the partition count of aop.epoch.roots (every one must close an epoch).
        first_root_seq: the root_seq of the first global root (continues an on-chain sequence).
        global_protocol: which ProtocolState the published roots' instructions name.
    """

    program_id: Pubkey
    mint: Pubkey
    format_name: str
    partitions: int
    first_root_seq: int = 1
    global_protocol: GlobalProtocolSeeds = "singleton"
    #: L of the attention epochs whose roots feed attention_bonus; None: attention is off (no
    #: waiting for attention markers; attention roots are skipped).
    attention_epoch_seconds: int | None = None

    def __post_init__(self) -> None:
        get_global_format(self.format_name)  # raises UnknownClaimFormatError
        if self.partitions < 1:
            raise CoreError(f"partitions must be >= 1 (got {self.partitions})")
        if self.attention_epoch_seconds is not None and self.attention_epoch_seconds < 1:
            raise CoreError(
                f"attention_epoch_seconds must be >= 1 (got {self.attention_epoch_seconds})"
            )
        if not 1 <= self.first_root_seq <= U64_MAX:
            raise CoreError(f"first_root_seq must be in 1..{U64_MAX} (got {self.first_root_seq})")

    @property
    def attention_on(self) -> bool:
        """Whether attention roots feed attention_bonus (and global roots wait for them)."""
        return self.attention_epoch_seconds is not None

    def scope(self, root_seq: int, epoch: int) -> TreeScope:
        return TreeScope(
            self.program_id, self.mint, None, root_seq, epoch, global_protocol=self.global_protocol
        )

    @property
    def root_account(self) -> str:
        """The base58 GlobalRootConfig PDA (the global roots' key and LeafChunk account)."""
        fmt = get_global_format(self.format_name)
        return str(fmt.root_account(self.scope(1, 0)))


@dataclass(frozen=True)
class _Source:
    """A channel root taken in (a GlobalSource record, plus its dataset if cumulative)."""

    part: Part
    channel: str
    channel_config: str
    format: str
    epoch: int
    root_seq: int
    partition: int
    offset: int
    emission: int
    #: what the channel declares it has given so far: a cumulative root's `total`; for epoch
    #: roots, the sum of the `total`s of every root of the channel taken in.
    total: int
    #: a cumulative root (totals) or an epoch root (amounts).
    cumulative: bool = True
    #: wallet -> total, for cumulative roots (the next root of the channel subtracts it).
    totals: Mapping[bytes, int] = field(repr=False, default_factory=dict)
    #: wallet -> amount, for epoch roots (ring-v0).
    amounts: Mapping[bytes, int] = field(repr=False, default_factory=dict)

    @property
    def record(self) -> dict[str, Any]:
        return {
            "part": self.part,
            "channel": self.channel,
            "channel_config": self.channel_config,
            "format": self.format,
            "epoch": self.epoch,
            "root_seq": self.root_seq,
            "partition": self.partition,
            "offset": self.offset,
            "total": str(self.total),
        }


@dataclass(frozen=True)
class GlobalOutput:
    """One global root: the GlobalRoot record, its LeafChunk records (in order), the tree."""

    key: bytes
    record: dict[str, Any]
    chunks: tuple[dict[str, Any], ...]
    tree: ClaimTree = field(repr=False, compare=False)

    @property
    def epoch(self) -> int:
        return int(self.record["epoch"])

    @property
    def root_seq(self) -> int:
        return int(self.record["root_seq"])


@dataclass(frozen=True)
class GlobalRefusal:
    """An epoch whose global root a guard refused: a DeadLetter with stage "combiner"."""

    reason: str
    detail: str
    epoch: int

    @property
    def source(self) -> str:
        return f"global epoch {self.epoch}"

    def dead_letter(self, at_ms: int) -> dict[str, Any]:
        payload = json.dumps({"epoch": self.epoch, "reason": self.reason}, sort_keys=True)
        return {
            "stage": "combiner",
            "reason": self.reason,
            "detail": self.detail,
            "source": self.source,
            "payload": payload.encode(),
            "at_ms": at_ms,
        }


_RECORD40 = struct.Struct("<32sQ")
_RECORD48 = struct.Struct("<32sQQ")


def _amounts(format_name: str, dataset: bytes) -> dict[bytes, int]:
    """wallet -> amount of a channel root's dataset (the LeafChunk entries' layout); a wallet
    with several leaves (ring-v0-legacy: one per user) gets their sum."""
    layout = get_claim_format(format_name).layout
    if layout.bonus_offset is not None:
        raise CoreError(f"a channel root cannot be in format {format_name!r}")
    if layout.record_size == _RECORD40.size:
        return dict(_RECORD40.iter_unpack(dataset))
    before, after = layout.amount_offset - 32, layout.record_size - layout.amount_offset - 8
    record = struct.Struct(f"<32s{before}xQ{after}x")
    out: dict[bytes, int] = {}
    for wallet, amount in record.iter_unpack(dataset):
        out[wallet] = out.get(wallet, 0) + amount
    return out


def decode_parts(format_name: str, dataset: bytes) -> dict[bytes, list[int]]:
    """wallet -> [base_yield, attention_bonus] of a global root's dataset (global-v4: the
    total as base_yield)."""
    if format_name == "global-v5":
        return {w: [b, o] for w, b, o in _RECORD48.iter_unpack(dataset)}
    return {w: [t, 0] for w, t in _RECORD40.iter_unpack(dataset)}


@dataclass
class CombinerState:
    """What the combiner carries from one global root to the next (module docstring)."""

    next_root_seq: int
    #: the chain epoch of the last global root (-1: none yet).
    last_epoch: int = -1
    #: the sum of every wallet's parts (the last global root's total).
    total: int = 0
    #: wallet -> [base_yield, attention_bonus].
    parts: dict[bytes, list[int]] = field(default_factory=dict)
    #: root account -> the channel's latest root taken in.
    sources: dict[str, _Source] = field(default_factory=dict)
    #: partition -> (offset of the marker that closed `last_epoch`), from the checkpoint.
    resume: dict[int, tuple[int, int]] = field(default_factory=dict)

    @classmethod
    def from_global_root(
        cls,
        record: Mapping[str, Any],
        dataset: bytes,
        cumulative_datasets: Mapping[str, bytes],
    ) -> CombinerState:
        """The state a GlobalRoot record checkpoints.

        Args:
            record: the last GlobalRoot on aop.global.roots.
            dataset: its LeafChunks' entries joined.
            cumulative_datasets: root account -> dataset of each cumulative source named in
                `record["sources"]` (read back from aop.epoch.roots at its offset).
        Raises:
            CoreError: a cumulative source's dataset is missing.
        """
        sources: dict[str, _Source] = {}
        for s in record["sources"]:
            totals: dict[bytes, int] = {}
            cumulative = get_claim_format(s["format"]).amount_basis == "cumulative"
            if cumulative:
                data = cumulative_datasets.get(s["channel_config"])
                if data is None:
                    raise CoreError(
                        f"the dataset of {s['channel']!r} root_seq {s['root_seq']} (partition "
                        f"{s['partition']}, offset {s['offset']}) is needed to continue"
                    )
                totals = _amounts(s["format"], data)
            sources[s["channel_config"]] = _Source(
                part=s["part"],
                channel=s["channel"],
                channel_config=s["channel_config"],
                format=s["format"],
                epoch=int(s["epoch"]),
                root_seq=int(s["root_seq"]),
                partition=int(s["partition"]),
                offset=int(s["offset"]),
                emission=0,
                total=int(s["total"]),
                cumulative=cumulative,
                totals=totals,
            )
        return cls(
            next_root_seq=int(record["root_seq"]) + 1,
            last_epoch=int(record["epoch"]),
            total=int(record["total"]),
            parts=decode_parts(str(record["format"]), dataset),
            sources=sources,
            resume={
                int(r["partition"]): (int(r["first_offset"]), int(r["last_offset"]))
                for r in record["resume"]
            },
        )


_MARKER_EPOCH = itemgetter(1)


@dataclass
class _Partition:
    """Per partition: the markers and root headers seen since the last global root."""

    #: the highest closed epoch seen (-1: none).
    closed: int = -1
    #: (offset, epoch, closed_at_slot, closed_at_time) of each marker, in offset order.
    markers: list[tuple[int, int, int, int | None]] = field(default_factory=list)
    #: (offset, epoch) of each root header taken as pending, in offset order.
    headers: list[tuple[int, int]] = field(default_factory=list)
    #: the highest closed attention epoch seen (None: none).
    attention_closed: int | None = None
    #: (offset, attention epoch) of each AttentionClosed marker, in offset order.
    attention_markers: list[tuple[int, int]] = field(default_factory=list)
    #: (offset, attention epoch) of each attention root header taken as pending.
    attention_headers: list[tuple[int, int]] = field(default_factory=list)


class GlobalCombiner:
    """Channel roots and markers in, global roots and refusals out (module docstring)."""

    def __init__(self, config: CombineConfig, state: CombinerState | None = None) -> None:
        self.config = config
        self.state = state or CombinerState(next_root_seq=config.first_root_seq)
        self._format = get_global_format(config.format_name)
        self._key = config.root_account
        self._program_id = str(config.program_id)
        self._mint = str(config.mint)
        self._partitions = {p: _Partition() for p in range(config.partitions)}
        if self.state.last_epoch >= 0:
            for p in self._partitions.values():
                p.closed = self.state.last_epoch
        #: epoch -> root account -> root_seq -> the pending root.
        self._pending: dict[int, dict[str, dict[int, _Source]]] = defaultdict(dict)
        #: attention epoch -> root account -> root_seq -> the pending attention root.
        self._attention: dict[int, dict[str, dict[int, _Source]]] = defaultdict(dict)
        #: the highest attention epoch taken in (None: none since this instance started).
        self._attention_through: int | None = None
        #: partitions whose attention markers hold the next complete epoch back.
        self._attention_waiting: list[int] = []
        #: what the inputs skipped, by reason (for metrics).
        self.skipped: dict[str, int] = defaultdict(int)
        #: the highest epoch combined or refused; roots of the refused epochs.
        self._done_through = self.state.last_epoch
        self._refused: set[tuple[str, int]] = set()

    # -- inputs ---------------------------------------------------------------------------

    def add_root(
        self,
        partition: int,
        offset: int,
        record: Mapping[str, Any],
        dataset: bytes,
        *,
        part: Part = "base_yield",
    ) -> list[GlobalOutput | GlobalRefusal]:
        """Take one complete channel root (step 1); returns nothing (roots wait for markers)
        or, for a late root, its refusal."""
        if record["program_id"] != self._program_id or record["mint"] != self._mint:
            self.skipped["other_mint"] += 1
            return []
        account, root_seq, epoch = (
            str(record["channel_config"]),
            int(record["root_seq"]),
            int(record["epoch"]),
        )
        attention = part == "attention_bonus"
        if attention and self.config.attention_epoch_seconds is None:
            self.skipped["attention_off"] += 1
            return []
        pending = self._attention if attention else self._pending
        applied = self.state.sources.get(account)
        if (
            (applied is not None and root_seq <= applied.root_seq)
            or (account, root_seq) in self._refused
            or any(root_seq in by_account.get(account, {}) for by_account in pending.values())
        ):
            self.skipped["duplicate_root"] += 1
            return []
        if attention and self._attention_through is not None and epoch <= self._attention_through:
            detail = (
                f"{record['channel']!r} attention root_seq {root_seq} is for attention epoch "
                f"{epoch}, but attention epochs up to {self._attention_through} are combined "
                "already"
            )
            return [GlobalRefusal("late_root", f"global root: {detail}", self._done_through)]
        if not attention and epoch <= self._done_through:
            detail = (
                f"{record['channel']!r} root_seq {root_seq} is for epoch {epoch}, but epochs up "
                f"to {self._done_through} are combined already"
            )
            return [GlobalRefusal("late_root", f"global root of epoch {epoch}: {detail}", epoch)]
        fmt = get_claim_format(str(record["format"]))
        entries = _amounts(fmt.name, dataset)
        cumulative = fmt.amount_basis == "cumulative"
        source = _Source(
            part=part,
            channel=str(record["channel"]),
            channel_config=account,
            format=fmt.name,
            epoch=epoch,
            root_seq=root_seq,
            partition=partition,
            offset=offset,
            emission=int(record["emission"]),
            total=int(record["total"]),
            cumulative=cumulative,
            totals=entries if cumulative else {},
            amounts={} if cumulative else entries,
        )
        pending[epoch].setdefault(account, {})[root_seq] = source
        if attention:
            self._partition(partition).attention_headers.append((offset, epoch))
        else:
            self._partition(partition).headers.append((offset, epoch))
        return []

    def add_closed(
        self, partition: int, offset: int, record: Mapping[str, Any]
    ) -> list[GlobalOutput | GlobalRefusal]:
        """Take one EpochClosed marker (step 2); returns the global roots it completes."""
        state = self._partition(partition)
        epoch = int(record["epoch"])
        closed_at = record.get("closed_at_time")
        state.markers.append(
            (
                offset,
                epoch,
                int(record["closed_at_slot"]),
                None if closed_at is None else int(closed_at),
            )
        )
        if epoch <= state.closed:
            return []
        state.closed = epoch
        return self._combine_complete()

    def add_attention_closed(
        self, partition: int, offset: int, record: Mapping[str, Any]
    ) -> list[GlobalOutput | GlobalRefusal]:
        """Take one AttentionClosed marker (step 2); returns the global roots it completes."""
        state = self._partition(partition)
        epoch = int(record["epoch"])
        state.attention_markers.append((offset, epoch))
        if state.attention_closed is not None and epoch <= state.attention_closed:
            return []
        state.attention_closed = epoch
        if self.config.attention_epoch_seconds is None:
            return []
        return self._combine_complete()

    def _partition(self, partition: int) -> _Partition:
        if partition not in self._partitions:
            raise CoreError(
                f"partition {partition} is not one of the {self.config.partitions} partitions"
            )
        return self._partitions[partition]

    @property
    def complete_through(self) -> int:
        """The highest epoch every partition has closed (-1: not all have reported)."""
        return min(p.closed for p in self._partitions.values())

    @property
    def waiting_partitions(self) -> list[int]:
        """The partitions holding back the next pending epoch (for metrics and alerts): their
        chain markers, or their attention markers."""
        if self._attention_waiting:
            return list(self._attention_waiting)
        if not self._pending:
            return []
        nxt = min(self._pending)
        return sorted(n for n, p in self._partitions.items() if p.closed < nxt)

    @property
    def attention_waiting_partitions(self) -> list[int]:
        """The partitions whose attention markers hold the next complete epoch back."""
        return list(self._attention_waiting)

    @property
    def pending_epochs(self) -> list[int]:
        return sorted(self._pending)

    @property
    def pending_attention_epochs(self) -> list[int]:
        return sorted(self._attention)

    # -- combining ------------------------------------------------------------------------

    def end_time(self, epoch: int) -> int | None:
        """T(e): the smallest `closed_at_time` of the markers that closed `epoch` on each
        partition (step 2); None while a partition has not closed it or one is unknown."""
        times: list[int] = []
        for p in self._partitions.values():
            # a partition's markers come in offset order, their epochs never decrease
            at = bisect.bisect_left(p.markers, epoch, key=_MARKER_EPOCH)
            time = p.markers[at][3] if at < len(p.markers) else None
            if time is None:
                return None
            times.append(time)
        return min(times)

    def attention_through(self, epoch: int) -> int | None:
        """A(e): the start of the last attention epoch that ended at or before T(e) (None: the
        chain epoch takes no attention epoch)."""
        length = self.config.attention_epoch_seconds
        end = self.end_time(epoch)
        if length is None or end is None:
            return None
        return end // length * length - length

    def _combine_complete(self) -> list[GlobalOutput | GlobalRefusal]:
        """Step 2: every complete chain epoch, in order, each with its attention epochs."""
        out: list[GlobalOutput | GlobalRefusal] = []
        through = self.complete_through
        self._attention_waiting = []
        epoch = self._done_through + 1
        attention_on = self.config.attention_epoch_seconds is not None
        while epoch <= through:
            if not self._pending and not attention_on:
                self._done_through = through  # nothing pending: pass the idle epochs at once
                break
            limit = self.attention_through(epoch)
            if limit is not None:
                behind = [
                    n
                    for n, p in sorted(self._partitions.items())
                    if p.attention_closed is None or p.attention_closed < limit
                ]
                if behind:
                    self._attention_waiting = behind
                    break
            roots = self._pending.pop(epoch, {})
            taken: dict[str, dict[int, _Source]] = {a: dict(r) for a, r in roots.items()}
            if limit is not None:
                for start in sorted(s for s in self._attention if s <= limit):
                    for account, by_seq in self._attention.pop(start).items():
                        taken.setdefault(account, {}).update(by_seq)
                self._attention_through = max(limit, self._attention_through or limit)
            if taken:
                ordered = [taken[a][s] for a in sorted(taken) for s in sorted(taken[a])]
                result = self._combine(epoch, ordered, limit)
                if isinstance(result, GlobalRefusal):
                    self._refused.update((r.channel_config, r.root_seq) for r in ordered)
                out.append(result)
            self._done_through = epoch
            epoch += 1
        for p in self._partitions.values():
            self._prune(p)
        return out

    def _prune(self, p: _Partition) -> None:
        """Forget the markers no later epoch reads: chain markers of epochs passed already,
        and attention markers before the last one ahead of the remaining chain markers."""
        p.markers = [m for m in p.markers if m[1] > self._done_through]
        first = p.markers[0][0] if p.markers else None
        before = [m for m in p.attention_markers if first is None or m[0] < first]
        if len(before) > 1:
            p.attention_markers = p.attention_markers[len(before) - 1 :]

    def _combine(
        self, epoch: int, roots: Sequence[_Source], attention_limit: int | None
    ) -> GlobalOutput | GlobalRefusal:
        """Steps 3-5 for one complete epoch."""
        state = self.state
        additions: dict[bytes, list[int]] = defaultdict(lambda: [0, 0])
        taken = dict(state.sources)
        emission = 0
        for root in roots:
            index = PARTS.index(root.part)
            emission += root.emission
            given = root.totals if root.cumulative else root.amounts
            if sum(given.values()) != root.total:
                return self._refuse(
                    "sum_mismatch",
                    f"{root.channel!r} root_seq {root.root_seq}: its leaves sum to "
                    f"{sum(given.values())} but the root says {root.total}",
                    epoch,
                )
            before = taken.get(root.channel_config)
            if root.cumulative:
                old = before.totals if before is not None else {}
                gone = [w for w in old if w not in root.totals]
                if gone:
                    return self._refuse(
                        "total_decreased",
                        f"{root.channel!r} root_seq {root.root_seq} has no leaf for "
                        f"{len(gone)} wallet(s) of its previous root, e.g. {gone[0].hex()}",
                        epoch,
                    )
                get = old.get
                for wallet, total in root.totals.items():
                    delta = total - get(wallet, 0)
                    if delta < 0:
                        return self._refuse(
                            "total_decreased",
                            f"{root.channel!r} root_seq {root.root_seq}: wallet {wallet.hex()} "
                            f"goes from {get(wallet, 0)} to {total}",
                            epoch,
                        )
                    if delta:
                        additions[wallet][index] += delta
                taken[root.channel_config] = root
            else:
                for wallet, amount in root.amounts.items():
                    additions[wallet][index] += amount
                carried = before.total if before is not None else 0
                taken[root.channel_config] = replace(root, total=carried + root.total, amounts={})
        added = sum(a + b for a, b in additions.values())
        declared = sum(s.total for s in taken.values())
        if state.total + added != declared:
            return self._refuse(
                "sum_mismatch",
                f"the global totals would sum to {state.total + added} but the channels' roots "
                f"declare {declared}",
                epoch,
            )
        parts = state.parts
        for wallet, (base, bonus) in additions.items():
            have = parts.get(wallet) or (0, 0)
            new_base, new_bonus = have[0] + base, have[1] + bonus
            if new_base + new_bonus > U64_MAX:
                return self._refuse(
                    "total_overflow",
                    f"wallet {wallet.hex()}: base_yield {new_base} + attention_bonus {new_bonus} "
                    "does not fit a u64 (the program's checked add would refuse the claim)",
                    epoch,
                )
        for wallet, (base, bonus) in additions.items():
            entry = parts.get(wallet)
            if entry is None:
                parts[wallet] = [base, bonus]
            else:
                entry[0] += base
                entry[1] += bonus
        state.sources = taken
        state.total += added
        return self._emit(epoch, emission, attention_limit)

    def _refuse(self, reason: str, detail: str, epoch: int) -> GlobalRefusal:
        return GlobalRefusal(reason, f"global root of epoch {epoch}: {detail}", epoch)

    def _emit(self, epoch: int, emission: int, attention_limit: int | None) -> GlobalOutput:
        state = self.state
        root_seq = state.next_root_seq
        scope = self.config.scope(root_seq, epoch)
        tree = self._format.build_from_parts(scope, state.parts)
        base_total = sum(tree.base_amounts)
        bonus_total = sum(tree.bonus_amounts)
        resume, closed_at = self._resume(epoch, attention_limit)
        chunks = leaf_chunks(tree, self._key, root_seq)
        record = {
            "channel_config": self._key,
            "program_id": self._program_id,
            "mint": self._mint,
            "format": self._format.name,
            "epoch": epoch,
            "root_seq": root_seq,
            "root": tree.root,
            "dataset_hash": tree.dataset_hash,
            "leaf_count": tree.leaf_count,
            "total": str(base_total + bonus_total),
            "base_total": str(base_total),
            "bonus_total": str(bonus_total),
            "emission": str(emission),
            "chunk_count": len(chunks),
            "closed_at_slot": closed_at,
            "sources": [state.sources[a].record for a in sorted(state.sources)],
            "resume": resume,
        }
        state.next_root_seq = root_seq + 1
        state.last_epoch = epoch
        return GlobalOutput(self._key.encode(), record, chunks, tree)

    def _resume(self, epoch: int, attention_limit: int | None) -> tuple[list[dict[str, int]], int]:
        """Per partition, where reading continues after the global root of `epoch`, from the
        log's content alone: the first root header of a later epoch (or of an attention epoch
        after `attention_limit`) before the marker that closed `epoch`, or the last
        AttentionClosed before that marker (so a restart knows how far attention is closed),
        else the record after that marker. Also the markers' highest slot."""
        resume = []
        closed_at = 0
        for number in sorted(self._partitions):
            p = self._partitions[number]
            marker = next((m for m in p.markers if m[1] >= epoch), None)
            if marker is None:
                raise CoreError(f"partition {number} closed epoch {epoch} without a marker")
            marker_offset, _, slot, _ = marker
            first = marker_offset + 1
            later = [o for o, e in p.headers if e > epoch and o < marker_offset]
            taken = -1 if attention_limit is None else attention_limit
            later += [o for o, s in p.attention_headers if s > taken and o < marker_offset]
            attention = [o for o, _ in p.attention_markers if o < marker_offset]
            if attention:
                later.append(attention[-1])
                p.attention_markers = [m for m in p.attention_markers if m[0] >= attention[-1]]
            p.attention_headers = [h for h in p.attention_headers if h[1] > taken]
            if later:
                first = min(later)
            closed_at = max(closed_at, slot)
            resume.append(
                {"partition": number, "first_offset": first, "last_offset": marker_offset}
            )
            p.markers = [m for m in p.markers if m[0] >= marker_offset]
            p.headers = [h for h in p.headers if h[1] > epoch]
        self.state.resume = {r["partition"]: (r["first_offset"], r["last_offset"]) for r in resume}
        return resume, closed_at
