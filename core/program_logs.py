"""Find a program's `Program data:` payloads in a transaction's log messages.

Solana logs every instruction frame: `Program <id> invoke [<depth>]` opens one, `Program <id>
success` or `Program <id> failed: <reason>` closes it, and between them come the frame's own
lines (`Program log:`, `Program data:`, `Program return: <id> <base64>`, `Program <id> consumed
...`) and the frames of its CPIs. Like Anchor's EventParser, a `Program data:` line belongs to
the program whose frame is innermost at that point, so a claim's CPI into Token-2022 never
yields this program's events, and a CPI into this program from another one does.

Steps:
1. `invoke [n]` sets the frame stack to its first n-1 frames plus the invoked program (the
   depth re-synchronises the stack even if earlier lines were lost);
2. `success` / `failed` pops the innermost frame;
3. `Program data: <base64>` on a line whose innermost frame is `program_id` is decoded and
   numbered 0, 1, 2, ... in log order (the event index within the transaction);
4. a `Log truncated` line (Solana stops logging past 10 KB) sets `truncated`: events after it
   are lost, and the caller must not treat the list as complete.
"""

from __future__ import annotations

import binascii
from collections.abc import Sequence
from dataclasses import dataclass

from solders.pubkey import Pubkey

from core.errors import ProgramLogError

__all__ = ["ProgramData", "ProgramLogs", "extract_program_data"]

_DATA_PREFIX = "Program data: "
_TRUNCATED = "Log truncated"


@dataclass(frozen=True)
class ProgramData:
    """One raw payload of the program, with its index among the transaction's payloads."""

    event_index: int
    data: bytes


@dataclass(frozen=True)
class ProgramLogs:
    """The program's payloads in log order, and whether the logs were truncated."""

    payloads: tuple[ProgramData, ...]
    truncated: bool


def extract_program_data(logs: Sequence[str], program_id: Pubkey) -> ProgramLogs:
    """The `Program data:` payloads emitted by `program_id`'s own frames (see module steps).

    Raises:
        ProgramLogError: a payload of the program is not valid base64 (names the line).
    """
    program = str(program_id)
    stack: list[str] = []
    payloads: list[ProgramData] = []
    truncated = False
    for line_no, line in enumerate(logs):
        if line.startswith(_DATA_PREFIX):
            if stack and stack[-1] == program:
                payloads.append(ProgramData(len(payloads), _decode_base64(line, line_no)))
        elif line.startswith("Program "):
            _track_frame(stack, line)
        elif line.startswith(_TRUNCATED):
            truncated = True
    return ProgramLogs(tuple(payloads), truncated)


def _track_frame(stack: list[str], line: str) -> None:
    """Update the frame stack for an `invoke`, `success` or `failed` line; ignore the rest."""
    words = line.split(" ", 3)
    if len(words) < 3 or words[1].endswith(":"):  # "Program log: success" is a message
        return
    program, verb = words[1], words[2]
    if verb == "invoke":
        depth = _invoke_depth(words[3] if len(words) > 3 else "")
        if depth:
            del stack[depth - 1 :]
        stack.append(program)
    elif (verb == "success" or verb == "failed:") and stack:
        stack.pop()


def _invoke_depth(text: str) -> int:
    """n of "[n]", or 0 when absent or garbled (then the frame is pushed on top)."""
    if text.startswith("[") and text.endswith("]") and text[1:-1].isdigit():
        return int(text[1:-1])
    return 0


def _decode_base64(line: str, line_no: int) -> bytes:
    text = line[len(_DATA_PREFIX) :].strip()
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except binascii.Error as exc:
        raise ProgramLogError(
            f"log line {line_no}: `Program data:` payload is not valid base64 ({exc}): "
            f"{text[:80]!r}"
        ) from exc
