"""A ChainEvent as the listener routes it: the event, its partition and its place in a batch.

A tuple (cheap to build: the listener makes one per event). `record` is the ChainEvent Avro
value (`schemas/avro/ChainEvent.avsc`); `SlotBatchEncoder` writes the same bytes faster.
"""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = ["RoutedEvent"]


class RoutedEvent(NamedTuple):
    """A decoded event and the partition it belongs to (a tuple: cheap to build)."""

    partition: int
    slot: int
    signature: str
    event_index: int
    name: str
    block_time: int | None
    program_id: str
    data: bytes
    fields: dict[str, str]
    position: int = 0
    """The transaction's place among the program's transactions of the slot (block order)."""

    @property
    def id(self) -> str:
        """`signature:event_index`, the dedupe key."""
        return f"{self.signature}:{self.event_index}"

    @property
    def order(self) -> tuple[int, int, str, int]:
        """Place in a SlotBatch: slot, transaction position, (signature), event index."""
        return (self.slot, self.position, self.signature, self.event_index)

    @property
    def record(self) -> dict[str, Any]:
        """The ChainEvent Avro value."""
        return {
            "id": self.id,
            "signature": self.signature,
            "slot": self.slot,
            "block_time": self.block_time,
            "event_index": self.event_index,
            "program_id": self.program_id,
            "name": self.name,
            "data": self.data,
            "fields": self.fields,
        }
