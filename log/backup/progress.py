"""What an export or import reports while it runs (a progress bar in the CLI, or nothing)."""

from __future__ import annotations

from typing import Protocol

__all__ = ["Progress"]


class Progress(Protocol):
    """Receives the size of the job, then its advance, then its end."""

    def start(self, label: str, total: int) -> None: ...

    def advance(self, done: int) -> None: ...

    def finish(self) -> None: ...
