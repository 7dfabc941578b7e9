"""Solana JSON-RPC methods over a `SimChain`, with Agave's parameters, shapes and errors.

`SolanaRpc.call(method, params)` returns the `result` or raises `RpcError`; the HTTP layer
wraps it in the JSON-RPC envelope. Reads take `commitment` (default finalized, as Agave) and
see the chain at that slot; getSignaturesForAddress, getTransaction and getBlock refuse
`processed`, as Agave does. `SolanaRpc.served` counts the calls of each method (tests assert
which methods a client used).

History is a window (`SimConfig.retained_slots`): for what was pruned the answers are those
of an Agave node that cleaned its ledger up (anza-xyz/agave `rpc/src/rpc.rs` and
`ledger/src/blockstore.rs`): getBlock and getBlockTime -32001 "Block N cleaned up, does not
exist on node. First available block: M"; getTransaction and getSignatureStatuses null;
getSignaturesForAddress only the kept transactions (a pruned `before` gives [], a pruned
`until` is ignored); getFirstAvailableBlock and minimumLedgerSlot the oldest kept slot.

The chain raises its own typed errors (`ChainRequestError`); `rpc_error` gives the JSON-RPC
error of each, and `SolanaRpc.call` and the `sim_*` methods answer with it.
"""

from __future__ import annotations

import base64
import binascii
from collections import Counter
from collections.abc import Callable
from typing import Any

from solders.message import Message, MessageV0
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from aop.core.program_ids import TOKEN_2022_PROGRAM_ID
from aop.simchain.chain import SimChain
from aop.simchain.encoding import (
    API_VERSION,
    account_json,
    context,
    status_json,
    transaction_json,
    transaction_with_meta,
)
from aop.simchain.errors import (
    AirdropFailedError,
    ChainRequestError,
    InvalidTransactionError,
    PreflightFailedError,
    ProtocolNotSetUpError,
    RpcError,
    SignatureVerificationError,
    TransactionRejectedError,
    UnknownCommitmentError,
)
from aop.simchain.runtime import LAMPORTS_PER_SIGNATURE, MAX_PROCESSING_AGE
from aop.simchain.token import DECIMALS, decode_token_account, rent_exempt_lamports

__all__ = ["SolanaRpc", "decode_b58", "rpc_error"]

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58)}
_MAX_PACKET = 1232
SLOTS_PER_EPOCH = 432_000
#: getBlock's `transactionDetails` levels simchain serves ("accounts" is not offered).
_BLOCK_DETAILS = ("full", "signatures", "none")


def decode_b58(text: str) -> bytes:
    """Base58 to bytes.

    Raises:
        ValueError: a character outside the alphabet.
    """
    number = 0
    for char in text:
        try:
            number = number * 58 + _B58_INDEX[char]
        except KeyError:
            raise ValueError(f"invalid base58 character {char!r}") from None
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\0" * (len(text) - len(text.lstrip("1"))) + body


def rpc_error(exc: ChainRequestError) -> RpcError:
    """The JSON-RPC error (Agave's code, message and data) answering a refused request."""
    match exc:
        case UnknownCommitmentError():
            return RpcError(-32602, f"Invalid params: unknown commitment `{exc.commitment}`")
        case InvalidTransactionError():
            return RpcError(-32602, f"invalid transaction: {exc.detail}")
        case SignatureVerificationError():
            return RpcError(-32003, "Transaction signature verification failure")
        case PreflightFailedError():
            return RpcError(
                -32002,
                f"Transaction simulation failed: {exc.reason}",
                _simulation_value(exc.err, exc.logs, exc.units),
            )
        case AirdropFailedError():
            return RpcError(-32603, "Internal error: airdrop failed")
        case ProtocolNotSetUpError():
            return RpcError(
                -32602,
                f"Invalid params: no ProtocolState for mint {exc.mint}; set up the protocol first",
            )
    return RpcError(-32603, f"Internal error: {exc}")


def _simulation_value(err: Any, logs: list[str], units: int, **extra: Any) -> dict[str, Any]:
    """An `RpcSimulateTransactionResult` object, as simulateTransaction and preflight give it."""
    value: dict[str, Any] = {
        "accounts": None,
        "err": err,
        "innerInstructions": None,
        "loadedAccountsDataSize": 0,
        "logs": logs,
        "replacementBlockhash": None,
        "returnData": None,
        "unitsConsumed": units,
    }
    value.update(extra)
    return value


