"""Progress-based waits: what "caught up" means, measured from outside the services.

A scenario is caught up with a target epoch E when, for every channel:

1. Postgres holds a root of epoch >= E (the listener put E's events and a watermark past
   E on the log, the fold closed E, the projector wrote it);
2. the API serves that root as the channel's newest (the API answers and reads it);
3. the settlement outbox has no `pending` entry of an epoch <= E (settlement walked every
   root up to it: in a dry run each becomes `dry_run`).

Recovery time is the time from restarting the faulted component (or clearing the fault) until
the pipeline is caught up with E = the last epoch the chain had finalized at that moment:
everything that happened on-chain before the restart has reached every service.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

import psycopg
from psycopg import sql

from tests.conftest import libpq_url
from tests.live_pipeline import http_get

__all__ = ["PipelineProbe", "WaitTimeoutError", "wait_until"]

T = TypeVar("T")


class WaitTimeoutError(AssertionError):
    """Raised when a progress wait does not see its condition within its timeout."""


def wait_until(
    check: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 0.5,
    describe: Callable[[], str] = lambda: "",
) -> T:
    """Poll `check` until it returns something truthy, and return that.

    Raises:
        WaitTimeoutError: `timeout` seconds passed first (the message names `what` and the
            state `describe` reports).
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except (OSError, psycopg.Error):
            value = None  # a component is down or restarting: not progress yet
        if value:
            return value
        if time.monotonic() > deadline:
            raise WaitTimeoutError(f"{what}: not reached within {timeout:.0f} s; {describe()}")
        time.sleep(interval)


class PipelineProbe:
    """Reads the pipeline's progress from Postgres and the API (module docstring)."""

    def __init__(
        self,
        *,
        database_url: str,
        schema: str,
        api: str,
        channels: Sequence[str],
        genesis_slot: int,
        epoch_slots: int,
    ) -> None:
        self._dsn = libpq_url(database_url)
        self._schema = schema
        self._api = api
        self.channels = list(channels)
        self._genesis = genesis_slot
        self._epoch_slots = epoch_slots

    def epoch_of(self, slot: int) -> int:
        return (slot - self._genesis) // self._epoch_slots

    def last_closed_epoch(self, finalized_slot: int) -> int:
        """The newest epoch wholly at or below `finalized_slot`."""
        return self.epoch_of(finalized_slot + 1) - 1

    def _query(self, query: str) -> list[tuple[object, ...]]:
        with psycopg.connect(self._dsn, connect_timeout=5, autocommit=True) as conn:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self._schema)))
            return conn.execute(query).fetchall()

    def stored_epochs(self) -> dict[str, int]:
        """Each channel's newest root epoch in Postgres (channels without a root left out)."""
        rows = self._query("SELECT channel, max(epoch) FROM roots GROUP BY channel")
        return {str(name): int(str(epoch)) for name, epoch in rows}

    def oldest_pending_epoch(self) -> int | None:
        """The oldest epoch with a `pending` settlement outbox entry (None: none pending)."""
        rows = self._query(
            "SELECT min(epoch) FROM settlement_outbox WHERE status = 'pending' "
            "AND format IN ('cumulative-v2', 'ring-v0')"  # AOP_SETTLEMENT_TARGET=channel
        )
        value = rows[0][0] if rows else None
        return None if value is None else int(str(value))

    def served_epochs(self) -> dict[str, int]:
        """Each channel's newest root epoch as the API serves it."""
        out = {}
        for channel in self.channels:
            reply = http_get(f"{self._api}/v1/channels/{channel}/roots", limit=1)
            if reply is not None and reply.status_code == 200 and reply.json().get("roots"):
                out[channel] = int(reply.json()["roots"][0]["epoch"])
        return out

    def caught_up(self, epoch: int) -> bool:
        """Steps 1-3 of the module docstring for target `epoch`."""
        if not _all_at_least(self.stored_epochs(), self.channels, epoch):
            return False
        if not _all_at_least(self.served_epochs(), self.channels, epoch):
            return False
        pending = self.oldest_pending_epoch()
        return pending is None or pending > epoch

    def describe(self) -> str:
        """The state a failed wait reports."""
        try:
            return (
                f"stored epochs {self.stored_epochs()}, served {self.served_epochs()}, "
                f"oldest pending settlement epoch {self.oldest_pending_epoch()}"
            )
        except (OSError, psycopg.Error) as exc:
            return f"probe failed: {exc}"


def _all_at_least(epochs: Mapping[str, int], channels: Sequence[str], epoch: int) -> bool:
    return all(epochs.get(channel, -1) >= epoch for channel in channels)
