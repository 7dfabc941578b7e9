"""Settlement's state carried into a rebuilt projection schema (`aop rebuild`, step 7).

A rebuild recreates the outbox rows from the log, every one `pending`; what settlement did
with them lives in the old schema (`settlement_outbox` status and the `settlement_attempts`
audit trail) and, for final outcomes only, on aop.settlement. These functions carry either
into the new schema. They run inside the rebuild's switch transaction (`conn`, SQLAlchemy)
on schema-qualified tables; schema names are plain identifiers (`projections.db`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, text

from aop.settlement.outbox import FINAL_OUTCOMES, STATUS_AFTER

__all__ = ["SETTLEMENT_TABLES", "apply_settlement_results", "copy_settlement_state"]

#: the tables that hold settlement's state.
SETTLEMENT_TABLES = ("settlement_outbox", "settlement_attempts")
_ATTEMPT_COLUMNS = (
    "attempt_id, channel_config, root_seq, at, outcome, signature, slot, error, blockhash, "
    "last_valid_block_height, message_b64, transaction_b64, emitted"
)


def _table(schema: str, name: str) -> str:
    return f'"{schema}".{name}'


def copy_settlement_state(conn: Connection, *, old_schema: str, new_schema: str) -> None:
    """The old schema's outbox status and attempts (ids kept), for the roots the new schema
    has; the new schema's attempt ids then continue above the copied ones."""
    old_outbox = _table(old_schema, "settlement_outbox")
    new_outbox = _table(new_schema, "settlement_outbox")
    new_attempts = _table(new_schema, "settlement_attempts")
    conn.execute(
        text(
            f"UPDATE {new_outbox} x SET status = y.status, signature = y.signature, "
            "slot = y.slot, attempts = y.attempts, detail = y.detail, "
            "created_at = y.created_at, updated_at = y.updated_at "
            f"FROM {old_outbox} y WHERE x.channel_config = y.channel_config "
            "AND x.root_seq = y.root_seq"
        )
    )
    conn.execute(
        text(
            f"INSERT INTO {new_attempts} ({_ATTEMPT_COLUMNS}) SELECT {_ATTEMPT_COLUMNS} "
            f"FROM {_table(old_schema, 'settlement_attempts')} a WHERE EXISTS (SELECT 1 FROM "
            f"{new_outbox} x WHERE x.channel_config = a.channel_config "
            "AND x.root_seq = a.root_seq)"
        )
    )
    conn.execute(
        text(
            f"SELECT setval(pg_get_serial_sequence('{new_attempts}', 'attempt_id'), "
            f"coalesce((SELECT max(attempt_id) FROM {new_attempts}), 0) + 1, false)"
        )
    )


def apply_settlement_results(
    conn: Connection, schema: str, results: Iterable[Mapping[str, Any]]
) -> None:
    """Settlement state from SettlementResult records (aop.settlement, in log order): each
    final outcome sets its root's outbox status as the settler would have
    (`settlement.outbox.STATUS_AFTER`) and adds one attempt, marked emitted. The intermediate
    steps of the audit trail (intents, rpc errors) are not on the log."""
    outbox, attempts = _table(schema, "settlement_outbox"), _table(schema, "settlement_attempts")
    for result in results:
        outcome = str(result["outcome"]).lower()  # the settler emits outcome.upper()
        if outcome not in FINAL_OUTCOMES:
            continue
        params = {
            "c": result["channel_config"],
            "s": int(result["root_seq"]),
            "status": STATUS_AFTER[outcome],
            "outcome": outcome,
            "sig": result.get("signature"),
            "slot": result.get("slot"),
            "detail": result.get("detail"),
            "attempts": int(result.get("attempts") or 0),
        }
        updated = conn.execute(
            text(
                f"UPDATE {outbox} SET status = :status, "
                "signature = coalesce(:sig, signature), slot = coalesce(:slot, slot), "
                "attempts = :attempts, detail = :detail "
                "WHERE channel_config = :c AND root_seq = :s"
            ),
            params,
        ).rowcount
        if updated:
            conn.execute(
                text(
                    f"INSERT INTO {attempts} (channel_config, root_seq, outcome, signature, "
                    "slot, error, emitted) VALUES (:c, :s, :outcome, :sig, :slot, :detail, true)"
                ),
                params,
            )
