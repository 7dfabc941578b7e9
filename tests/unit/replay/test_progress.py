"""The progress bar: on a terminal it shows records, events/s and an ETA; else nothing."""

from __future__ import annotations

import io

from rich.console import Console

from aop.replay.progress import RichReadProgress, progress_for


def test_no_progress_when_quiet_or_not_a_terminal() -> None:
    """Under pytest stderr is captured (not a TTY): no bar either way."""
    assert progress_for(quiet=True) is None
    assert progress_for(quiet=False) is None


def test_bar_shows_records_events_and_rate() -> None:
    out = io.StringIO()
    progress = RichReadProgress(Console(file=out, force_terminal=True, width=120))
    progress.start("alpha, beta", 10)
    progress.advance(4, 4_000)
    progress.advance(6, 6_000)
    progress.finish()
    text = out.getvalue()
    assert "alpha, beta" in text
    assert "10/10" in text
    assert "10,000 events" in text
    assert "/s" in text
