"""The event record on disk: appended in chain order, read back page by page, exactly."""

from __future__ import annotations

import pytest

from aop.simchain.errors import SimChainError
from aop.simchain.ledger import EmittedEvent
from aop.simchain.record import EventRecord


def _events(count: int) -> list[EmittedEvent]:
    """Distinct events: 87- and 88-character signatures, names from a small set, data of
    varying length (empty included)."""
    return [
        EmittedEvent(
            signature=("S" * (87 + i % 2))[:-3] + f"{i:03d}",
            event_index=i % 3,
            slot=1_000 + i // 4,
            name=("ChannelStaked", "ChannelUnstaked", "CumulativeRewardsClaimed")[i % 3],
            data=bytes([i % 256]) * (i % 7),
        )
        for i in range(count)
    ]


def test_record_pages_back_what_was_appended() -> None:
    """Pages at any offset equal the same slice of the appended events; past the end: none."""
    record = EventRecord()
    events = _events(250)
    record.append(events[:100])
    record.append([])
    record.append(events[100:])
    assert len(record) == 250
    assert record.page(0, 250) == events
    assert record.page(97, 10) == events[97:107]
    assert record.page(245, 100) == events[245:]
    assert record.page(250, 10) == []
    assert list(record) == events
    record.close()


def test_closed_record_refuses_reads_and_writes() -> None:
    record = EventRecord()
    record.append(_events(3))
    record.close()
    record.close()  # idempotent
    with pytest.raises(SimChainError, match="the event record is closed"):
        record.page(0, 1)
    with pytest.raises(SimChainError, match="the event record is closed"):
        record.append(_events(1))
