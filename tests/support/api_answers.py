"""What clients have been reading from the API, written down before the answers were
declared as Structs (`api.shapes`): tests hold the declarations to it."""

from __future__ import annotations

__all__ = ["CLAIM_KEYS", "ROOT_CLAIM_KEYS"]

#: the claim answers' keys in the order the API has sent them (before: api.reader.claim_json).
CLAIM_KEYS = [
    "channel", "channel_config", "format", "program_id", "mint", "wallet", "claim_state",
    "root_seq", "epoch", "leaf_index", "amount", "cumulative_total", "claimed_total",
    "claimable", "claim_id", "leaf", "root", "proof", "latest_root_seq", "stale",
    "settlement_status",
]  # fmt: skip
ROOT_CLAIM_KEYS = [
    "channel", "channel_config", "format", "program_id", "mint", "wallet", "claim_state",
    "root_seq", "epoch", "leaf_index", "amount", "cumulative_total", "claim_id", "leaf", "root",
    "dataset_hash", "proof",
]  # fmt: skip
