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

Speed (the listener's hot path, ~12 lines per transaction): `program_payloads` remembers the
`invoke` / `success` lines it has classified (they repeat verbatim: a few programs at a few
depths), so most frame lines cost one dict lookup instead of a split and a parse; `consumed`
lines are recognised by their third word. Lines that vary (`consumed ...`, `failed: ...`,
messages, data) are classified each time and never remembered. On any error the line-by-line
reference scan runs again, to raise the same error naming the same line. Both scans are
checked equal on random log shapes (`tests/unit/core/test_program_logs_fast.py`).
"""

from __future__ import annotations

import binascii
from collections.abc import Sequence
from dataclasses import dataclass

from solders.pubkey import Pubkey

from aop.core.errors import ProgramLogError

__all__ = ["ProgramData", "ProgramLogs", "extract_program_data", "program_payloads"]

_DATA_PREFIX = "Program data: "
_TRUNCATED = "Log truncated"
#: A frame line's effect: (depth, program) for `invoke` (depth 0: push on top), or _POP.
_Frame = tuple[int, str]
_POP: _Frame = (-1, "")
_FRAMES_MAX = 4096
_frames: dict[str, _Frame] = {}
_program_texts: dict[Pubkey, str] = {}


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
    program = _program_texts.get(program_id)
    if program is None:
        program = str(program_id)
        if len(_program_texts) < 64:
            _program_texts[program_id] = program
    payloads, truncated = program_payloads(logs, program)
    return ProgramLogs(tuple(map(ProgramData, range(len(payloads)), payloads)), truncated)


def program_payloads(logs: Sequence[str], program: str) -> tuple[list[bytes], bool]:
    """`extract_program_data` for the hot path: the payloads (event index = list index).

    Args:
        logs: the transaction's log messages.
        program: the program id in base58.
    Returns:
        The program's payloads in log order, and whether the logs were truncated.
    Raises:
        ProgramLogError: a payload of the program is not valid base64 (names the line).
    """
    stack: list[str] = []
    payloads: list[bytes] = []
    truncated = False
    frames = _frames
    a2b = binascii.a2b_base64
    try:
        for line in logs:
            frame = frames.get(line)  # only ever holds `Program <id> invoke/success` lines
            if frame is None:
                if not line.startswith("Program "):
                    if line.startswith(_TRUNCATED):
                        truncated = True
                    continue
                if line.startswith("data: ", 8):
                    if stack and stack[-1] == program:
                        payloads.append(a2b(line[14:].strip(), strict_mode=True))
                    continue
                if line.startswith("log: ", 8):
                    continue
                space = line.find(" ", 8)  # "Program <id> consumed ...": its 3rd word
                if space > 0 and line.startswith("consumed ", space + 1):
                    continue
                frame = _classify(line)
                if frame is None:
                    continue
            depth, invoked = frame
            if depth < 0:
                if stack:
                    stack.pop()
            else:
                if depth:
                    del stack[depth - 1 :]
                stack.append(invoked)
    except ValueError:  # bad base64: binascii.Error, or ValueError for non-ASCII text
        return _scan_reference(logs, program)  # raises the same error, naming the line
    return payloads, truncated


def _classify(line: str) -> _Frame | None:
    """A `Program ...` line's effect on the frame stack (None: none); remembers invoke/success."""
    words = line.split(" ", 3)
    if len(words) < 3 or words[1].endswith(":"):  # "Program log: success" is a message
        return None
    verb = words[2]
    if verb == "invoke":
        frame = (_invoke_depth(words[3] if len(words) > 3 else ""), words[1])
    elif verb == "success" and len(words) == 3:
        frame = _POP
    elif verb == "success" or verb == "failed:":
        return _POP  # varies (a reason, trailing text): not remembered
    else:
        return None
    if len(_frames) >= _FRAMES_MAX:
        _frames.clear()
    _frames[line] = frame
    return frame


def _scan_reference(logs: Sequence[str], program: str) -> tuple[list[bytes], bool]:
    """The module's steps line by line: the oracle of `program_payloads`, and its error path."""
    stack: list[str] = []
    payloads: list[bytes] = []
    truncated = False
    for line_no, line in enumerate(logs):
        if line.startswith(_DATA_PREFIX):
            if stack and stack[-1] == program:
                payloads.append(_decode_base64(line, line_no))
        elif line.startswith("Program "):
            _track_frame(stack, line)
        elif line.startswith(_TRUNCATED):
            truncated = True
    return payloads, truncated


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


#: more digits than any real call depth (Solana stops at 5): garbled, not a depth.
_DEPTH_DIGITS_MAX = 9


def _invoke_depth(text: str) -> int:
    """n of "[n]", or 0 when absent or garbled (then the frame is pushed on top).

    Only ASCII digits count: `str.isdigit` also accepts "²" and other digits `int` refuses,
    and a hostile log line must not raise anything but `ProgramLogError`.
    """
    inner = text[1:-1]
    if (
        text.startswith("[")
        and text.endswith("]")
        and 0 < len(inner) <= _DEPTH_DIGITS_MAX
        and inner.isascii()
        and inner.isdigit()
    ):
        return int(inner)
    return 0


def _decode_base64(line: str, line_no: int) -> bytes:
    text = line[len(_DATA_PREFIX) :].strip()
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except ValueError as exc:  # binascii.Error, or a plain ValueError for non-ASCII text
        raise ProgramLogError(
            f"log line {line_no}: `Program data:` payload is not valid base64 ({exc}): "
            f"{text[:80]!r}"
        ) from exc
