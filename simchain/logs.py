"""Transaction log lines exactly as the Solana runtime writes them.

The runtime's `LogCollector` keeps at most 10 000 bytes of messages per transaction: a
message that would reach the limit is dropped and the first such drop appends `Log truncated`;
a later, shorter message that still fits is kept (Agave's `LogCollector::log`), so lines can
follow `Log truncated`. Programs' frames look like:

    Program <id> invoke [<depth>]
    Program log: <msg>                     (msg!)
    Program data: <base64> ...             (sol_log_data / Anchor emit!)
    Program <id> consumed <n> of <m> compute units
    Program <id> success | Program <id> failed: <reason>
"""

from __future__ import annotations

import base64

__all__ = ["LOG_BYTES_LIMIT", "LogCollector"]

LOG_BYTES_LIMIT = 10_000


class LogCollector:
    """Collects one transaction's log messages with the runtime's 10 KB truncation."""

    def __init__(self, limit: int = LOG_BYTES_LIMIT) -> None:
        self.messages: list[str] = []
        self.truncated = False
        self._limit = limit
        self._bytes = 0

    def log(self, message: str) -> bool:
        """Append `message`; returns False if it was dropped by the byte limit."""
        size = self._bytes + len(message)
        if size >= self._limit:
            if not self.truncated:
                self.truncated = True
                self.messages.append("Log truncated")
            return False
        self._bytes = size
        self.messages.append(message)
        return True

    def invoke(self, program: str, depth: int) -> None:
        self.log(f"Program {program} invoke [{depth}]")

    def program_log(self, text: str) -> None:
        self.log(f"Program log: {text}")

    def program_data(self, *payloads: bytes) -> bool:
        """A `Program data:` line (one base64 field per payload); False if it was dropped."""
        fields = " ".join(base64.b64encode(p).decode("ascii") for p in payloads)
        return self.log(f"Program data: {fields}")

    def consumed(self, program: str, used: int, budget: int) -> None:
        self.log(f"Program {program} consumed {used} of {budget} compute units")

    def success(self, program: str) -> None:
        self.log(f"Program {program} success")

    def failed(self, program: str, reason: str) -> None:
        self.log(f"Program {program} failed: {reason}")
