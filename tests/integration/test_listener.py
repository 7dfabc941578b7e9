"""`Listener` against the simulated chain and the real broker: every event the simulator
finalized is on the log exactly once, through websocket drops, missed and repeated
notifications and RPC errors; bad input goes to the DLQ and the listener keeps going."""

from __future__ import annotations

import asyncio
import base64
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY
from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.transaction import Transaction, VersionedTransaction

from aop.core.events import ChannelStaked, ProtocolPaused
from aop.core.routing import partition_for_channel
from aop.log.kafka import CHAIN_EVENTS, DLQ
from aop.runtime.settings import Settings
from aop.simchain.config import SimConfig
from aop.simchain.ledger import EmittedEvent, TxRecord
from aop.simchain.server import SimChainServer
from aop.streams.listener import Listener
from tests.integration.test_listener_sink import read_committed

PROGRAM = "GnGzNdsQMxMpJfMeqnkGPsvHm8kwaDidiKjNU2dCVZop"
FAST = {
    "AOP_LISTENER_MIN_INTERVAL_MS": "40",
    "AOP_LISTENER_MAX_INTERVAL_MS": "150",
    "AOP_LISTENER_BACKOFF_INITIAL_MS": "20",
    "AOP_LISTENER_BACKOFF_MAX_MS": "400",
    "AOP_LISTENER_RPC_TIMEOUT_S": "3",
}


def sim_config(**overrides: Any) -> SimConfig:
    """A fast, busy chain: 20 ms slots, finality 8 slots behind."""
    return SimConfig(**{"slot_ms": 20, "finality_depth": 8, "rate": 300.0, **overrides})


@dataclass
class LogView:
    """What the log holds, checked for the SlotBatch invariants on the way in."""

    ids: list[str]
    events: list[dict[str, Any]]
    batches: list[tuple[int, dict[str, Any]]]
    last_slot: dict[int, int]
    events_per_partition: Counter[int]


def read_log(settings: Settings, *, first_slot: int) -> LogView:
    """Every committed SlotBatch; asserts contiguous, ordered, complete-looking ranges."""
    partitions = settings.chain_partitions
    batches = read_committed(settings, settings.topic(CHAIN_EVENTS), partitions)
    expected_next = dict.fromkeys(range(partitions), first_slot)
    events: list[dict[str, Any]] = []
    per_partition: Counter[int] = Counter()
    for partition, batch in batches:
        assert batch["partition"] == partition
        assert batch["first_slot"] == expected_next[partition], (partition, batch["first_slot"])
        assert batch["last_slot"] >= batch["first_slot"]
        expected_next[partition] = batch["last_slot"] + 1
        slots = [e["slot"] for e in batch["events"]]
        assert slots == sorted(slots)
        for event in batch["events"]:
            assert batch["first_slot"] <= event["slot"] <= batch["last_slot"]
            channel = event["fields"].get("channel") or event["fields"].get("channel_config")
            want = (
                0
                if channel is None
                else partition_for_channel(bytes(Pubkey.from_string(channel)), partitions)
            )
            assert want == partition, event["id"]
            events.append(event)
            per_partition[partition] += 1
    last = {p: s - 1 for p, s in expected_next.items()}
    return LogView([e["id"] for e in events], events, batches, last, per_partition)


def emitted_ids(sim: SimChainServer, *, up_to: int) -> list[str]:
    """The simulator's record, in chain order (slot, transaction index, event index)."""
    return [e.id for e in sim.chain.emitted_events() if e.slot <= up_to]


