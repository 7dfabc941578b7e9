"""The chain side: standard Solana JSON-RPC through the `solana` client.

* `ListenerRpc` (HTTP): `getSlot`, `getSignaturesForAddress` (the source of completeness),
  `getFirstAvailableBlock` (whether the node still holds the slots listed from),
  `getTransaction` (logs of a transaction the websocket did not deliver), `getBlock` (the
  logs of every transaction of a slot in one call, when many of them are missing) and
  `getBlockTime` (the time of a range's last slot, on its SlotBatches).
* `LogsWatcher` (websocket): `logsSubscribe` mentioning the program. Its notifications are a
  low-latency trigger and a cache of logs (`LogsCache`), never a source of completeness:
  they may be missed, repeated or cut off by a reconnect.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Commitment as RpcCommitment
from solana.rpc.core import RPCException
from solana.rpc.websocket_api import OverflowPolicy, SolanaWsClient
from solders.pubkey import Pubkey
from solders.rpc.config import RpcTransactionLogsFilterMentions
from solders.rpc.errors import LongTermStorageSlotSkippedMessage, SlotSkippedMessage
from solders.rpc.responses import LogsNotification
from solders.signature import Signature

from aop.runtime.backoff import Backoff, BackoffPolicy
from aop.runtime.errors import RpcUnavailableError
from aop.runtime.settings import Commitment
from aop.streams.listener.model import SignatureInfo, TxLogs

__all__ = ["ListenerRpc", "LogsCache", "LogsWatcher"]

log = logging.getLogger(__name__)

#: attempts per JSON-RPC call before the step backs off; retries wait up to 50/100 ms
#: (the retry after attempt n is the policy's n-th delay).
_ATTEMPTS = 3
#: how many slots `block_time` looks back past skipped ones.
_SKIPPED_SCAN = 64
#: the RPC's answers for a slot without a block.
_SKIPPED_ERRORS = (SlotSkippedMessage, LongTermStorageSlotSkippedMessage)
_SKIPPED = object()
_RETRY = BackoffPolicy(initial_s=0.025, cap_s=0.025 * 2 ** (_ATTEMPTS - 1))


class ListenerRpc:
    """HTTP JSON-RPC calls of the listener; every failure becomes `RpcUnavailableError`.

    Args:
        url: the HTTP endpoint.
        program_id: the program whose transactions are listed.
        commitment: the commitment of every call.
        timeout_s: per request.
        page: getSignaturesForAddress page size.
        concurrency: concurrent getTransaction and getBlock calls (one gate for both).
    """

    def __init__(
        self,
        url: str,
        *,
        program_id: str,
        commitment: Commitment,
        timeout_s: float,
        page: int,
        concurrency: int,
    ) -> None:
        self._client = AsyncClient(url, timeout=timeout_s, http2=False)
        self._program = Pubkey.from_string(program_id)
        self._commitment = RpcCommitment(commitment)
        self._page = page
        self._gate = asyncio.Semaphore(concurrency)
        #: the chain's first block (slots before it have no time), once asked.
        self._first_block: int | None = None

    async def close(self) -> None:
        await self._client.close()

    async def slot(self, commitment: Commitment | None = None) -> int:
        """getSlot at `commitment` (default: the listener's)."""
        level = self._commitment if commitment is None else RpcCommitment(commitment)
        response = await self._call("getSlot", partial(self._client.get_slot, level))
        return int(response.value)

    async def first_available_block(self) -> int:
        """getFirstAvailableBlock: the oldest slot the node (or its long-term storage) holds.

        A node with a limited ledger lists signatures only down to this slot and answers an
        unknown `until` by ignoring it, so a listing from below it is silently short."""
        response = await self._call(
            "getFirstAvailableBlock", self._client.get_first_available_block
        )
        return int(response.value)

    async def signatures_since(
        self, *, until: str | None, after_slot: int, max_slot: int
    ) -> list[SignatureInfo]:
        """Every program signature with `after_slot < slot <= max_slot`, newest first.

        Pages backwards from the newest with `before`, stopping at the cursor `until`, at a
        short page, or once a page reaches `after_slot`. Repeats are dropped.
        """
        found: dict[str, SignatureInfo] = {}
        until_sig = Signature.from_string(until) if until else None
        before: Signature | None = None
        while True:
            response = await self._call(
                "getSignaturesForAddress",
                partial(
                    self._client.get_signatures_for_address,
                    self._program,
                    before=before,
                    until=until_sig,
                    limit=self._page,
                    commitment=self._commitment,
                ),
            )
            page = response.value
            for entry in page:
                if after_slot < entry.slot <= max_slot:
                    signature = str(entry.signature)
                    err = None if entry.err is None else _error_text(entry.err)
                    found.setdefault(
                        signature, SignatureInfo(signature, entry.slot, entry.block_time, err)
                    )
            if len(page) < self._page or min(e.slot for e in page) <= after_slot:
                return list(found.values())
            before = page[-1].signature

    async def block_time(self, slot: int) -> int | None:
        """Unix seconds of `slot`'s block (getBlockTime), or of the newest produced block
        before it when the RPC says `slot` was skipped (up to `_SKIPPED_SCAN` slots back);
        None when none of them has a time, or for slots before the chain's first block
        (getFirstAvailableBlock, asked once).

        Raises:
            RpcUnavailableError: the RPC fails otherwise (the step is retried).
        """
        if self._first_block is None:
            response = await self._call(
                "getFirstAvailableBlock", self._client.get_first_available_block
            )
            self._first_block = int(response.value)
        lowest = max(slot - _SKIPPED_SCAN, self._first_block)
        for candidate in range(slot, lowest - 1, -1):
            found = await self._call("getBlockTime", partial(self._get_block_time, candidate))
            if found is not _SKIPPED:
                return None if found is None else int(found)
        return None

    async def _get_block_time(self, slot: int) -> object:
        try:
            response = await self._client.get_block_time(slot)
        except RPCException as exc:
            if exc.args and isinstance(exc.args[0], _SKIPPED_ERRORS):
                return _SKIPPED
            raise
        return response.value

    async def transaction(self, info: SignatureInfo) -> TxLogs:
        """getTransaction's log messages for `info` (its slot, time and error are kept)."""
        async with self._gate:
            response = await self._call("getTransaction", partial(self._get_transaction, info))
        value = response.value
        logs = _log_lines(value.transaction.meta)
        block_time = info.block_time if info.block_time is not None else value.block_time
        return TxLogs(info.signature, info.slot, block_time, info.err, logs)

    async def block(self, slot: int) -> dict[str, TxLogs]:
        """getBlock of `slot`: every transaction of the slot, by signature, with its logs,
        error and the block's time (`position` is left 0: the caller knows the order)."""
        async with self._gate:
            response = await self._call("getBlock", partial(self._get_block, slot))
        value = response.value
        found: dict[str, TxLogs] = {}
        for tx in value.transactions or ():
            meta = tx.meta
            signature = str(tx.transaction.signatures[0])
            logs = _log_lines(meta)
            err = None if meta is None or meta.err is None else _error_text(meta.err)
            found[signature] = TxLogs(signature, slot, value.block_time, err, logs)
        return found

    async def _get_block(self, slot: int) -> Any:
        # json, as getTransaction: its signatures come as text, no transaction to decode.
        response = await self._client.get_block(
            slot,
            encoding="json",
            max_supported_transaction_version=0,
            rewards=False,
            commitment=self._commitment,
        )
        if response.value is None:
            raise RpcUnavailableError(f"getBlock {slot}: not available yet")
        return response

    async def _get_transaction(self, info: SignatureInfo) -> Any:
        response = await self._client.get_transaction(
            Signature.from_string(info.signature),
            encoding="json",
            commitment=self._commitment,
            max_supported_transaction_version=0,
        )
        if response.value is None:
            raise RpcUnavailableError(f"getTransaction {info.signature}: not available yet")
        return response

    async def _call(self, method: str, request: Callable[[], Awaitable[Any]]) -> Any:
        """Run `request()`, retrying transient failures a few times with jittered delays.

        Raises:
            RpcUnavailableError: every attempt failed (the last error is chained).
        """
        attempt = 1
        while True:
            try:
                return await request()
            except Exception as exc:  # solana-py raises assorted httpx/RPC/parse errors
                if attempt >= _ATTEMPTS:
                    raise RpcUnavailableError(
                        f"{method} failed {attempt} times: {type(exc).__name__}: {exc}"
                    ) from exc
            await asyncio.sleep(_RETRY.delay(attempt))
            attempt += 1


class LogsCache:
    """Logs of notified transactions, by signature, until their slot is on the log.

    Args:
        max_entries: the oldest entries are dropped beyond this (they are re-fetched).
    """

    def __init__(self, max_entries: int) -> None:
        self._max = max_entries
        self._entries: OrderedDict[str, TxLogs] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, tx: TxLogs) -> None:
        if self._max == 0:
            return
        self._entries[tx.signature] = tx
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def get(self, signature: str) -> TxLogs | None:
        tx = self._entries.get(signature)
        if tx is None:
            self.misses += 1
        else:
            self.hits += 1
        return tx

    def prune(self, last_slot: int) -> None:
        """Forget every transaction at or below `last_slot` (written)."""
        for signature in [s for s, tx in self._entries.items() if tx.slot <= last_slot]:
            del self._entries[signature]


