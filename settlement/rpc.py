"""The few Solana JSON-RPC calls settlement makes, over `solana.rpc.async_api.AsyncClient`.

The replay reads root accounts through the same client (`replay.chain.ChainReader`).

Library errors are translated here: `RpcUnavailableError` for anything worth retrying
(network, timeout, HTTP 5xx, JSON-RPC errors such as "node is behind", an answer that does not
parse), `TransactionRejectedError` for a transaction the node refused at send time.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from typing import Any

from solana.exceptions import SolanaRpcException
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Commitment as RpcCommitment
from solana.rpc.core import RPCException
from solana.rpc.models import TxOpts
from solders.hash import Hash
from solders.pubkey import Pubkey
from solders.signature import Signature

from aop.runtime.errors import RpcUnavailableError
from aop.runtime.settings import Commitment
from aop.settlement.errors import TransactionRejectedError

__all__ = ["COMMITMENT_RANK", "SettlementRpc", "SignatureState", "SolanaRpc"]

#: processed < confirmed < finalized.
COMMITMENT_RANK = {"processed": 0, "confirmed": 1, "finalized": 2}
_CUSTOM = re.compile(r'"Custom"\s*:\s*(\d+)|custom program error: 0x([0-9a-fA-F]+)')


@dataclass(frozen=True)
class SignatureState:
    """What the cluster knows of a signature: the slot it landed in, its error, commitment."""

    slot: int
    err: str | None
    confirmation: str

    def reaches(self, commitment: str) -> bool:
        return COMMITMENT_RANK.get(self.confirmation, -1) >= COMMITMENT_RANK[commitment]


class SettlementRpc:
    """The calls settlement needs; `SolanaRpc` is the real one (tests may wrap it)."""

    commitment: Commitment

    async def health(self) -> None:
        raise NotImplementedError

    async def account_data(self, address: Pubkey) -> bytes | None:
        raise NotImplementedError

    async def balance(self, address: Pubkey) -> int:
        raise NotImplementedError

    async def latest_blockhash(self) -> tuple[Hash, int]:
        raise NotImplementedError

    async def block_height(self) -> int:
        raise NotImplementedError

    async def send(self, transaction: bytes) -> None:
        raise NotImplementedError

    async def signature_state(self, signature: Signature) -> SignatureState | None:
        raise NotImplementedError

    async def close(self) -> None:
        return None


def _rpc_error_text(exc: RPCException) -> str:
    error = exc.args[0] if exc.args else exc
    for attr in ("to_json",):
        method = getattr(error, attr, None)
        if callable(method):
            try:
                return str(method())
            except Exception:  # solders objects without a JSON form
                break
    return str(error)


def _rejection(exc: RPCException) -> Exception:
    """A JSON-RPC error answer to sendTransaction: a refusal, or a transient failure."""
    text = _rpc_error_text(exc)
    try:
        payload: Any = json.loads(text)
    except ValueError:
        payload = None
    code = payload.get("code") if isinstance(payload, dict) else None
    message = payload.get("message", text) if isinstance(payload, dict) else text
    if "BlockhashNotFound" in text or "Blockhash not found" in text:
        return TransactionRejectedError("blockhash_not_found", message)
    if "AlreadyProcessed" in text or "already been processed" in text:
        return TransactionRejectedError("already_processed", message)
    if code == -32002 or "simulation failed" in text.lower():
        match = _CUSTOM.search(text)
        custom = None
        if match:
            custom = int(match.group(1)) if match.group(1) else int(match.group(2), 16)
        return TransactionRejectedError("program_error", message, custom)
    if code == -32003:  # signature verification failure
        return TransactionRejectedError("rejected", message)
    return RpcUnavailableError(f"sendTransaction: {message}")


class SolanaRpc(SettlementRpc):
    """`SettlementRpc` over solana-py's AsyncClient at `url`."""

    def __init__(self, url: str, *, commitment: Commitment, timeout: float) -> None:
        self.commitment = commitment
        self._timeout = timeout
        self._rpc_commitment = RpcCommitment(commitment)
        self._client = AsyncClient(url, commitment=self._rpc_commitment, timeout=timeout)

    async def _call(self, what: str, coro: Any) -> Any:
        try:
            return await asyncio.wait_for(coro, self._timeout * 1.5)
        except (SolanaRpcException, TimeoutError, OSError) as exc:
            raise RpcUnavailableError(f"{what}: {exc}") from exc
        except RPCException as exc:
            raise RpcUnavailableError(f"{what}: {_rpc_error_text(exc)}") from exc
        except ValueError as exc:  # an answer that does not parse (e.g. a proxy's error page)
            raise RpcUnavailableError(f"{what}: unparseable answer ({exc})") from exc

    async def health(self) -> None:
        """Return when getHealth answers "ok".

        Raises:
            RpcUnavailableError: no answer, an error answer, or a node that is not healthy.
        """
        if not await self._call("getHealth", self._client.is_connected()):
            raise RpcUnavailableError("getHealth: the node does not answer ok")

    async def account_data(self, address: Pubkey) -> bytes | None:
        """The account's data at our commitment, None when it does not exist."""
        resp = await self._call(
            "getAccountInfo",
            self._client.get_account_info(
                address, commitment=self._rpc_commitment, encoding="base64"
            ),
        )
        return None if resp.value is None else bytes(resp.value.data)

    async def balance(self, address: Pubkey) -> int:
        """The account's lamports at our commitment (0 when it does not exist)."""
        resp = await self._call(
            "getBalance", self._client.get_balance(address, commitment=self._rpc_commitment)
        )
        return int(resp.value)

    async def latest_blockhash(self) -> tuple[Hash, int]:
        """(blockhash, lastValidBlockHeight) at our commitment."""
        resp = await self._call(
            "getLatestBlockhash", self._client.get_latest_blockhash(commitment=self._rpc_commitment)
        )
        return resp.value.blockhash, int(resp.value.last_valid_block_height)

    async def block_height(self) -> int:
        """The block height at "confirmed" (a blockhash is dead once this passes its last
        valid height)."""
        resp = await self._call(
            "getBlockHeight", self._client.get_block_height(commitment=RpcCommitment.CONFIRMED)
        )
        return int(resp.value)

    async def send(self, transaction: bytes) -> None:
        """Send a signed transaction (preflight at our commitment).

        Raises:
            TransactionRejectedError: the node refused it (see the kinds).
            RpcUnavailableError: no answer, or a transient error answer.
        """
        opts = TxOpts(
            skip_preflight=False, preflight_commitment=self._rpc_commitment, max_retries=0
        )
        try:
            await asyncio.wait_for(
                self._client.send_raw_transaction(transaction, opts), self._timeout * 1.5
            )
        except RPCException as exc:
            raise _rejection(exc) from exc
        except (SolanaRpcException, TimeoutError, OSError) as exc:
            raise RpcUnavailableError(f"sendTransaction: {exc}") from exc
        except ValueError as exc:
            raise RpcUnavailableError(f"sendTransaction: unparseable answer ({exc})") from exc

    async def signature_state(self, signature: Signature) -> SignatureState | None:
        """The signature's status (searching history too), None when the cluster has none."""
        resp = await self._call(
            "getSignatureStatuses",
            self._client.get_signature_statuses([signature], search_transaction_history=True),
        )
        status = resp.value[0] if resp.value else None
        if status is None:
            return None
        confirmation = status.confirmation_status
        name = str(confirmation).rsplit(".", 1)[-1].lower() if confirmation is not None else ""
        if not name:
            name = "finalized" if status.confirmations is None else "processed"
        err = None if status.err is None else str(status.err)
        return SignatureState(slot=int(status.slot), err=err, confirmation=name)

    async def close(self) -> None:
        await self._client.close()