def assert_exactly(view: LogView, expected: list[str]) -> None:
    """The log holds each expected id once, nothing else, and each partition in chain order."""
    assert Counter(view.ids) == Counter(expected)  # nothing missing, nothing twice
    partition_of = {e["id"]: p for p, b in view.batches for e in b["events"]}
    for partition in range(len(view.last_slot)):
        on_log = [e["id"] for p, b in view.batches if p == partition for e in b["events"]]
        assert on_log == [i for i in expected if partition_of[i] == partition]


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def run_until_caught_up(
    listener: Listener,
    sim: SimChainServer,
    *,
    busy_s: float,
    during: Callable[[], Any] | None = None,
) -> tuple[int, asyncio.Task[None], asyncio.Event]:
    """Run the workload for `busy_s` (calling `during` halfway), pause it, and wait until the
    listener has written every slot the paused chain finalized. Returns that slot."""
    stop = asyncio.Event()
    task = asyncio.create_task(listener.run(stop))
    await asyncio.sleep(busy_s / 2)
    if during is not None:
        during()
    await asyncio.sleep(busy_s / 2)
    sim.chain.workload.enabled = False
    target = sim.chain.tip
    await sim.wait_for_slot(target, timeout=30)
    for _ in range(300):
        if listener.checkpoint is not None and listener.checkpoint.last_slot >= target:
            break
        assert not task.done(), task
        await asyncio.sleep(0.05)
    assert listener.checkpoint is not None and listener.checkpoint.last_slot >= target
    return target, task, stop