class LogsWatcher:
    """Keeps a `logsSubscribe` open, reconnecting with backoff, feeding `cache`.

    Args:
        ws_url: the websocket endpoint.
        program_id: notifications for transactions mentioning it.
        commitment: the subscription's commitment.
        cache: where notified logs go.
        on_notification: called after each notification (the service's early trigger).
        on_reconnect: called before each reconnect attempt (a metric).
        backoff: delays between attempts.
        timeout_s: subscribe request timeout.
    """

    def __init__(
        self,
        ws_url: str,
        *,
        program_id: str,
        commitment: Commitment,
        cache: LogsCache,
        on_notification: Callable[[], None],
        on_reconnect: Callable[[], None],
        backoff: Backoff,
        timeout_s: float,
    ) -> None:
        self._url = ws_url
        self._program = Pubkey.from_string(program_id)
        self._commitment = RpcCommitment(commitment)
        self._cache = cache
        self._notify = on_notification
        self._on_reconnect = on_reconnect
        self._backoff = backoff
        self._timeout = timeout_s
        self.connected = asyncio.Event()

    async def run(self) -> None:
        """Subscribe and consume forever (until cancelled)."""
        while True:
            try:
                await self._session()
                log.warning("websocket closed by the server; reconnecting")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("websocket failed (%s: %s); reconnecting", type(exc).__name__, exc)
            self.connected.clear()
            self._on_reconnect()
            await asyncio.sleep(self._backoff.next_delay())

    async def _session(self) -> None:
        client = SolanaWsClient(
            self._url,
            request_timeout=self._timeout,
            overflow=OverflowPolicy.DROP_OLDEST,
            open_timeout=self._timeout,
        )
        async with client:
            await client.logs_subscribe(
                filter_=RpcTransactionLogsFilterMentions(self._program),
                commitment=self._commitment,
            )
            self.connected.set()
            self._backoff.reset()
            log.info("websocket subscribed", extra={"ws_url": self._url})
            # Reconnected: the service backfills the gap from its checkpoint on every step.
            self._notify()
            async for notification in client:
                if isinstance(notification, LogsNotification):
                    self._accept(notification)

    def _accept(self, notification: LogsNotification) -> None:
        result = notification.result
        value = result.value
        err = None if value.err is None else _error_text(value.err)
        logs = tuple(value.logs)
        self._cache.put(TxLogs(str(value.signature), result.context.slot, None, err, logs))
        self._notify()


def _error_text(err: object) -> str:
    """A transaction error in one line (solders types print over several)."""
    return " ".join(str(err).split())


def _log_lines(meta: Any) -> tuple[str, ...] | None:
    """A transaction meta's log messages (None: the RPC gave none)."""
    return None if meta is None or meta.log_messages is None else tuple(meta.log_messages)
