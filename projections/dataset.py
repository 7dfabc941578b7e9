"""Rebuild and check a root from its EpochRoot and LeafChunks before anything is written.

The LeafChunk `entries` layout is a property of the log, fixed per claim format:

* cumulative-v2 and global-v4: wallet(32) || cumulative_total(u64 LE), 40 bytes, wallets
  ascending;
* ring-v0: wallet(32) || index(u32 LE) || amount(u64 LE), 44 bytes, index = position;
* ring-v0-legacy: as ring-v0, then u8(id length) || the claim id zero-padded to 64 bytes, 109
  bytes (a wallet may hold several leaves, one per user);
* global-v5: wallet(32) || base_yield(u64 LE) || attention_bonus(u64 LE), 48 bytes, wallets
  ascending (the entry's amount is the sum, its bonus kept beside it);

which is exactly `ClaimTree.dataset` of `core` (one record per leaf, in leaf order). A
GlobalRoot (aop.global.roots) is read through `root_view`, which gives it an EpochRoot's
shape: no channel name and no input offsets. An AttentionRoot (aop.epoch.roots) likewise:
its epoch is the attention epoch's unix start, `closed_at_ms` its closing watermark,
`closed_at_slot` 0, and its root account is the channel's attention root key.

`verify_root` decodes the entries, rebuilds the tree with `core`, and compares leaf_count,
total, the dataset itself (canonical order), root and dataset_hash with the EpochRoot.
Any difference raises `RootRejectedError` with a machine-readable reason.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from solders.pubkey import Pubkey

from aop.core.channel import subject_id
from aop.core.claims import (
    RECORD_SIZES,
    ClaimFormat,
    ClaimInput,
    TreeScope,
    get_claim_format,
)
from aop.core.errors import CoreError
from aop.core.pda import attention_root_key
from aop.projections.errors import RootRejectedError

__all__ = [
    "ENTRY_SIZES",
    "SCOPES",
    "DecodedRoot",
    "VerifiedRoot",
    "decode_bonuses",
    "decode_entries",
    "decode_root",
    "root_view",
    "verify_decoded",
    "verify_root",
]

_CUMULATIVE = struct.Struct("<32sQ")
_RING = struct.Struct("<32sIQ")
_TWO_PARTS = struct.Struct("<32sQQ")
#: root totals and emissions: no sign, no leading zero, at most numeric(39).
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,38}")
#: bytes per LeafChunk entry, per claim format (the core dataset record layouts).
ENTRY_SIZES = RECORD_SIZES


@dataclass(frozen=True, eq=False)
class VerifiedRoot:
    """An EpochRoot whose dataset rebuilt to the same root: what the writer stores.

    `entries` are (wallet, amount) in leaf order: leaf i is entries[i].
    """

    record: Mapping[str, Any]
    entries: Sequence[tuple[bytes, int]]
    levels: tuple[bytes, ...]
    subject_id: bytes
    #: global-v5's attention_bonus of each entry (None for one-part formats).
    bonuses: Sequence[int] | None = None

    @property
    def channel_config(self) -> str:
        return str(self.record["channel_config"])

    @property
    def root_seq(self) -> int:
        return int(self.record["root_seq"])


def decode_entries(format_name: str, chunks: Sequence[bytes]) -> list[tuple[bytes, int]]:
    """(wallet, amount) of every entry packed in the chunks' `entries`, in tree order.

    Raises:
        RootRejectedError: unknown format, or a chunk not a whole number of entries.
    """
    size = ENTRY_SIZES.get(format_name)
    if size is None:
        raise RootRejectedError(
            "unknown_format", f"format must be one of {sorted(ENTRY_SIZES)} (got {format_name!r})"
        )
    layout = get_claim_format(format_name).layout
    for i, chunk in enumerate(chunks):
        if len(chunk) % size:
            raise RootRejectedError(
                "malformed_chunk",
                f"chunk {i} entries must be a multiple of {size} bytes (got {len(chunk)})",
            )
    data = b"".join(chunks)
    if size == _CUMULATIVE.size:
        return list(_CUMULATIVE.iter_unpack(data))
    if size == _TWO_PARTS.size:
        return [(w, base + bonus) for w, base, bonus in _TWO_PARTS.iter_unpack(data)]
    if size == _RING.size:
        return [(w, a) for w, _, a in _RING.iter_unpack(data)]
    record = struct.Struct(f"<32s{layout.amount_offset - 32}xQ{size - layout.amount_offset - 8}x")
    return list(record.iter_unpack(data))


def decode_bonuses(format_name: str, chunks: Sequence[bytes]) -> list[int] | None:
    """The second part of every entry of a two-part format (global-v5's attention_bonus), in
    tree order; None for the one-part formats (call after `decode_entries` checked the size)."""
    if RECORD_SIZES.get(format_name) != _TWO_PARTS.size:
        return None
    return [bonus for _, _, bonus in _TWO_PARTS.iter_unpack(b"".join(chunks))]


#: `DecodedRoot.scope_name` (and `channels.scope`) of each root header type.
SCOPES = {"EpochRoot": "channel", "GlobalRoot": "global", "AttentionRoot": "attention"}


def root_view(record_type: str, record: Mapping[str, Any]) -> Mapping[str, Any]:
    """A root header as the projections store it: an EpochRoot as it is; a GlobalRoot with
    `channel` "" and no `input` offsets (its sources are positions on aop.epoch.roots, which a
    replay from aop.chain.events does not reproduce; they stay on the GlobalRoot record); an
    AttentionRoot with `closed_at_slot` 0 (it closed on a time watermark, `closed_at_ms`)."""
    if record_type == "AttentionRoot":
        keep = ("epoch_seconds", "unbound_users")
        view = {k: v for k, v in record.items() if k not in keep}
        view["closed_at_slot"] = 0
        return view
    if record_type != "GlobalRoot":
        return record
    view = {k: v for k, v in record.items() if k not in ("sources", "resume")}
    view["channel"] = ""
    view["input"] = []
    return view


def _claim_inputs(entries: list[tuple[bytes, int]], claim_ids: list[str] | None) -> list[Any]:
    """The entries as `ClaimInput`s, first_seen = position (ring-v0 orders by it, so the
    order on the log is reproduced when it is canonical; cumulative-v2 ignores it), with each
    leaf's own claim id for the formats that have one (ring-v0-legacy).

    Plain (wallet, amount, first_seen) tuples: ClaimInput is a NamedTuple of exactly those
    fields, and building a million named tuples costs ~1 s.
    """
    if claim_ids is not None:
        return [
            (w, a, i, 0, c) for i, ((w, a), c) in enumerate(zip(entries, claim_ids, strict=True))
        ]
    return [(w, a, i) for i, (w, a) in enumerate(entries)]


def _expect(reason: str, what: str, expected: object, actual: object) -> None:
    if expected != actual:
        raise RootRejectedError(
            reason, f"{what}: the EpochRoot says {expected} but the leaves give {actual}"
        )


def _decimal(record: Mapping[str, Any], name: str, reason: str) -> int:
    """A canonical decimal that fits the tables' numeric(39) (else a poison record: the
    INSERT would fail on every retry). `int()` alone also takes "-5", " 7 " and "1_0"."""
    value = record[name]
    if not _DECIMAL.fullmatch(value):
        shown = value if len(value) <= 80 else value[:80] + "..."
        raise RootRejectedError(
            reason, f"{name} must be a decimal of at most 39 digits (got {shown!r})"
        )
    return int(value)


@dataclass(frozen=True, eq=False)
class DecodedRoot:
    """An EpochRoot and its decoded entries that passed the cheap checks (format, scope,
    channel_config, chunk layout, leaf_count, total, emission); the tree is not built yet."""

    record: Mapping[str, Any]
    chunks: Sequence[bytes]
    entries: list[tuple[bytes, int]]
    fmt: ClaimFormat
    scope: TreeScope
    #: global-v5's attention_bonus of each entry (None for one-part formats).
    bonuses: list[int] | None = None
    #: "channel", "global" or "attention" (`SCOPES`): the `channels.scope` it is stored under.
    scope_name: str = "channel"

    @property
    def channel_config(self) -> str:
        return str(self.record["channel_config"])

    @property
    def root_seq(self) -> int:
        return int(self.record["root_seq"])

    @property
    def subject_id(self) -> bytes:
        """The channel's subject id; 32 zero bytes for a global root (no channel)."""
        return bytes(32) if self.scope.channel is None else subject_id(self.scope.channel)

    @property
    def tree_depth(self) -> int:
        """Proof length of every leaf: ceil(log2(leaf_count)) (pairs, odd tails doubled)."""
        return max(len(self.entries) - 1, 0).bit_length()