async def test_listener_writes_every_event_once_across_a_websocket_drop(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """16 partitions for 9 channels: idle partitions still get a watermark per range. Small
    caps make the first backfill span several steps and split batches."""
    async with SimChainServer(sim_config(seed=1)).serve() as sim:
        settings = settings_factory(
            {
                **FAST,
                "AOP_CHAIN_PARTITIONS": "16",
                "AOP_AUDIT_DIR": str(tmp_path),
                "AOP_LISTENER_MAX_RANGE_TXS": "60",
                "AOP_LISTENER_MAX_BATCH_EVENTS": "20",
            },
            rpc_url=sim.http_url,
            ws_url=sim.ws_url,
        )
        reconnects = metric("aop_listener_reconnects_total")
        listener = Listener(settings)

        def drop() -> None:
            assert sim.drop_connections() == 1

        target, task, stop = await run_until_caught_up(listener, sim, busy_s=3.0, during=drop)
        stop.set()
        await task
        expected = emitted_ids(sim, up_to=listener.checkpoint.last_slot)

    view = read_log(settings, first_slot=0)
    assert len(expected) > 300
    assert_exactly(view, expected)
    assert min(view.last_slot.values()) == max(view.last_slot.values()) >= target
    idle = [p for p in range(16) if view.events_per_partition[p] == 0]
    assert idle, view.events_per_partition  # and they still advanced (the line above)
    multi_slot = [b for _, b in view.batches if len({e["slot"] for e in b["events"]}) > 1]
    assert multi_slot and max(len(b["events"]) for b in multi_slot) <= 20
    assert metric("aop_listener_reconnects_total") >= reconnects + 1
    audit = [json.loads(x) for x in (tmp_path / "listener.ndjson").read_text().splitlines()]
    assert sorted(
        (a["partition"], a["first_slot"], a["last_slot"], a["events"]) for a in audit
    ) == sorted((p, b["first_slot"], b["last_slot"], len(b["events"])) for p, b in view.batches)
    assert metric("aop_listener_last_slot") == listener.checkpoint.last_slot


async def test_listener_misses_nothing_when_notifications_drop_repeat_and_rpc_fails(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """Half the notifications lost, half repeated, 10% of HTTP calls failing (JSON-RPC
    errors and 503s), and an audit file on a full disk: the log is still exact."""
    (tmp_path / "listener.ndjson").symlink_to("/dev/full")
    async with SimChainServer(sim_config(seed=2)).serve() as sim:
        sim.faults.update(
            drop_notification_p=0.5,
            duplicate_notification_p=0.5,
            rpc_error_p=0.1,
            rpc_error_mode="mixed",
        )
        settings = settings_factory(
            {**FAST, "AOP_AUDIT_DIR": str(tmp_path)}, rpc_url=sim.http_url, ws_url=sim.ws_url
        )
        audit_errors = metric("aop_listener_audit_errors_total")
        listener = Listener(settings)
        _, task, stop = await run_until_caught_up(listener, sim, busy_s=3.0)
        stop.set()
        await task
        counts = dict(sim.faults.counts)
        expected = emitted_ids(sim, up_to=listener.checkpoint.last_slot)

    assert counts.get("notifications_dropped", 0) > 10, counts
    assert counts.get("notifications_duplicated", 0) > 10, counts
    view = read_log(settings, first_slot=0)
    assert len(expected) > 300
    assert_exactly(view, expected)
    assert metric("aop_listener_audit_errors_total") > audit_errors


def _crafted_tx(sim: SimChainServer, logs: list[str], *, err: Any = None) -> TxRecord:
    """A transaction of the program with the given logs, landed in the pending block (what a
    program version that logs garbage would produce). Its valid events are in the record."""
    chain = sim.chain
    payer = Keypair()
    blockhash = Hash.from_string(str(chain.keys.blockhash(chain.tip)))
    program = Pubkey.from_string(PROGRAM)
    message = Message.new_with_blockhash([Instruction(program, b"", [])], payer.pubkey(), blockhash)
    tx = VersionedTransaction.from_legacy(Transaction([payer], message, blockhash))
    signature, slot = str(tx.signatures[0]), chain.ledger.pending_slot
    record = TxRecord(
        signature=signature,
        slot=slot,
        index=len(chain.ledger.pending),
        raw=bytes(tx),
        version="legacy",
        account_keys=(str(payer.pubkey()), PROGRAM),
        err=err,
        logs=tuple(logs),
        inner_instructions=(),
        fee=5000,
        pre_balances=(10**9, 1),
        post_balances=(10**9 - 5000, 1),
        units=1000,
    )
    chain.ledger.add_pending(record)
    return record


async def test_listener_sends_garbage_failed_and_truncated_input_to_the_dlq_and_keeps_going(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """A transaction logging a good event, bad base64 (also non-ASCII), a garbled known event,
    an unknown one and a frame of garbled depth; a failed transaction with an event; a
    truncated one: each lands where it belongs."""

    def line(payload: bytes) -> str:
        return "Program data: " + base64.b64encode(payload).decode()

    good = ChannelStaked(bytes([7]) * 32, bytes([5]) * 32, 10, bytes([8]) * 32, 1, 10_000, 2)
    unknown = bytes.fromhex("00112233445566778899")
    garbled = ProtocolPaused(bytes([1]) * 32, True, bytes([2]) * 32, 3).encode()[:-1]
    frame = [f"Program {PROGRAM} invoke [1]", "Program log: Instruction: Odd"]
    garbage_logs = [
        *frame,
        line(good.encode()),
        "Program data: %%%not base64%%%",
        line(garbled),
        line(unknown),
        "Program data: ÀÀÀÀ",  # not ASCII: binascii raises ValueError, not binascii.Error
        f"Program {PROGRAM} invoke [²]",  # "²".isdigit() is true, int("²") raises
        f"Program {PROGRAM} success",
        f"Program {PROGRAM} success",
    ]
    failed_logs = [
        *frame,
        line(good.encode()),
        f"Program {PROGRAM} failed: custom program error: 0x1",
    ]
    err = {"InstructionError": [0, {"Custom": 1}]}
    async with SimChainServer(sim_config(seed=3, failed_tx_ratio=0.0)).serve() as sim:
        settings = settings_factory(
            {**FAST, "AOP_AUDIT_DIR": str(tmp_path)}, rpc_url=sim.http_url, ws_url=sim.ws_url
        )
        truncated_before = metric("aop_listener_truncated_logs_total")
        reasons = ("bad_base64", "failed_transaction", "undecodable_event", "log_truncated")
        dlq_before = {r: metric("aop_dlq_total", stage="listener", reason=r) for r in reasons}
        listener = Listener(settings)

        def inject() -> None:
            garbage = _crafted_tx(sim, garbage_logs)
            # the record names the events the chain really emitted (visible and decodable or not)
            garbage.events = (
                EmittedEvent(garbage.signature, 0, garbage.slot, "ChannelStaked", good.encode()),
                EmittedEvent(garbage.signature, 3, garbage.slot, "UnknownEvent", unknown),
            )
            injected.append(garbage.signature)
            injected.append(_crafted_tx(sim, failed_logs, err=err).signature)
            sim.chain.workload.inject_truncated(1)

        injected: list[str] = []
        _, task, stop = await run_until_caught_up(listener, sim, busy_s=3.0, during=inject)
        stop.set()
        await task
        expected = emitted_ids(sim, up_to=listener.checkpoint.last_slot)
        truncated = sim.chain.truncated_transactions()

    garbage_sig, failed_sig = injected
    view = read_log(settings, first_slot=0)
    assert f"{garbage_sig}:0" in view.ids and f"{garbage_sig}:3" in view.ids
    assert_exactly(view, expected)
    by_id = {e["id"]: e for e in view.events}
    assert by_id[f"{garbage_sig}:3"]["name"] == "UnknownEvent"
    assert by_id[f"{garbage_sig}:3"]["data"] == unknown
    assert by_id[f"{garbage_sig}:0"]["fields"]["amount"] == "10"

    dlq = [r for _, r in read_committed(settings, settings.topic(DLQ), 1)]
    mine = sorted((r["reason"], r["source"]) for r in dlq if r["reason"] != "log_truncated")
    assert mine == [
        ("bad_base64", f"{garbage_sig}:1"),
        ("bad_base64", f"{garbage_sig}:4"),
        ("failed_transaction", f"{failed_sig}:0"),
        ("undecodable_event", f"{garbage_sig}:2"),
    ]
    assert all(r["stage"] == "listener" for r in dlq)
    assert [(r["source"]) for r in dlq if r["reason"] == "log_truncated"] == [
        t["signature"] for t in truncated
    ]
    assert len(truncated) == 1 and truncated[0]["hidden_events"] > 0
    assert metric("aop_listener_truncated_logs_total") == truncated_before + 1
    assert {
        r: metric("aop_dlq_total", stage="listener", reason=r) - dlq_before[r] for r in reasons
    } == {**dict.fromkeys(reasons, 1), "bad_base64": 2}
    # the listener kept going: events after the bad input are on the log too
    assert max(e["slot"] for e in view.events) > max(
        e["slot"] for e in view.events if e["signature"] in injected
    )


async def test_ranges_end_at_epoch_ends_and_carry_the_block_time_of_their_last_slot(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """25-slot epochs: no SlotBatch crosses an epoch's end, every epoch's last slot ends a
    batch on every partition, and each batch that ends its range carries the simulator's
    block time of that slot (getBlockTime), the time the combiner reads as T(e)."""
    async with SimChainServer(sim_config(seed=3)).serve() as sim:
        settings = settings_factory(
            {
                **FAST,
                "AOP_CHAIN_PARTITIONS": "3",
                "AOP_EPOCH_SLOTS": "25",
                "AOP_AUDIT_DIR": str(tmp_path),
                "AOP_LISTENER_MAX_BATCH_EVENTS": "20",
            },
            rpc_url=sim.http_url,
            ws_url=sim.ws_url,
        )
        listener = Listener(settings)
        _, task, stop = await run_until_caught_up(listener, sim, busy_s=2.0)
        stop.set()
        await task
        view = read_log(settings, first_slot=0)
        times = {b["last_slot"]: sim.chain.block_time(b["last_slot"]) for _, b in view.batches}
        genesis = sim.chain.config.first_slot
    ends: dict[int, set[int]] = {p: set() for p in range(3)}
    timed = 0
    for partition, batch in view.batches:
        first, last = batch["first_slot"], batch["last_slot"]
        assert first // 25 == last // 25, f"batch [{first}, {last}] crosses an epoch end"
        ends[partition].add(last)
        if batch["last_block_time"] is not None:
            assert batch["last_block_time"] == times[last]
            timed += 1
    closed = [e * 25 + 24 for e in range(min(view.last_slot.values()) // 25)]
    assert len([c for c in closed if c >= genesis]) >= 3
    for partition in range(3):
        assert set(closed) <= ends[partition]
    for _, batch in view.batches:
        if batch["last_slot"] in closed:
            # slots before the chain's first block (the simulator's genesis) have no time
            want = times[batch["last_slot"]] if batch["last_slot"] >= genesis else None
            assert batch["last_block_time"] == want
    assert timed >= len([c for c in closed if c >= genesis]) * 3 > 0
