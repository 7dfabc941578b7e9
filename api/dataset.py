"""A root's full dataset, streamed from a server-side cursor, so anyone can rebuild the root.

Three representations (`?format=`), each in leaf order:

* `json` (default): a JSON array of `{"index", "wallet" (base58), "amount" (decimal string)}`;
* `ndjson`: the same objects, one per line;
* `binary`: the canonical dataset bytes of the claim format (cumulative-v2 and global-v4:
  wallet(32) || u64le(cumulative_total) per leaf; global-v5: wallet(32) || u64le(base_yield)
  || u64le(attention_bonus)), so keccak256(body) == dataset_hash.

A global-v5 dataset's JSON entries also carry `base_yield` and `attention_bonus`.

The stream reads `AOP_API_DATASET_CHUNK_ROWS` leaves per FETCH inside one REPEATABLE READ
transaction on one pooled connection; at most `AOP_API_DATASET_STREAMS` run at once (more
answer 503). A stream whose leaf count disagrees with the root is cut short before its
closing bracket, so a client never takes a short dataset for a whole one.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator
from typing import Literal

from solders.pubkey import Pubkey
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from aop.api import queries
from aop.api.db import Database
from aop.api.errors import DatabaseUnavailableError, ServiceBusyError
from aop.api.reader import RootMeta
from aop.api.shapes import DatasetEntry, TwoPartDatasetEntry, encode, encode_lines

__all__ = ["DATASET_FORMATS", "MEDIA_TYPES", "DatasetFormat", "DatasetStreams"]

log = logging.getLogger(__name__)

DatasetFormat = Literal["json", "ndjson", "binary"]
DATASET_FORMATS: tuple[DatasetFormat, ...] = ("json", "ndjson", "binary")
MEDIA_TYPES = {
    "json": "application/json",
    "ndjson": "application/x-ndjson",
    "binary": "application/octet-stream",
}
_cursor_ids = itertools.count()


def dataset_etag(meta: RootMeta, fmt: str) -> str:
    """The strong ETag of a dataset representation (the dataset_hash names the content)."""
    return f'"{meta.dataset_hash.hex()}.{fmt}"'


def _encode(
    fmt: str, claim_format: str, rows: list[tuple[int, bytes, str, str | None]], first: bool
) -> bytes:
    two_parts = claim_format == "global-v5"
    if fmt == "binary":
        if claim_format == "ring-v0":
            return b"".join(
                bytes(w) + i.to_bytes(4, "little") + int(a).to_bytes(8, "little")
                for i, w, a, _ in rows
            )
        if two_parts:  # wallet || base_yield || attention_bonus
            return b"".join(
                bytes(w)
                + (int(a) - int(b or 0)).to_bytes(8, "little")
                + int(b or 0).to_bytes(8, "little")
                for _i, w, a, b in rows
            )
        return b"".join(bytes(w) + int(a).to_bytes(8, "little") for _i, w, a, _ in rows)
    entries: list[DatasetEntry] | list[TwoPartDatasetEntry]
    if two_parts:
        entries = [
            TwoPartDatasetEntry(i, str(Pubkey(bytes(w))), a, str(int(a) - int(b or 0)), b or "0")
            for i, w, a, b in rows
        ]
    else:
        entries = [DatasetEntry(i, str(Pubkey(bytes(w))), a) for i, w, a, _ in rows]
    if fmt == "ndjson":
        return encode_lines(entries)
    items = encode(entries)[1:-1]  # the array's items, without its brackets
    return items if first else b"," + items


class DatasetStreams:
    """Opens dataset streams, at most `max_streams` at once."""

    def __init__(self, db: Database, *, chunk_rows: int, max_streams: int) -> None:
        self._db = db
        self._chunk_rows = chunk_rows
        self._slots = asyncio.Semaphore(max_streams)
        self._max_streams = max_streams

    def check_capacity(self) -> None:
        """Raise ServiceBusyError (503) when every stream slot is taken."""
        if self._slots.locked():
            raise ServiceBusyError(
                "too_many_streams",
                f"{self._max_streams} dataset streams are already running; retry later",
            )

    async def _body(self, meta: RootMeta, fmt: str) -> AsyncIterator[bytes]:
        sent = 0
        if fmt == "json":
            yield b"["
        async with self._db.connection() as conn, conn.transaction():
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            name = f"aop_dataset_{next(_cursor_ids)}"
            async with conn.cursor(name=name, binary=True) as cursor:
                await cursor.execute(queries.DATASET_SQL, {"root_id": meta.root_id})
                while True:
                    rows = await cursor.fetchmany(self._chunk_rows)
                    if not rows:
                        break
                    yield _encode(fmt, meta.format, rows, first=sent == 0)
                    sent += len(rows)
        if sent != meta.leaf_count:
            log.error(
                "dataset stream cut short",
                extra={"root_id": meta.root_id, "sent": sent, "leaf_count": meta.leaf_count},
            )
            raise DatabaseUnavailableError(
                f"root {meta.root_seq} has {meta.leaf_count} leaves but {sent} were read"
            )
        if fmt == "json":
            yield b"]"

    def response(self, meta: RootMeta, fmt: str, headers: dict[str, str]) -> StreamingResponse:
        """The streaming answer; it takes a stream slot when it starts sending."""
        return _SlotStreamingResponse(
            self._slots, self._body(meta, fmt), media_type=MEDIA_TYPES[fmt], headers=headers
        )


class _SlotStreamingResponse(StreamingResponse):
    """A StreamingResponse that holds a semaphore slot while it streams."""

    def __init__(self, slots: asyncio.Semaphore, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._stream_slots = slots

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with self._stream_slots:
            await super().__call__(scope, receive, send)
