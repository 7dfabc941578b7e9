"""core.program_logs: the remembering scan gives the reference scan's result, or its error."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from solders.pubkey import Pubkey

from aop.core import program_logs
from aop.core.errors import ProgramLogError
from aop.core.program_logs import (
    ProgramData,
    ProgramLogs,
    _scan_reference,
    extract_program_data,
    program_payloads,
)
from tests.unit.core.vectors import PROGRAM_ID

PROGRAMS = [
    PROGRAM_ID,
    "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb",
    "11111111111111111111111111111111",
]

_payloads = st.binary(max_size=24).map(lambda b: "Program data: " + base64.b64encode(b).decode())
_program = st.sampled_from([*PROGRAMS, PROGRAM_ID, PROGRAM_ID, "", "log:", "data:", "x y"])
_depth = st.sampled_from(["[1]", "[2]", "[3]", "[0]", "[10]", "[", "[x]", "[1] extra", "", "[²]"])
_lines = st.one_of(
    _payloads,
    _program.flatmap(lambda p: _depth.map(lambda d: f"Program {p} invoke {d}".rstrip())),
    _program.map(lambda p: f"Program {p} success"),
    _program.map(lambda p: f"Program {p} success trailing"),
    _program.map(lambda p: f"Program {p} failed: custom program error: 0x1"),
    _program.map(lambda p: f"Program {p} consumed 6200 of 170000 compute units"),
    _program.map(lambda p: f"Program return: {p} AQ=="),
    st.sampled_from(
        [
            "Program log: success",
            f"Program log: {PROGRAM_ID} invoke [1]",
            "Program data: not*base64",
            "Program data:  AQ== ",
            "Program data:",
            "Program ",
            "Program",
            "Program  success",
            "Program  consumed x",
            "Log truncated",
            "Log truncated, account not found",
            "",
            "something else",
        ]
    ),
    st.text(max_size=30),
    st.text(max_size=30).map(lambda t: "Program " + t),
)
_ours = f"Program {PROGRAM_ID} invoke [1]"


def _outcome(scan: object, logs: list[str]) -> tuple[str, object]:
    try:
        return "ok", scan(logs, PROGRAM_ID)  # type: ignore[operator]
    except Exception as exc:
        return type(exc).__name__, str(exc)


@settings(max_examples=400)
@given(st.lists(_lines, max_size=40), st.booleans())
def test_program_payloads_equals_the_reference_scan_cold_and_warm(
    logs: list[str], in_program: bool
) -> None:
    """Same payloads, flag and error (type and text) as the line-by-line scan, twice over."""
    if in_program:
        logs = [_ours, *logs]
    expected = _outcome(_scan_reference, logs)
    assert _outcome(program_payloads, logs) == expected  # classifies (and remembers) lines
    assert _outcome(program_payloads, logs) == expected  # uses what it remembered


@pytest.mark.parametrize("invoke", ["invoke [0]", "invoke [x]", "invoke", "invoke [1] extra"])
def test_program_payloads_garbled_depth_pushes_on_top(invoke: str) -> None:
    """A depth of 0 or none keeps the frames below: data after its success is ours again."""
    token = PROGRAMS[1]
    data = "Program data: " + base64.b64encode(b"ours").decode()
    logs = [_ours, f"Program {token} {invoke}", data, f"Program {token} success", data]
    assert program_payloads(logs, PROGRAM_ID) == ([b"ours"], False)
    assert program_payloads(logs, PROGRAM_ID) == _scan_reference(logs, PROGRAM_ID)


def test_program_payloads_bad_base64_error_names_the_line_like_the_reference() -> None:
    logs = [f"Program {PROGRAM_ID} invoke [1]", "Program log: x", "Program data: not*base64"]
    with pytest.raises(ProgramLogError, match=r"log line 2: `Program data:` payload"):
        program_payloads(logs, PROGRAM_ID)


def test_program_payloads_varying_lines_are_not_remembered() -> None:
    """`consumed` and `failed:` lines differ per transaction: the memory must not fill up."""
    before = dict(program_logs._frames)
    logs = [f"Program {PROGRAM_ID} invoke [1]"]
    logs += [f"Program {PROGRAM_ID} consumed {n} of 200000 compute units" for n in range(50)]
    logs += [f"Program {PROGRAM_ID} failed: custom program error: 0x{n:x}" for n in range(50)]
    program_payloads(logs, PROGRAM_ID)
    added = set(program_logs._frames) - set(before)
    assert added <= {f"Program {PROGRAM_ID} invoke [1]"}


def test_extract_program_data_wraps_program_payloads() -> None:
    data = "Program data: " + base64.b64encode(b"abc").decode()
    logs = [f"Program {PROGRAM_ID} invoke [1]", data, data, "Log truncated"]
    assert extract_program_data(logs, Pubkey.from_string(PROGRAM_ID)) == ProgramLogs(
        (ProgramData(0, b"abc"), ProgramData(1, b"abc")), truncated=True
    )