def _param(params: list[Any], index: int, default: Any = None) -> Any:
    return params[index] if len(params) > index and params[index] is not None else default


def _config(params: list[Any], index: int) -> dict[str, Any]:
    value = _param(params, index, {})
    if not isinstance(value, dict):
        raise RpcError(-32602, f"Invalid params: configuration must be an object (got {value!r})")
    return value


def _encoding_config(params: list[Any], index: int) -> dict[str, Any]:
    """The config of getTransaction/getBlock: an object, or the deprecated encoding string."""
    value = _param(params, index, {})
    return {"encoding": value} if isinstance(value, str) else _config(params, index)


def _pubkey(value: Any) -> Pubkey:
    try:
        return Pubkey.from_string(value)
    except (ValueError, TypeError):
        raise RpcError(-32602, "Invalid params: Invalid") from None


def _int(value: Any, name: str) -> int:
    if type(value) is not int or value < 0:
        raise RpcError(
            -32602, f"Invalid params: {name} must be a non-negative integer (got {value!r})"
        )
    return value


class SolanaRpc:
    """The standard Solana methods simchain serves (see `METHODS`)."""

    def __init__(self, chain: SimChain) -> None:
        self.chain = chain
        #: calls served per method (known methods only, failed calls included).
        self.served: Counter[str] = Counter()
        self.methods: dict[str, Callable[[list[Any]], Any]] = {
            "getAccountInfo": self.get_account_info,
            "getBalance": self.get_balance,
            "getBlock": self.get_block,
            "getBlockHeight": self.get_slot,
            "getBlockTime": self.get_block_time,
            "getEpochInfo": self.get_epoch_info,
            "getFeeForMessage": self.get_fee_for_message,
            "getFirstAvailableBlock": lambda _: self.chain.ledger.first_available,
            "getGenesisHash": lambda _: str(
                self.chain.keys.blockhash(self.chain.config.first_slot)
            ),
            "getHealth": lambda _: "ok",
            "getIdentity": lambda _: {"identity": str(self.chain.keys.faucet.pubkey())},
            "getLatestBlockhash": self.get_latest_blockhash,
            "getMinimumBalanceForRentExemption": self.get_rent_exemption,
            "getMultipleAccounts": self.get_multiple_accounts,
            "getSignatureStatuses": self.get_signature_statuses,
            "getSignaturesForAddress": self.get_signatures_for_address,
            "getSlot": self.get_slot,
            "getTokenAccountBalance": self.get_token_account_balance,
            "getTransaction": self.get_transaction,
            "getTransactionCount": lambda _: self.chain.ledger.transaction_count(),
            "getVersion": lambda _: {"feature-set": 3294202862, "solana-core": API_VERSION},
            "isBlockhashValid": self.is_blockhash_valid,
            "minimumLedgerSlot": lambda _: self.chain.ledger.first_available,
            "requestAirdrop": self.request_airdrop,
            "sendTransaction": self.send_transaction,
            "simulateTransaction": self.simulate_transaction,
        }

    def call(self, method: str, params: list[Any]) -> Any:
        """`method`'s result.

        Raises:
            RpcError: the JSON-RPC error to answer (an unknown method, bad params, or a
                request the chain refused).
        """
        handler = self.methods.get(method)
        if handler is None:
            raise RpcError(-32601, "Method not found")
        self.served[method] += 1
        try:
            return handler(params)
        except ChainRequestError as exc:
            raise rpc_error(exc) from exc

    # -- helpers ---------------------------------------------------------------------------
    def _slot(self, config: dict[str, Any], *, minimum: str | None = None) -> int:
        commitment = config.get("commitment")
        if minimum == "confirmed" and commitment in ("processed", "recent", "single"):
            raise RpcError(
                -32602, "Invalid params: Method does not support commitment below `confirmed`"
            )
        slot = self.chain.slot_at(commitment)
        min_context = config.get("minContextSlot")
        if min_context is not None and slot < min_context:
            raise RpcError(
                -32016, "Minimum context slot has not been reached", {"contextSlot": slot}
            )
        return slot

    # -- slots and blockhashes -------------------------------------------------------------
    def get_slot(self, params: list[Any]) -> int:
        return self._slot(_config(params, 0))

    def get_block_time(self, params: list[Any]) -> int:
        slot = _int(_param(params, 0), "slot")
        if slot < self.chain.ledger.first_available:
            raise _cleaned_up(slot, self.chain.ledger.first_available)
        if self.chain.ledger.block(slot) is None or slot > self.chain.confirmed_slot:
            raise RpcError(-32004, f"Block not available for slot {slot}")
        return self.chain.block_time(slot)

    def get_epoch_info(self, params: list[Any]) -> dict[str, Any]:
        slot = self._slot(_config(params, 0))
        return {
            "absoluteSlot": slot,
            "blockHeight": slot,
            "epoch": slot // SLOTS_PER_EPOCH,
            "slotIndex": slot % SLOTS_PER_EPOCH,
            "slotsInEpoch": SLOTS_PER_EPOCH,
            "transactionCount": self.chain.ledger.transaction_count(),
        }

    def get_latest_blockhash(self, params: list[Any]) -> dict[str, Any]:
        config = _config(params, 0)
        slot = self._slot(config)
        blockhash, last_valid = self.chain.latest_blockhash(config.get("commitment"))
        return {
            "context": context(slot),
            "value": {"blockhash": str(blockhash), "lastValidBlockHeight": last_valid},
        }

    def is_blockhash_valid(self, params: list[Any]) -> dict[str, Any]:
        blockhash = _param(params, 0)
        if not isinstance(blockhash, str):
            raise RpcError(-32602, "Invalid params: blockhash must be a base58 string")
        slot = self._slot(_config(params, 1))
        hash_slot = self.chain.ledger.blockhash_slot(blockhash)
        valid = (
            hash_slot is not None and hash_slot <= slot and slot - hash_slot <= MAX_PROCESSING_AGE
        )
        return {"context": context(slot), "value": valid}

    # -- accounts --------------------------------------------------------------------------
    def get_account_info(self, params: list[Any]) -> dict[str, Any]:
        key = _pubkey(_param(params, 0))
        config = _config(params, 1)
        slot = self._slot(config)
        account = self.chain.ledger.accounts.get(key, at_slot=slot)
        return {
            "context": context(slot),
            "value": account_json(
                account, config.get("encoding", "base64"), config.get("dataSlice")
            ),
        }

    def get_multiple_accounts(self, params: list[Any]) -> dict[str, Any]:
        keys = _param(params, 0, [])
        if not isinstance(keys, list):
            raise RpcError(-32602, "Invalid params: expected an array of base58 public keys")
        if len(keys) > 100:
            raise RpcError(-32602, "Too many inputs provided; max 100")
        config = _config(params, 1)
        slot = self._slot(config)
        encoding = config.get("encoding", "base64")
        values = [
            account_json(
                self.chain.ledger.accounts.get(_pubkey(k), at_slot=slot),
                encoding,
                config.get("dataSlice"),
            )
            for k in keys
        ]
        return {"context": context(slot), "value": values}

    def get_balance(self, params: list[Any]) -> dict[str, Any]:
        key = _pubkey(_param(params, 0))
        slot = self._slot(_config(params, 1))
        account = self.chain.ledger.accounts.get(key, at_slot=slot)
        return {"context": context(slot), "value": account.lamports if account is not None else 0}

    def get_token_account_balance(self, params: list[Any]) -> dict[str, Any]:
        key = _pubkey(_param(params, 0))
        slot = self._slot(_config(params, 1))
        account = self.chain.ledger.accounts.get(key, at_slot=slot)
        if account is None or account.owner != TOKEN_2022_PROGRAM_ID or len(account.data) < 165:
            raise RpcError(-32602, "Invalid param: not a Token account")
        amount = decode_token_account(account.data)[2]
        ui = f"{amount / 10**DECIMALS:.9f}".rstrip("0").rstrip(".")
        return {
            "context": context(slot),
            "value": {
                "amount": str(amount),
                "decimals": DECIMALS,
                "uiAmount": amount / 10**DECIMALS,
                "uiAmountString": ui,
            },
        }

    def get_rent_exemption(self, params: list[Any]) -> int:
        return rent_exempt_lamports(_int(_param(params, 0), "data length"))

    def get_fee_for_message(self, params: list[Any]) -> dict[str, Any]:
        raw = _decode_wire(_param(params, 0), "base64")
        try:
            message: Message | MessageV0 = (
                MessageV0.from_bytes(raw[1:]) if raw and raw[0] & 0x80 else Message.from_bytes(raw)
            )
        except Exception as exc:
            raise RpcError(-32602, f"invalid message: {exc}") from exc
        slot = self._slot(_config(params, 1))
        fee = LAMPORTS_PER_SIGNATURE * message.header.num_required_signatures
        return {"context": context(slot), "value": fee}

    # -- transactions ----------------------------------------------------------------------
    def get_signatures_for_address(self, params: list[Any]) -> list[dict[str, Any]]:
        address = str(_pubkey(_param(params, 0)))
        config = _config(params, 1)
        slot = self._slot(config, minimum="confirmed")
        limit = config.get("limit") or 1000
        if type(limit) is not int or not 1 <= limit <= 1000:
            raise RpcError(-32602, "Invalid limit; max 1000")
        records = self.chain.ledger.signatures_for_address(
            address,
            max_slot=slot,
            limit=limit,
            before=config.get("before"),
            until=config.get("until"),
        )
        return [
            {
                "blockTime": self.chain.block_time(r.slot),
                "confirmationStatus": self.chain.commitment_of(r.slot),
                "err": r.err,
                "memo": r.memo,
                "signature": r.signature,
                "slot": r.slot,
            }
            for r in records
        ]

    def get_transaction(self, params: list[Any]) -> dict[str, Any] | None:
        signature = _param(params, 0)
        if not isinstance(signature, str):
            raise RpcError(-32602, "Invalid params: signature must be a base58 string")
        config = _encoding_config(params, 1)
        slot = self._slot(config, minimum="confirmed")
        record = self.chain.ledger.transaction(signature, slot)
        if record is None:
            return None
        return transaction_json(
            record,
            encoding=config.get("encoding") or "json",
            max_version=config.get("maxSupportedTransactionVersion"),
            block_time=self.chain.block_time(record.slot),
        )

    def get_block(self, params: list[Any]) -> dict[str, Any]:
        """A sealed block at the asked commitment, shaped as Agave's `UiConfirmedBlock`.

        Errors as Agave's: a slot above the commitment (or not produced yet) is -32004 "Block
        not available"; a slot before the first kept (pruned, or before genesis) is -32001
        "cleaned up". simchain skips no slot, so -32007/-32009 ("was skipped") never occur.
        """
        slot = _int(_param(params, 0), "slot")
        config = _encoding_config(params, 1)
        visible = self._slot(config, minimum="confirmed")
        details = config.get("transactionDetails") or "full"
        if details not in _BLOCK_DETAILS:
            raise RpcError(
                -32602,
                "Invalid params: simchain serves transactionDetails full, signatures or none "
                f"(got {details})",
            )
        first = self.chain.ledger.first_available
        if slot < first:
            raise _cleaned_up(slot, first)
        block = self.chain.ledger.block(slot)
        if block is None or slot > visible:
            raise RpcError(-32004, f"Block not available for slot {slot}")
        show_rewards = config.get("rewards")
        show_rewards = True if show_rewards is None else bool(show_rewards)
        result: dict[str, Any] = {
            "blockHeight": block.slot,  # no skipped slots: the height is the slot
            "blockTime": block.block_time,
            "blockhash": block.blockhash,
            "parentSlot": block.parent_slot,
            "previousBlockhash": block.previous_blockhash,
        }
        if details == "full":
            encoding = config.get("encoding") or "json"
            max_version = config.get("maxSupportedTransactionVersion")
            result["transactions"] = [
                transaction_with_meta(
                    record, encoding=encoding, max_version=max_version, show_rewards=show_rewards
                )
                for record in block.txs
            ]
        elif details == "signatures":
            result["signatures"] = [record.signature for record in block.txs]
        if show_rewards:
            result["rewards"] = []
        return result

    def get_signature_statuses(self, params: list[Any]) -> dict[str, Any]:
        signatures = _param(params, 0, [])
        if not isinstance(signatures, list):
            raise RpcError(-32602, "Invalid params: expected an array of signatures")
        if len(signatures) > 256:
            raise RpcError(-32602, "Too many inputs provided; max 256")
        tip = self.chain.tip
        values: list[dict[str, Any] | None] = []
        for signature in signatures:
            record = (
                self.chain.ledger.transaction(signature, tip)
                if isinstance(signature, str)
                else None
            )
            if record is None:
                values.append(None)
                continue
            level = self.chain.commitment_of(record.slot)
            values.append(
                {
                    "confirmationStatus": level,
                    "confirmations": None if level == "finalized" else tip - record.slot,
                    "err": record.err,
                    "slot": record.slot,
                    "status": status_json(record.err),
                }
            )
        return {"context": context(tip), "value": values}

    def request_airdrop(self, params: list[Any]) -> str:
        key = _pubkey(_param(params, 0))
        lamports = _int(_param(params, 1), "lamports")
        return self.chain.airdrop(key, lamports)

    def send_transaction(self, params: list[Any]) -> str:
        config = _config(params, 1)
        tx = _decode_transaction(_param(params, 0), config.get("encoding", "base58"))
        return self.chain.send(tx, skip_preflight=bool(config.get("skipPreflight", False)))

    def simulate_transaction(self, params: list[Any]) -> dict[str, Any]:
        config = _config(params, 1)
        tx = _decode_transaction(_param(params, 0), config.get("encoding", "base58"))
        sig_verify = bool(config.get("sigVerify", False))
        replace = bool(config.get("replaceRecentBlockhash", False))
        if sig_verify and replace:
            raise RpcError(
                -32602, "Invalid params: sigVerify may not be used with replaceRecentBlockhash"
            )
        slot = self._slot(config)
        if sig_verify:
            self.chain.runtime.verify_signatures(tx)
        extra: dict[str, Any] = {}
        if replace:
            blockhash, last_valid = self.chain.latest_blockhash("processed")
            extra["replacementBlockhash"] = {
                "blockhash": str(blockhash),
                "lastValidBlockHeight": last_valid,
            }
        try:
            execution = self.chain.execute(tx, check_blockhash=not replace)
        except TransactionRejectedError as exc:
            return {"context": context(slot), "value": _simulation_value(exc.err, [], 0, **extra)}
        requested = (config.get("accounts") or {}).get("addresses")
        if requested:
            encoding = (config.get("accounts") or {}).get("encoding", "base64")
            accounts = []
            for address in requested:
                key = _pubkey(address)
                after = (
                    execution.changes[key]
                    if key in execution.changes
                    else self.chain.ledger.accounts.get(key)
                )
                accounts.append(account_json(after, encoding, None))
            extra["accounts"] = accounts
        value = _simulation_value(execution.err, execution.logs, execution.units, **extra)
        return {"context": context(slot), "value": value}


