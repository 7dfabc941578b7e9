"""Writes verified roots, claimed totals and consumer offsets, one transaction each.

The protocol of `write_root` (all in ONE transaction, so a crash leaves nothing half-done):

1. lock the consumer_offsets rows being advanced and check they still hold what this
   process last stored (another projector that took the partition over would have moved
   them: `OffsetConflictError`, nothing written);
2. look up (channel_config, root_seq): an identical root means a redelivery -> skip the
   rows; a different one -> `RootConflictError` (refused, never overwritten);
3. upsert the channel, insert the root, COPY the leaves (from a helper thread, while the
   tree is rebuilt and checked in this one: a refusal rolls everything back), insert the
   tree levels and the settlement outbox row (not for attention roots, which are only ever
   published inside a global root);
4. prune: delete the leaves and tree levels of the account's roots beyond the newest
   `proof_roots_kept` and flag them (`projections.retention`);
5. store the consumer offsets; COMMIT.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import Connection, Engine, text

from aop.projections._copy import COPY_LEAVES_SQL, leaves_copy_payload
from aop.projections.claims import ClaimUpdate
from aop.projections.dataset import DecodedRoot, VerifiedRoot, verify_decoded
from aop.projections.errors import ProjectionError, RootRejectedError
from aop.projections.retention import prune_proofs
from aop.runtime.faults import FaultPlan
from aop.runtime.settings import DEFAULT_PROOF_ROOTS_KEPT

__all__ = [
    "CONSUMER_NAME",
    "OffsetConflictError",
    "OffsetUpdate",
    "ProjectionWriter",
    "RootConflictError",
    "root_differences",
]

log = logging.getLogger(__name__)

#: the `consumer_offsets.consumer` value of the projector (and of `aop rebuild`'s load, so the
#: projector continues where it ended).
CONSUMER_NAME = "projector"


class OffsetConflictError(ProjectionError):
    """Raised when a stored consumer offset is not the one this process last stored or read
    (another projector took the partition over); nothing was written."""


class RootConflictError(RootRejectedError):
    """Raised when a different root is already stored for (channel_config, root_seq)."""

    def __init__(self, detail: str) -> None:
        super().__init__("conflicting_root", detail)


@dataclass(frozen=True)
class OffsetUpdate:
    """Advance (topic, partition) from `expected` (what this process believes is stored)."""

    topic: str
    partition: int
    expected: int
    next_offset: int


_COMPARED = (
    "channel",
    "epoch",
    "format",
    "program_id",
    "mint",
    "root",
    "dataset_hash",
    "leaf_count",
    "total",
    "emission",
    "closed_at_slot",
    "closed_at_ms",
    "input_offsets",
)


def _stored_form(record: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "channel": record["channel"],
        "epoch": int(record["epoch"]),
        "format": record["format"],
        "program_id": record["program_id"],
        "mint": record["mint"],
        "root": bytes(record["root"]),
        "dataset_hash": bytes(record["dataset_hash"]),
        "leaf_count": int(record["leaf_count"]),
        "total": int(record["total"]),
        "emission": int(record["emission"]),
        "closed_at_slot": int(record["closed_at_slot"]),
        "closed_at_ms": None if record.get("closed_at_ms") is None else int(record["closed_at_ms"]),
        "input_offsets": [
            {
                "partition": int(r["partition"]),
                "first_offset": int(r["first_offset"]),
                "last_offset": int(r["last_offset"]),
            }
            for r in record["input"]
        ],
    }


def root_differences(stored: Mapping[str, Any], record: Mapping[str, Any]) -> list[str]:
    """The fields where a stored `roots` row and an EpochRoot record disagree."""
    new = _stored_form(record)
    out = []
    for name in _COMPARED:
        old = stored[name]
        if isinstance(old, Decimal | memoryview):
            old = int(old) if isinstance(old, Decimal) else bytes(old)
        if old != new[name]:
            shown_old = old.hex() if isinstance(old, bytes) else old
            shown_new = new[name].hex() if isinstance(new[name], bytes) else new[name]
            out.append(f"{name} stored {shown_old} vs new {shown_new}")
    return out


class _Copier(threading.Thread):
    """Streams a leaves COPY on the transaction's connection while the caller verifies.

    The caller does not touch the connection until `join()`; `check()` re-raises a failure.
    """

    def __init__(self, driver: Any, payload: bytes) -> None:
        super().__init__(name="leaves-copy", daemon=True)
        self._driver = driver
        self._payload = payload
        self._error: BaseException | None = None

    def run(self) -> None:
        try:
            with self._driver.cursor() as cursor, cursor.copy(COPY_LEAVES_SQL) as copy:
                copy.write(self._payload)
        except BaseException as exc:  # re-raised in the caller's thread by check()
            self._error = exc
        finally:
            self._payload = b""

    def check(self) -> None:
        if self._error is not None:
            raise self._error


class ProjectionWriter:
    """The projector's database side (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        *,
        consumer: str,
        faults: FaultPlan | None = None,
        proof_roots_kept: int = DEFAULT_PROOF_ROOTS_KEPT,
    ) -> None:
        """Args:
        proof_roots_kept: K of proof retention (AOP_PROOF_ROOTS_KEPT, at least 1): each
            written root prunes its account's roots beyond the newest K.
        """
        if proof_roots_kept < 1:
            raise ValueError(f"proof_roots_kept must be at least 1 (got {proof_roots_kept})")
        self._engine = engine
        self._consumer = consumer
        self._faults = faults or FaultPlan.never()
        self._kept = proof_roots_kept

    # -- offsets -----------------------------------------------------------------------------

    def load_offsets(self, topic: str, partitions: Iterable[int]) -> dict[int, int]:
        """The stored next offset of each partition; creates missing rows at 0."""
        parts = sorted(set(partitions))
        if not parts:
            return {}
        with self._engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO consumer_offsets (consumer, topic, partition, next_offset) "
                    "SELECT :consumer, :topic, p, 0 FROM unnest(CAST(:parts AS integer[])) AS p "
                    "ON CONFLICT DO NOTHING"
                ),
                {"consumer": self._consumer, "topic": topic, "parts": parts},
            )
            rows = conn.execute(
                text(
                    "SELECT partition, next_offset FROM consumer_offsets WHERE consumer = "
                    ":consumer AND topic = :topic AND partition = ANY(CAST(:parts AS integer[]))"
                ),
                {"consumer": self._consumer, "topic": topic, "parts": parts},
            ).all()
        return {int(p): int(o) for p, o in rows}

    def _advance(self, conn: Connection, offsets: Sequence[OffsetUpdate]) -> None:
        for update in sorted(offsets, key=lambda u: (u.topic, u.partition)):
            stored = conn.execute(
                text(
                    "SELECT next_offset FROM consumer_offsets WHERE consumer = :consumer AND "
                    "topic = :topic AND partition = :partition FOR UPDATE"
                ),
                {"consumer": self._consumer, "topic": update.topic, "partition": update.partition},
            ).scalar_one_or_none()
            if stored != update.expected:
                raise OffsetConflictError(
                    f"{update.topic}[{update.partition}] stored offset must be "
                    f"{update.expected} (got {stored}); another projector moved it"
                )
            conn.execute(
                text(
                    "UPDATE consumer_offsets SET next_offset = :next_offset, updated_at = now() "
                    "WHERE consumer = :consumer AND topic = :topic AND partition = :partition"
                ),
                {
                    "consumer": self._consumer,
                    "topic": update.topic,
                    "partition": update.partition,
                    "next_offset": update.next_offset,
                },
            )

    def commit_offsets(self, offsets: Sequence[OffsetUpdate]) -> None:
        """Advance offsets alone (past records that produced no rows: DLQ'd, duplicates)."""
        if offsets:
            with self._engine.begin() as conn:
                self._advance(conn, offsets)

    # -- roots -------------------------------------------------------------------------------

    def find_root(self, channel_config: str, root_seq: int) -> dict[str, Any] | None:
        """The stored `roots` row of (channel_config, root_seq) as a dict, or None."""
        with self._engine.connect() as conn:
            return self._find_root(conn, channel_config, root_seq)

    @staticmethod
    def _find_root(conn: Connection, channel_config: str, root_seq: int) -> dict[str, Any] | None:
        row = (
            conn.execute(
                text(
                    "SELECT * FROM roots WHERE channel_config = :channel_config "
                    "AND root_seq = :root_seq"
                ),
                {"channel_config": channel_config, "root_seq": root_seq},
            )
            .mappings()
            .one_or_none()
        )
        return dict(row) if row is not None else None

    def write_root(
        self,
        decoded: DecodedRoot,
        *,
        source_partition: int,
        source_offset: int,
        offsets: Sequence[OffsetUpdate],
        verify: Callable[[DecodedRoot], VerifiedRoot] = verify_decoded,
    ) -> Literal["written", "duplicate"]:
        """Verify and store a root, prune its account's old proofs and advance `offsets`, in
        one transaction (the module docstring numbers the steps).

        The leaves' COPY streams from a helper thread while `verify` rebuilds the tree in
        this one (the server indexes rows while Python hashes); nothing commits unless the
        tree verified, and a refusal rolls the whole transaction back.

        Returns:
            "written", or "duplicate" when an identical root was already stored (offsets
            still advance; nothing is verified, written or pruned).
        Raises:
            RootRejectedError: `verify` refused the root (rolled back).
            RootConflictError: a different root is stored for the same (channel, root_seq).
            OffsetConflictError: see `_advance`; nothing written.
        """
        record = decoded.record
        with self._engine.begin() as conn:
            self._advance(conn, offsets)
            stored = self._find_root(conn, decoded.channel_config, decoded.root_seq)
            if stored is not None:
                differences = root_differences(stored, record)
                if differences:
                    raise RootConflictError(
                        f"{decoded.channel_config} root_seq {decoded.root_seq} is already "
                        f"stored with other values ({'; '.join(differences)}); refusing to "
                        "overwrite. Operator action: find which fold run emitted which root"
                    )
                return "duplicate"
            root_id = self._insert_root_row(conn, decoded, source_partition, source_offset)
            driver = conn.connection.driver_connection
            copier = _Copier(driver, leaves_copy_payload(root_id, decoded.entries, decoded.bonuses))
            copier.start()
            try:
                verified = verify(decoded)
            finally:
                copier.join()
            copier.check()
            if max(len(verified.levels) - 1, 0) != decoded.tree_depth:
                raise ProjectionError(
                    f"tree depth must be {decoded.tree_depth} for {len(decoded.entries)} leaves "
                    f"(got {len(verified.levels) - 1}); refusing to store it"
                )
            self._insert_levels_and_outbox(
                conn, driver, root_id, verified, outbox=decoded.scope_name != "attention"
            )
            pruned = prune_proofs(conn, decoded.channel_config, kept=self._kept)
            self._faults.hit("before_commit")
        if pruned:
            log.info(
                "proofs pruned",
                extra={
                    "channel_config": decoded.channel_config,
                    "root_seqs": pruned,
                    "kept": self._kept,
                },
            )
        return "written"

    @staticmethod
    def _insert_root_row(
        conn: Connection, decoded: DecodedRoot, source_partition: int, source_offset: int
    ) -> int:
        values = _stored_form(decoded.record)
        conn.execute(
            text(
                "INSERT INTO channels (channel_config, name, subject_id, format, program_id, mint, "
                "latest_root_seq, latest_epoch, scope) VALUES (:channel_config, :name, "
                ":subject_id, :format, :program_id, :mint, :root_seq, :epoch, :scope) "
                "ON CONFLICT (channel_config) DO UPDATE SET "
                "latest_root_seq = GREATEST(channels.latest_root_seq, EXCLUDED.latest_root_seq), "
                "latest_epoch = GREATEST(channels.latest_epoch, EXCLUDED.latest_epoch), "
                "updated_at = now()"
            ),
            {
                "channel_config": decoded.channel_config,
                "name": values["channel"],
                "subject_id": decoded.subject_id,
                "format": values["format"],
                "program_id": values["program_id"],
                "mint": values["mint"],
                "root_seq": decoded.root_seq,
                "epoch": values["epoch"],
                "scope": decoded.scope_name,
            },
        )
        return int(
            conn.execute(
                text(
                    "INSERT INTO roots (channel_config, root_seq, channel, epoch, format, "
                    "program_id, mint, root, dataset_hash, leaf_count, tree_depth, total, "
                    "emission, closed_at_slot, closed_at_ms, input_offsets, source_partition, "
                    "source_offset) VALUES (:channel_config, :root_seq, :channel, :epoch, "
                    ":format, :program_id, :mint, :root, :dataset_hash, :leaf_count, "
                    ":tree_depth, :total, :emission, :closed_at_slot, :closed_at_ms, "
                    "CAST(:input_offsets AS jsonb), :source_partition, :source_offset) "
                    "RETURNING root_id"
                ),
                {
                    **values,
                    "channel_config": decoded.channel_config,
                    "root_seq": decoded.root_seq,
                    "tree_depth": decoded.tree_depth,
                    "total": Decimal(values["total"]),
                    "emission": Decimal(values["emission"]),
                    "input_offsets": json.dumps(values["input_offsets"]),
                    "source_partition": source_partition,
                    "source_offset": source_offset,
                },
            ).scalar_one()
        )

    def _insert_levels_and_outbox(
        self, conn: Connection, driver: Any, root_id: int, verified: VerifiedRoot, *, outbox: bool
    ) -> None:
        """The tree levels, and the settlement outbox row unless `outbox` is False (attention
        roots: they reach the chain inside a global root, never on their own)."""
        if verified.levels:
            with driver.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO tree_levels (root_id, level, node_count, nodes) "
                    "VALUES (%s, %s, %s, %s)",
                    [
                        (root_id, level, len(nodes) // 32, nodes)
                        for level, nodes in enumerate(verified.levels)
                    ],
                )
        self._faults.hit("after_copy")
        if not outbox:
            return
        values = _stored_form(verified.record)
        conn.execute(
            text(
                "INSERT INTO settlement_outbox (channel_config, root_seq, channel, format, epoch) "
                "VALUES (:channel_config, :root_seq, :channel, :format, :epoch)"
            ),
            {
                "channel_config": verified.channel_config,
                "root_seq": verified.root_seq,
                "channel": values["channel"],
                "format": values["format"],
                "epoch": values["epoch"],
            },
        )

    # -- claimed totals ----------------------------------------------------------------------

    def apply_claims(self, claims: Sequence[ClaimUpdate], offsets: Sequence[OffsetUpdate]) -> int:
        """Raise claimed totals to the claims' values (max: idempotent) and advance offsets.

        Returns:
            the number of (channel, wallet) rows inserted or raised.
        """
        best: dict[tuple[str, bytes], ClaimUpdate] = {}
        for claim in claims:
            key = (claim.channel_config, claim.wallet)
            if key not in best or claim.claimed_total > best[key].claimed_total:
                best[key] = claim
        with self._engine.begin() as conn:
            self._advance(conn, offsets)
            if not best:
                return 0
            result = conn.execute(
                text(
                    "INSERT INTO claimed_totals (channel_config, wallet, claimed_total, root_seq, "
                    "slot, signature) VALUES (:channel_config, :wallet, :claimed_total, "
                    ":root_seq, :slot, :signature) ON CONFLICT (channel_config, wallet) DO UPDATE "
                    "SET claimed_total = EXCLUDED.claimed_total, root_seq = EXCLUDED.root_seq, "
                    "slot = EXCLUDED.slot, signature = EXCLUDED.signature, updated_at = now() "
                    "WHERE EXCLUDED.claimed_total > claimed_totals.claimed_total"
                ),
                [
                    {
                        "channel_config": c.channel_config,
                        "wallet": c.wallet,
                        "claimed_total": Decimal(c.claimed_total),
                        "root_seq": c.root_seq,
                        "slot": c.slot,
                        "signature": c.signature,
                    }
                    for c in best.values()
                ],
            )
            return int(result.rowcount)
