"""The legacy aggregator's roots, read from its PostgreSQL database for the parallel run.

What is asked and how the answer reads: `replay.legacy_query`.

The connection string is a secret: it is read from a file only its owner can read
(`runtime.secrets.read_private_text`, mode 600), travels as a `Secret`, and is never printed:
errors say what failed with the password and the string masked. Every session is read-only
(`default_transaction_read_only`), whatever the role may do; give the run a read-only role
all the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import psycopg
from psycopg.conninfo import conninfo_to_dict

from aop.replay.errors import LegacyParityError
from aop.replay.legacy_query import DEFAULT_LEGACY_QUERY, check_legacy_query, decode_legacy_root
from aop.runtime.secrets import MASK, Secret, read_private_text

__all__ = ["LegacyDatabase", "LegacyReader"]

DSN_OPTION: Final = "--legacy-dsn-file"
CONNECT_TIMEOUT_S: Final = 10


@dataclass(frozen=True)
class LegacyDatabase:
    """Where the legacy's roots are read: the connection string (a `Secret`) and the query."""

    dsn: Secret
    query: str = DEFAULT_LEGACY_QUERY

    @classmethod
    def from_file(cls, path: Path, query: str | None = None) -> LegacyDatabase:
        """The connection string of the first line of `path` (mode 600), and the query.

        Raises:
            LegacyParityError: the file is missing, readable by others, empty or not a libpq
                connection string; the query is refused (`check_legacy_query`).
        """
        text = read_private_text(path, DSN_OPTION, LegacyParityError)
        dsn = text.splitlines()[0].strip() if text.strip() else ""
        if not dsn:
            raise LegacyParityError(
                f"{DSN_OPTION}: file {path} is empty (the connection string is its first line)"
            )
        try:
            conninfo_to_dict(dsn)
        except psycopg.Error:
            raise LegacyParityError(
                f"{DSN_OPTION}: the first line of {path} is not a libpq connection string "
                "(postgresql://USER:PASSWORD@HOST:PORT/DB or key=value pairs)"
            ) from None
        return cls(Secret(dsn), check_legacy_query(query or DEFAULT_LEGACY_QUERY))

    def masked(self, message: str) -> str:
        """`message` on one line, the connection string and its password replaced by `***`."""
        dsn = self.dsn.reveal()
        secrets = [dsn, str(conninfo_to_dict(dsn).get("password") or "")]
        for secret in sorted(filter(None, secrets), key=len, reverse=True):
            message = message.replace(secret, MASK)
        return " ".join(message.split())

    @contextmanager
    def connect(self) -> Iterator[LegacyReader]:
        """A read-only session on the legacy database, closed on exit.

        Raises:
            LegacyParityError: the connection fails (the message masked).
        """
        try:
            conn = psycopg.connect(
                self.dsn.reveal(), connect_timeout=CONNECT_TIMEOUT_S, autocommit=False
            )
        except psycopg.Error as exc:
            raise LegacyParityError(
                f"cannot connect to the legacy database: {self.masked(str(exc))}"
            ) from None
        try:
            conn.read_only = True
            yield LegacyReader(conn, self)
        finally:
            conn.close()


class LegacyReader:
    """One read-only session: the legacy's root of (channel, epoch)."""

    def __init__(self, conn: psycopg.Connection[Any], database: LegacyDatabase) -> None:
        self._conn = conn
        self._database = database

    def root(self, channel: str, epoch: int) -> bytes | None:
        """The legacy's root of (channel, epoch), or None when it has none.

        Raises:
            LegacyParityError: the query fails, answers more than one row or column, or a root
                that does not decode (`decode_legacy_root`).
        """
        try:
            with self._conn.cursor() as cursor:
                cursor.execute(self._database.query.encode(), {"epoch": epoch, "channel": channel})
                width = len(cursor.description or ())
                rows = cursor.fetchmany(2)
        except psycopg.Error as exc:
            raise LegacyParityError(
                f"the legacy query failed for channel {channel!r} epoch {epoch}: "
                f"{self._database.masked(str(exc))}"
            ) from None
        if not rows:
            return None
        if len(rows) > 1 or width != 1:
            shape = f"{'2 or more rows' if len(rows) > 1 else '1 row'} of {width} column(s)"
            raise LegacyParityError(
                f"the legacy query must answer at most one row of one column (the root) per "
                f"(channel, epoch) (got {shape} for channel {channel!r} epoch {epoch})"
            )
        return decode_legacy_root(rows[0][0], channel, epoch)
