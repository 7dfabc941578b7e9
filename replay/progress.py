"""A rich progress bar for long reads (records done / to read, events/s, ETA), on stderr.

Commands create it with `progress_for(quiet=...)`: None (no bar) when quiet or when stderr
is not a terminal, so pipes, cron and CI logs stay clean.
"""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

__all__ = ["RichReadProgress", "progress_for"]


class _EventsColumn(ProgressColumn):
    """Events folded so far and their rate."""

    def render(self, task: Task) -> Text:
        events = int(task.fields.get("events", 0))
        elapsed = task.elapsed or 0.0
        rate = events / elapsed if elapsed > 0 else 0.0
        return Text(f"{events:,} events {rate:,.0f}/s", style="progress.data.speed")


class RichReadProgress:
    """`ReadProgress` drawn with rich (records of the partition as the unit of the bar)."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            _EventsColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._task: TaskID | None = None
        self._events = 0

    def start(self, label: str, records: int) -> None:
        self._events = 0
        self._progress.start()
        self._task = self._progress.add_task(label[:40], total=max(records, 1), events=0)

    def advance(self, records: int, events: int) -> None:
        if self._task is None:
            return
        self._events += events
        self._progress.update(self._task, advance=records, events=self._events)

    def finish(self) -> None:
        self._task = None
        self._progress.stop()


def progress_for(*, quiet: bool) -> RichReadProgress | None:
    """A progress bar on stderr, or None when quiet or stderr is not a terminal."""
    if quiet or not sys.stderr.isatty():
        return None
    return RichReadProgress(Console(stderr=True))
