"""Segment files: the records of one partition's offset range as an Avro object container file.

Each record keeps what a Kafka record has: offset, partition, timestamp (and its type), key,
value and headers, in offset order. fastavro writes the container (codec `snappy` by default:
standard Avro, ~3x smaller than the raw values, and faster than writing them uncompressed);
file metadata names the topic and partition.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fastavro
from confluent_kafka import Message

from aop.log.backup.files import TMP_SUFFIX, HashingFile, publish

__all__ = ["CODECS", "RECORD_SCHEMA", "SegmentWriter", "read_segment", "segment_path"]

#: container codecs fastavro can write here without extra packages.
CODECS = ("snappy", "deflate", "null")

RECORD_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "LogRecord",
    "namespace": "aop.backup.v1",
    "doc": "One Kafka record of the pipeline's log, as exported by `aop log export`.",
    "fields": [
        {"name": "offset", "type": "long"},
        {"name": "partition", "type": "int"},
        {"name": "timestamp", "type": "long", "doc": "milliseconds since the epoch"},
        {
            "name": "timestamp_type",
            "type": "int",
            "doc": "0 not available, 1 create time, 2 log append time",
        },
        {"name": "key", "type": ["null", "bytes"]},
        {"name": "value", "type": ["null", "bytes"]},
        {
            "name": "headers",
            "type": {
                "type": "array",
                "items": {
                    "type": "record",
                    "name": "Header",
                    "fields": [
                        {"name": "key", "type": "string"},
                        {"name": "value", "type": ["null", "bytes"]},
                    ],
                },
            },
        },
    ],
}
_PARSED = fastavro.parse_schema(RECORD_SCHEMA)


def segment_path(topic: str, partition: int, start: int, end: int) -> str:
    """The file of offsets [start, end), relative to the export directory (posix)."""
    return f"topics/{topic}/{partition}/{start:020d}-{end:020d}.avro"


def as_record(message: Message) -> dict[str, Any]:
    """A consumed Kafka message as a LogRecord."""
    kind, timestamp = message.timestamp()  # (type, ms): confluent-kafka types it loosely
    return {
        "offset": message.offset(),
        "partition": message.partition(),
        "timestamp": timestamp,
        "timestamp_type": kind,
        "key": message.key(),
        "value": message.value(),
        "headers": [{"key": k, "value": v} for k, v in _headers(message)],
    }


def _headers(message: Message) -> list[tuple[str, bytes | None]]:
    """A message's headers as (key, value) pairs (confluent-kafka's stubs type them loosely)."""
    headers: Any = message.headers()
    return list(headers or ())


class SegmentWriter:
    """Writes one segment to `<path>.tmp`; `finish` makes it durable under its final name."""

    def __init__(
        self, root: Path, topic: str, partition: int, start: int, end: int, *, codec: str
    ) -> None:
        self.relative = segment_path(topic, partition, start, end)
        self.final = root / self.relative
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.final.with_name(self.final.name + TMP_SUFFIX)
        self.records = 0
        #: offsets [start, start + done) are read (for progress reports).
        self.done = 0
        self._file = HashingFile(self.tmp)
        metadata = {"aop.topic": topic, "aop.partition": str(partition)}
        sink: Any = self._file  # a file-like object fastavro writes to (its stubs want IO)
        self._writer = fastavro.write.Writer(sink, _PARSED, codec=codec, metadata=metadata)

    def append(self, message: Message) -> None:
        self._writer.write(as_record(message))
        self.records += 1

    def finish(self) -> tuple[str, int]:
        """Flush, fsync and rename into place; (sha256, bytes) of the file.

        Raises:
            OSError: a write failed (e.g. ENOSPC); the tmp file is removed.
        """
        try:
            self._writer.flush()
            self._file.close(sync=True)
            publish(self.tmp, self.final)
        except BaseException:
            self.discard()
            raise
        return self._file.sha256, self._file.size

    def discard(self) -> None:
        """Drop the unfinished file."""
        with contextlib.suppress(OSError):
            self._file.close(sync=False)
        self.tmp.unlink(missing_ok=True)


def read_segment(path: Path) -> Iterator[dict[str, Any]]:
    """The LogRecords of a segment file, in order."""
    with path.open("rb") as data:
        yield from fastavro.reader(data)  # type: ignore[misc]
