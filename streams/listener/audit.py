"""The NDJSON audit file: one line per SlotBatch appended, rotated by size.

An audit failure (disk full, permissions) never stops the listener: the line is lost, the
failure is counted (`aop_listener_audit_errors_total`) and logged, and the next write tries
again from a freshly opened file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TextIO

__all__ = ["AUDIT_FILE", "AuditLog"]

log = logging.getLogger(__name__)

AUDIT_FILE = "listener.ndjson"


class AuditLog:
    """Appends NDJSON lines to `<directory>/listener.ndjson`, keeping `keep` rotated files.

    Args:
        directory: where the files live (created on first write).
        max_bytes: rotate before a write would make the current file larger than this.
        keep: rotated files kept (`listener.ndjson.1` is the newest).
        on_error: called with each OSError (the listener counts them).
    """

    def __init__(
        self,
        directory: Path,
        *,
        max_bytes: int,
        keep: int,
        on_error: Callable[[OSError], None] = lambda exc: None,
    ) -> None:
        self.path = Path(directory) / AUDIT_FILE
        self._max_bytes = max_bytes
        self._keep = keep
        self._on_error = on_error
        self._file: TextIO | None = None
        self._size = 0

    def write(self, entries: Iterable[Mapping[str, Any]]) -> bool:
        """Append one line per entry (a `ts` field is added); False if the write failed."""
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        lines = [
            json.dumps({"ts": now, **entry}, separators=(",", ":")) + "\n" for entry in entries
        ]
        try:
            for line in lines:
                self._append(line)
            if self._file is not None:
                self._file.flush()
        except OSError as exc:
            self._close_quietly()
            log.warning("audit file %s not written: %s", self.path, exc)
            self._on_error(exc)
            return False
        return True

    def close(self) -> None:
        self._close_quietly()

    def _append(self, line: str) -> None:
        size = len(line.encode())
        file = self._file if self._file is not None else self._open()
        if self._size > 0 and self._size + size > self._max_bytes:
            file = self._rotate()
        file.write(line)
        self._size += size

    def _open(self) -> TextIO:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (kept open)
        self._file, self._size = file, file.tell()
        return file

    def _rotate(self) -> TextIO:
        self._close_quietly()
        oldest = self._rotated(self._keep)
        if oldest.exists():
            oldest.unlink()
        for index in range(self._keep - 1, 0, -1):
            if self._rotated(index).exists():
                os.replace(self._rotated(index), self._rotated(index + 1))
        os.replace(self.path, self._rotated(1))
        return self._open()

    def _rotated(self, index: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{index}")

    def _close_quietly(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None
