"""Replayed root vs stored root: every field, every leaf, every tree level (pure).

`compare_root(replayed, stored)` answers a `RootReport`. Leaves are compared byte for byte in
tree order: the wallet bytes and amount at each leaf index. When they differ, each wallet is
classified once (wallet bytes ascending):

* `amount`: in both, different amounts (replayed vs stored, and the delta);
* `missing_in_store`: the replay has a leaf for it, the store has none;
* `extra_in_store`: the store has a leaf the replay does not produce;
* `order`: same amount at another leaf index.

All are counted; the first `max_wallets` are listed.

A stored root whose proofs were pruned (`projections.retention`: older than the newest
AOP_PROOF_ROOTS_KEPT roots of its account) has only its row: its fields are compared as
always, its leaves and levels are reported as pruned (`RootReport.proofs_pruned`, no leaf or
level report), neither matched nor mismatched. Its verdict follows from the fields alone.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from aop.core.claims import ClaimTree
from aop.core.fold_output import RootOutput
from aop.replay.stored_roots import StoredDigest, StoredRoot

__all__ = [
    "FAILING",
    "ChainReport",
    "FieldDiff",
    "LeafReport",
    "LevelReport",
    "RootReport",
    "Status",
    "TracedEvent",
    "WalletDiff",
    "WalletTrace",
    "compare_leaves",
    "compare_levels",
    "compare_root",
    "digest_match_report",
    "leaves_digest",
    "matches_digest",
    "replayed_summary",
]


class Status(StrEnum):
    """The outcome for one (channel, root_seq)."""

    MATCH = "match"
    MISMATCH = "mismatch"
    #: the replay produces it, Postgres lacks it although it holds newer roots (a hole).
    MISSING_IN_STORE = "missing_in_store"
    #: the replay produces it, newer than every stored root: the projector has not written it
    #: yet. Reported, not a mismatch.
    UNPROJECTED = "unprojected"
    #: Postgres holds it, the log (read to its end) does not produce it.
    NOT_REPLAYED = "not_replayed"
    #: the replay produces it, a rebuilt schema lacks it, and it is older than every root the
    #: schema holds of its account while the roots topic was purged (`projections.purge`):
    #: its records are gone from the roots topic, as expected. Reported, not a mismatch.
    PURGED = "purged"


#: statuses that make `aop replay` / `aop parity` exit 1.
FAILING = frozenset({Status.MISMATCH, Status.MISSING_IN_STORE, Status.NOT_REPLAYED})


@dataclass(frozen=True)
class FieldDiff:
    """A root field that differs (bytes shown as hex)."""

    field: str
    replayed: Any
    stored: Any


@dataclass(frozen=True)
class WalletDiff:
    """One wallet whose leaf differs (see the module docstring for `kind`)."""

    wallet: bytes
    kind: str
    replayed: int | None
    stored: int | None
    replayed_index: int | None
    stored_index: int | None

    @property
    def delta(self) -> int:
        """replayed - stored (a missing side counts as 0)."""
        return (self.replayed or 0) - (self.stored or 0)


@dataclass
class LeafReport:
    """The leaves of one root, compared."""

    replayed_count: int
    stored_count: int
    match: bool
    counts: dict[str, int] = field(default_factory=dict)
    #: the first `max_wallets` differing wallets, wallet bytes ascending.
    wallets: list[WalletDiff] = field(default_factory=list)
    #: structural problems of the stored leaves (index gaps, a wallet twice).
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class LevelReport:
    """The tree levels of one root, compared."""

    match: bool
    detail: str = ""


@dataclass(frozen=True)
class ChainReport:
    """What the root account on-chain holds for this root.

    `status`: match, mismatch, not_on_chain (never published, or no longer among the ones the
    account keeps), skipped (no RPC or `--no-chain`).
    """

    status: str
    detail: str = ""
    root: bytes | None = None
    dataset_hash: bytes | None = None
    published_slot: int | None = None


@dataclass(frozen=True)
class TracedEvent:
    """A policy event of a traced wallet, as the log holds it."""

    offset: int
    event_id: str
    slot: int
    epoch: int
    name: str
    amount: int
    boost_bps: int
    #: why the fold did not apply it ("" when it did): late, duplicate, ...
    ignored: str = ""


@dataclass
class WalletTrace:
    """Where a differing wallet's replayed and stored amounts part, and its events."""

    wallet: bytes
    #: the first root_seq (ascending) where replayed and stored amounts differ, if any.
    diverges_at: int | None
    diverges_epoch: int | None
    replayed: int | None
    stored: int | None
    #: its events in the diverging epoch (or, with no divergence found, the last ones).
    events: list[TracedEvent] = field(default_factory=list)
    #: how many of its events the replayed range holds in all.
    total_events: int = 0
    note: str = ""


