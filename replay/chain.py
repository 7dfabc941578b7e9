"""The roots the program stores on-chain, read over JSON-RPC for comparison.

The account is judged by `core.root_account.judge_root_account` (settlement reads the same
judgement before sending): our root there is a match, another root for our root_seq (or
epoch) a mismatch. The account keeps only the newest roots (cumulative-v2 4, ring-v0 10), so
a root no longer (or not yet) held by it is `not_on_chain`: that is not a mismatch.

One `getAccountInfo` per channel and run (at the settings' commitment), through settlement's
RPC client.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Literal

from solders.pubkey import Pubkey

from aop.core.root_account import OurRoot, RootAccountJudgement, Standing, judge_root_account
from aop.replay.compare import ChainReport
from aop.runtime.errors import RpcUnavailableError
from aop.runtime.settings import Commitment, redact_url
from aop.settlement.rpc import SolanaRpc

__all__ = ["ChainMode", "ChainReader", "chain_report"]

log = logging.getLogger(__name__)

#: auto: compare when the RPC answers; on: required (exit 2 when it does not); off: never.
ChainMode = Literal["auto", "on", "off"]


class ChainReader:
    """Reads root accounts through settlement's client (`settlement.rpc.SolanaRpc`), from
    synchronous code: the reader owns an event loop for it. `enabled` is False when the
    chain comparison is off."""

    def __init__(
        self, rpc_url: str, *, mode: ChainMode, commitment: Commitment, timeout: float
    ) -> None:
        self.url = rpc_url
        self.mode = mode
        self.commitment = commitment
        self.reason = ""
        self._loop: asyncio.Runner | None = None
        self._rpc: SolanaRpc | None = None
        self._accounts: dict[str, bytes | None] = {}
        if mode == "off":
            self.reason = "--no-chain"
            return
        loop = asyncio.Runner()
        rpc = SolanaRpc(rpc_url, commitment=commitment, timeout=timeout)
        try:
            loop.run(rpc.health())
        except RpcUnavailableError as exc:
            loop.run(rpc.close())
            loop.close()
            if mode == "on":
                raise RpcUnavailableError(
                    f"--chain: the RPC at {redact_url(rpc_url)} does not answer ({exc}); "
                    "operator action: set AOP_RPC_URL or run with --no-chain"
                ) from exc
            self.reason = f"RPC at {redact_url(rpc_url)} not answering"
            log.info("chain comparison skipped", extra={"reason": self.reason})
            return
        self._loop, self._rpc = loop, rpc

    @property
    def enabled(self) -> bool:
        return self._rpc is not None

    def close(self) -> None:
        if self._loop is not None and self._rpc is not None:
            self._loop.run(self._rpc.close())
            self._loop.close()
            self._loop = self._rpc = None

    def account(self, address: str) -> bytes | None:
        """The account's data (cached per run), None when it does not exist.

        Raises:
            RpcUnavailableError: the RPC failed, or the comparison is off.
        """
        if address not in self._accounts:
            if self._loop is None or self._rpc is None:
                raise RpcUnavailableError("the chain comparison is off")
            try:
                data = self._loop.run(self._rpc.account_data(Pubkey.from_string(address)))
            except RpcUnavailableError as exc:
                raise RpcUnavailableError(f"account {address}: {exc}") from exc
            self._accounts[address] = data
        return self._accounts[address]

    def compare(self, ours: OurRoot, address: str) -> ChainReport:
        """Compare a (replayed) root with what its root account at `address` holds."""
        if self._rpc is None:
            return ChainReport("skipped", self.reason)
        try:
            data = self.account(address)
        except RpcUnavailableError as exc:
            if self.mode == "on":
                raise
            return ChainReport("skipped", str(exc))
        return chain_report(judge_root_account(ours, data), address)


def chain_report(judged: RootAccountJudgement, address: str) -> ChainReport:
    """The replay's words for a root account's judgement: our root is there (match), another
    root is there for it (mismatch), or the account does not hold it (not_on_chain)."""
    standing = judged.standing
    if standing is Standing.UNKNOWN_FORMAT:
        return ChainReport("skipped", f"unknown claim format {judged.ours.format_name!r}")
    if standing is Standing.ABSENT:
        return ChainReport("not_on_chain", f"account {address} does not exist")
    if standing is Standing.UNDECODABLE:
        return ChainReport("mismatch", f"account {address} does not decode: {judged.error}")
    held = (judged.held_root, judged.held_dataset_hash, judged.published_slot)
    if standing is Standing.PUBLISHED:
        return ChainReport("match", "", *held)
    if standing is Standing.OTHER_ROOT:
        detail = f"on-chain root {(judged.held_root or b'').hex()}"
        if judged.held_dataset_hash is not None:
            detail += f" dataset_hash {judged.held_dataset_hash.hex()}"
        return ChainReport("mismatch", detail, *held)
    if judged.ours.format_name == "cumulative-v2":
        return ChainReport(
            "not_on_chain",
            f"latest_root_seq {judged.latest}; the account holds root_seqs "
            f"{list(judged.held_seqs)}",
        )
    return ChainReport(
        "not_on_chain", f"latest_epoch {judged.latest}; ring slot {judged.index} differs"
    )
