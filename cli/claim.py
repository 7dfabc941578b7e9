"""Claim a wallet's global rewards with the proof the API serves (`aop claim`, `aop demo`).

What a wallet (or a relayer's SDK) does against the program as deployed today:

1. `GET /v1/global/claims/{wallet}` (amounts as decimal strings: any u64): the newest global
   root holding the wallet, its parts, proof and what is still claimable.
2. Nothing claimable: stop (answered as `ClaimOutcome.nothing`).
3. Build `claim_global_v2(root_seq, base_yield, attention_bonus, proof)` (global-v5) or
   `claim_global(root_seq, cumulative_total, proof)` (global-v4) with the answer's program id
   and mint, sign it with the wallet's key and send it (preflight at AOP_COMMITMENT).
4. Wait until the signature reaches AOP_COMMITMENT; read the wallet's token balance before
   and after. A root that left the GlobalRootConfig's ring of 4 meanwhile (6007) is fetched
   again once: the API then serves a newer root.
"""

from __future__ import annotations

import asyncio
import struct
import time
from dataclasses import dataclass
from typing import Any

import httpx
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.transaction import Transaction

from aop.core.claims.global_roots import claim_global_instruction, claim_global_v2_instruction
from aop.core.pda import GlobalProtocolSeeds, associated_token_address
from aop.runtime.errors import AopError
from aop.settlement.errors import TransactionRejectedError
from aop.settlement.rpc import SolanaRpc

__all__ = ["ClaimOutcome", "claim_global_rewards", "fetch_global_claim"]

#: the deployed program's "root_seq not in the ring" error (reference §G3.3).
_ROOT_LEFT_RING = 6007
_CONFIRM_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class ClaimOutcome:
    """What a claim did: the API's answer it used, the signature, the token balances."""

    answer: dict[str, Any]
    signature: str | None
    balance_before: int
    balance_after: int

    @property
    def nothing(self) -> bool:
        return self.signature is None

    @property
    def received(self) -> int:
        return self.balance_after - self.balance_before


def fetch_global_claim(api: str, wallet: Pubkey) -> dict[str, Any] | None:
    """Step 1: the API's answer, None when the wallet is in no global root (404).

    Raises:
        AopError: the API answered anything else, or not at all.
    """
    url = f"{api.rstrip('/')}/v1/global/claims/{wallet}"
    try:
        reply = httpx.get(url, timeout=10)
    except httpx.HTTPError as exc:
        raise AopError(f"GET {url}: {exc}") from exc
    if reply.status_code == 404:
        return None
    if reply.status_code != 200:
        raise AopError(f"GET {url}: {reply.status_code} {reply.text[:300]}")
    answer: dict[str, Any] = reply.json()
    return answer


def claim_global_rewards(
    *,
    api: str,
    rpc_url: str,
    wallet: Keypair,
    protocol_seeds: GlobalProtocolSeeds,
    commitment: Any = "finalized",
) -> ClaimOutcome:
    """Steps 1-4 of the module docstring.

    Raises:
        AopError: the wallet is in no global root, the API or the RPC failed, the program
            refused the claim, or it did not reach `commitment` in time.
    """
    return asyncio.run(_claim(api, rpc_url, wallet, protocol_seeds, commitment))


async def _claim(
    api: str, rpc_url: str, wallet: Keypair, seeds: GlobalProtocolSeeds, commitment: Any
) -> ClaimOutcome:
    rpc = SolanaRpc(rpc_url, commitment=commitment, timeout=10.0)
    try:
        for attempt in (1, 2):
            answer = fetch_global_claim(api, wallet.pubkey())
            if answer is None:
                raise AopError(f"wallet {wallet.pubkey()} is in no global root the API serves")
            mint = Pubkey.from_string(answer["mint"])
            before = await _balance(rpc, wallet.pubkey(), mint)
            if int(answer["claimable"]) == 0:
                return ClaimOutcome(answer, None, before, before)
            tx = _transaction(answer, wallet, seeds, (await rpc.latest_blockhash())[0])
            try:
                await rpc.send(bytes(tx))
            except TransactionRejectedError as exc:
                if exc.code == _ROOT_LEFT_RING and attempt == 1:
                    continue  # the API serves a newer root by now
                raise AopError(f"the program refused the claim: {exc}") from exc
            signature = tx.signatures[0]
            await _wait_for(rpc, signature, commitment)
            after = await _balance(rpc, wallet.pubkey(), mint)
            return ClaimOutcome(answer, str(signature), before, after)
        raise AopError("the claimed root left the ring twice")  # pragma: no cover - loop exits
    finally:
        await rpc.close()


def _transaction(
    answer: dict[str, Any], wallet: Keypair, seeds: GlobalProtocolSeeds, blockhash: Hash
) -> Transaction:
    """Step 3: the claim instruction of the answer's format, signed by the wallet."""
    common: dict[str, Any] = {
        "program_id": Pubkey.from_string(answer["program_id"]),
        "mint": Pubkey.from_string(answer["mint"]),
        "claimer": wallet.pubkey(),
        "root_seq": int(answer["root_seq"]),
        "proof": [bytes.fromhex(node) for node in answer["proof"]],
        "protocol_seeds": seeds,
    }
    if answer["format"] == "global-v5":
        ix = claim_global_v2_instruction(
            **common,
            base_yield=int(answer["base_yield"]),
            attention_bonus=int(answer["attention_bonus"]),
        )
    else:
        ix = claim_global_instruction(**common, cumulative_total=int(answer["cumulative_total"]))
    message = Message.new_with_blockhash([ix], wallet.pubkey(), blockhash)
    return Transaction([wallet], message, blockhash)


async def _wait_for(rpc: SolanaRpc, signature: Any, commitment: str) -> None:
    deadline = time.monotonic() + _CONFIRM_TIMEOUT_S
    while time.monotonic() < deadline:
        state = await rpc.signature_state(signature)
        if state is not None and state.err is not None:
            raise AopError(f"claim {signature} failed on-chain: {state.err}")
        if state is not None and state.reaches(commitment):
            return
        await asyncio.sleep(0.2)
    raise AopError(f"claim {signature} did not reach {commitment} in {_CONFIRM_TIMEOUT_S:.0f} s")


async def _balance(rpc: SolanaRpc, owner: Pubkey, mint: Pubkey) -> int:
    """The owner's token balance in its associated token account (0 before it exists): the
    SPL token account layout's `amount`, a u64 at offset 64 (after mint and owner)."""
    data = await rpc.account_data(associated_token_address(owner=owner, mint=mint))
    if data is None:
        return 0
    (amount,) = struct.unpack_from("<Q", data, 64)
    return int(amount)
