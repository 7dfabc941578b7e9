"""The authoritative record of finalized program events, kept in a temporary file.

The record holds every event of a successful transaction in a finalized slot, in chain order,
for the life of the chain: it is the witness the log is audited against
(`sim_emittedEventIds`), so it cannot be pruned as the ledger is. It grows with every event,
so it lives on disk, not in memory: fixed-size rows (so a page at any offset is one read) in
one file, the events' data bytes in another, both unlinked at once (the OS frees them when
the chain is gone). In memory: the two lengths and the event names (a few).

Disk use is ~110 bytes per event plus its data (~100-200 bytes), in `TMPDIR`.
"""

from __future__ import annotations

import os
import struct
import tempfile
import weakref
from collections.abc import Iterable, Iterator

from aop.simchain.errors import SimChainError
from aop.simchain.ledger import EmittedEvent

__all__ = ["EventRecord"]

#: signature (base58, NUL-padded to 88), event index, slot, name id, data offset, data length.
_ROW = struct.Struct("<88sHQHQI")


class EventRecord:
    """Append-only record of emitted events; `page(offset, limit)` reads them back."""

    def __init__(self) -> None:
        self._rows = _unlinked_file("rows")
        self._data = _unlinked_file("data")
        self._finalizer = weakref.finalize(self, _close, self._rows, self._data)
        self._count = 0
        self._data_size = 0
        self._names: list[str] = []
        self._name_ids: dict[str, int] = {}

    def __len__(self) -> int:
        return self._count

    def close(self) -> None:
        """Release the files (reads after this raise `SimChainError`)."""
        self._finalizer()

    def append(self, events: Iterable[EmittedEvent]) -> None:
        """Add `events` (chain order) after those already recorded."""
        rows: list[bytes] = []
        data: list[bytes] = []
        offset = self._data_size
        for event in events:
            rows.append(
                _ROW.pack(
                    event.signature.encode("ascii"),
                    event.event_index,
                    event.slot,
                    self._name_id(event.name),
                    offset,
                    len(event.data),
                )
            )
            data.append(event.data)
            offset += len(event.data)
        if not rows:
            return
        self._write(self._data, b"".join(data))
        self._write(self._rows, b"".join(rows))
        self._count += len(rows)
        self._data_size = offset

    def page(self, offset: int, limit: int) -> list[EmittedEvent]:
        """Events `offset` .. `offset + limit - 1` (fewer at the end), in chain order."""
        if offset < 0 or limit < 0:
            raise SimChainError(f"offset and limit must be >= 0 (got {offset}, {limit})")
        count = max(min(limit, self._count - offset), 0)
        if count == 0:
            return []
        raw = self._read(self._rows, count * _ROW.size, offset * _ROW.size)
        rows = list(_ROW.iter_unpack(raw))
        first, last = rows[0], rows[-1]
        data = self._read(self._data, last[4] + last[5] - first[4], first[4])
        start = first[4]
        return [
            EmittedEvent(
                signature.rstrip(b"\0").decode("ascii"),
                index,
                slot,
                self._names[name],
                data[at - start : at - start + size],
            )
            for signature, index, slot, name, at, size in rows
        ]

    def __iter__(self) -> Iterator[EmittedEvent]:
        for offset in range(0, self._count, 10_000):
            yield from self.page(offset, 10_000)

    def _name_id(self, name: str) -> int:
        found = self._name_ids.get(name)
        if found is None:
            found = self._name_ids[name] = len(self._names)
            self._names.append(name)
        return found

    def _write(self, fd: int, payload: bytes) -> None:
        if not self._finalizer.alive:
            raise SimChainError("the event record is closed")
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view) :]

    def _read(self, fd: int, size: int, at: int) -> bytes:
        if not self._finalizer.alive:
            raise SimChainError("the event record is closed")
        chunks: list[bytes] = []
        while size > 0:
            chunk = os.pread(fd, size, at)
            if not chunk:
                raise SimChainError(f"the event record ends before byte {at + size}")
            chunks.append(chunk)
            size -= len(chunk)
            at += len(chunk)
        return b"".join(chunks)


def _unlinked_file(kind: str) -> int:
    """A read-write file descriptor on a new file that no longer has a name."""
    fd, path = tempfile.mkstemp(prefix=f"aop-simchain-record-{kind}-")
    os.unlink(path)
    return fd


def _close(*fds: int) -> None:
    for fd in fds:
        os.close(fd)