def decode_root(
    record: Mapping[str, Any], chunks: Sequence[bytes], *, scope_name: str = ""
) -> DecodedRoot:
    """The cheap half of `verify_root`: everything but the tree.

    Args:
        record: the header as `root_view` gives it.
        chunks: the entries of its LeafChunks, in order.
        scope_name: "attention" for an AttentionRoot (its root account is the channel's
            attention root key); else the format decides ("global" or "channel").
    Raises:
        RootRejectedError: reason one of unknown_format, bad_scope, config_mismatch,
            malformed_chunk, leaf_count_mismatch, total_mismatch, bad_emission.
    """
    try:
        fmt = get_claim_format(str(record["format"]))
    except CoreError as exc:
        raise RootRejectedError("unknown_format", str(exc)) from exc
    if "\x00" in record["channel"]:  # the program may take it; a Postgres text cannot
        raise RootRejectedError(
            "bad_scope", f"channel must not contain NUL characters (got {record['channel']!r})"
        )
    try:
        scope = TreeScope(
            program_id=Pubkey.from_string(record["program_id"]),
            mint=Pubkey.from_string(record["mint"]),
            channel=None if fmt.is_global else record["channel"],
            root_seq=int(record["root_seq"]),
            epoch=int(record["epoch"]),
        )
        if scope_name == "attention":
            key = attention_root_key(
                program_id=scope.program_id, mint=scope.mint, channel=scope.channel_name
            )
            config = str(key.address)
        else:
            config = str(fmt.root_account(scope))
    except (CoreError, ValueError) as exc:
        raise RootRejectedError("bad_scope", str(exc)) from exc
    _expect("config_mismatch", "channel_config", record["channel_config"], config)
    if fmt.per_leaf_claim_id and scope_name != "attention":
        raise RootRejectedError(
            "unknown_format", f"format {fmt.name} is only taken for attention roots"
        )
    entries = decode_entries(fmt.name, chunks)
    _expect("leaf_count_mismatch", "leaf_count", int(record["leaf_count"]), len(entries))
    total = _decimal(record, "total", "total_mismatch")
    _expect("total_mismatch", "total", total, sum(map(itemgetter(1), entries)))
    _decimal(record, "emission", "bad_emission")
    name = scope_name or ("global" if fmt.is_global else "channel")
    bonuses = decode_bonuses(fmt.name, chunks)
    return DecodedRoot(record, chunks, entries, fmt, scope, bonuses, name)