@dataclass
class RootReport:
    """The comparison of one (channel, root_seq)."""

    channel: str
    channel_config: str
    root_seq: int
    epoch: int | None
    status: Status
    replayed: dict[str, Any] | None = None
    fields: list[FieldDiff] = field(default_factory=list)
    leaves: LeafReport | None = None
    levels: LevelReport | None = None
    chain: ChainReport | None = None
    traces: list[WalletTrace] = field(default_factory=list)
    #: the aop.chain.events offset whose record closed the epoch (replayed roots).
    closing_offset: int | None = None
    #: the stored root's leaves and levels were pruned: only its fields were compared
    #: (`leaves` and `levels` stay None).
    proofs_pruned: bool = False

    @property
    def failed(self) -> bool:
        """Whether this root makes the run fail (exit 1)."""
        chain_bad = self.chain is not None and self.chain.status == "mismatch"
        return self.status in FAILING or chain_bad


def replayed_summary(root: RootOutput) -> dict[str, Any]:
    """The facts of a replayed root shown in reports."""
    record = root.epoch_root
    return {
        "root": bytes(record["root"]).hex(),
        "dataset_hash": bytes(record["dataset_hash"]).hex(),
        "leaf_count": int(record["leaf_count"]),
        "total": int(record["total"]),
        "emission": int(record["emission"]),
        "closed_at_slot": int(record["closed_at_slot"]),
        "input_offsets": [dict(r) for r in record["input"]],
    }


def _norm(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, list):
        return [_norm(v) for v in value]
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    return value


def _offsets(value: Any) -> list[dict[str, int]]:
    if isinstance(value, str):
        value = json.loads(value)
    return [
        {
            "partition": int(r["partition"]),
            "first_offset": int(r["first_offset"]),
            "last_offset": int(r["last_offset"]),
        }
        for r in value
    ]


def _field_diffs(
    record: Mapping[str, Any], tree: ClaimTree, row: Mapping[str, Any]
) -> list[FieldDiff]:
    pairs: list[tuple[str, Any, Any]] = [
        ("root", bytes(record["root"]), bytes(row["root"])),
        ("dataset_hash", bytes(record["dataset_hash"]), bytes(row["dataset_hash"])),
        ("leaf_count", int(record["leaf_count"]), int(row["leaf_count"])),
        ("total", int(record["total"]), int(row["total"])),
        ("emission", int(record["emission"]), int(row["emission"])),
        ("epoch", int(record["epoch"]), int(row["epoch"])),
        ("closed_at_slot", int(record["closed_at_slot"]), int(row["closed_at_slot"])),
        ("input_offsets", _offsets(record["input"]), _offsets(row["input_offsets"])),
        ("tree_depth", max(len(tree.levels) - 1, 0), int(row["tree_depth"])),
        ("format", str(record["format"]), str(row["format"])),
        ("channel", str(record["channel"]), str(row["channel"])),
        ("program_id", str(record["program_id"]), str(row["program_id"])),
        ("mint", str(record["mint"]), str(row["mint"])),
    ]
    return [FieldDiff(name, _norm(a), _norm(b)) for name, a, b in pairs if a != b]


def compare_leaves(
    wallets: Sequence[bytes],
    amounts: Sequence[int],
    stored: Sequence[tuple[int, bytes, int]],
    *,
    max_wallets: int,
) -> LeafReport:
    """Compare the replayed leaves (wallets[i], amounts[i]) with stored (index, wallet, amount).

    The common case (everything equal) costs three list comparisons.
    """
    n = len(wallets)
    report = LeafReport(replayed_count=n, stored_count=len(stored), match=False)
    stored_index = [i for i, _, _ in stored]
    stored_wallets = [w for _, w, _ in stored]
    stored_amounts = [a for _, _, a in stored]
    if stored_index != list(range(len(stored))):
        report.problems.append("stored leaf_index values are not 0..leaf_count-1")
    if not report.problems and stored_wallets == list(wallets) and stored_amounts == list(amounts):
        report.match = True
        return report
    replayed_at = {w: (i, a) for i, (w, a) in enumerate(zip(wallets, amounts, strict=True))}
    stored_at: dict[bytes, tuple[int, int]] = {}
    for index, wallet, amount in stored:
        if wallet in stored_at:
            report.problems.append(f"stored wallet {wallet.hex()} repeats at leaf {index}")
            continue
        stored_at[wallet] = (index, amount)
    counts = {"amount": 0, "missing_in_store": 0, "extra_in_store": 0, "order": 0}
    listed: list[WalletDiff] = []
    for wallet in sorted(replayed_at.keys() | stored_at.keys()):
        mine, theirs = replayed_at.get(wallet), stored_at.get(wallet)
        if mine is None and theirs is not None:
            kind = "extra_in_store"
        elif theirs is None and mine is not None:
            kind = "missing_in_store"
        elif mine is not None and theirs is not None and mine[1] != theirs[1]:
            kind = "amount"
        elif mine is not None and theirs is not None and mine[0] != theirs[0]:
            kind = "order"
        else:
            continue
        counts[kind] += 1
        if len(listed) < max_wallets:
            listed.append(
                WalletDiff(
                    wallet,
                    kind,
                    None if mine is None else mine[1],
                    None if theirs is None else theirs[1],
                    None if mine is None else mine[0],
                    None if theirs is None else theirs[0],
                )
            )
    report.counts = counts
    report.wallets = listed
    return report


