"""JSON shapes of the Solana RPC, built from ledger records (what Agave 2.x returns).

Only the encodings simchain serves: transactions as `json`, `base64` or `base58`; account
data as `base64`, `base58` or `base64+zstd` is not offered (jsonParsed neither).
"""

from __future__ import annotations

import base64
from typing import Any

from solders.transaction import VersionedTransaction

from aop.simchain.errors import RpcError
from aop.simchain.invoke import b58
from aop.simchain.ledger import Account, InnerInstruction, TxRecord

__all__ = [
    "API_VERSION",
    "account_json",
    "context",
    "status_json",
    "transaction_json",
    "transaction_with_meta",
]

#: the Agave version simchain answers as (getVersion, context.apiVersion).
API_VERSION = "2.2.16"
_U64_MAX = 2**64 - 1


def context(slot: int) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "slot": slot}


def account_json(
    account: Account | None, encoding: str, data_slice: dict[str, int] | None
) -> dict[str, Any] | None:
    """An account as getAccountInfo's `value` (None for a missing account)."""
    if account is None or (account.lamports == 0 and not account.data):
        return None
    data = account.data
    if data_slice:
        offset = int(data_slice.get("offset", 0))
        data = data[offset : offset + int(data_slice.get("length", 0))]
    if encoding == "base64":
        encoded: Any = [base64.b64encode(data).decode(), "base64"]
    elif encoding == "base58":
        if len(data) > 128:
            raise RpcError(
                -32600,
                "Encoded binary (base 58) data should be less than 128 bytes, "
                "please use Base64 encoding.",
            )
        encoded = [b58(data), "base58"]
    else:
        raise RpcError(
            -32602,
            f"Invalid params: simchain serves account data as base64 or base58 (got {encoding})",
        )
    return {
        "data": encoded,
        "executable": account.executable,
        "lamports": account.lamports,
        "owner": str(account.owner),
        "rentEpoch": _U64_MAX,
        "space": len(account.data),
    }


def status_json(err: Any) -> dict[str, Any]:
    """`status` of a transaction: {"Ok": null} or {"Err": err}."""
    return {"Ok": None} if err is None else {"Err": err}


def _message_json(tx: VersionedTransaction, *, v0: bool) -> dict[str, Any]:
    message = tx.message
    header = message.header
    body: dict[str, Any] = {
        "accountKeys": [str(k) for k in message.account_keys],
        "header": {
            "numReadonlySignedAccounts": header.num_readonly_signed_accounts,
            "numReadonlyUnsignedAccounts": header.num_readonly_unsigned_accounts,
            "numRequiredSignatures": header.num_required_signatures,
        },
        "instructions": [
            {
                "accounts": list(ix.accounts),
                "data": b58(bytes(ix.data)),
                "programIdIndex": ix.program_id_index,
                "stackHeight": None,
            }
            for ix in message.instructions
        ],
        "recentBlockhash": str(message.recent_blockhash),
    }
    if v0:
        body["addressTableLookups"] = []
    return body


def _inner_json(record: TxRecord) -> list[dict[str, Any]]:
    """meta.innerInstructions: CPIs grouped under their top-level instruction's index."""
    groups: list[dict[str, Any]] = []
    for top_index, inner in _group_inner(record):
        groups.append(
            {
                "index": top_index,
                "instructions": [
                    {
                        "accounts": list(ix.accounts),
                        "data": b58(ix.data),
                        "programIdIndex": ix.program_id_index,
                        "stackHeight": ix.stack_height,
                    }
                    for ix in inner
                ],
            }
        )
    return groups


def _group_inner(record: TxRecord) -> list[tuple[int, list[InnerInstruction]]]:
    groups: dict[int, list[InnerInstruction]] = {}
    for ix in record.inner_instructions:
        groups.setdefault(ix.top, []).append(ix)
    return sorted(groups.items())


def meta_json(record: TxRecord, *, show_rewards: bool = True) -> dict[str, Any]:
    """A transaction's `meta`; `rewards` is left out when not asked for (getBlock's
    `rewards: false`), as Agave does."""
    meta: dict[str, Any] = {
        "computeUnitsConsumed": record.units,
        "err": record.err,
        "fee": record.fee,
        "innerInstructions": _inner_json(record),
        "loadedAddresses": {"readonly": [], "writable": []},
        "logMessages": list(record.logs),
        "postBalances": list(record.post_balances),
        "postTokenBalances": [],
        "preBalances": list(record.pre_balances),
        "preTokenBalances": [],
        "rewards": [],
        "status": status_json(record.err),
    }
    if not show_rewards:
        del meta["rewards"]
    return meta


def transaction_with_meta(
    record: TxRecord, *, encoding: str, max_version: int | None, show_rewards: bool = True
) -> dict[str, Any]:
    """`{transaction, meta, version}` of a landed transaction: an entry of getBlock's
    `transactions`, and getTransaction's `result` without its slot and block time.

    `version` is there only when the client gave maxSupportedTransactionVersion (as Agave).

    Raises:
        RpcError: -32015 for a version-0 transaction without maxSupportedTransactionVersion;
            -32602 for an encoding simchain does not serve.
    """
    if record.version != "legacy" and max_version is None:
        raise RpcError(
            -32015,
            "Transaction version (0) is not supported by the requesting client. Please try the "
            "request again with the following configuration parameter: "
            '"maxSupportedTransactionVersion": 0',
        )
    if encoding == "json":
        tx = VersionedTransaction.from_bytes(record.raw)
        transaction: Any = {
            "message": _message_json(tx, v0=record.version == 0),
            "signatures": [str(s) for s in tx.signatures],
        }
    elif encoding == "base64":
        transaction = [base64.b64encode(record.raw).decode(), "base64"]
    elif encoding == "base58":
        transaction = [b58(record.raw), "base58"]
    else:
        raise RpcError(
            -32602,
            "Invalid params: simchain serves transactions as json, base64 or base58 "
            f"(got {encoding})",
        )
    result: dict[str, Any] = {
        "meta": meta_json(record, show_rewards=show_rewards),
        "transaction": transaction,
    }
    if max_version is not None:
        result["version"] = record.version
    return result


def transaction_json(
    record: TxRecord, *, encoding: str, max_version: int | None, block_time: int
) -> dict[str, Any]:
    """getTransaction's `result` for a landed transaction (errors: `transaction_with_meta`)."""
    encoded = transaction_with_meta(record, encoding=encoding, max_version=max_version)
    return {"blockTime": block_time, "slot": record.slot, **encoded}
