"""Durable file writes for exports: write to `<name>.tmp`, fsync, rename, fsync the directory.

A reader (or a crash) therefore sees a file whole or not at all under its final name; a
`.tmp` file is a leftover of an interrupted run, never referenced by a manifest.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import BinaryIO

__all__ = ["TMP_SUFFIX", "HashingFile", "file_sha256", "fsync_dir", "publish", "write_atomically"]

TMP_SUFFIX = ".tmp"
_CHUNK = 1 << 20


class HashingFile:
    """A binary file opened for writing that keeps the sha256 and size of what went through it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: BinaryIO = path.open("wb")
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._hash.update(data)
        self.size += len(data)
        return self._file.write(data)

    def flush(self) -> None:
        self._file.flush()

    def seekable(self) -> bool:
        """False: fastavro then writes a new container instead of appending to one."""
        return False

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def close(self, *, sync: bool) -> None:
        """Close the file, first forcing it to disk when `sync`."""
        try:
            if sync:
                self._file.flush()
                os.fsync(self._file.fileno())
        finally:
            self._file.close()


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new file in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(tmp: Path, final: Path) -> None:
    """Rename a finished, fsynced `tmp` to `final` and make the rename durable."""
    os.replace(tmp, final)
    fsync_dir(final.parent)


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` whole or not at all (tmp file, fsync, rename, fsync directory)."""
    tmp = path.with_name(path.name + TMP_SUFFIX)
    try:
        with tmp.open("wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        publish(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def file_sha256(path: Path) -> tuple[str, int]:
    """(sha256 hex digest, size in bytes) of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as data:
        while chunk := data.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