def verify_decoded(decoded: DecodedRoot) -> VerifiedRoot:
    """The expensive half of `verify_root`: build the tree and compare.

    Raises:
        RootRejectedError: reason one of invalid_entries, bad_leaf_order, root_mismatch,
            dataset_hash_mismatch.
    """
    record, fmt = decoded.record, decoded.fmt
    try:
        if decoded.bonuses is None:
            claim_ids = fmt.dataset_claim_ids(b"".join(decoded.chunks))
            tree = fmt.build(decoded.scope, _claim_inputs(decoded.entries, claim_ids))
        else:
            tree = fmt.build(
                decoded.scope,
                [
                    ClaimInput(w, total - bonus, i, bonus)
                    for i, ((w, total), bonus) in enumerate(
                        zip(decoded.entries, decoded.bonuses, strict=True)
                    )
                ],
            )
    except CoreError as exc:
        raise RootRejectedError("invalid_entries", str(exc)) from exc
    if tree.dataset != b"".join(decoded.chunks):
        raise RootRejectedError(
            "bad_leaf_order",
            f"the entries are not the canonical {fmt.name} dataset (order, duplicates or zero "
            "amounts)",
        )
    _expect("root_mismatch", "root", bytes(record["root"]).hex(), tree.root.hex())
    _expect(
        "dataset_hash_mismatch",
        "dataset_hash",
        bytes(record["dataset_hash"]).hex(),
        tree.dataset_hash.hex(),
    )
    return VerifiedRoot(
        record=record,
        entries=decoded.entries,
        levels=tree.levels,
        subject_id=decoded.subject_id,
        bonuses=decoded.bonuses,
    )


def verify_root(record: Mapping[str, Any], chunks: Sequence[bytes]) -> VerifiedRoot:
    """Rebuild `record`'s tree from the chunk entries (in chunk order) and check it.

    Steps (`decode_root`, then `verify_decoded`): decode the entries; compare leaf_count and
    total; build the tree with the format (`ClaimFormat.build`); the entries must BE the
    canonical dataset byte for byte (order, no duplicates, no zero amounts); then root and
    dataset_hash must match.

    Args:
        record: the decoded EpochRoot.
        chunks: the `entries` of its LeafChunks, chunk_index 0..chunk_count-1.
    Returns:
        the verified root with its dataset and tree levels.
    Raises:
        RootRejectedError: reason one of unknown_format, bad_scope, config_mismatch,
            malformed_chunk, leaf_count_mismatch, total_mismatch, bad_emission,
            invalid_entries, bad_leaf_order, root_mismatch, dataset_hash_mismatch.
    """
    return verify_decoded(decode_root(record, chunks))
