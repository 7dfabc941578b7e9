"""`tests.log_ledger.audit_log` against the simulated chain and the real broker: it judges
the simulator's record up to the slot the log is complete to, so events the chain finalized
after the listener's last range are reported apart, not as lost (the day run counted 1-2 of
them lost: settlement's `GlobalRootPublished`, landed during the drain and finalized after
the listener stopped), while a range written without its events is still caught, id by id."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from aop.log.avro import codec_for
from aop.runtime.settings import Settings
from aop.simchain.ledger import EmittedEvent
from aop.simchain.server import SimChainServer
from aop.streams.listener import Listener
from aop.streams.listener.batcher import plan_range
from aop.streams.listener.sink import KafkaSink
from tests.integration.test_listener import FAST, run_until_caught_up, sim_config
from tests.log_ledger import Emitted, audit_log

PARTITIONS = 3


async def _listen_then_emit_more(
    settings_factory: Callable[..., Settings], tmp_path: Path, *, seed: int
) -> tuple[Settings, int, list[EmittedEvent]]:
    """Run the listener until it has the paused chain's finalized slots, stop it, then let the
    workload land a few more slots and the chain finalize them. Returns the settings, the
    listener's last slot and the simulator's whole record."""
    async with SimChainServer(sim_config(seed=seed)).serve() as sim:
        settings = settings_factory(
            {**FAST, "AOP_CHAIN_PARTITIONS": str(PARTITIONS), "AOP_AUDIT_DIR": str(tmp_path)},
            rpc_url=sim.http_url,
            ws_url=sim.ws_url,
        )
        listener = Listener(settings)
        _, task, stop = await run_until_caught_up(listener, sim, busy_s=1.5)
        stop.set()
        await task
        assert listener.checkpoint is not None
        through = listener.checkpoint.last_slot
        # the listener has stopped; the chain goes on landing program events
        sim.chain.workload.enabled = True
        await sim.wait_for_slot(sim.chain.tip + 5, commitment="processed")
        sim.chain.workload.enabled = False
        await sim.wait_for_slot(sim.chain.tip)
        record = sim.chain.emitted_events()
    return settings, through, record


def _emitted(record: list[EmittedEvent]) -> list[Emitted]:
    return [Emitted(e.id, e.slot, e.name) for e in record]


async def test_events_finalized_after_the_logs_end_are_not_counted_lost(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    settings, through, record = await _listen_then_emit_more(settings_factory, tmp_path, seed=21)
    later = [e for e in record if e.slot > through]
    assert len(later) >= 3, "the workload landed nothing after the listener stopped"

    audit = audit_log(settings, _emitted(record))

    assert audit.through_slot == through
    assert (audit.lost, audit.duplicated, audit.foreign) == (0, 0, 0), audit.examples
    assert audit.emitted == audit.on_log == len(record) - len(later)
    assert audit.after_log == len(later)
    assert audit.after_examples == tuple(f"{e.id} ({e.name}, slot {e.slot})" for e in later[:5])
    assert audit.exact


async def test_a_range_written_without_its_events_is_caught_id_by_id(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """A listener that lost events: the slots after the real one's last range are put on
    every partition as empty SlotBatches, up to the newest slot of the record."""
    settings, through, record = await _listen_then_emit_more(settings_factory, tmp_path, seed=22)
    last = max(e.slot for e in record)
    skipped = [e.id for e in record if e.slot > through]
    assert len(skipped) >= 3
    sink = KafkaSink(settings, codec_for(settings))
    sink.start()
    sink.write_range(
        plan_range(
            first_slot=through + 1,
            last_slot=last,
            events=[],
            next_slot=[through + 1] * PARTITIONS,
            max_events=100,
        ),
        [],
    )
    sink.close()

    audit = audit_log(settings, _emitted(record))

    assert audit.through_slot == last
    assert (audit.lost, audit.duplicated, audit.foreign) == (len(skipped), 0, 0)
    assert audit.examples == tuple(skipped[:5])
    assert audit.emitted == len(record)
    assert audit.on_log == len(record) - len(skipped)
    assert audit.after_log == 0
    assert not audit.exact