def compare_levels(
    replayed: Sequence[bytes], stored: Sequence[tuple[int, int, bytes]]
) -> LevelReport:
    """Compare the replayed tree levels with the stored (level, node_count, nodes) rows."""
    if len(replayed) != len(stored):
        return LevelReport(False, f"{len(replayed)} levels replayed, {len(stored)} stored")
    for number, (nodes, (level, count, stored_nodes)) in enumerate(
        zip(replayed, stored, strict=True)
    ):
        if level != number:
            return LevelReport(False, f"stored levels skip level {number} (found {level})")
        if count != len(stored_nodes) // 32 or len(stored_nodes) % 32:
            return LevelReport(
                False,
                f"level {level}: node_count {count} but {len(stored_nodes)} bytes of nodes",
            )
        if nodes != stored_nodes:
            if len(nodes) != len(stored_nodes):
                return LevelReport(
                    False,
                    f"level {level}: {len(nodes) // 32} nodes replayed, "
                    f"{len(stored_nodes) // 32} stored",
                )
            at = next(
                i for i in range(0, len(nodes), 32) if nodes[i : i + 32] != stored_nodes[i : i + 32]
            )
            return LevelReport(
                False,
                f"level {level} node {at // 32}: replayed {nodes[at : at + 32].hex()}, "
                f"stored {stored_nodes[at : at + 32].hex()}",
            )
    return LevelReport(True)


def leaves_digest(wallets: Sequence[bytes], amounts: Sequence[int]) -> bytes | None:
    """sha256 of the leaves as `StoredDigest.leaves_sha256` hashes them (None: no leaves)."""
    if not wallets:
        return None
    return hashlib.sha256(b"".join(map(_LEAF_TEXT, zip(wallets, amounts, strict=True)))).digest()


#: one leaf as `leaves_digest` hashes it: wallet || decimal amount || "," (formatted in C).
_LEAF_TEXT = b"%s%d,".__mod__


def matches_digest(replayed: RootOutput, stored: StoredDigest) -> bool:
    """Whether the stored root equals the replayed one in every field, leaf and level (a
    pruned root: every field), judged from the server's digests (a False sends the caller to
    `compare_root`)."""
    tree = replayed.tree
    if _field_diffs(replayed.epoch_root, tree, stored.row):
        return False
    if stored.pruned:
        return True
    if stored.leaf_count != tree.leaf_count or not stored.contiguous:
        return False
    if stored.leaves_sha256 != leaves_digest(tree.wallets, tree.amounts):
        return False
    levels = tree.levels
    return len(levels) == len(stored.levels) and all(
        level == number and count * 32 == len(nodes) and digest == hashlib.sha256(nodes).digest()
        for number, (nodes, (level, count, digest)) in enumerate(
            zip(levels, stored.levels, strict=True)
        )
    )


def digest_match_report(
    replayed: RootOutput,
    stored: StoredDigest,
    *,
    channel: str,
    channel_config: str,
    closing_offset: int | None,
) -> RootReport:
    """The MATCH report of a root `matches_digest` found equal (leaves and levels matched,
    or pruned)."""
    report = RootReport(
        channel=channel,
        channel_config=channel_config,
        root_seq=replayed.root_seq,
        epoch=replayed.epoch,
        status=Status.MATCH,
        replayed=replayed_summary(replayed),
        closing_offset=closing_offset,
        proofs_pruned=stored.pruned,
    )
    if not stored.pruned:
        report.leaves = LeafReport(replayed.tree.leaf_count, stored.leaf_count, True)
        report.levels = LevelReport(True)
    return report


def compare_root(
    replayed: RootOutput, stored: StoredRoot, *, max_wallets: int, closing_offset: int | None
) -> RootReport:
    """Compare a replayed root with the stored one (fields, leaves, levels; a pruned root:
    fields only)."""
    record, tree = replayed.epoch_root, replayed.tree
    report = RootReport(
        channel=replayed.channel,
        channel_config=str(record["channel_config"]),
        root_seq=replayed.root_seq,
        epoch=replayed.epoch,
        status=Status.MATCH,
        replayed=replayed_summary(replayed),
        closing_offset=closing_offset,
    )
    report.fields = _field_diffs(record, tree, stored.row)
    if stored.pruned:
        report.proofs_pruned = True
        if report.fields:
            report.status = Status.MISMATCH
        return report
    report.leaves = compare_leaves(
        tree.wallets, tree.amounts, stored.leaves, max_wallets=max_wallets
    )
    report.levels = compare_levels(tree.levels, stored.levels)
    if report.fields or not report.leaves.match or not report.levels.match:
        report.status = Status.MISMATCH
    return report
