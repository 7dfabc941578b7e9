"""core.program_logs: attributing `Program data:` lines to the program's own frames."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st
from solders.pubkey import Pubkey

from aop.core.errors import ProgramLogError
from aop.core.program_logs import ProgramData, ProgramLogs, extract_program_data
from tests.unit.core.vectors import CLAIM_LOG_LINE, PROGRAM_ID

PROGRAM = Pubkey.from_string(PROGRAM_ID)
OURS = PROGRAM_ID
TOKEN = "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb"
OTHER = "ComputeBudget111111111111111111111111111111"


def data_line(payload: bytes) -> str:
    return "Program data: " + base64.b64encode(payload).decode()


def test_claim_with_token_cpis_yields_only_the_programs_own_data() -> None:
    logs = [
        f"Program {OTHER} invoke [1]",
        f"Program {OTHER} success",
        f"Program {OURS} invoke [1]",
        "Program log: Instruction: ClaimCumulative",
        f"Program {TOKEN} invoke [2]",
        "Program log: Instruction: TransferChecked",
        data_line(b"token-data"),
        f"Program {TOKEN} consumed 6000 of 180000 compute units",
        f"Program {TOKEN} success",
        CLAIM_LOG_LINE,
        f"Program {OURS} consumed 40000 of 200000 compute units",
        f"Program return: {OURS} AQ==",
        f"Program {OURS} success",
    ]
    result = extract_program_data(logs, PROGRAM)
    expected = base64.b64decode(CLAIM_LOG_LINE.removeprefix("Program data: "))
    assert result == ProgramLogs((ProgramData(0, expected),), truncated=False)


def test_cpi_into_the_program_from_another_counts() -> None:
    logs = [
        f"Program {OTHER} invoke [1]",
        data_line(b"outer"),
        f"Program {OURS} invoke [2]",
        data_line(b"inner-1"),
        f"Program {OURS} success",
        data_line(b"outer-again"),
        f"Program {OURS} invoke [2]",
        data_line(b"inner-2"),
        f"Program {OURS} success",
        f"Program {OTHER} success",
    ]
    assert extract_program_data(logs, PROGRAM).payloads == (
        ProgramData(0, b"inner-1"),
        ProgramData(1, b"inner-2"),
    )


def test_event_indexes_count_across_instructions_of_the_transaction() -> None:
    logs = []
    for n in range(3):
        logs += [f"Program {OURS} invoke [1]", data_line(bytes([n])), f"Program {OURS} success"]
    assert [p.event_index for p in extract_program_data(logs, PROGRAM).payloads] == [0, 1, 2]


def test_failed_frame_is_popped() -> None:
    logs = [
        f"Program {OURS} invoke [1]",
        f"Program {TOKEN} invoke [2]",
        f"Program {TOKEN} failed: custom program error: 0x1",
        data_line(b"after-failed-cpi"),
        f"Program {OURS} failed: custom program error: 0x1",
        data_line(b"orphan"),
    ]
    assert extract_program_data(logs, PROGRAM).payloads == (ProgramData(0, b"after-failed-cpi"),)


def test_program_log_text_cannot_spoof_a_frame_change() -> None:
    logs = [
        f"Program {OURS} invoke [1]",
        "Program log: success",
        f"Program log: {TOKEN} invoke [2]",
        data_line(b"still-ours"),
        f"Program {OURS} success",
    ]
    assert extract_program_data(logs, PROGRAM).payloads == (ProgramData(0, b"still-ours"),)


def test_invoke_depth_resynchronises_the_stack_after_lost_lines() -> None:
    logs = [
        f"Program {OURS} invoke [1]",
        f"Program {TOKEN} invoke [2]",  # its success line is missing
        f"Program {OURS} invoke [1]",
        data_line(b"second-instruction"),
        f"Program {OURS} success",
    ]
    assert extract_program_data(logs, PROGRAM).payloads == (ProgramData(0, b"second-instruction"),)


def test_log_truncated_sets_the_flag() -> None:
    logs = [f"Program {OURS} invoke [1]", data_line(b"x"), "Log truncated"]
    result = extract_program_data(logs, PROGRAM)
    assert result == ProgramLogs((ProgramData(0, b"x"),), truncated=True)


def test_bad_base64_of_the_program_raises_naming_the_line() -> None:
    logs = [f"Program {OURS} invoke [1]", "Program data: not*base64"]
    with pytest.raises(
        ProgramLogError, match=r"log line 1: `Program data:` payload is not valid base64"
    ):
        extract_program_data(logs, PROGRAM)


def test_bad_base64_of_another_program_is_ignored() -> None:
    logs = [f"Program {TOKEN} invoke [1]", "Program data: not*base64", f"Program {TOKEN} success"]
    assert extract_program_data(logs, PROGRAM) == ProgramLogs((), truncated=False)


@st.composite
def nested_calls(draw: st.DrawFn, depth: int = 1) -> tuple[list[str], list[bytes]]:
    """A random call tree: (log lines, the payloads the program's own frames emitted)."""
    program = draw(st.sampled_from([OURS, TOKEN, OTHER]))
    lines, ours = [f"Program {program} invoke [{depth}]"], []
    for _ in range(draw(st.integers(0, 3))):
        if depth < 4 and draw(st.booleans()):
            child_lines, child_ours = draw(nested_calls(depth + 1))
            lines += child_lines
            ours += child_ours
        else:
            payload = draw(st.binary(min_size=1, max_size=20))
            lines.append(data_line(payload))
            if program == OURS:
                ours.append(payload)
    lines.append(f"Program {program} success")
    return lines, ours


@given(st.lists(nested_calls(), max_size=4))
def test_random_call_trees_attribute_exactly_the_programs_own_payloads(
    calls: list[tuple[list[str], list[bytes]]],
) -> None:
    logs = [line for lines, _ in calls for line in lines]
    expected = [payload for _, ours in calls for payload in ours]
    result = extract_program_data(logs, PROGRAM)
    assert [p.data for p in result.payloads] == expected
    assert [p.event_index for p in result.payloads] == list(range(len(expected)))
