"""`aop settle`: publish each outbox root on-chain, per channel in root_seq order, at most once.

Protocol for one root (n) of a channel, after every root before it is on-chain:

1. If the entry is `sent` (a transaction was recorded before a crash or an expiry), ask the
   cluster about every recorded signature first: landed and confirmed -> `published`;
   landed with an error -> see step 5; not landed while its blockhash is still valid ->
   re-send THE SAME signed transaction (same signature: it cannot land twice) and confirm;
   not landed and expired -> record `expired` and go on.
2. Read the channel's root account at AOP_COMMITMENT and classify (`settlement.onchain`):
   our root already there -> `already_on_chain` (nothing sent); the chain ahead, behind, or
   holding another root for n -> `sequence_mismatch`, the channel stops until an operator
   releases it (`aop settle --release CHANNEL`).
3. Build the format's publish instruction, sign it with a fresh blockhash. With
   AOP_AUTO_PUBLISH=false record `dry_run` with the serialized message and stop here.
4. Record the `intent` (signature, blockhash, last valid height, signed bytes) and COMMIT,
   then send; poll the signature until it reaches AOP_COMMITMENT (re-broadcasting the same
   bytes while waiting) -> `published`, or until the blockhash's last valid block height is
   passed with no trace of it -> `expired`, back to step 2 (re-read, re-sign).
5. A transaction refused at send time or landed with an error: re-read the account; if
   it does not explain it (e.g. Unauthorized, paused), record `failed` and stop the channel.

RPC errors and timeouts are retried with capped exponential backoff (full jitter), each
recorded as `rpc_error`. Root n+1 of a channel is never sent before n is `published`. Every
final step is also a SettlementResult on aop.settlement (emitted from the database, so a
crash before producing only delays it).

Common failure scenarios: a crash after recording the intent (before or after sending) is
resolved by step 1 on restart; a crash before recording sends nothing; a second settler
waits on the advisory lock (one active settler per schema).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from enum import Enum
from functools import partial
from typing import Any, TypeVar

import psycopg
from confluent_kafka import Producer
from solders.keypair import Keypair
from solders.message import MessageV0, to_bytes_versioned
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from aop.core.claims import TreeScope, get_claim_format
from aop.core.errors import CoreError
from aop.log.avro import AvroCodec, codec_for
from aop.log.kafka import SETTLEMENT
from aop.runtime.backoff import DATABASE_OUTAGE, BackoffPolicy
from aop.runtime.errors import RpcUnavailableError
from aop.runtime.faults import FaultPlan
from aop.runtime.settings import Settings
from aop.settlement import metrics
from aop.settlement.errors import TransactionRejectedError
from aop.settlement.onchain import ChainView, Verdict, classify
from aop.settlement.outbox import FINAL_OUTCOMES, Intent, OutboxEntry, SettlementStore
from aop.settlement.rpc import SettlementRpc, SignatureState

__all__ = ["Settler"]

log = logging.getLogger(__name__)

T = TypeVar("T")
_REBROADCAST_S = 2.0


class _Stopped(Exception):
    """Raised inside a channel task when the settler is asked to stop."""


class _Fate(Enum):
    PUBLISHED = "published"
    LANDED_FAILED = "landed_failed"
    REJECTED = "rejected"
    EXPIRED = "expired"
    PENDING = "pending"  # not landed, still valid, and we may not send (dry run)


class Settler:
    """Runs the protocol of the module docstring over every channel with open entries."""

    def __init__(
        self,
        settings: Settings,
        store: SettlementStore,
        rpc: SettlementRpc,
        keypair: Keypair,
        *,
        producer: Producer | None,
        codec: AvroCodec | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._rpc = rpc
        self._keypair = keypair
        self._producer = producer
        self._codec = codec or codec_for(settings)
        self._topic = settings.topic(SETTLEMENT)
        self._stop = asyncio.Event()
        self._blocked_logged: set[tuple[str, int]] = set()
        self._emitting = asyncio.Lock()
        self._rng = rng or random.Random()
        self._faults = FaultPlan.for_service(settings, "settlement")
        self._balance_due = 0.0
        metrics.PUBLISHER_MIN_LAMPORTS.set(settings.settlement_min_balance_lamports)
        self._rpc_retry = BackoffPolicy(
            initial_s=settings.settlement_backoff_initial_ms / 1000,
            cap_s=settings.settlement_backoff_max_ms / 1000,
        )

    # -- loop --------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Settle until `stop` is set (an in-flight confirmation is left `sent` for restart)."""
        self._stop = stop
        failures = 0
        while not stop.is_set():
            try:
                if not await self._store.try_lead():
                    log.info("another settler holds the lock for this schema; standing by")
                    await self._pause(self._settings.settlement_poll_interval_s * 5)
                    continue
                worked = await self.run_once()
                failures = 0
            except psycopg.OperationalError as exc:
                failures += 1
                log.error(
                    "database error; reconnecting",
                    extra={"error": str(exc).splitlines()[0] if str(exc) else repr(exc)},
                )
                await self._pause(DATABASE_OUTAGE.delay(failures, self._rng))
                with contextlib.suppress(psycopg.OperationalError):
                    await self._store.reconnect()
                continue
            if not worked:
                await self._pause(self._settings.settlement_poll_interval_s)

    async def run_once(self) -> bool:
        """One pass over every channel with open entries; True if anything was recorded."""
        await self._emit_results()
        channels = await self._store.channels()
        results = await asyncio.gather(
            *(self._settle_channel(c) for c in channels), return_exceptions=True
        )
        worked = False
        for channel, result in zip(channels, results, strict=True):
            if isinstance(result, _Stopped):
                continue
            if isinstance(result, BaseException):
                log.error(
                    "channel settlement crashed",
                    extra={"channel_config": channel, "error": repr(result)},
                )
                continue
            worked = worked or bool(result)
        await self._emit_results()
        metrics.LAG_ROOTS.set(await self._store.lag())
        await self._watch_balance()
        return worked

    async def _watch_balance(self) -> None:
        """Every AOP_SETTLEMENT_BALANCE_INTERVAL_S: the publisher's lamports into
        `aop_settlement_publisher_lamports`, and a warning below the minimum (an RPC error
        only skips this reading)."""
        now = time.monotonic()
        if now < self._balance_due:
            return
        self._balance_due = now + self._settings.settlement_balance_interval_s
        try:
            lamports = await self._rpc.balance(self._keypair.pubkey())
        except RpcUnavailableError as exc:
            log.warning("cannot read the publisher's balance", extra={"error": str(exc)})
            return
        metrics.PUBLISHER_LAMPORTS.set(lamports)
        minimum = self._settings.settlement_min_balance_lamports
        if lamports < minimum:
            log.warning(
                "publisher balance low; operator action: fund the publisher",
                extra={
                    "publisher": str(self._keypair.pubkey()),
                    "lamports": lamports,
                    "min_lamports": minimum,
                },
            )

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    # -- one channel -------------------------------------------------------------------------

    async def _settle_channel(self, channel_config: str) -> bool:
        """Settle the channel's entries in order until done or blocked; True if any step."""
        entries = await self._store.open_entries(channel_config)
        worked = False
        assumed: set[int] = set()
        for entry in entries:
            if self._stop.is_set():
                raise _Stopped
            if entry.status in ("failed", "sequence_mismatch"):
                key = (entry.channel_config, entry.root_seq)
                if key not in self._blocked_logged:
                    self._blocked_logged.add(key)
                    log.error(
                        "channel stopped; operator action: fix the cause, then "
                        "`aop settle --release <channel>`",
                        extra={
                            "channel": entry.channel,
                            "root_seq": entry.root_seq,
                            "status": entry.status,
                        },
                    )
                return worked
            if entry.status == "dry_run" and not self._settings.auto_publish:
                assumed.add(entry.root_seq)
                continue
            outcome = await self._settle_entry(entry, assumed)
            worked = worked or outcome is not None
            if outcome == "dry_run":
                assumed.add(entry.root_seq)
                continue
            if outcome not in ("published", "already_on_chain"):
                return worked
        return worked

    async def _settle_entry(self, entry: OutboxEntry, assumed: set[int]) -> str | None:
        """Run steps 1-5 for one entry; returns the final outcome recorded (None: none yet)."""
        try:
            fmt = get_claim_format(entry.format)
            scope = TreeScope(
                program_id=Pubkey.from_string(entry.program_id),
                mint=Pubkey.from_string(entry.mint),
                channel=None if fmt.is_global else entry.channel,
                root_seq=entry.root_seq,
                epoch=entry.epoch,
                global_protocol=self._settings.global_protocol_state,
            )
            account = fmt.root_account(scope)
        except (CoreError, ValueError) as exc:
            return await self._final(entry, "failed", error=f"cannot build the publish: {exc}")
        if entry.status == "sent":
            fate, state, landed, view = await self._resolve(entry, account)
            if view is not None:
                return await self._conclude(entry, view)
            if fate is _Fate.PUBLISHED and state is not None:
                return await self._final(entry, "published", signature=landed, slot=state.slot)
            if fate in (_Fate.LANDED_FAILED, _Fate.REJECTED):
                return await self._explain_failure(entry, account, str(state and state.err))
            if fate is _Fate.PENDING:
                return None
        while True:
            if self._stop.is_set():
                raise _Stopped
            data = await self._retry(
                entry, "read the channel account", lambda: self._rpc.account_data(account)
            )
            view = classify(entry.our_root, data, assumed_published=assumed)
            if view.verdict is not Verdict.NEXT:
                return await self._conclude(entry, view)
            instruction = fmt.publish_instruction(
                scope,
                payer=self._keypair.pubkey(),
                root=entry.root,
                dataset_hash=entry.dataset_hash,
            )
            blockhash, last_valid = await self._retry(
                entry, "get a blockhash", self._rpc.latest_blockhash
            )
            message = MessageV0.try_compile(self._keypair.pubkey(), [instruction], [], blockhash)
            message_b64 = base64.b64encode(to_bytes_versioned(message)).decode()
            if not self._settings.auto_publish:
                return await self._final(
                    entry, "dry_run", message_b64=message_b64, error=view.detail
                )
            transaction = VersionedTransaction(message, [self._keypair])
            raw = bytes(transaction)
            signature = transaction.signatures[0]
            await self._step(
                entry,
                "intent",
                signature=str(signature),
                blockhash=str(blockhash),
                last_valid_block_height=last_valid,
                message_b64=message_b64,
                transaction_b64=base64.b64encode(raw).decode(),
            )
            self._faults.hit("before_send")
            fate, state = await self._confirm(entry, raw, signature, last_valid, send_first=True)
            if fate is _Fate.PUBLISHED and state is not None:
                return await self._final(
                    entry, "published", signature=str(signature), slot=state.slot
                )
            if fate is _Fate.EXPIRED:
                await self._step(entry, "expired", signature=str(signature))
                continue
            return await self._explain_failure(entry, account, str(state and state.err))

    async def _resolve(
        self, entry: OutboxEntry, account: Pubkey
    ) -> tuple[_Fate, SignatureState | None, str, ChainView | None]:
        """Step 1: what became of the transactions recorded for `entry` (and which one).

        When no recorded signature is known to the cluster, the account is read before
        anything is re-sent: if it already holds our root (or shows a mismatch), that view is
        returned and nothing is sent.
        """
        intents = await self._store.intents(entry.channel_config, entry.root_seq)
        for intent in intents:
            signature = Signature.from_string(intent.signature)
            state = await self._retry(
                entry,
                "check a recorded signature",
                partial(self._rpc.signature_state, signature),
            )
            if state is not None:
                latest = intent
                break
        else:
            data = await self._retry(
                entry, "read the channel account", partial(self._rpc.account_data, account)
            )
            view = classify(entry.our_root, data)
            if view.verdict is not Verdict.NEXT:
                return _Fate.EXPIRED, None, "", view
            if not intents:
                return _Fate.EXPIRED, None, "", None
            latest = intents[-1]
        fate, state = await self._confirm(
            entry,
            latest.transaction,
            Signature.from_string(latest.signature),
            latest.last_valid_block_height,
            send_first=False,
            may_send=self._settings.auto_publish,
            intent=latest,
        )
        return fate, state, latest.signature, None

    async def _confirm(
        self,
        entry: OutboxEntry,
        raw: bytes,
        signature: Signature,
        last_valid: int,
        *,
        send_first: bool,
        may_send: bool = True,
        intent: Intent | None = None,
    ) -> tuple[_Fate, SignatureState | None]:
        """Send (if asked) and poll until the signature reaches our commitment or expires."""
        commitment = self._settings.commitment
        loop = asyncio.get_running_loop()
        last_send = -1e9  # (re)send at once: the same signed bytes cannot land twice
        first_send = send_first
        send_failures = 0
        while True:
            if self._stop.is_set():
                raise _Stopped
            if may_send and loop.time() - last_send >= _REBROADCAST_S:
                try:
                    await self._rpc.send(raw)
                except TransactionRejectedError as exc:
                    last_send = loop.time()
                    if exc.kind in ("program_error", "rejected"):
                        await self._step(
                            entry, "rpc_error", signature=str(signature), error=str(exc)
                        )
                        state = await self._retry(
                            entry,
                            "check the signature",
                            lambda: self._rpc.signature_state(signature),
                        )
                        if state is None:
                            return _Fate.REJECTED, SignatureState(0, str(exc), "")
                    # blockhash_not_found / already_processed: the polls below tell whether
                    # it landed, or that it expired once the block height passes
                except RpcUnavailableError as exc:
                    # it may or may not have reached the cluster: poll, and send again soon
                    await self._step(entry, "rpc_error", signature=str(signature), error=str(exc))
                    send_failures += 1
                    await self._backoff(send_failures - 1)
                else:
                    send_failures = 0
                    last_send = loop.time()
                    if first_send:
                        self._faults.hit("after_send")
                    first_send = False
            try:
                state = await self._rpc.signature_state(signature)
            except RpcUnavailableError as exc:
                await self._step(entry, "rpc_error", signature=str(signature), error=str(exc))
                await self._backoff(0)
                continue
            if state is not None:
                if state.err is not None:
                    return _Fate.LANDED_FAILED, state
                if state.reaches(commitment):
                    return _Fate.PUBLISHED, state
                last_send = loop.time()  # landed: no need to re-broadcast
            else:
                try:
                    height = await self._rpc.block_height()
                except RpcUnavailableError as exc:
                    await self._step(entry, "rpc_error", error=str(exc))
                    await self._backoff(0)
                    continue
                if height > last_valid:
                    state = await self._retry(
                        entry, "check the signature", lambda: self._rpc.signature_state(signature)
                    )
                    if state is None:
                        if intent is not None:
                            await self._step(entry, "expired", signature=str(signature))
                        return _Fate.EXPIRED, None
                    continue
                if not may_send:
                    return _Fate.PENDING, None
            await self._pause(self._settings.settlement_confirm_poll_s)

    # -- outcomes ----------------------------------------------------------------------------

    async def _explain_failure(self, entry: OutboxEntry, account: Pubkey, error: str) -> str:
        """Step 5: the account may show why (someone else published); else `failed`."""
        data = await self._retry(
            entry, "read the channel account", lambda: self._rpc.account_data(account)
        )
        view = classify(entry.our_root, data)
        if view.verdict is Verdict.NEXT:
            return await self._final(
                entry,
                "failed",
                error=f"the program refused the publish ({error}); operator action: check the "
                "publisher key, the protocol's pause flag and the channel, then release it",
            )
        return await self._conclude(entry, view)

    async def _conclude(self, entry: OutboxEntry, view: ChainView) -> str:
        if view.verdict is Verdict.ON_CHAIN:
            return await self._final(
                entry, "already_on_chain", slot=view.published_slot, error=view.detail
            )
        if view.verdict is Verdict.MISSING:
            return await self._final(entry, "failed", error=view.detail)
        log.error(
            "sequence mismatch; channel stopped",
            extra={"channel": entry.channel, "root_seq": entry.root_seq, "detail": view.detail},
        )
        return await self._final(entry, "sequence_mismatch", error=view.detail)

    async def _final(self, entry: OutboxEntry, outcome: str, **fields: Any) -> str:
        await self._step(entry, outcome, **fields)
        if outcome in ("published", "already_on_chain"):
            metrics.LAST_PUBLISHED_SEQ.labels(entry.channel).set(entry.root_seq)
        log.info(
            "settled",
            extra={
                "channel": entry.channel,
                "root_seq": entry.root_seq,
                "outcome": outcome,
                "signature": fields.get("signature"),
                "slot": fields.get("slot"),
            },
        )
        await self._emit_results()
        return outcome

    async def _step(self, entry: OutboxEntry, outcome: str, **fields: Any) -> None:
        await self._store.record(entry, outcome, **fields)
        metrics.ATTEMPTS.labels(outcome).inc()

    # -- retries -----------------------------------------------------------------------------

    async def _retry(self, entry: OutboxEntry, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """`call()` until it answers, with capped exponential backoff; `rpc_error` recorded."""
        attempt = 0
        while True:
            if self._stop.is_set():
                raise _Stopped
            try:
                return await call()
            except RpcUnavailableError as exc:
                log.warning(
                    "RPC failed; retrying",
                    extra={"channel": entry.channel, "what": what, "error": str(exc)},
                )
                await self._step(entry, "rpc_error", error=f"{what}: {exc}")
                await self._backoff(attempt)
                attempt += 1

    async def _backoff(self, attempt: int) -> None:
        """Wait the `attempt`-th delay of AOP_SETTLEMENT_BACKOFF_* (full jitter)."""
        await self._pause(self._rpc_retry.delay(attempt, self._rng))

    # -- SettlementResult --------------------------------------------------------------------

    async def _emit_results(self) -> None:
        """Produce the SettlementResult of every final attempt not yet on the log."""
        if self._producer is None:
            return
        async with self._emitting:
            await self._emit_locked(self._producer)

    async def _emit_locked(self, producer: Producer) -> None:
        rows = await self._store.results_to_emit()
        if not rows:
            return
        for row in rows:
            outcome = row["outcome"]
            if outcome not in FINAL_OUTCOMES:
                continue
            value = {
                "channel": row["channel"],
                "channel_config": row["channel_config"],
                "root_seq": int(row["root_seq"]),
                "root": bytes(row["root"]),
                "outcome": outcome.upper(),
                "signature": row["signature"],
                "slot": None if row["slot"] is None else int(row["slot"]),
                "attempts": int(row["attempts"]),
                "detail": row["error"],
            }
            producer.produce(
                self._topic,
                self._codec.encode("SettlementResult", value, topic=self._topic),
                key=row["channel_config"].encode(),
            )
        remaining = await asyncio.to_thread(producer.flush, 10)
        if remaining:
            log.warning(
                "SettlementResults not acknowledged yet; will re-emit", extra={"n": remaining}
            )
            return
        await self._store.mark_emitted([int(row["attempt_id"]) for row in rows])