def _cleaned_up(slot: int, first_available: int) -> RpcError:
    """Agave's answer for a slot below its first available block (getBlock, getBlockTime):
    `RpcCustomError::BlockCleanedUp` in anza-xyz/agave rpc-client-api/src/custom_error.rs."""
    return RpcError(
        -32001,
        f"Block {slot} cleaned up, does not exist on node. First available block: "
        f"{first_available}",
    )


def _decode_wire(value: Any, encoding: str) -> bytes:
    if not isinstance(value, str):
        raise RpcError(-32602, "Invalid params: expected an encoded string")
    try:
        if encoding == "base64":
            return base64.b64decode(value, validate=True)
        if encoding == "base58":
            return decode_b58(value)
    except (binascii.Error, ValueError) as exc:
        raise RpcError(-32602, f"invalid {encoding} encoding: {exc}") from exc
    raise RpcError(
        -32602,
        f"Invalid params: unsupported encoding: {encoding}. Supported encodings: base58, base64",
    )


def _decode_transaction(value: Any, encoding: str) -> VersionedTransaction:
    """A wire transaction, with Agave's size limits and messages."""
    limit = 1644 if encoding == "base64" else 1683
    if isinstance(value, str) and len(value) > limit:
        raise RpcError(
            -32602,
            f"{encoding} encoded solana_transaction::versioned::VersionedTransaction too large: "
            f"{len(value)} bytes (max: encoded/raw {limit}/{_MAX_PACKET})",
        )
    raw = _decode_wire(value, encoding)
    if len(raw) > _MAX_PACKET:
        raise RpcError(
            -32602,
            "decoded solana_transaction::versioned::VersionedTransaction too large: "
            f"{len(raw)} bytes (max: {_MAX_PACKET} bytes)",
        )
    try:
        return VersionedTransaction.from_bytes(raw)
    except Exception as exc:
        raise RpcError(
            -32602,
            f"failed to deserialize solana_transaction::versioned::VersionedTransaction: {exc}",
        ) from exc
