"""The roots the program stores on-chain, read over JSON-RPC for comparison.

cumulative-v2: the channel's ChannelConfigV2 keeps the last 4 roots, entry `root_seq % 4`
(`core.accounts.ChannelConfigV2.root_entry`), each with its dataset_hash and published slot.
ring-v0: the ChannelState keeps 10 epochs, slot `epoch % 10` (`ChannelState.slot_for`).
A root no longer (or not yet) held by the account is `not_on_chain`: that is not a mismatch.

One `getAccountInfo` per channel and run (at the settings' commitment), over httpx.
"""

from __future__ import annotations

import base64
import logging
from typing import Any, Literal

import httpx

from aop.core.accounts import ChannelConfigV2, ChannelState
from aop.core.errors import AccountDecodeError
from aop.replay.compare import ChainReport
from aop.replay.errors import ChainUnavailableError
from aop.runtime.settings import redact_url

__all__ = ["ChainMode", "ChainReader", "compare_cumulative", "compare_ring"]

log = logging.getLogger(__name__)

#: auto: compare when the RPC answers; on: required (exit 2 when it does not); off: never.
ChainMode = Literal["auto", "on", "off"]


class ChainReader:
    """Reads root accounts; `enabled` is False when the chain comparison is off."""

    def __init__(self, rpc_url: str, *, mode: ChainMode, commitment: str, timeout: float) -> None:
        self.url = rpc_url
        self.mode = mode
        self.commitment = commitment
        self.reason = ""
        self._client: httpx.Client | None = None
        self._accounts: dict[str, bytes | None] = {}
        if mode == "off":
            self.reason = "--no-chain"
            return
        client = httpx.Client(timeout=timeout)
        try:
            self._call(client, "getHealth", [])
        except (httpx.HTTPError, ValueError) as exc:
            client.close()
            if mode == "on":
                raise ChainUnavailableError(
                    f"--chain: the RPC at {redact_url(rpc_url)} does not answer ({exc}); "
                    "operator action: set AOP_RPC_URL or run with --no-chain"
                ) from exc
            self.reason = f"RPC at {redact_url(rpc_url)} not answering"
            log.info("chain comparison skipped", extra={"reason": self.reason})
            return
        self._client = client

    @property
    def enabled(self) -> bool:
        return self._client is not None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def _call(self, client: httpx.Client, method: str, params: list[Any]) -> Any:
        response = client.post(
            self.url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        )
        response.raise_for_status()
        body = response.json()
        if "error" in body:
            raise ValueError(f"{method}: {body['error']}")
        return body.get("result")

    def account(self, address: str) -> bytes | None:
        """The account's data (cached per run), None when it does not exist.

        Raises:
            ChainUnavailableError: the RPC failed.
        """
        if address not in self._accounts:
            if self._client is None:
                raise ChainUnavailableError("the chain comparison is off")
            try:
                result = self._call(
                    self._client,
                    "getAccountInfo",
                    [address, {"encoding": "base64", "commitment": self.commitment}],
                )
            except (httpx.HTTPError, ValueError) as exc:
                raise ChainUnavailableError(f"getAccountInfo {address}: {exc}") from exc
            value = (result or {}).get("value")
            self._accounts[address] = None if value is None else base64.b64decode(value["data"][0])
        return self._accounts[address]

    def compare(
        self,
        format_name: str,
        address: str,
        *,
        root_seq: int,
        epoch: int,
        root: bytes,
        dataset_hash: bytes,
    ) -> ChainReport:
        """Compare a (replayed) root with what its root account holds."""
        if self._client is None:
            return ChainReport("skipped", self.reason)
        try:
            data = self.account(address)
        except ChainUnavailableError as exc:
            if self.mode == "on":
                raise
            return ChainReport("skipped", str(exc))
        if data is None:
            return ChainReport("not_on_chain", f"account {address} does not exist")
        try:
            if format_name == "cumulative-v2":
                return compare_cumulative(
                    ChannelConfigV2.decode(data), root_seq, root, dataset_hash
                )
            if format_name == "ring-v0":
                return compare_ring(ChannelState.decode(data), epoch, root)
        except AccountDecodeError as exc:
            return ChainReport("mismatch", f"account {address} does not decode: {exc}")
        return ChainReport("skipped", f"unknown claim format {format_name!r}")


def compare_cumulative(
    config: ChannelConfigV2, root_seq: int, root: bytes, dataset_hash: bytes
) -> ChainReport:
    """What a ChannelConfigV2 says about (root_seq, root, dataset_hash)."""
    entry = config.root_entry(root_seq)
    if entry is None:
        held = sorted(e.seq for e in config.roots if e.seq)
        return ChainReport(
            "not_on_chain",
            f"latest_root_seq {config.latest_root_seq}; the account holds root_seqs {held}",
        )
    same = entry.root == root and entry.dataset_hash == dataset_hash
    detail = (
        ""
        if same
        else (f"on-chain root {entry.root.hex()} dataset_hash {entry.dataset_hash.hex()}")
    )
    return ChainReport(
        "match" if same else "mismatch",
        detail,
        entry.root,
        entry.dataset_hash,
        entry.published_slot,
    )


def compare_ring(state: ChannelState, epoch: int, root: bytes) -> ChainReport:
    """What a ring-v0 ChannelState says about (epoch, root)."""
    slot = state.slot_for(epoch)
    if slot is None:
        return ChainReport(
            "not_on_chain", f"latest_epoch {state.latest_epoch}; ring slot {epoch % 10} differs"
        )
    same = slot.root == root
    return ChainReport(
        "match" if same else "mismatch",
        "" if same else f"on-chain root {slot.root.hex()}",
        slot.root,
    )
